"""QBO JSON <-> catalog values (pure): items (bundles with their components), accounts, vendors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.domain.catalog import Account, AccountKind, Component, ItemKind, ProviderItem, Supplier

ITEM_KINDS: dict[str, ItemKind] = {
    "Inventory": "inventory",
    "NonInventory": "non_inventory",
    "Service": "service",
    "Group": "bundle",
}
CLASSIFICATION_KINDS: dict[str, AccountKind] = {
    "Asset": "asset",
    "Liability": "liability",
    "Equity": "equity",
    "Revenue": "revenue",
    "Expense": "expense",
}
COGS_TYPE = "Cost of Goods Sold"


def number(value: Any) -> Decimal | None:
    return None if value is None or isinstance(value, bool) else Decimal(str(value))


def updated_at(record: dict[str, Any]) -> str:
    """The record's last-updated stamp as QBO wrote it ("" when it gave none that is a time)."""
    when = instant(record)
    return str(record["MetaData"]["LastUpdatedTime"]) if when else ""


def instant(record: dict[str, Any], stamp: str = "LastUpdatedTime") -> datetime | None:
    """When the record was last updated (or another ``MetaData`` stamp, e.g. ``CreateTime``), as an instant
    (None when QBO gave no stamp)."""
    metadata = record.get("MetaData")
    return _aware(str(metadata.get(stamp) or "") if isinstance(metadata, dict) else "")


def _aware(text: str) -> datetime | None:
    """QBO's time with its offset (every stamp and answer ``time`` carries one: qbo.md sections 3 and 7);
    None for anything else, which is taken as no time at all."""
    try:
        when = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return when if when is not None and when.tzinfo else None


def latest(stamps: list[str], since: str | None) -> str | None:
    """The latest of QBO's offset timestamps (compared as instants, not as text)."""
    known = [s for s in [*stamps, since or ""] if s]
    return max(known, key=datetime.fromisoformat) if known else None


def since_condition(cursor: str | None) -> str:
    """The query condition for a cursor: ``after:<time>`` (everything up to it is read) or ``from:<time>``."""
    if not cursor:
        return ""
    kind, _, stamp = cursor.partition(":")
    return f"MetaData.LastUpdatedTime {'>' if kind == 'after' else '>='} {query_literal(stamp)}"


def next_cursor(stamps: list[str], read_started: str, since: str | None) -> str | None:
    """Past the latest record read, unless a record changed once the read had begun (QBO stamps whole
    seconds): then nothing proves the pages were stable, and the same range is read again next time."""
    known = [datetime.fromisoformat(s) for s in stamps if s]
    if not known:
        return since
    latest = max(known)
    started = _aware(read_started)
    started = started.replace(microsecond=0) if started else latest  # unknown: nothing proves it stable
    return f"after:{latest.isoformat()}" if latest < started else since


def item(record: dict[str, Any]) -> ProviderItem | None:
    """An item; None for kinds that are not products (categories, desktop-only types)."""
    kind = ITEM_KINDS.get(str(record.get("Type")))
    if kind is None:
        return None
    lines = (record.get("ItemGroupDetail") or {}).get("ItemGroupLine") or []
    return ProviderItem(
        provider="qbo",
        item_id=str(record["Id"]),
        name=str(record.get("Name") or ""),
        sku=(str(record["Sku"]).strip() or None) if record.get("Sku") else None,
        kind=kind,
        tracked=bool(record.get("TrackQtyOnHand")),
        active=bool(record.get("Active", True)),
        unit_cost=number(record.get("PurchaseCost")),
        unit_price=number(record.get("UnitPrice")),  # the sales price: Item.UnitPrice (qbo.md section 3.2)
        quantity_on_hand=number(record.get("QtyOnHand")) if record.get("TrackQtyOnHand") else None,
        components=tuple(
            Component(ref=str(line["ItemRef"]["value"]), quantity=number(line.get("Qty")) or Decimal(1))
            for line in lines
        ),
        version=str(record.get("SyncToken") or ""),
        updated_at=updated_at(record),
    )


def account(record: dict[str, Any]) -> Account:
    kind = (
        "cogs"
        if record.get("AccountType") == COGS_TYPE
        else CLASSIFICATION_KINDS.get(str(record.get("Classification")), "expense")
    )
    return Account(
        provider="qbo",
        account_id=str(record["Id"]),
        code=str(record.get("AcctNum") or ""),
        name=str(record.get("Name") or ""),
        type=str(record.get("AccountType") or ""),
        kind=kind,
        active=bool(record.get("Active", True)),
    )


def vendor(record: dict[str, Any]) -> Supplier:
    email = (record.get("PrimaryEmailAddr") or {}).get("Address") or ""
    return Supplier(
        provider="qbo",
        supplier_id=str(record["Id"]),
        name=str(record.get("DisplayName") or ""),
        email=str(email),
        active=bool(record.get("Active", True)),
        updated_at=updated_at(record),
    )


def display_name_problem(name: str) -> str | None:
    """Why a vendor can't be named ``name``: QBO refuses a colon in a DisplayName (Intuit's Vendor
    reference, business rules: DisplayName "must not contain colon (:), tab (\\t), or newline (\\n)"; the
    sandbox's PARTY_TEXT cites the sources). Tabs and new lines are refused for every provider by the
    request's own rules (``shared.bodies.SupplierRequest``)."""
    if ":" in name:
        return "QuickBooks Online refuses a colon (:) in a vendor's name; write it without one"
    return None


def query_literal(text: str) -> str:
    """A string literal of QBO's query language: a backslash escapes the quote (mcohen01/node-quickbooks#56),
    so a backslash of the text is escaped first, or one before a quote (or at the end) would escape that
    quote and QBO answer 4000 "Error parsing query" (routablehq/python-quickbooks#319)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
