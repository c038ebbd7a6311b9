"""Xero JSON <-> catalog values (pure): items (``Code`` is the SKU), accounts, contacts, dates."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.domain.catalog import Account, AccountKind, ProviderItem, Supplier

CLASS_KINDS: dict[str, AccountKind] = {
    "ASSET": "asset",
    "LIABILITY": "liability",
    "EQUITY": "equity",
    "REVENUE": "revenue",
    "EXPENSE": "expense",
}
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def instant(value: Any) -> datetime | None:
    """Xero's ``/Date(ms+0000)/`` (or ISO text) as an aware UTC datetime."""
    text = str(value or "")
    m = _MS_DATE.fullmatch(text)
    try:
        if m:
            return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):  # not a time, or one no calendar holds: taken as none
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stamp(value: Any) -> str:
    when = instant(value)
    return when.isoformat() if when else ""


def latest(stamps: list[str], since: str | None) -> str | None:
    known = [s for s in [*stamps, since or ""] if s]
    return max(known, key=datetime.fromisoformat) if known else None


def number(value: Any) -> Decimal | None:
    return None if value is None or isinstance(value, bool) else Decimal(str(value))


def item(record: dict[str, Any]) -> ProviderItem:
    tracked = bool(record.get("IsTrackedAsInventory"))
    return ProviderItem(
        provider="xero",
        item_id=str(record["ItemID"]),
        name=str(record.get("Name") or record.get("Code") or ""),
        sku=str(record.get("Code") or "").strip() or None,
        kind="inventory" if tracked else "non_inventory",
        tracked=tracked,
        unit_cost=number((record.get("PurchaseDetails") or {}).get("UnitPrice")),
        # the sales price: Item.SalesDetails.UnitPrice (xero.md section 4.2; spec schemas Item, Purchase);
        # an item not sold (IsSold false) has its SalesDetails nulled: no price
        unit_price=number((record.get("SalesDetails") or {}).get("UnitPrice")),
        version=str(record.get("UpdatedDateUTC") or ""),
        updated_at=stamp(record.get("UpdatedDateUTC")),
    )


def account(record: dict[str, Any]) -> Account:
    kind_of_type = str(record.get("Type") or "")
    kind = "cogs" if kind_of_type == "DIRECTCOSTS" else CLASS_KINDS.get(str(record.get("Class")), "expense")
    return Account(
        provider="xero",
        account_id=str(record["AccountID"]),
        code=str(record.get("Code") or ""),
        name=str(record.get("Name") or ""),
        type=kind_of_type,
        kind=kind,
        active=record.get("Status") == "ACTIVE",
        tracked_inventory=kind_of_type == "INVENTORY",
        system_account=str(record.get("SystemAccount") or ""),  # spec: Account.SystemAccount
    )


def contact(record: dict[str, Any]) -> Supplier:
    return Supplier(
        provider="xero",
        supplier_id=str(record["ContactID"]),
        name=str(record.get("Name") or ""),
        email=str(record.get("EmailAddress") or ""),
        active=record.get("ContactStatus") == "ACTIVE",
        updated_at=stamp(record.get("UpdatedDateUTC")),
    )


def where_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def modified_since(cursor: str) -> str:
    """The ``If-Modified-Since`` value for a cursor (UTC, as Xero's examples write it)."""
    when = datetime.fromisoformat(cursor).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S")
