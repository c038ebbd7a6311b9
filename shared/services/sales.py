"""Sales tracking: pulling changed sales documents from the connected provider, and margins from them.

A pull reads what changed since the connection's cursor, stores each document's latest version, and only
then moves the cursor, under a per-connection lease: a crash repeats work (documents are stored by id, so
reading one again replaces it) and never skips any. Margins are never stored: every report replays the
organisation's stock movements and its sales into the FIFO ledger, so an edit, void, delete or credit
re-costs by replay, and a product linked later maps lines that were unmapped before.
"""

from __future__ import annotations

import math
import re
import time as clock_time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, field_validator, model_validator

from shared import spreadsheet
from shared.config import settings
from shared.contracts import ConnectionJob
from shared.dates import RecentDate
from shared.domain.catalog import Product, sku_key
from shared.domain.connections import IN_USE, ProviderName
from shared.domain.costing import (
    DocumentMargin,
    Figures,
    SaleDocument,
    SaleLine,
    UnmatchedReturn,
    apply_sales,
)
from shared.domain.costing import margins as costed_margins
from shared.domain.ledger import Ledger
from shared.errors import BadRequest, Conflict, ProviderError, RateLimited, ServiceError
from shared.model import Model
from shared.money import ZERO, allocate_cents, to_cents
from shared.observability import logger
from shared.providers import provider_name
from shared.providers.base import PulledLine, PulledSale
from shared.services import fanout, tokens
from shared.services.sessions import connected, session_for
from shared.store import catalog as catalog_store
from shared.store import connections as connection_store
from shared.store import inventory as inventory_store
from shared.store import sales as store

LEASE_SECONDS = 60  # short, and renewed between pages while the pull lives: a killed pull (a pull-now past
# the API's timeout, a crashed function) frees "pull now" within a minute; a failed one frees it at once.
RENEW_AFTER = 20  # seconds since the last renewal before the next page renews it (one write, not one a page)
# One part of a pull (one queue message) reads for at most this long or this many pages, then stores what it
# read with where it stopped and queues the next part: a large first pull never races the function's
# timeout (300 s: room for the page under way, however long its rate-limit waits, and the writes after it).
PART_SECONDS = 120
PART_PAGES = 40
# A credit whose note says so returns its goods to waste, not to stock.
NOT_RESTOCKABLE = re.compile(
    r"\b(?:not?[ -]?restock(?:able|ed)?|scrap(?:ped)?|write[ -]?off)\b", re.IGNORECASE
)
# A sale dated D (a local date in the organisation's zone) is placed at the very end of D there: it takes from
# what was received or built by then, e.g. at 22:00 in New York, after midnight UTC.
DAY_END = time(23, 59, 59, 999999)


class PullRunning(Conflict):
    """Another pull of this connection holds its lease."""


# ---- tracking settings --------------------------------------------------------------------------------
def zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name; ValueError names what is wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as America/New_York") from None


class TrackingRequest(Model):
    model_config = ConfigDict(extra="forbid")
    enabled: bool
    start_date: RecentDate | None = None  # the first pull reads documents dated from here
    time_zone: str | None = None  # IANA; unset: the one already stored, else the provider's

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else zone(value).key


class LastPull(Model):
    at: str
    ok: bool
    read: int = 0  # over every part of the pull so far
    stored: int = 0
    error: str = ""
    parts: int = 1  # queue messages the pull took (a large first pull goes on across several)
    more: bool = False  # stopped part way: the next part is queued and goes on from where this one stopped


class TrackingView(Model):
    provider: ProviderName
    enabled: bool
    start_date: date
    home_currency: str
    time_zone: str  # IANA: the organisation's dates are local dates there
    cursor: str | None
    pulling: bool  # a pull runs now, is queued ("pull now"), or goes on in its next part
    requested_at: str | None  # the last "pull now"
    last_pull: LastPull | None


def _view(item: dict[str, Any], now: datetime) -> TrackingView:
    return TrackingView(
        provider=item["provider"],
        enabled=bool(item["enabled"]),
        start_date=date.fromisoformat(item["start_date"]),
        home_currency=item["home_currency"],
        time_zone=item.get("time_zone") or "UTC",
        cursor=item.get("cursor"),
        pulling=int(item.get("lease_until") or 0) >= now.timestamp()
        or bool(item.get("resume"))
        or _waiting(item, now),
        requested_at=item.get("requested_at"),
        last_pull=LastPull.model_validate(item["last_pull"]) if item.get("last_pull") else None,
    )


QUEUED_FOR = timedelta(minutes=15)  # a "pull now" not begun by then is shown as not pulling (a lost message)


def _waiting(item: dict[str, Any], now: datetime) -> bool:
    """A "pull now" is queued and no pull has ended since."""
    requested = item.get("requested_at")
    if not requested or datetime.fromisoformat(requested) < now - QUEUED_FOR:
        return False
    ended = (item.get("last_pull") or {}).get("at")
    return not ended or datetime.fromisoformat(ended) < datetime.fromisoformat(requested)


def set_tracking(organisation_id: str, name: str, request: TrackingRequest, now: datetime) -> TrackingView:
    """Turns sales tracking on or off; a new start date makes the next pull start over from it."""
    wanted, connection = connected(organisation_id, name)
    existing = store.get_tracking(organisation_id, wanted) or {}
    start = request.start_date or (date.fromisoformat(existing["start_date"]) if existing else None)
    if start is None:
        raise BadRequest("choose the date the first pull starts from (start_date)")
    provider = tokens.provider(wanted)
    home = existing.get("home_currency") or provider.home_currency(session_for(connection))
    time_zone = request.time_zone or existing.get("time_zone") or provider.time_zone(session_for(connection))
    store.put_tracking(
        organisation_id,
        wanted,
        enabled=request.enabled,
        start_date=start.isoformat(),
        home_currency=home,
        time_zone=time_zone,
        reset_cursor=existing.get("start_date") != start.isoformat(),
    )
    return _view(store.get_tracking(organisation_id, wanted) or {}, now)


def status(organisation_id: str, now: datetime) -> list[TrackingView]:
    return [_view(item, now) for item in store.tracked(organisation_id)]


# ---- pulling ----------------------------------------------------------------------------------------------
class PullResult(Model):
    provider: ProviderName
    read: int  # documents the provider returned
    stored: list[str]  # new or changed documents (ids)
    cursor: str | None
    more: bool = False  # stopped part way (its budget spent): the next part goes on from where it stopped


def pull_changes(
    organisation_id: str,
    name: str,
    *,
    now: datetime,
    clock: Callable[[], datetime] | None = None,
    part_seconds: float | None = None,
    part_pages: int | None = None,
) -> PullResult:
    """One pull (or one part of it) under the connection's lease. ``clock`` tells the time as the pull goes
    on (by default ``now`` plus the time elapsed since the call); the lease is renewed with it between pages.
    With ``part_seconds`` or ``part_pages``, the read stops after the page that spends either, stores what it
    read and where it stopped (the cursor stays), and the result says ``more``: the next call goes on from
    there, and the last part moves the cursor."""
    wanted = provider_name(name)
    tracking = store.get_tracking(organisation_id, wanted)
    if not tracking or not tracking["enabled"]:
        raise Conflict("sales tracking is off for this connection; turn it on first")
    wanted, connection = connected(organisation_id, wanted)
    owner = str(uuid.uuid4())
    if not store.try_acquire_pull_lease(
        organisation_id, wanted, owner=owner, now=int(now.timestamp()), ttl_s=LEASE_SECONDS
    ):
        raise PullRunning("a pull of this connection is already running; its results will show when it ends")
    lease = _Lease(organisation_id, wanted, owner, now, clock or _elapsed_since(now))
    pages = [0]

    def on_page() -> None:
        pages[0] += 1
        lease.renew()

    def spent() -> bool:
        if part_pages is not None and pages[0] >= part_pages:
            return True
        return part_seconds is not None and (lease.clock() - now).total_seconds() >= part_seconds

    before = LastPull.model_validate(tracking["last_pull"]) if tracking.get("last_pull") else None
    carried = before if before and before.more and tracking.get("resume") else None
    try:
        changes = tokens.provider(wanted).sales_changes(
            session_for(connection),
            tracking.get("cursor"),
            start=date.fromisoformat(tracking["start_date"]),
            now=now,
            on_page=on_page,
            stop=spent,
            resume=tracking.get("resume"),
        )
        fresh = _changed(organisation_id, wanted, changes.records)
        store.put_documents(organisation_id, {d.document_id: d.model_dump_json() for d in fresh})
    except Exception as err:  # any failure frees the lease at once and is shown as the last pull's error
        reason = err.message if isinstance(err, ServiceError) else f"unexpected error ({type(err).__name__})"
        store.release_pull_lease(
            organisation_id,
            wanted,
            owner=owner,
            last_pull=LastPull(at=now.isoformat(), ok=False, error=reason).model_dump(),
        )
        raise
    summary = LastPull(
        at=now.isoformat(),
        ok=True,
        read=len(changes.records) + (carried.read if carried else 0),
        stored=len(fresh) + (carried.stored if carried else 0),
        parts=carried.parts + 1 if carried else 1,
        more=changes.resume is not None,
    )
    if changes.resume is not None:
        moved = store.save_progress(
            organisation_id, wanted, owner=owner, resume=changes.resume, last_pull=summary.model_dump()
        )
    else:
        moved = store.advance_cursor(
            organisation_id, wanted, owner=owner, cursor=changes.cursor, last_pull=summary.model_dump()
        )
    if not moved:
        raise PullRunning("this pull outlived its lease and another took over; its documents are stored")
    return PullResult(
        provider=wanted,
        read=len(changes.records),
        stored=[d.document_id for d in fresh],
        cursor=changes.cursor,
        more=changes.resume is not None,
    )


def _elapsed_since(start: datetime) -> Callable[[], datetime]:
    began = clock_time.monotonic()
    return lambda: start + timedelta(seconds=clock_time.monotonic() - began)


class _Lease:
    """The pull's lease, renewed between pages (at most once every ``RENEW_AFTER`` seconds)."""

    def __init__(
        self,
        organisation_id: str,
        provider: ProviderName,
        owner: str,
        now: datetime,
        clock: Callable[[], datetime],
    ) -> None:
        self.organisation_id, self.provider, self.owner, self.clock = organisation_id, provider, owner, clock
        self.renewed = now

    def renew(self) -> None:
        at = self.clock()
        if (at - self.renewed).total_seconds() < RENEW_AFTER:
            return
        until = int(at.timestamp())
        if not store.renew_pull_lease(
            self.organisation_id, self.provider, owner=self.owner, now=until, ttl_s=LEASE_SECONDS
        ):
            raise PullRunning("this pull outlived its lease and another took over; it stopped")
        self.renewed = at


def _changed(organisation_id: str, provider: ProviderName, pulled: Iterable[PulledSale]) -> list[PulledSale]:
    """The documents whose stored version this pull changes. A deletion keeps the document's last known
    content (QBO sends only its id); Xero item codes become item ids, so a code changed later still maps."""
    latest = {d.document_id: d for d in pulled}
    stored = {
        d.document_id: d
        for d in map(PulledSale.model_validate_json, store.get_documents(organisation_id, latest))
    }
    codes: dict[str, str] = {}
    if provider == "xero":
        codes = {
            sku_key(i.sku): i.item_id for i in catalog_store.provider_items(organisation_id, "xero") if i.sku
        }
    fresh = []
    for document_id, document in latest.items():
        previous = stored.get(document_id)
        if document.status == "deleted" and previous is None:
            continue  # deleted before Partsemble ever saw it: nothing to take back
        if document.status == "deleted" and previous is not None:
            document = previous.model_copy(update={"status": "deleted", "version": document.version})
        elif codes:
            document = _with_item_ids(document, previous, codes)
        if document != previous:
            fresh.append(document)
    return fresh


def _with_item_ids(document: PulledSale, previous: PulledSale | None, codes: dict[str, str]) -> PulledSale:
    before = {line.line_id: line.item_id for line in (previous.lines if previous else ())}
    lines = tuple(
        line.model_copy(update={"item_id": codes.get(sku_key(line.item_code)) or before.get(line.line_id)})
        if line.item_code
        else line
        for line in document.lines
    )
    return document.model_copy(update={"lines": lines})


class PullQueued(Model):
    provider: ProviderName
    queued_at: str


def pull_now(organisation_id: str, now: datetime) -> list[PullQueued]:
    """'Pull now': queues a pull of every live connection of the organisation with sales tracking on (a
    disconnected one keeps its documents and settings, and is not pulled) and answers at once; ``GET
    /sales/status`` shows it pulling until it ends. A connection whose pull runs now is left to it."""
    live = {
        c["provider"] for c in connection_store.list_connections(organisation_id) if c.get("status") in IN_USE
    }
    enabled = [t for t in store.tracked(organisation_id) if t["enabled"] and t["provider"] in live]
    if not enabled:
        raise Conflict("sales tracking is not on for any connected provider; turn it on first")
    idle = [t for t in enabled if int(t.get("lease_until") or 0) < now.timestamp()]
    if not idle:
        raise PullRunning("a pull of this connection is already running; its results will show when it ends")
    queued = []
    for tracking in idle:
        name: ProviderName = tracking["provider"]
        store.mark_requested(organisation_id, name, at=now.isoformat())
        job = ConnectionJob(organisation_id=organisation_id, provider=name, reason="pull_now")
        fanout.send_one(settings().sales_pull_queue_url, job)
        queued.append(PullQueued(provider=name, queued_at=now.isoformat()))
    return queued


def enqueue_due() -> fanout.FanOutReport:
    """The hourly pass: one message per connected connection with sales tracking on (the connections read
    from the sharded index, their tracking a hundred to a request); the workers pull them."""

    def due() -> Iterator[ConnectionJob]:
        batch: list[tuple[str, str]] = []
        for connection in connection_store.iter_connections(fields=("status",)):
            if connection.get("status") == "connected":
                batch.append((connection["organisation_id"], connection["provider"]))
            if len(batch) >= TRACKING_BATCH:
                yield from _tracked(batch)
                batch = []
        yield from _tracked(batch)

    return fanout.send_all(settings().sales_pull_queue_url, due())


MAX_DELAY = 900  # SQS's longest message delay
TRACKING_BATCH = 500  # connections whose tracking is read before their messages are sent


def _tracked(keys: list[tuple[str, str]]) -> Iterator[ConnectionJob]:
    for tracking in store.tracking_of(keys) if keys else []:
        if tracking.get("enabled"):
            yield ConnectionJob(organisation_id=tracking["organisation_id"], provider=tracking["provider"])


class PullReport(Model):
    pulled: int = 0
    stored: int = 0
    running: int = 0  # skipped: another pull of that connection was running
    failed: int = 0
    skipped: int = 0  # no longer connected, or tracking turned off since it was queued
    continued: int = 0  # stopped part way; the next part is queued


def pull_job(job: ConnectionJob, *, now: datetime) -> PullReport:
    """The worker: one part of one connection's pull (a large first pull stops after ``PART_SECONDS`` or
    ``PART_PAGES`` and queues its next part). A failure is recorded as the last pull's error and the cursor
    stays, so the next pass (or "pull now") reads the same changes again; it is never retried in a loop."""
    report = PullReport()
    organisation, name = job.organisation_id, job.provider
    connection = connection_store.get_connection(organisation, name)
    tracking = store.get_tracking(organisation, name)
    if not connection or connection.get("status") not in IN_USE or not tracking or not tracking["enabled"]:
        report.skipped += 1
        return report
    try:
        result = pull_changes(organisation, name, now=now, part_seconds=PART_SECONDS, part_pages=PART_PAGES)
    except PullRunning:
        report.running += 1
        return report
    except RateLimited as err:  # the tenant's budget is spent: the same job again once it allows
        delay = min(MAX_DELAY, max(1, math.ceil(err.retry_after or 60)))
        fanout.send_one(settings().sales_pull_queue_url, job, delay=delay)
        report.failed += 1
        return report
    except (ProviderError, Conflict) as err:
        logger.warning(
            "sales pull failed",
            extra={"organisation_id": organisation, "provider": name, "reason": err.message},
        )
        report.failed += 1
        return report
    report.pulled += 1
    report.stored += len(result.stored)
    if result.more:
        next_part = ConnectionJob(organisation_id=organisation, provider=name, reason="continue")
        try:
            fanout.send_one(settings().sales_pull_queue_url, next_part)
        except Exception:  # its progress is stored: the next hourly pass goes on from it
            logger.warning(
                "next part of a pull not queued", extra={"organisation_id": organisation}, exc_info=True
            )
        report.continued += 1
    return report


# ---- margins ---------------------------------------------------------------------------------------------
Group = Literal["document", "product", "period"]


class MarginQuery(Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    group: Group = "document"

    @model_validator(mode="after")
    def _in_order(self) -> MarginQuery:
        if self.start and self.end and self.start > self.end:
            raise BadRequest(f"from ({self.start}) is after to ({self.end}): choose from on or before to")
        return self


class LotUsed(Model):
    lot_id: str
    quantity: Decimal
    cost: Decimal  # exact


class LineReport(Model):
    line_id: str
    product_id: str
    sku: str
    name: str
    quantity: Decimal
    figures: Figures
    lots: list[LotUsed]


class UnmappedLine(Model):
    line_id: str
    item: str  # the provider's item id or code ("" when the line names no item)
    description: str
    quantity: Decimal | None
    amount: Decimal | None


class DocumentReport(Model):
    document_id: str
    provider: str
    kind: str
    number: str
    date: date
    status: str
    currency: str
    rate: Decimal | None
    figures: Figures
    lines: list[LineReport]
    unmapped: list[UnmappedLine]
    issues: list[str]


class GroupReport(Model):
    key: str  # product id or "YYYY-MM"
    label: str
    figures: Figures
    notes: list[str] = Field(
        default_factory=list
    )  # group=period: what the accountant should know about that month


class Excluded(Model):
    document_id: str
    number: str
    reason: str


class MarginReport(Model):
    home_currency: str
    start: date | None
    end: date | None
    group: Group
    totals: Figures
    documents: list[DocumentReport]  # group=document
    groups: list[GroupReport]  # group=product or period
    excluded: list[Excluded]  # documents not costed at all, with the reason
    notes: list[str]  # e.g. where the units of a credit that matched no sale went


@dataclass(frozen=True)
class _Mapped:
    pulled: PulledSale
    sale: SaleDocument
    unmapped: list[UnmappedLine]
    notes: list[str]


def margins(organisation_id: str, query: MarginQuery) -> MarginReport:
    settings = {t["provider"]: t for t in store.tracked(organisation_id)}
    if not settings:
        raise Conflict("sales tracking has never been turned on; turn it on and pull first")
    home = next(
        (t["home_currency"] for t in settings.values() if t["enabled"]),
        next(iter(settings.values()))["home_currency"],
    )
    products = catalog_store.products(organisation_id)
    mapped, excluded = _sale_documents(organisation_id, settings, products)
    ledger = Ledger(inventory_store.movements(organisation_id))
    refused = apply_sales(ledger, [m.sale for m in mapped])
    chosen = [m for m in mapped if _within(m.sale.at.date(), query)]
    report = costed_margins(ledger, [m.sale for m in chosen], home_currency=home)
    by_id = {p.product_id: p for p in products}
    documents = (
        [
            _document_report(m, d, by_id, refused.get(m.sale.document_id))
            for m, d in zip(chosen, report.documents, strict=True)
        ]
        if query.group == "document"
        else []
    )
    groups: dict[str, Figures] = report.by_product if query.group == "product" else report.by_period
    notes: dict[str, list[str]] = {}
    for m, costed in zip(chosen, report.documents, strict=True):
        notes.setdefault(m.sale.at.strftime("%Y-%m"), []).extend(
            _return_note(m.pulled.number or m.sale.document_id, r, by_id.get(r.product_id))
            for r in costed.returns
        )
    return MarginReport(
        home_currency=home,
        start=query.start,
        end=query.end,
        group=query.group,
        totals=report.totals,
        documents=documents,
        groups=[
            GroupReport(
                key=key,
                label=_label(by_id.get(key), key),
                figures=figures,
                notes=notes.get(key, []) if query.group == "period" else [],
            )
            for key, figures in groups.items()
        ]
        if query.group != "document"
        else [],
        excluded=[e for e, when in excluded if when is None or _within(when, query)],
        notes=[note for period in sorted(notes) for note in notes[period]],
    )


class CostedLedger(NamedTuple):
    ledger: Ledger  # stock movements with every tracked sale applied
    sales_documents: frozenset[str]  # the documents that are sales (a credit's restocked lot among them)
    zone: ZoneInfo  # the organisation's time zone: it decides business days


def costed_ledger(organisation_id: str) -> CostedLedger:
    """What the books' cost of goods sold is drawn from."""
    ledger = Ledger(inventory_store.movements(organisation_id))
    settings = {t["provider"]: t for t in store.tracked(organisation_id)}
    if not settings:
        return CostedLedger(ledger, frozenset(), ZoneInfo("UTC"))
    mapped, _ = _sale_documents(organisation_id, settings, catalog_store.products(organisation_id))
    apply_sales(ledger, [m.sale for m in mapped])
    tracking = next((t for t in settings.values() if t["enabled"]), next(iter(settings.values())))
    return CostedLedger(ledger, frozenset(m.sale.document_id for m in mapped), _zone_of(tracking))


def _return_note(number: str, returned: UnmatchedReturn, product: Product | None) -> str:
    """'Credit CN-7 matched no sale: 2 x FG-1 restocked at 4.00' (written off; or not restocked)."""
    sku = product.sku if product and product.sku else returned.product_id
    what = f"{returned.quantity.normalize():f} x {sku}"
    if returned.outcome == "restocked" and returned.unit_cost is not None:
        unit = returned.unit_cost
        shown = to_cents(unit) if unit == to_cents(unit) else unit.normalize()
        return f"Credit {number} matched no sale: {what} restocked at {shown:f}"
    if returned.outcome == "written_off":
        return f"Credit {number} matched no sale: {what} written off (not restockable)"
    return f"Credit {number} matched no sale: {what} not restocked (no earlier lot to cost them)"


def _within(day: date, query: MarginQuery) -> bool:
    return (query.start is None or day >= query.start) and (query.end is None or day <= query.end)


def _label(product: Product | None, key: str) -> str:
    return " ".join(part for part in (product.sku, product.name) if part) if product else key


def _document_report(
    mapped: _Mapped, costed: DocumentMargin, products: dict[str, Product], refused: str | None
) -> DocumentReport:
    pulled, sale = mapped.pulled, mapped.sale
    lines = [
        LineReport(
            line_id=line.line_id,
            product_id=line.product_id,
            sku=products[line.product_id].sku if line.product_id in products else "",
            name=products[line.product_id].name if line.product_id in products else "",
            quantity=line.quantity,
            figures=line.figures,
            lots=[LotUsed(lot_id=d.lot_id, quantity=d.quantity, cost=d.cost) for d in line.lots],
        )
        for line in costed.lines
    ]
    issues = [
        *mapped.notes,
        *costed.issues,
        *([f"the ledger refused this document: {refused}"] if refused else []),
    ]
    return DocumentReport(
        document_id=sale.document_id,
        provider=sale.document_id.split(":", 1)[0],
        kind=sale.kind,
        number=pulled.number,
        date=sale.at.date(),
        status=sale.status,
        currency=sale.currency,
        rate=sale.rate,
        figures=costed.figures,
        lines=lines,
        unmapped=mapped.unmapped,
        issues=issues,
    )


def _sale_documents(
    organisation_id: str, settings: dict[str, dict[str, Any]], products: list[Product]
) -> tuple[list[_Mapped], list[tuple[Excluded, date | None]]]:
    """The stored documents as the ledger's sales, and those left out with the reason (and date)."""
    mapped: list[_Mapped] = []
    excluded: list[tuple[Excluded, date | None]] = []
    links = {(provider, item): p for p in products for provider, item in p.provider_links.items()}
    by_sku = {sku_key(p.sku): p for p in products if sku_key(p.sku)}
    by_id = {p.product_id: p for p in products}
    pulled = sorted(
        map(PulledSale.model_validate_json, store.documents(organisation_id)),
        key=lambda d: (d.issued or date.min, d.document_id),
    )
    sales: list[_Mapped] = []
    for document in pulled:
        provider = document.document_id.split(":", 1)[0]
        tracking = settings.get(provider)
        reason = _excluded_because(document, tracking)
        if reason or tracking is None or document.issued is None:
            excluded.append(
                (
                    Excluded(
                        document_id=document.document_id,
                        number=document.number,
                        reason=reason or "no sales tracking for this provider",
                    ),
                    document.issued,
                )
            )
            continue
        lines, unmapped = _sale_lines(provider, document.lines, links, by_sku, by_id)
        notes = (
            [f"{len(unmapped)} line(s) name no Partsemble product: kept, shown as unmapped, not costed"]
            if unmapped
            else []
        )
        sale = SaleDocument(
            document_id=document.document_id,
            kind=document.kind,
            at=datetime.combine(document.issued, DAY_END, tzinfo=_zone_of(tracking)),
            seq=1 if document.kind == "credit_note" else 0,
            currency=document.currency or tracking["home_currency"],
            rate=document.rate,
            status="voided" if document.status == "voided" else "active",
            lines=tuple(lines),
            restock=not NOT_RESTOCKABLE.search(document.note),
        )
        if document.kind == "credit_note":
            sale = sale.model_copy(
                update={"original_document_id": _original_sale(document, sale, sales, notes)}
            )
        entry = _Mapped(pulled=document, sale=sale, unmapped=unmapped, notes=notes)
        mapped.append(entry)
        if document.kind != "credit_note" and document.status == "active":
            sales.append(entry)
    return mapped, excluded


def _zone_of(tracking: dict[str, Any]) -> ZoneInfo:
    try:
        return zone(str(tracking.get("time_zone") or "UTC"))
    except ValueError:  # a zone the time zone database no longer knows: UTC rather than no report
        return ZoneInfo("UTC")


def _excluded_because(document: PulledSale, tracking: dict[str, Any] | None) -> str:
    if document.status == "deleted":
        return "deleted in the provider"
    if document.status == "draft":
        return "a draft: not a sale until it is approved"
    if document.issued is None:
        return "the document has no date"
    if tracking and document.issued < date.fromisoformat(tracking["start_date"]):
        return f"dated before the first pull date ({tracking['start_date']})"
    return ""


def _sale_lines(
    provider: str,
    lines: Iterable[PulledLine],
    links: dict[tuple[str, str], Product],
    by_sku: dict[str, Product],
    by_id: dict[str, Product],
) -> tuple[list[SaleLine], list[UnmappedLine]]:
    """Lines mapped to products by the provider item they name (Xero: else by item code as SKU); a kit
    (bundle) product's line becomes its components, the line's revenue split by their cost."""
    sale_lines: list[SaleLine] = []
    unmapped: list[UnmappedLine] = []
    for line in lines:
        quantity = line.quantity if line.quantity is not None else ZERO
        product = links.get((provider, line.item_id or "")) or (
            by_sku.get(sku_key(line.item_code)) if line.item_code else None
        )
        if product is None:
            unmapped.append(
                UnmappedLine(
                    line_id=line.line_id,
                    item=line.item_id or line.item_code or "",
                    description=line.description,
                    quantity=line.quantity,
                    amount=line.amount,
                )
            )
            sale_lines.append(
                SaleLine(line_id=line.line_id, product_id=None, quantity=quantity, amount=line.amount)
            )
            continue
        parts = [(by_id[c.ref], c.quantity) for c in product.components if c.ref in by_id]
        if product.type != "kit" or not parts:
            sale_lines.append(
                SaleLine(
                    line_id=line.line_id,
                    product_id=product.product_id,
                    quantity=quantity,
                    amount=line.amount,
                    unit_price=line.unit_price,
                )
            )
            continue
        net = (
            line.amount
            if line.amount is not None
            else (quantity * line.unit_price if line.unit_price is not None else None)
        )
        weights = [q * (p.unit_cost or ZERO) for p, q in parts]
        weights = weights if all(w > 0 for w in weights) else [q for _, q in parts]
        amounts = allocate_cents(to_cents(net), weights) if net is not None else [None] * len(parts)
        sale_lines.extend(
            SaleLine(
                line_id=f"{line.line_id}.{i}", product_id=p.product_id, quantity=quantity * q, amount=amount
            )
            for i, ((p, q), amount) in enumerate(zip(parts, amounts, strict=True), 1)
        )
    return sale_lines, unmapped


def _original_sale(
    document: PulledSale, credit: SaleDocument, sales: list[_Mapped], notes: list[str]
) -> str | None:
    """The sale a credit returns goods from: the one it names, else the customer's latest earlier sale with
    the credited products (all of them if one has them all)."""
    known = {s.sale.document_id for s in sales}
    named = next((i for i in document.sale_ids if i in known), None)
    if named:
        return named
    wanted = {line.product_id for line in credit.lines if line.product_id}
    candidates = [
        s
        for s in sales
        if s.pulled.customer_id == document.customer_id
        and s.sale.at <= credit.at
        and wanted & {line.product_id for line in s.sale.lines}
    ]
    if not candidates:
        return None
    best = max(
        candidates,
        key=lambda s: (wanted <= {line.product_id for line in s.sale.lines}, s.sale.at, s.sale.document_id),
    )
    named_as = best.pulled.number or best.sale.document_id
    notes.append(f"the credit names no sale; its goods return to the lots of {named_as}")
    return best.sale.document_id


# ---- export ---------------------------------------------------------------------------------------------
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FIGURE_HEADERS = ["Revenue", "COGS", "Margin", "Margin %", "Uncosted quantity"]


def _figures(f: Figures) -> list[Any]:
    return [
        f.revenue,
        f.cogs,
        "" if f.margin is None else f.margin,
        "" if f.margin_pct is None else f.margin_pct,
        f.uncosted or "",
    ]


def export_rows(report: MarginReport) -> list[list[Any]]:
    """The report as a table: a row per document line (or per product / period), then the totals."""
    if report.group == "document":
        rows: list[list[Any]] = [
            [
                "Date",
                "Document",
                "Kind",
                "Status",
                "Line",
                "SKU",
                "Product",
                "Quantity",
                *FIGURE_HEADERS,
                "Lots",
                "Issues",
            ]
        ]
        for d in report.documents:
            head = [d.date.isoformat(), d.number or d.document_id, d.kind, d.status]
            for line in d.lines:
                lots = "; ".join(f"{lot.lot_id} x {lot.quantity}" for lot in line.lots)
                rows.append(
                    [
                        *head,
                        line.line_id,
                        line.sku,
                        line.name,
                        line.quantity,
                        *_figures(line.figures),
                        lots,
                        "",
                    ]
                )
            for unmapped in d.unmapped:
                rows.append(
                    [
                        *head,
                        unmapped.line_id,
                        "",
                        f"unmapped: {unmapped.item} {unmapped.description}".strip(),
                        unmapped.quantity,
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                    ]
                )
            if d.issues or not d.lines:
                rows.append([*head, "", "", "", "", *_figures(d.figures), "", "; ".join(d.issues)])
        rows.append(["Total", "", "", "", "", "", "", "", *_figures(report.totals), "", ""])
        return rows
    rows = [["Product" if report.group == "product" else "Period", *FIGURE_HEADERS]]
    rows += [[g.label, *_figures(g.figures)] for g in report.groups]
    rows.append(["Total", *_figures(report.totals)])
    return rows


class Export(Model):
    filename: str
    content_type: str
    body: bytes


def export_margins(organisation_id: str, query: MarginQuery, fmt: Literal["csv", "xlsx"]) -> Export:
    report = margins(organisation_id, query)
    rows = export_rows(report)
    name = f"margins-{query.group}-{query.start or 'start'}-{query.end or 'now'}.{fmt}"
    if fmt == "csv":
        return Export(filename=name, content_type=EXPORT_TYPES[fmt], body=spreadsheet.csv_bytes(rows))
    body = spreadsheet.xlsx_bytes(rows, f"Margins ({report.home_currency})")
    return Export(filename=name, content_type=EXPORT_TYPES[fmt], body=body)
