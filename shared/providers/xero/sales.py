"""Xero sales documents changed since a cursor (ACCREC invoices and customer credit notes, paged, with
``If-Modified-Since``) and their JSON mapped to ``PulledSale`` values (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any, Literal

from shared.money import COST_CONTEXT
from shared.providers.base import Changes, PulledLine, PulledSale, SaleKind, Session
from shared.providers.http import call, decimal_json
from shared.providers.limits import XERO_LIMITS
from shared.providers.xero import api as xero_api
from shared.providers.xero.api import XeroApi
from shared.providers.xero.mapping import instant, latest, number, stamp
from shared.providers.xero.zones import WINDOWS_ZONES

COLLECTIONS: dict[str, tuple[str, SaleKind, str]] = {  # collection -> (sales type, kind, id field)
    "Invoices": ("ACCREC", "invoice", "InvoiceID"),
    "CreditNotes": ("ACCRECCREDIT", "credit_note", "CreditNoteID"),
}
OVERLAP = timedelta(minutes=5)  # read again what changed just before the last pull: stamps may lag commits
STATUSES: dict[str, Literal["active", "voided", "deleted", "draft"]] = {
    "DRAFT": "draft",
    "SUBMITTED": "draft",
    "AUTHORISED": "active",
    "PAID": "active",
    "VOIDED": "voided",
    "DELETED": "deleted",
}


def sales_changes(
    api: XeroApi,
    session: Session,
    since: str | None,
    *,
    start: date,
    on_page: Callable[[], None] | None = None,
    stop: Callable[[], bool] | None = None,
    resume: str | None = None,
) -> Changes[PulledSale]:
    """The first pull reads every document dated from ``start``; later ones what changed since the cursor
    (``If-Modified-Since`` includes its own second, so the boundary is read again, never skipped). The next
    cursor is Xero's own time at the pull's first answer, less an overlap (never earlier than ``since``), as
    for QBO: whatever changes while the pull runs, or was stamped just before it but seen only after (xero.md,
    "Design implications": a high-water mark "minus a few minutes overlap"), is read again next time.
    ``on_page`` runs after every answer. When ``stop`` says so after a page, the read ends with ``resume``:
    the collection and the stamp it had reached, and Xero's time at the pull's first answer (the part that
    ends the pull sets the cursor from it)."""
    halt = stop or (lambda: False)
    state: dict[str, Any] = json.loads(resume) if resume else {}
    records: list[tuple[str, dict[str, Any]]] = []
    server_time: str = state.get("server_time") or ""  # Xero's time at the pull's first answer
    newest: str | None = state.get("latest")  # the cursor when Xero's answers carry no time
    names = list(COLLECTIONS)
    first = int(state.get("collection") or 0)
    for index in range(first, len(names)):
        collection = names[index]
        kind, _, id_field = COLLECTIONS[collection]
        where = f'Type=="{kind}"'
        if since is None:
            where += f" AND Date>=DateTime({start.year},{start.month:02d},{start.day:02d})"
        begin = (state.get("after") or since, int(state.get("page") or 1)) if index == first else (since, 1)
        found, reached, answered_at = _changed(
            api, session, collection, where, begin, on_page or (lambda: None), halt
        )
        server_time = server_time or answered_at
        latest_version: dict[str, dict[str, Any]] = {}
        for record in found:  # read twice when edited during the pull: the later read is the newer one
            latest_version[str(record[id_field])] = record
        records.extend((collection, r) for r in latest_version.values())
        newest = latest([stamp(r.get("UpdatedDateUTC")) for r in found], newest)
        stopped: dict[str, Any] | None = None
        if reached is not None:
            stopped = {"collection": index, "after": reached[0], "page": reached[1]}
        elif index + 1 < len(names) and halt():
            stopped = {"collection": index + 1}
        if stopped is not None:
            resumed = json.dumps({**stopped, "server_time": server_time, "latest": newest})
            return Changes(tuple(sale(c, r, session.tenant_id) for c, r in records), since, resume=resumed)
    moved = (datetime.fromisoformat(server_time) - OVERLAP).isoformat() if server_time else newest
    cursor = latest([moved] if moved else [], since)
    return Changes(tuple(sale(c, r, session.tenant_id) for c, r in records), cursor)


def _second(record: dict[str, Any]) -> datetime | None:
    when = instant(record.get("UpdatedDateUTC"))
    return when.replace(microsecond=0) if when else None


def _changed(
    api: XeroApi,
    session: Session,
    collection: str,
    where: str,
    begin: tuple[str | None, int],
    tick: Callable[[], None],
    halt: Callable[[], bool],
) -> tuple[list[dict[str, Any]], tuple[str | None, int] | None, str]:
    """Every document of ``collection`` matching ``where`` changed since the stamp ``begin`` names (from its
    page), ordered by ``UpdatedDateUTC``, a page of 1000 at a time; and, when ``halt`` stopped the read with
    more to read, the stamp and page to go on from; and Xero's time at its first answer.

    Xero orders by ``UpdatedDateUTC`` and a document edited while the pages are read moves to the end
    (spec: ``order`` and ``If-Modified-Since``, "only records created or modified since this timestamp will
    be returned"; xero.md section 5), so ``page=N`` would step over the document that slid back onto a page
    already read, and the cursor (the latest stamp read) would then pass it for good. Each page instead asks
    again from page 1 with ``If-Modified-Since`` at the last stamp read (whole seconds, inclusive): what was
    read in that second is read again and de-duplicated by the caller. Only a full page inside one second
    steps on with ``page``."""
    found: list[dict[str, Any]] = []
    after, page, answered_at = *begin, ""
    while True:
        query = {"where": where, "order": "UpdatedDateUTC ASC", "unitdp": "4"}  # unit amounts unrounded
        chunk, time = api.page(session, collection, since=after, params=query, page=page)
        answered_at = answered_at or time
        tick()
        found.extend(chunk)
        if len(chunk) < xero_api.PAGE:
            return found, None, answered_at
        first, last = _second(chunk[0]), _second(chunk[-1])
        if last is None:
            return found, None, answered_at
        started = datetime.fromisoformat(after).replace(microsecond=0) if after else None
        if first == last == started:
            page += 1  # the whole page lies in the second it started from
        else:
            after, page = last.isoformat(), 1
        if halt():
            return found, (after, page), answered_at


def home_currency(api: XeroApi, session: Session) -> str:
    return str(organisation(api, session).get("BaseCurrency") or "")


def time_zone(api: XeroApi, session: Session) -> str:
    """``GET /Organisation`` ``Timezone``, a Windows zone name without spaces in capitals (spec
    ``Organisation.Timezone``, enum ``TimeZone``; provider facts xero.md "Added 2026-11-30", Time zone) as the
    IANA zone CLDR's windowsZones.xml maps it to (``zones``); "UTC" for a name not in the spec's enum."""
    return WINDOWS_ZONES.get(str(organisation(api, session).get("Timezone") or "").upper(), "UTC")


def organisation(api: XeroApi, session: Session) -> dict[str, Any]:
    resp = call(
        api.client,
        session,
        "xero",
        XERO_LIMITS,
        "GET",
        f"{api.urls.api}/api.xro/2.0/Organisation",
        headers={"xero-tenant-id": session.tenant_id},
    )
    organisations = decimal_json(resp, "xero").get("Organisations") or [{}]
    organisation: dict[str, Any] = organisations[0]
    return organisation


# ---- JSON -> values (pure) ----------------------------------------------------------------------------
def sale(collection: str, record: dict[str, Any], tenant_id: str) -> PulledSale:
    """The document as read from the tenant ``tenant_id``; Xero's ids are GUIDs, unique across tenants."""
    _, kind, id_field = COLLECTIONS[collection]
    entity = collection.removesuffix("s")
    issued = instant(record.get("Date"))
    inclusive = record.get("LineAmountTypes") == "Inclusive"
    return PulledSale(
        document_id=f"xero:{entity}:{record[id_field]}",
        tenant_id=tenant_id,
        kind=kind,
        status=STATUSES.get(str(record.get("Status")), "draft"),
        version=stamp(record.get("UpdatedDateUTC")),
        number=str(record.get("InvoiceNumber") or record.get("CreditNoteNumber") or ""),
        customer_id=str((record.get("Contact") or {}).get("ContactID") or ""),
        issued=issued.date() if issued else None,
        currency=str(record.get("CurrencyCode") or ""),
        rate=home_rate(number(record.get("CurrencyRate"))),
        lines=tuple(
            _line(index, line, inclusive) for index, line in enumerate(record.get("LineItems") or [], 1)
        ),
        sale_ids=tuple(
            f"xero:Invoice:{a['Invoice']['InvoiceID']}"
            for a in record.get("Allocations") or []
            if (a.get("Invoice") or {}).get("InvoiceID")
        ),
        note=str(record.get("Reference") or ""),
    )


def home_rate(currency_rate: Decimal | None) -> Decimal | None:
    """Xero's ``CurrencyRate`` is units of the document's currency per unit of the base currency (an AUD
    organisation's USD invoice at 0.6512: 1 AUD = 0.6512 USD); the ledger wants home units per document
    unit, its inverse."""
    if not currency_rate:
        return None
    with localcontext(COST_CONTEXT):
        return Decimal(1) / currency_rate


def _line(index: int, line: dict[str, Any], inclusive: bool) -> PulledLine:
    quantity, unit = number(line.get("Quantity")), number(line.get("UnitAmount"))
    return PulledLine(
        line_id=str(line.get("LineItemID") or index),
        item_code=str(line.get("ItemCode") or "") or None,
        description=str(line.get("Description") or ""),
        quantity=quantity,
        amount=_net(line, quantity, unit, inclusive),
        unit_price=unit,
    )


def _net(
    line: dict[str, Any], quantity: Decimal | None, unit: Decimal | None, inclusive: bool
) -> Decimal | None:
    """A line's revenue: after its discount and without its tax.

    Xero spec ``LineItem.LineAmount``: "The line amount reflects the discounted price if either a DiscountRate
    or DiscountAmount has been used i.e. LineAmount = Quantity * Unit Amount * ((100 - DiscountRate)/100) or
    LineAmount = (Quantity * UnitAmount) - DiscountAmount" (computed so when a line omits it);
    ``LineAmountTypes`` Inclusive: the line amounts include their ``TaxAmount`` (spec ``LineAmountTypes``;
    provider facts xero.md "Added 2026-11-30", Discounts)."""
    with localcontext(COST_CONTEXT):
        amount = number(line.get("LineAmount"))
        if amount is None and quantity is not None and unit is not None:
            rate, off = number(line.get("DiscountRate")), number(line.get("DiscountAmount"))
            amount = quantity * unit * (100 - (rate or 0)) / 100 - (off or 0)
        if inclusive and amount is not None:
            amount -= number(line.get("TaxAmount")) or Decimal(0)
        return amount
