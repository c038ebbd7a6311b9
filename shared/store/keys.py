"""The single table's layout: every item type's keys, here and nowhere else (the store modules build their
keys with these). Items of one organisation share its partition, so one Query reads a whole kind.

========================  ===================================  ==============================================
pk                        sk                                   item (store module)
========================  ===================================  ==============================================
ORG#<org>                 CONNECTION#<provider>                a connection (connections); in gsi1
ORG#<org>                 PRODUCT#<id>                         a product (catalog)
ORG#<org>                 PITEM#<provider>#<item id>           a provider's item (catalog)
ORG#<org>                 ACCOUNT#<provider>#<id>              an account of the chart (catalog)
ORG#<org>                 SUPPLIER#<provider>#<id>             a supplier (catalog)
ORG#<org>                 CURSOR#<provider>#<entity>           an incremental sync's cursor (catalog)
ORG#<org>                 SALES#<provider>                     sales tracking, cursor, pull lease (sales)
ORG#<org>                 SALEDOC#<document id>                a pulled sales document (sales)
ORG#<org>                 SETTINGS#EXPORT#<provider>           export settings (settings)
ORG#<org>                 EXPORT#<export id>                   an export and its plan (exports); in gsi1
ORG#<org>                 EXPORT-CURRENCY#<provider>#<tenant>  a company's home currency (exports)
ORG#<org>                 BOOKS#<provider>#<company>           the books' planned balances (books)
ORG#<org>                 BOOKS-CHECK#<provider>               the last scheduled reconciliation (books)
ORG#<org>                 BOOKS-ZONE                           the time zone the books are dated in, once a
                                                               plan was dated in it (sales)
ORG#<org>                 ITEM-START#<provider>#<company>#     an item's starting quantity in a company
                          <item id>                            (starting_quantities)
ORG#<org>                 INVENTORY#LEDGER                     the stock ledger's version, re-cost (inventory)
ORG#<org>                 INVENTORY#MOVES#<document>           a document's stock movements (inventory)
ORG#<org>                 INVENTORY#STOCK#<product>            a product's open lots, latest move (inventory)
ORG#<org>                 INVENTORY#STOCK-LOTS#<product>#<n>   more of its open lots, when many (inventory)
ORG#<org>                 INVENTORY#MOVED-AT#<key>             a document, by its first movement's order key
                                                               (checkpoints)
ORG#<org>                 INVENTORY#CHECKPOINT#<key>#<version> every product's open lots after the movements
                                                               up to that key (checkpoints) ...
ORG#<org>                 INVENTORY#CHECKPOINT-LOTS#<key>#     ... in parts
                          <version>#<n>
ORG#<org>                 INVENTORY#<kind>#<record id>         a receipt, rejection or build (inventory)
ORG#<org>                 IDEMPOTENCY#<route>#<key>            an API write's Idempotency-Key (idempotency)
GRANT#<grant id>          GRANT                                one consent's sealed tokens (connections)
TENANT#<provider>#<id>    ORG#<org>                            an organisation connected to that company
                                                               (connections)
<kind>#<nonce>            <kind>                               a pending OAuth STATE or CHOICE (oauth_states)
RATE#<provider>#<tenant>  WINDOW#<n> | SLOT#<i> | DAY          a tenant's rate budget (rate_budget)
========================  ===================================  ==============================================

gsi1 (``gsi1pk``/``gsi1sk``) lists items across organisations:

- ``CONNECTIONS#<0..3>`` / ``<provider>#<org>``: every connection, sharded by a hash of the organisation so
  no one partition takes them all, for the scheduled passes.
- ``OUTBOX`` / ``<created at>#<org>#<export id>``: exports whose message is not yet queued, oldest first (the
  attributes are removed once it is).

gsi2 (``gsi2pk``/``gsi2sk``, keys only) orders an organisation's lists for the API's pages:

- ``ORG#<org>#EXPORTS`` / ``<created at>#<export id>``: its exports, read newest first.
- ``ORG#<org>#PRODUCTS`` / ``<SKU, case-folded>`` NUL ``<product id>``: its products by SKU.
- ``ORG#<org>#ITEMS#<provider>`` / ``<name, case-folded>`` NUL ``<item id>``: a provider's items by name.
- ``ORG#<org>#RECEIPTS`` and ``ORG#<org>#BUILDS`` / ``<when, UTC>#<seq>#<record id>``: its receipts and
  builds, oldest first.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any


def org_pk(organisation_id: str) -> str:
    return f"ORG#{organisation_id}"


# ---- connections and grants ----------------------------------------------------------------------------
CONNECTION_PREFIX = "CONNECTION#"


def connection_sk(provider: str) -> str:
    return f"{CONNECTION_PREFIX}{provider}"


def connections_index_prefix(provider: str) -> str:
    """The start of the gsi1 sort keys of every connection to ``provider``."""
    return f"{provider}#"


def connection_index(organisation_id: str, provider: str) -> dict[str, str]:
    """Where a connection sits in gsi1: its organisation's shard."""
    return {
        "gsi1pk": connections_shard_pk(organisation_id),
        "gsi1sk": connections_index_prefix(provider) + organisation_id,
    }


def grant_pk(grant_id: str) -> str:
    return f"GRANT#{grant_id}"


GRANT_SK = "GRANT"


def tenant_pk(provider: str, tenant_id: str) -> str:
    """The partition listing the organisations that connected one provider company (a Xero tenant, a QBO
    realm): who else a disconnect would affect, in one Query."""
    return f"TENANT#{provider}#{tenant_id}"


CONNECTIONS_INDEX_PK = "CONNECTIONS"
# gsi1: connections spread over CONNECTIONS#0..3, so no one partition takes every connection's writes. Four is
# plenty: a partition takes 1,000 writes a second and 10,000 connections write about 35 a second (a check
# every 5 minutes); each shard is one Query at every scheduled pass, and each costs the pass's cold start.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-sharding.html
CONNECTION_SHARDS = 4


def connections_shard_pk(organisation_id: str) -> str:
    """The gsi1 partition of an organisation's connections: a stable hash of the organisation (CRC-32, the
    same in every process, unlike ``hash``)."""
    return f"{CONNECTIONS_INDEX_PK}#{zlib.crc32(organisation_id.encode()) % CONNECTION_SHARDS}"


def connection_index_pks() -> list[str]:
    """Every partition the scheduled passes read."""
    return [f"{CONNECTIONS_INDEX_PK}#{n}" for n in range(CONNECTION_SHARDS)]


# ---- the paged lists (gsi2) -------------------------------------------------------------------------------
LIST_INDEX = "gsi2"


def exports_list_pk(organisation_id: str) -> str:
    return f"{org_pk(organisation_id)}#EXPORTS"


def products_list_pk(organisation_id: str) -> str:
    return f"{org_pk(organisation_id)}#PRODUCTS"


def exports_list_index(organisation_id: str, created_at: str, export_id: str) -> dict[str, str]:
    """Where an export sits in its organisation's list: by creation time (ISO, fixed at creation), then id;
    read backwards, newest first."""
    return {"gsi2pk": exports_list_pk(organisation_id), "gsi2sk": f"{created_at}#{export_id}"}


LISTED_SKU = 200  # characters of the SKU a product is listed by: a sort key holds at most 1,024 bytes


def products_list_index(organisation_id: str, sku: str, product_id: str) -> dict[str, str]:
    """Where a product sits in its organisation's list: by SKU, case-folded, then id. NUL sorts before any
    character, so the sort key orders as the pair (SKU, id) does: "A" before "A-1", whatever the ids."""
    return {
        "gsi2pk": products_list_pk(organisation_id),
        "gsi2sk": f"{sku.casefold()[:LISTED_SKU]}\x00{product_id}",
    }


LISTED_RECORDS = ("receipt", "build")  # records with a list of their own (a rejection is its receipt's)


def records_list_pk(organisation_id: str, kind: str) -> str:
    return f"{org_pk(organisation_id)}#{kind.upper()}S"


def records_list_index(
    organisation_id: str, kind: str, at: datetime, seq: int, record_id: str
) -> dict[str, str]:
    """Where a receipt or build sits in its organisation's list: by when it happened (in UTC, fixed width, so
    the text sorts as the instants do whatever offset it was given with), then its ledger sequence (records
    of one instant in the order they were made), then id."""
    instant = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return {"gsi2pk": records_list_pk(organisation_id, kind), "gsi2sk": f"{instant}#{seq:012d}#{record_id}"}


# ---- catalog ------------------------------------------------------------------------------------------
PRODUCT_PREFIX = "PRODUCT#"
SUPPLIER_PREFIX = "SUPPLIER#"


def product_sk(product_id: str) -> str:
    return f"{PRODUCT_PREFIX}{product_id}"


def items_list_pk(organisation_id: str, provider: str) -> str:
    return f"{org_pk(organisation_id)}#ITEMS#{provider}"


def items_list_index(organisation_id: str, provider: str, name: str, item_id: str) -> dict[str, str]:
    """Where a provider's item sits in its organisation's list of that provider's items: by name, case-folded
    (its first LISTED_SKU characters), NUL, then id, as the product list orders SKUs."""
    return {
        "gsi2pk": items_list_pk(organisation_id, provider),
        "gsi2sk": f"{name.casefold()[:LISTED_SKU]}\x00{item_id}",
    }


def item_prefix(provider: str) -> str:
    return f"PITEM#{provider}#"


def item_sk(provider: str, item_id: str) -> str:
    return f"{item_prefix(provider)}{item_id}"


def account_prefix(provider: str) -> str:
    return f"ACCOUNT#{provider}#"


def account_sk(provider: str, account_id: str) -> str:
    return f"{account_prefix(provider)}{account_id}"


def supplier_prefix(provider: str) -> str:
    return f"{SUPPLIER_PREFIX}{provider}#"


def supplier_sk(provider: str, supplier_id: str) -> str:
    return f"{supplier_prefix(provider)}{supplier_id}"


def cursor_sk(provider: str, entity: str) -> str:
    return f"CURSOR#{provider}#{entity}"


# ---- sales ----------------------------------------------------------------------------------------------
TRACKING_PREFIX = "SALES#"
DOCUMENT_PREFIX = "SALEDOC#"


def tracking_sk(provider: str) -> str:
    return f"{TRACKING_PREFIX}{provider}"


def document_sk(document_id: str) -> str:
    return f"{DOCUMENT_PREFIX}{document_id}"


# ---- export settings, exports, books --------------------------------------------------------------------
EXPORT_PREFIX = "EXPORT#"
# gsi1: exports not yet handed to the queue, or claimed and not settled by the queue's visibility timeout
OUTBOX_INDEX_PK = "OUTBOX"
BOOKS_PREFIX = "BOOKS#"


def export_settings_sk(provider: str) -> str:
    return f"SETTINGS#EXPORT#{provider}"


def export_sk(export_id: str) -> str:
    return f"{EXPORT_PREFIX}{export_id}"


def outbox_index(created_at: str, organisation_id: str, export_id: str) -> dict[str, str]:
    return {"gsi1pk": OUTBOX_INDEX_PK, "gsi1sk": f"{created_at}#{organisation_id}#{export_id}"}


def home_currency_sk(provider: str, tenant_id: str) -> str:
    return f"EXPORT-CURRENCY#{provider}#{tenant_id}"


def books_sk(provider: str, company: str) -> str:
    return f"{BOOKS_PREFIX}{provider}#{company}"


def books_check_sk(provider: str) -> str:
    return f"BOOKS-CHECK#{provider}"


BOOKS_ZONE_SK = "BOOKS-ZONE"


def starting_quantity_prefix(provider: str, company: str) -> str:
    return f"ITEM-START#{provider}#{company}#"


def starting_quantity_sk(provider: str, company: str, item_id: str) -> str:
    return f"{starting_quantity_prefix(provider, company)}{item_id}"


# ---- inventory ----------------------------------------------------------------------------------------
LEDGER_SK = "INVENTORY#LEDGER"
MOVES_PREFIX = "INVENTORY#MOVES#"


def moves_sk(document: str) -> str:
    return f"{MOVES_PREFIX}{document}"


def stock_sk(product_id: str) -> str:
    return f"INVENTORY#STOCK#{product_id}"


def stock_page_sk(product_id: str, page: int) -> str:
    return f"INVENTORY#STOCK-LOTS#{product_id}#{page:05d}"


MOVED_AT_PREFIX = "INVENTORY#MOVED-AT#"
CHECKPOINT_PREFIX = "INVENTORY#CHECKPOINT#"


def moved_at_sk(key: str) -> str:
    return f"{MOVED_AT_PREFIX}{key}"


def checkpoint_sk(key: str, version: int) -> str:
    return f"{CHECKPOINT_PREFIX}{key}#{version:010d}"


def checkpoint_part_sk(key: str, version: int, part: int) -> str:
    return f"INVENTORY#CHECKPOINT-LOTS#{key}#{version:010d}#{part:04d}"


def record_sk(kind: str, record_id: str) -> str:
    return f"INVENTORY#{kind}#{record_id}"


# ---- idempotency keys ---------------------------------------------------------------------------------
def idempotency_sk(scope: str, key: str) -> str:
    return f"IDEMPOTENCY#{scope}#{key}"


def made_by_sk(request_token: str) -> str:
    """The products an attempt at an ``Idempotency-Key`` request made (its token names every attempt)."""
    return f"IDEMPOTENCY-MADE#{request_token}"


# ---- one-time OAuth artefacts -------------------------------------------------------------------------
def pending_key(kind: str, nonce: str) -> dict[str, Any]:
    return {"pk": f"{kind}#{nonce}", "sk": kind}


# ---- rate budget --------------------------------------------------------------------------------------
RATE_DAY_SK = "DAY"


def rate_pk(key: str) -> str:
    """``key`` names the provider and the tenant."""
    return f"RATE#{key}"


def rate_window_sk(window: int) -> str:
    return f"WINDOW#{window}"


def rate_slot_sk(slot: int) -> str:
    return f"SLOT#{slot}"
