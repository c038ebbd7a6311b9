"""The provider's catalog in Partsemble: items (bundles included), chart of accounts and suppliers kept
current by incremental syncs, items imported as products, and suppliers created in the provider.

Every provider call runs in a ``Session``: the connection's tenant, an access token that is refreshed
through the vault once when the provider refuses it mid-run, and the tenant's rate budget in DynamoDB
(shared with every other Lambda)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import TypeVar

from pydantic import ConfigDict

from shared.aws import is_outage
from shared.bodies import ImportRequest, SupplierRequest
from shared.domain.catalog import (
    Account,
    Match,
    Product,
    ProviderItem,
    Skipped,
    Supplier,
    bundle_parts,
    find_supplier,
    kit_apart,
    match_items,
    new_product_id,
    product_from_item,
    sku_key,
)
from shared.domain.connections import PROVIDER_LABELS, ProviderName
from shared.errors import Conflict, InvalidFields, ProviderRejected, ProviderUnavailable, SyncInterrupted
from shared.model import Model
from shared.providers import provider_name
from shared.providers.base import AccountingProvider, Session, SupplierDraft
from shared.services import idempotency, paging, tokens
from shared.services.paging import Page
from shared.services.sessions import connected, session_for
from shared.store import catalog as store
from shared.store import connections as connection_store

T = TypeVar("T")


def _synced(
    organisation_id: str, name: ProviderName, connection: connection_store.Connection, now: datetime
) -> None:
    connection_store.update_connection(
        organisation_id,
        name,
        {"last_successful_sync_at": now.isoformat()},
        only_if_grant=connection.grant_id,
    )


# ---- items ----------------------------------------------------------------------------------------------
class ItemRef(Model):
    model_config = ConfigDict(frozen=True)
    item_id: str
    name: str
    sku: str | None


class ItemSyncResult(Model):
    provider: ProviderName
    read: int  # items the provider returned (all on the first run, the changed ones after; Xero: all)
    created: list[ItemRef]  # items Partsemble had not seen before
    updated: list[ItemRef]  # items the provider changed (renames follow the item id)
    removed: list[str]  # ids of items the provider no longer has (deleted in Xero), forgotten
    matched: list[Match]  # products linked to an item by this run
    linked: int  # products linked to an item in all
    importable: int  # items linked to no product, ready to import as products
    unmatched_products: list[Skipped]  # products no item stands for, and why
    skipped: list[Skipped]  # every item that can't be matched, with the reason
    # links that hold, but that the provider counts apart: a kit linked to a QuickBooks item that is no bundle
    warnings: list[Skipped]


def _ref(item: ProviderItem) -> ItemRef:
    return ItemRef(item_id=item.item_id, name=item.name, sku=item.sku)


def sync_items(organisation_id: str, name: str, now: datetime) -> ItemSyncResult:
    """Reads the items changed since the last run, stores what changed, and links products to items
    (by item id once linked, else by SKU). The cursor moves only after everything read is stored."""
    wanted, connection = connected(organisation_id, name)
    cursor = store.get_cursor(organisation_id, wanted, "items")
    # Xero tells no deletion (a deleted item is gone from GET /Items, which If-Modified-Since can't show) and
    # answers every item in one unpaged call: its items are read whole, and those it no longer has are
    # forgotten, so a product linked to one links again by its code (QBO never deletes an item)
    whole = wanted == "xero"
    changes = tokens.provider(wanted).items(session_for(connection), None if whole else cursor)
    known = {i.item_id: i for i in store.provider_items(organisation_id, wanted)}
    gone = sorted(set(known) - {i.item_id for i in changes.records}) if whole else []
    for item_id in gone:
        del known[item_id]
    fresh = [i for i in changes.records if known.get(i.item_id) != i]
    created = [i for i in fresh if i.item_id not in known]
    known.update((i.item_id, i) for i in fresh)
    products = store.products(organisation_id)
    matching = match_items(wanted, known.values(), products)
    new_links = [m for m in matching.matches if m.by == "sku"]
    linking = {m.product_id: m.item_id for m in new_links}
    read = {p.product_id: p.provider_links[wanted] for p in products if wanted in p.provider_links}
    left: set[str] = set()

    def link(product_ids: list[str]) -> None:
        # the link only: what a file import (or another provider's link) writes to the product meanwhile
        # stays; and only over the link read, so one a provider items import wrote since stays too
        links = {p: linking[p] for p in product_ids}
        left.update(store.link_products(organisation_id, wanted, links, read))

    writes: list[Callable[[], object]] = [
        *(partial(store.put_provider_items, organisation_id, batch) for batch in _batches(fresh)),
        *(partial(store.delete_provider_items, organisation_id, wanted, batch) for batch in _batches(gone)),
        *(partial(link, batch) for batch in _batches(list(linking))),
    ]
    if changes.cursor and changes.cursor != cursor:
        writes.append(partial(store.put_cursor, organisation_id, wanted, "items", changes.cursor))
    writes.append(partial(_synced, organisation_id, wanted, connection, now))
    _store_in_order(writes)
    created_ids = {i.item_id for i in created}
    by_id = {p.product_id: p for p in products}
    apart = (kit_apart(by_id[m.product_id], known[m.item_id]) for m in matching.matches)
    return ItemSyncResult(
        provider=wanted,
        read=len(changes.records),
        created=[_ref(i) for i in created],
        updated=[_ref(i) for i in fresh if i.item_id not in created_ids],
        removed=gone,
        matched=[m for m in new_links if m.product_id not in left],
        linked=len(matching.matches),
        importable=len(matching.unmatched_items),
        unmatched_products=list(matching.unmatched_products),
        skipped=list(matching.skipped),
        warnings=[w for w in apart if w is not None],
    )


STORED_AT_ONCE = 25  # DynamoDB's most writes in one BatchWriteItem


def _batches(values: list[T]) -> list[list[T]]:
    return [values[start : start + STORED_AT_ONCE] for start in range(0, len(values), STORED_AT_ONCE)]


def _store_in_order(writes: Iterable[Callable[[], object]]) -> None:
    """Runs a sync's writes in order, each one request (a batch stored whole or not at all), so an outage
    part way answers what is true: the plain 503 (nothing was changed) while nothing is stored, and
    ``SyncInterrupted`` once part is. The cursor is written last but one (the connection's last sync time
    last): until it moves, syncing again reads the same changes and stores the rest (what is stored already
    reads as unchanged, a product already linked is matched by its item id)."""
    stored = False
    try:
        for write in writes:
            write()
            stored = True
    except Exception as error:
        if not (stored and is_outage(error)):
            raise
        raise SyncInterrupted(
            "The sync stopped part way, after storing some of what it read: a service Partsemble depends on "
            "is busy or unavailable. Nothing is lost: sync again shortly to finish it."
        ) from error


class ItemPage(Page):
    """A page of the organisation's items of one provider, by name (case-folded, then id)."""

    items: list[ProviderItem]


def list_items(organisation_id: str, name: str, limit: int, cursor: str | None = None) -> ItemPage:
    wanted = provider_name(name)
    listing: paging.Listing = "items:qbo" if wanted == "qbo" else "items:xero"
    items, last = store.item_page(
        organisation_id, wanted, limit, paging.position_of(listing, organisation_id, cursor)
    )
    return ItemPage(items=items, next_cursor=paging.next_cursor(listing, organisation_id, last))


# ---- products from provider items -------------------------------------------------------------------------
class ImportResult(Model):
    created: list[Product]
    updated: list[Product]  # products already linked (or with the item's SKU): name and cost refreshed
    skipped: list[Skipped]
    warnings: list[Skipped]  # links made that the provider counts apart (``ItemSyncResult.warnings``)


def import_products(
    organisation_id: str, request: ImportRequest, attempt: idempotency.Attempt | None = None
) -> ImportResult:
    """Makes the chosen provider items Partsemble products, with their names and costs (and, for a product
    it makes, the item's sales price). A bundle brings its components along, so its bill of materials is
    complete; one with a component that can't be a product (no SKU, or not synced) is not imported, rather
    than made a kit that consumes too little.
    A product of the item's SKU that another import made since the catalog was read (a product file's
    apply, at once with this one) is found by reading it again, and updated: never made twice.

    An ``Idempotency-Key`` request (`attempt`) notes the products it makes, with them: an attempt that runs
    again after an earlier one was cut short (an outage part way, or the function's timeout) answers those
    as created, as the earlier attempt would have, not as updated (they are its own)."""
    made_before = set()
    if attempt is not None:
        made_before = store.products_made_by(organisation_id, attempt.token, int(attempt.at.timestamp()))
    made_by = None if attempt is None else store.MadeBy(attempt.token, attempt.expires_at)
    for _ in range(5):  # each time, a product made meanwhile (read with the catalog's next read)
        result = _import_products(organisation_id, request, made_before, made_by)
        if result is not None:
            return result
    raise Conflict("products of these items are being made by other imports right now; try again shortly")


def _import_products(
    organisation_id: str, request: ImportRequest, made_before: set[str], made_by: store.MadeBy | None
) -> ImportResult | None:
    """The import, or None when a product it would make was made meanwhile (nothing written then)."""
    wanted = request.provider
    chosen = store.get_provider_items(organisation_id, wanted, request.item_ids)
    missing = sorted(set(request.item_ids) - {i.item_id for i in chosen})
    items = {i.item_id: i for i in chosen}
    pending = [c.ref for i in chosen for c in i.components if c.ref not in items]
    while pending:  # the components of bundles, and of bundles inside bundles
        found = store.get_provider_items(organisation_id, wanted, pending)
        items.update((i.item_id, i) for i in found)
        pending = [c.ref for i in found for c in i.components if c.ref not in items]
    products = store.products(organisation_id)
    by_link = {p.provider_links[wanted]: p for p in products if wanted in p.provider_links}
    by_sku = {sku_key(p.sku): p for p in products if sku_key(p.sku) and wanted not in p.provider_links}
    skipped = [Skipped(item_id=i, reason="not in the synced catalog; sync items first") for i in missing]
    importing: dict[str, ProviderItem] = {}
    for item in sorted(chosen, key=lambda i: i.item_id):
        parts, absent = bundle_parts(item, items)
        unusable = [
            f"{p.name!r} (item {p.item_id}) has no SKU"
            for p in parts
            if not sku_key(p.sku) and p.item_id not in by_link
        ] + [f"item {ref} is not in the synced catalog" for ref in absent]
        if unusable:
            reason = (
                f"its bill of materials would be incomplete: {'; '.join(unusable)} "
                f"(give each a SKU in {PROVIDER_LABELS[wanted]} and sync items first)"
            )
            skipped.append(Skipped(item_id=item.item_id, name=item.name, reason=reason))
            continue
        importing.update((p.item_id, p) for p in [item, *parts])
    # a product is known by its SKU (a file import updates the product with the row's SKU), and items may
    # share one: a second product of a SKU is never made for another item
    holders = {sku_key(p.sku): p for p in products}
    product_of: dict[str, Product] = {}
    created: list[Product] = []
    updated: list[Product] = []
    made: list[Product] = []
    changes: list[store.ProductChange] = []
    for item in sorted(importing.values(), key=lambda i: (i.kind == "bundle", i.item_id)):  # parts first
        linked = by_link.get(item.item_id)
        existing = linked or by_sku.get(sku_key(item.sku))
        refusal = None if existing else _new_product_refusal(item, holders.get(sku_key(item.sku)))
        if not item.active and linked is None:
            refusal = _inactive(item)
        lacking = [c.ref for c in item.components if c.ref not in product_of]
        if lacking and not refusal:
            refusal = f"its bill of materials would be incomplete: item(s) {', '.join(lacking)} skipped"
        if refusal:
            skipped.append(Skipped(item_id=item.item_id, name=item.name, sku=item.sku, reason=refusal))
            continue
        links = {k: v.product_id for k, v in product_of.items()}
        product_id = existing.product_id if existing else new_product_id(organisation_id, sku_key(item.sku))
        fresh = product_from_item(item, product_id, links)
        if existing is None:
            product = fresh
            made.append(product)
        else:
            # not the sale price: a product file's import owns it on a product that exists (a blank cell
            # keeps it), so a price the user set is never replaced by the provider's; only a product made
            # here takes the item's sales price
            update = {
                "name": fresh.name,
                "unit_cost": fresh.unit_cost if fresh.unit_cost is not None else existing.unit_cost,
                "components": fresh.components or existing.components,
            }
            product = existing.model_copy(
                update={**update, "provider_links": {**existing.provider_links, wanted: item.item_id}}
            )
            # its link to this provider only: a link to the other one, written meanwhile, stays
            changes.append(store.ProductChange(product, tuple(update), existing.sku, link=wanted))
        (created if existing is None or existing.product_id in made_before else updated).append(product)
        product_of[item.item_id] = product
        holders[sku_key(product.sku)] = product
        by_sku.pop(sku_key(item.sku), None)
    # parts first, then the bundles made of them; of a stored product, the fields this import sets only
    writing: list[Product | store.ProductChange] = [*made, *changes]
    at_once = store.WRITE_AT_ONCE - 1  # and the note of the products made (`made_by`)
    for start in range(0, len(writing), at_once):
        part = writing[start : start + at_once]
        new = [p for p in part if isinstance(p, Product)]
        changed = [c for c in part if isinstance(c, store.ProductChange)]
        if store.write_products(organisation_id, new, changed, made_by):
            return None
    apart = (kit_apart(p, importing[p.provider_links[wanted]]) for p in updated)
    return ImportResult(
        created=created, updated=updated, skipped=skipped, warnings=[w for w in apart if w is not None]
    )


def _inactive(item: ProviderItem) -> str:
    """Why an inactive item is never newly linked: QBO refuses a transaction naming an inactive item (error
    610, "Something you're trying to use has been made inactive": qbo.md section 2.8), so every export of the
    product's movements would be refused."""
    label = PROVIDER_LABELS[item.provider]
    return f"inactive in {label}, which refuses transactions naming it; make it active there and sync items"


def _new_product_refusal(item: ProviderItem, holder: Product | None) -> str | None:
    """Why no product can be made of an item no product stands for (``holder``: the product with its SKU)."""
    if not sku_key(item.sku):
        return "no SKU in the provider; give the item a SKU there first"
    if holder is not None:
        return (
            f"its SKU {item.sku!r} is product {holder.product_id}'s already (SKU {holder.sku!r}), which "
            f"stands for another {PROVIDER_LABELS[item.provider]} item; give one of them another SKU there"
        )
    return None


class ProductPage(Page):
    """A page of the organisation's products, by SKU (case-folded, then id)."""

    items: list[Product]


def list_products(organisation_id: str, limit: int, cursor: str | None = None) -> ProductPage:
    items, last = store.product_page(
        organisation_id, limit, paging.position_of("products", organisation_id, cursor)
    )
    return ProductPage(items=items, next_cursor=paging.next_cursor("products", organisation_id, last))


# ---- accounts -------------------------------------------------------------------------------------------
class AccountSyncResult(Model):
    provider: ProviderName
    added: int
    changed: int
    removed: int
    accounts: list[Account]


def refresh_accounts(
    organisation_id: str, wanted: ProviderName, connection: connection_store.Connection
) -> AccountSyncResult:
    """Replaces the stored chart with the provider's (the chart is small: one read, always whole)."""
    fetched = tokens.provider(wanted).accounts(session_for(connection))
    stored = {a.account_id: a for a in store.accounts(organisation_id, wanted)}
    changed = [a for a in fetched if stored.get(a.account_id) != a]
    removed = set(stored) - {a.account_id for a in fetched}
    store.put_accounts(organisation_id, changed)
    store.delete_accounts(organisation_id, wanted, removed)
    return AccountSyncResult(
        provider=wanted,
        added=sum(a.account_id not in stored for a in changed),
        changed=sum(a.account_id in stored for a in changed),
        removed=len(removed),
        accounts=_sorted_accounts(fetched),
    )


def sync_accounts(organisation_id: str, name: str, now: datetime) -> AccountSyncResult:
    wanted, connection = connected(organisation_id, name)
    result = refresh_accounts(organisation_id, wanted, connection)
    _synced(organisation_id, wanted, connection, now)
    return result


def _sorted_accounts(accounts: list[Account]) -> list[Account]:
    return sorted(accounts, key=lambda a: (a.code or "~", a.name.casefold()))


def list_accounts(organisation_id: str, name: str) -> list[Account]:
    return _sorted_accounts(store.accounts(organisation_id, provider_name(name)))


# ---- suppliers -----------------------------------------------------------------------------------------
class SupplierSyncResult(Model):
    provider: ProviderName
    read: int
    stored: int


def sync_suppliers(organisation_id: str, name: str, now: datetime) -> SupplierSyncResult:
    wanted, connection = connected(organisation_id, name)
    cursor = store.get_cursor(organisation_id, wanted, "suppliers")
    changes = tokens.provider(wanted).suppliers(session_for(connection), cursor)
    known = {s.supplier_id: s for s in store.suppliers(organisation_id, wanted)}
    fresh = [s for s in changes.records if known.get(s.supplier_id) != s]
    store.put_suppliers(organisation_id, fresh)
    if changes.cursor and changes.cursor != cursor:
        store.put_cursor(organisation_id, wanted, "suppliers", changes.cursor)
    _synced(organisation_id, wanted, connection, now)
    return SupplierSyncResult(provider=wanted, read=len(changes.records), stored=len(fresh))


def list_suppliers(organisation_id: str) -> list[Supplier]:
    return sorted(store.suppliers(organisation_id), key=lambda s: (s.provider, s.name.casefold()))


class SupplierCreated(Model):
    supplier: Supplier
    linked_existing: bool  # a contact of that name existed: linked, not duplicated


def create_supplier(organisation_id: str, name: str, request: SupplierRequest) -> SupplierCreated:
    """Creates the supplier in the provider, or links the active one of the same name. When the outcome
    of the create is unknown (timeout, 5xx) or the provider refuses a duplicate name, the name is looked
    up before anything is tried again, so the provider never holds two."""
    wanted, connection = connected(organisation_id, name)
    session, api = session_for(connection), tokens.provider(wanted)
    draft = SupplierDraft(name=request.name.strip(), email=request.email.strip())
    problem = api.supplier_name_problem(draft.name)
    if problem:  # refused before the provider is asked: asking would only be refused (twice, with the retry)
        raise InvalidFields(f"name: {problem}", [{"field": "name", "problem": problem}])
    existing = api.find_supplier(session, draft.name)
    supplier, linked = (
        (existing, True) if existing else _create_or_adopt(api, session, draft, organisation_id)
    )
    store.put_suppliers(organisation_id, [supplier])
    return SupplierCreated(supplier=supplier, linked_existing=linked)


def _create_or_adopt(
    api: AccountingProvider, session: Session, draft: SupplierDraft, organisation_id: str
) -> tuple[Supplier, bool]:
    key = f"partsemble:{organisation_id}:supplier:{uuid.uuid4()}"
    try:
        return api.create_supplier(session, draft, idempotency_key=f"{key}:1"), False
    except (ProviderUnavailable, ProviderRejected):
        found = api.find_supplier(session, draft.name)  # created after all, or a same-name contact appeared
        if found is not None:
            return found, True
    # A new key: Xero replays a remembered error to the old one. A second failure is the caller's.
    return api.create_supplier(session, draft, idempotency_key=f"{key}:2"), False


def supplier_for_receipt(
    organisation_id: str,
    name: str,
    *,
    supplier_id: str | None = None,
    email: str | None = None,
    supplier_name: str | None = None,
) -> Supplier | None:
    """The provider's supplier for a receipt: by linked provider id, then email, then exact name."""
    return find_supplier(
        store.suppliers(organisation_id, provider_name(name)),
        supplier_id=supplier_id,
        email=email,
        name=supplier_name,
    )
