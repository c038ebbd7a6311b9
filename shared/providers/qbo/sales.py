"""QBO sales documents changed since a cursor (change data capture, or queries by last-updated time past
CDC's 30-day look-back or 1000-object cap) and their JSON mapped to ``PulledSale`` values (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.money import ZERO, allocate_cents, to_cents, total
from shared.providers import answers
from shared.providers.base import Changes, PulledLine, PulledSale, SaleKind, Session
from shared.providers.qbo.api import BY_ID, QboApi
from shared.providers.qbo.mapping import instant, latest, number, query_literal, updated_at

ENTITIES: dict[str, SaleKind] = {
    "Invoice": "invoice",
    "SalesReceipt": "sales_receipt",
    "CreditMemo": "credit_note",
    # the cash counterpart of a credit memo (goods returned, money paid back): QBO restocks its units and
    # posts it as a sale reversed. Last, so the entity index a stopped pull saved (``resume``) still holds
    "RefundReceipt": "credit_note",
}
CDC_LOOKBACK = timedelta(days=29)  # QBO's is 30 days; a day's margin for clocks and slow pulls
CDC_CAP = 1000  # objects in one CDC answer: at the cap, some changes may be missing from it
OVERLAP = timedelta(minutes=5)  # read again what changed just before the last pull: stamps may lag commits
SALE_LINKS = ("Invoice", "SalesReceipt")


def sales_changes(
    api: QboApi,
    session: Session,
    since: str | None,
    *,
    start: date,
    now: datetime,
    on_page: Callable[[], None] | None = None,
    stop: Callable[[], bool] | None = None,
    resume: str | None = None,
    held: Callable[[], Iterable[str]] | None = None,
) -> Changes[PulledSale]:
    """The first pull reads every document dated from ``start``; later ones what changed since the cursor.
    The next cursor is QBO's own time at the first answer, less an overlap (never earlier than ``since``):
    it never passes the pull's own start, so whatever changes while the pull runs is read again next time.
    ``on_page`` runs after every answer (the service renews its lease there). When ``stop`` says so after a
    page of a query (CDC is one answer), the read ends with ``resume``: the query, the entity and the stamp
    it had reached, and QBO's time at the pull's first answer (the part that ends the pull sets the cursor
    from it). Past CDC's window the query names no deletion, so the documents ``held`` are then asked for
    by id (``_deletions``, also stopping where ``stop`` says)."""
    tick = on_page or (lambda: None)
    halt = stop or (lambda: False)
    extra: list[tuple[str, dict[str, Any]]] = []
    if resume:
        state: dict[str, Any] = json.loads(resume)
    elif since is None:  # the first pull, or one from a new start date or company: held ones may be gone
        state = {"where": f"TxnDate >= {query_literal(start.isoformat())}", "deletions": held is not None}
    elif datetime.fromisoformat(since) < now - CDC_LOOKBACK:
        # a deleted document vanishes from queries; only CDC names it, for 30 days (qbo.md 3.5 "Deleted
        # transactions vanish from queries"; Intuit's change-data-capture page): read the live ones by
        # query, then ask for the held ones by id
        state = {"where": _updated_since(since), "deletions": held is not None}
    else:
        # CDC is one answer, a snapshot of what changed since the cursor: nothing in it can shift
        body = api.get(session, "cdc", entities=",".join(ENTITIES), changedSince=since)
        tick()
        records = _cdc_records(body)
        server_time = str(body.get("time") or "")
        if len(records) < CDC_CAP:
            return Changes(_sales(records, session.tenant_id), _cursor(server_time, since))
        # capped: the live documents by query, the deletions CDC did name
        extra = [(e, r) for e, r in records if r.get("status") == "Deleted"]
        state = {"where": _updated_since(since), "server_time": server_time}
    deletions = bool(state.get("deletions"))
    read: list[tuple[str, dict[str, Any]]] = []
    if "checked" not in state:  # the query's part of the read
        read, state, more = _query(api, session, state, tick, halt)
        read += extra
        state = {**state, "deletions": True} if deletions else state
        if more:
            return Changes(_sales(read, session.tenant_id), since, resume=json.dumps(state))
        state = {**state, "checked": None} if deletions else state
    if deletions and held is not None:
        gone, state, more = _deletions(api, session, held, state, tick, halt, since)
        missing = {(entity, record["Id"]) for entity, record in gone}  # read by the query, gone since
        read = [(e, r) for e, r in read if (e, str(r.get("Id"))) not in missing] + gone
        if more:
            return Changes(_sales(read, session.tenant_id), since, resume=json.dumps(state))
    return Changes(_sales(read, session.tenant_id), _cursor(str(state.get("server_time") or ""), since))


def _sales(records: list[tuple[str, dict[str, Any]]], realm_id: str) -> tuple[PulledSale, ...]:
    return tuple(sale(entity, record, realm_id) for entity, record in _latest_versions(records))


def _cursor(server_time: str, since: str | None) -> str | None:
    if not server_time:
        return since
    return latest([(datetime.fromisoformat(server_time) - OVERLAP).isoformat()], since)


def _updated_since(since: str) -> str:
    return f"MetaData.LastUpdatedTime >= {query_literal(since)}"


def _query(
    api: QboApi,
    session: Session,
    state: dict[str, Any],
    tick: Callable[[], None],
    halt: Callable[[], bool],
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any], bool]:
    """Every document of the three entities matching ``state["where"]``, a page of 1000 at a time
    (``QboApi.updated_pages``: keyed on the last-updated time, so an edit during the read skips nothing),
    from where ``state`` says (entity, stamp), with QBO's time at the pull's first answer kept in it; True
    when ``halt`` stopped the read with more to read (``state`` then says where to go on). A read resumed in
    another invocation starts from the stamp reached."""
    records: list[tuple[str, dict[str, Any]]] = []
    where = str(state["where"])
    server_time = str(state.get("server_time") or "")
    first = int(state.get("entity") or 0)
    names = list(ENTITIES)
    for index in range(first, len(names)):
        entity = names[index]
        after = datetime.fromisoformat(state["after"]) if index == first and state.get("after") else None
        at_after = int(state.get("at_after") or 0) if index == first else 0
        for page in api.updated_pages(session, entity, where, after=after, at_after=at_after):
            tick()
            server_time = server_time or page.time
            records.extend((entity, r) for r in page.records)
            if page.resume is not None and halt():
                after = page.resume[0]
                stopped = {"entity": index, "after": after and after.isoformat(), "at_after": page.resume[1]}
                return records, {"where": where, "server_time": server_time, **stopped}, True
        if index + 1 < len(names) and halt():
            return records, {"where": where, "server_time": server_time, "entity": index + 1}, True
    return records, {"where": where, "server_time": server_time}, False


def _deletions(
    api: QboApi,
    session: Session,
    held: Callable[[], Iterable[str]],
    state: dict[str, Any],
    tick: Callable[[], None],
    halt: Callable[[], bool],
    since: str | None,
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any], bool]:
    """A deletion record for each held document of this company that QBO no longer has: the held ids are
    asked for (``QboApi.found``) ``BY_ID`` at a time in order of entity and id, from past
    ``state["checked"]`` (the last one asked for); True when ``halt`` stopped it with more to ask (``state``
    then says where). Each is stamped with the cursor read from (deleted since then), so two reads from one
    cursor answer the same version (a read from the start date, with no cursor: QBO's time at its first
    answer)."""
    prefix = f"qbo:{session.tenant_id}:"
    names = list(ENTITIES)
    parts = (d.removeprefix(prefix).partition(":") for d in held() if d.startswith(prefix))
    wanted = sorted(
        (names.index(entity), len(record_id), record_id)
        for entity, _, record_id in parts
        if entity in ENTITIES and record_id
    )
    checked = tuple(state["checked"]) if state.get("checked") else None
    pending = [key for key in wanted if checked is None or key > checked]
    records: list[tuple[str, dict[str, Any]]] = []
    while pending:
        entity = names[pending[0][0]]
        batch = [key for key in pending[:BY_ID] if key[0] == pending[0][0]]
        pending = pending[len(batch) :]
        found = api.found(session, entity, [key[2] for key in batch])
        tick()
        stamp = {"LastUpdatedTime": since or str(state.get("server_time") or found.time)}
        gone = [key[2] for key in batch if key[2] not in found.ids]
        records.extend(
            (entity, {"Id": record_id, "status": "Deleted", "MetaData": stamp}) for record_id in gone
        )
        state = {**state, "checked": list(batch[-1])}
        if pending and halt():
            return records, state, True
    return records, state, False


def _latest_versions(records: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One record per document: the one updated last (a document edited during the pull is read twice)."""
    chosen: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for entity, record in records:
        key = (entity, str(record.get("Id")))
        kept = chosen.get(key)
        if kept is None or (instant(record) or datetime.min.replace(tzinfo=UTC)) >= (
            instant(kept[1]) or datetime.min.replace(tzinfo=UTC)
        ):
            chosen[key] = (entity, record)
    return list(chosen.values())


def _cdc_records(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The documents a CDC answer names; an answer not of CDC's shape is a ``ProviderError`` (read again by
    the next pull), never an exception the pull did not expect."""
    return [
        (entity, record)
        for answer in answers.records(answers.json_object(body, "qbo"), "CDCResponse", "qbo", required=False)
        for block in answers.records(answer, "QueryResponse", "qbo", required=False)
        for entity in ENTITIES
        for record in answers.records(block, entity, "qbo", required=False)
    ]


def home_currency(api: QboApi, session: Session) -> str:
    prefs = api.get(session, "preferences").get("Preferences") or {}
    return str(((prefs.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value") or "USD")


def time_zone(api: QboApi, session: Session) -> str:
    """QBO names no zone; every response's ``time`` carries the company's local offset (e.g.
    ``2015-07-24T10:48:27.082-07:00``; provider facts qbo.md section 7 "Time zone"), so the company is
    placed in the fixed zone of that offset (summer time is not followed: a user can name the real zone)."""
    return offset_zone(str(api.get(session, "preferences").get("time") or ""))


# Offsets that are not whole hours have no Etc/GMT zone: a zone that keeps that offset all year
PART_HOUR_ZONES = {
    -570: "Pacific/Marquesas",
    210: "Asia/Tehran",
    270: "Asia/Kabul",
    330: "Asia/Kolkata",
    345: "Asia/Kathmandu",
    390: "Asia/Yangon",
    525: "Australia/Eucla",
    570: "Australia/Darwin",
}


def offset_zone(stamp: str) -> str:
    try:
        offset = datetime.fromisoformat(stamp).utcoffset()
    except ValueError:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    if minutes % 60:
        return PART_HOUR_ZONES.get(minutes, "UTC")
    hours = minutes // 60
    return f"Etc/GMT{-hours:+d}" if hours and -14 <= hours <= 12 else "UTC"  # POSIX: Etc/GMT+5 is UTC-5


# ---- JSON -> values (pure) ----------------------------------------------------------------------------
def sale(entity: str, record: dict[str, Any], realm_id: str) -> PulledSale:
    """The document as read from the company ``realm_id``. Its id names the company: QBO numbers each
    company's transactions on their own (Invoice 145 is in every company that has 145 of them), so two
    companies' documents, after a switch of company, never take each other's place."""
    document_id = f"qbo:{realm_id}:{entity}:{record['Id']}"
    kind = ENTITIES[entity]
    stamp = updated_at(record)
    if record.get("status") == "Deleted":
        return PulledSale(
            document_id=document_id,
            tenant_id=realm_id,
            kind=kind,
            status="deleted",
            version=f"deleted@{stamp}",
        )
    note = str(record.get("PrivateNote") or "")
    # QBO keeps a voided document with every amount and quantity 0 and "Voided" before its note (no status)
    voided = number(record.get("TotalAmt")) == 0 and note.startswith("Voided")
    return PulledSale(
        document_id=document_id,
        tenant_id=realm_id,
        kind=kind,
        status="voided" if voided else "active",
        version=f"{record.get('SyncToken', '')}@{stamp}",
        number=str(record.get("DocNumber") or ""),
        customer_id=str((record.get("CustomerRef") or {}).get("value") or ""),
        issued=_date(record.get("TxnDate")),
        currency=str((record.get("CurrencyRef") or {}).get("value") or ""),
        rate=number(record.get("ExchangeRate")),
        lines=tuple(_lines(record.get("Line") or [])),
        sale_ids=tuple(
            f"qbo:{realm_id}:{link['TxnType']}:{link['TxnId']}"
            for link in record.get("LinkedTxn") or []
            if link.get("TxnType") in SALE_LINKS and link.get("TxnId")
        ),
        note=note,
        created=instant(record, "CreateTime"),
    )


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None  # reported by the service as a document without a date


def _lines(lines: list[dict[str, Any]]) -> list[PulledLine]:
    """Item lines, and each bundle (group) line as its component lines, each net of the discounts below it;
    subtotals and text lines carry no goods.

    Amounts are QBO's line ``Amount``, which excludes tax even on a ``GlobalTaxCalculation`` TaxInclusive
    document: the tax-inclusive figure is ``SalesItemLineDetail.TaxInclusiveAmt`` (Intuit Invoice reference;
    "by default QuickBooks assumes all prices exclude tax", ruckus/quickbooks-ruby#346), so revenue never
    includes tax and ``TaxInclusiveAmt`` is never read."""
    found: list[PulledLine] = []
    places: list[Decimal | None] = []  # each found line's LineNum (a bundle's components share the bundle's)
    covered = 0  # found[:covered] already took their share of an earlier discount line
    for index, line in enumerate(lines, 1):
        line_id = str(line.get("Id") or index)
        if line.get("DetailType") == "SalesItemLineDetail":
            found.append(_item_line(line_id, line))
        elif line.get("DetailType") == "GroupLineDetail":
            group = line.get("GroupLineDetail") or {}
            bundle = str((group.get("GroupItemRef") or {}).get("value") or "")
            found.extend(
                _item_line(f"{line_id}.{part}", component, bundle)
                for part, component in enumerate(group.get("Line") or [], 1)
            )
        elif line.get("DetailType") == "DiscountLineDetail":
            found[covered:] = _discounted(found[covered:], line)
            covered = len(found)
        places += [number(line.get("LineNum"))] * (len(found) - len(places))
    return _in_document_order(found, places)


def _in_document_order(lines: list[PulledLine], places: list[Decimal | None]) -> list[PulledLine]:
    """The lines in the document's order, which decides the order they take stock in (not their ``Id``: a
    line added in an edit gets a new one wherever it is placed, Intuit's XSD, Line.Id): by ``LineNum``, which
    "specifies the position of the line in the collection of transaction lines" (Intuit's XSD, Line.LineNum,
    as intuit/QuickBooks-V3-PHP-SDK Data/IPPLine.php carries it), when every item line has one (QBO's
    answers number each: the Invoice reference's sample, provider facts qbo.md section 3.5), else as listed;
    lines with the same number keep the order they are listed in."""
    known = [place for place in places if place is not None]
    if len(known) < len(places):
        return lines
    order = sorted(range(len(lines)), key=known.__getitem__)
    return [lines[i] for i in order]


def _discounted(lines: list[PulledLine], discount: dict[str, Any]) -> list[PulledLine]:
    """The lines a ``DiscountLineDetail`` line applies to (those above it), less their share of it.

    QBO: a sales document's discount line (``PercentBased`` with ``DiscountPercent``, or a flat amount)
    discounts the subtotal above it and its ``Amount`` is the discount in money; ``TotalAmt`` is after it
    (Intuit Invoice reference, DiscountLineDetail; provider facts qbo.md section 7 "Discounts"). The amount
    is spread over the lines in proportion to their amounts, to the cent by largest remainder, so the lines
    add up to the document's discounted total. UNSURE whether a TaxInclusive document's discount ``Amount``
    includes tax: it is taken on the lines' basis (tax excluded)."""
    detail = discount.get("DiscountLineDetail") or {}
    priced = [i for i, line in enumerate(lines) if line.amount]
    subtotal = total(lines[i].amount or ZERO for i in priced)
    amount = number(discount.get("Amount"))
    if amount is None and detail.get("PercentBased"):
        amount = subtotal * (number(detail.get("DiscountPercent")) or ZERO) / 100
    if not amount or not subtotal:
        return lines
    shares = allocate_cents(to_cents(amount), [lines[i].amount or ZERO for i in priced])
    discounted = list(lines)
    for i, share in zip(priced, shares, strict=True):
        discounted[i] = lines[i].model_copy(update={"amount": (lines[i].amount or ZERO) - share})
    return discounted


def _item_line(line_id: str, line: dict[str, Any], bundle: str | None = None) -> PulledLine:
    detail = line.get("SalesItemLineDetail") or {}
    item = detail.get("ItemRef") or {}
    return PulledLine(
        line_id=line_id,
        item_id=str(item["value"]) if item.get("value") else None,
        description=str(line.get("Description") or item.get("name") or ""),
        quantity=number(detail.get("Qty")),
        amount=number(line.get("Amount")),
        unit_price=number(detail.get("UnitPrice")),
        bundle_item_id=bundle,
    )
