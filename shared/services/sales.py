"""Sales tracking: its settings, and pulling changed sales documents from the connected provider (margins
from them: ``services/margins.py``).

A pull reads what changed since the connection's cursor, stores each document's latest version, and only
then moves the cursor, under a per-connection lease: a crash repeats work (documents are stored by id, so
reading one again replaces it) and never skips any.
"""

from __future__ import annotations

import hashlib
import json
import math
import time as clock_time
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from shared.config import settings
from shared.contracts import ConnectionJob
from shared.domain.catalog import sku_key
from shared.domain.connections import IN_USE, PROVIDER_LABELS, ProviderName
from shared.errors import AuthExpired, Conflict, InvalidFields, ProviderError, RateLimited, ServiceError
from shared.lazy import lazy_module
from shared.model import Model
from shared.observability import logger
from shared.providers import provider_name
from shared.providers.base import PulledSale
from shared.services import fanout, tokens
from shared.services.sessions import connected, in_use, session_for
from shared.store import catalog as catalog_store
from shared.store import connections as connection_store
from shared.store import sales as store
from shared.store.sales import LastPull, Tracking, TrackingShown

if TYPE_CHECKING:  # the sales pull worker loads this module without the API's requests
    from shared.bodies import TrackingRequest
    from shared.services import books, reconciliation
else:  # the books' hour (replaying ledgers, reconciling) loads on the hourly message's first use
    books, reconciliation = (
        lazy_module("shared.services.books"),
        lazy_module("shared.services.reconciliation"),
    )

LEASE_SECONDS = 60  # short, and renewed between pages while the pull lives: a killed pull (a pull-now past
# the API's timeout, a crashed function) frees "pull now" within a minute; a failed one frees it at once.
RENEW_AFTER = 20  # seconds since the last renewal before the next page renews it (one write, not one a page)
# One part of a pull (one queue message) reads for at most this long or this many pages, then stores what it
# read with where it stopped and queues the next part: a large first pull never races the function's
# timeout (300 s: room for the page under way, however long its rate-limit waits, and the writes after it).
PART_SECONDS = 120
PART_PAGES = 40


class PullRunning(Conflict):
    """Another pull of this connection holds its lease."""


# ---- tracking settings --------------------------------------------------------------------------------
class TrackingView(TrackingShown):
    time_zone: str  # IANA: the organisation's dates are local dates there
    pulling: bool  # a pull runs now, is queued ("pull now"), or goes on in its next part
    # a pull stopped part way and nothing carries it on (its part failed, or its next part never ran): its
    # place is kept, and the next pull (the hourly one, or "pull now") goes on from it
    stalled: bool = False


# A part's next part is queued at once, or up to MAX_DELAY (900 s) later when rate-limited; it runs for up to
# the function's 300 s, and SQS gives a part whose function died to another after 600 s (the queue's
# visibility timeout, template.yaml). A next part not begun well past all that is not coming.
STALE_AFTER = timedelta(minutes=30)


def _view(tracking: Tracking, now: datetime) -> TrackingView:
    shown = tracking.model_dump(include=set(TrackingShown.model_fields))
    last = tracking.last_pull
    going_on = bool(last and last.more and datetime.fromisoformat(last.at) >= now - STALE_AFTER)
    pulling = tracking.lease_until >= now.timestamp() or going_on or _waiting(tracking, now)
    return TrackingView.model_validate(
        {
            **shown,
            "time_zone": tracking.time_zone or "UTC",
            "pulling": pulling,
            "stalled": bool(tracking.resume) and not pulling,
        }
    )


QUEUED_FOR = timedelta(minutes=15)  # a "pull now" not begun by then is shown as not pulling (a lost message)


def _waiting(tracking: Tracking, now: datetime) -> bool:
    """A "pull now" is queued and no pull has ended since."""
    requested = tracking.requested_at
    if not requested or datetime.fromisoformat(requested) < now - QUEUED_FOR:
        return False
    ended = tracking.last_pull.at if tracking.last_pull else None
    return not ended or datetime.fromisoformat(ended) < datetime.fromisoformat(requested)


def set_tracking(organisation_id: str, name: str, request: TrackingRequest, now: datetime) -> TrackingView:
    """Turns sales tracking on or off; a new start date makes the next pull start over from it."""
    wanted, connection = connected(organisation_id, name)
    trackings = store.tracked(organisation_id)
    existing = next((t for t in trackings if t.provider == wanted), None)
    start = request.start_date or (existing.start_date if existing else None)
    if start is None:
        problem = "choose the date the first pull starts from (start_date)"
        raise InvalidFields(problem, [{"field": "start_date", "problem": problem}])
    if existing is not None and start > existing.start_date:
        _keeps_costed_days(organisation_id, wanted, start)
    provider = tokens.provider(wanted)
    session = cache(lambda: session_for(connection))  # one session (one token read), and only when asked
    home = (existing.home_currency if existing else "") or provider.home_currency(session())
    before = existing.time_zone if existing else None
    business = store.zone_of(trackings)  # the organisation's zone now (None: never set)
    # not named: its own, else the organisation's (one business zone), else the provider company's
    time_zone = request.time_zone or before or (business.key if business else provider.time_zone(session()))
    # another provider's tracking in another zone (set before anything was planned) would be the business
    # zone once this one is turned off
    stray = [t for t in trackings if t.provider != wanted and t.zone.key != (business and business.key)]
    fixed = business is not None and (time_zone != business.key or stray) and _planned(organisation_id)
    if business is not None and fixed:
        # the zone dates every record and business day: journals already planned keep the dates they were
        # given, so a past date's books check would cut the stock ledger on other days than they did. Every
        # provider's tracking keeps it (the business zone follows whichever is enabled); one set up without
        # naming a zone takes it
        if request.time_zone is not None and request.time_zone != business.key:
            problem = f"the books are dated in {business.key} since exports were planned; it can't change now"
            raise InvalidFields(f"time_zone: {problem}", [{"field": "time_zone", "problem": problem}])
        time_zone = business.key
    try:
        stored = store.save_tracking(
            organisation_id,
            wanted,
            enabled=request.enabled,
            start_date=start.isoformat(),
            home_currency=home,
            time_zone=time_zone,
            reset_cursor=existing is None or existing.start_date != start,
            # the organisation has one business zone: every provider's tracking holds it (two enabled in
            # two zones would date one provider's books in the other's)
            aligned=[t.provider for t in trackings if t.provider != wanted and t.zone.key != time_zone],
            read=existing,
        )
    except store.ZoneFixed as fixed_now:  # an export was planned in the zone read, as this was saved
        problem = f"the books are dated in {fixed_now.zone} since exports were planned; it can't change now"
        raise InvalidFields(f"time_zone: {problem}", [{"field": "time_zone", "problem": problem}]) from None
    return _view(stored, now)


def _keeps_costed_days(organisation_id: str, provider: ProviderName, start: date) -> None:
    """A later start date leaves out the sales before it: refused once the cost of goods sold of one of those
    days is planned, as a true-up would take that posted cost back into stock the customer has (and a credit
    for such a sale would find no sale to return to)."""
    from shared.domain.books import cogs_day
    from shared.store import exports as export_store  # on first use: only a later start date asks

    costed = [
        cogs_day(row.record_id)
        for row in export_store.plan_index(organisation_id)
        if row.kind == "cogs" and row.plan_provider == provider and cogs_day(row.record_id) < start
    ]
    if costed:
        first = min(costed).isoformat()
        problem = (
            f"the cost of the goods sold on {first} is in the books already: the start date can't be later "
            f"than {first} (an earlier one can be chosen)"
        )
        raise InvalidFields(f"start_date: {problem}", [{"field": "start_date", "problem": problem}])


def _planned(organisation_id: str) -> bool:
    """Whether any export has been planned (its document fixed, dates included)."""
    from shared.store import exports as export_store  # on first use: only a change of time zone asks

    return any(row.plan_provider for row in export_store.plan_index(organisation_id))


def status(organisation_id: str, now: datetime) -> list[TrackingView]:
    return [_view(tracking, now) for tracking in store.tracked(organisation_id)]


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
    try:
        if not tracking or not tracking.enabled:
            raise Conflict("sales tracking is off for this connection; turn it on first")
        wanted, connection = connected(organisation_id, wanted)
    except ServiceError as refused:  # ended before it began: said so, or a "pull now" would show pulling
        _not_pulled(tracking, refused.message, now)
        raise
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

    # a pull going on from where it stopped (its next part, or a new pull after a part failed or never
    # ran) adds to the counts of the parts before it
    carried = tracking.last_pull if tracking.resume else None
    try:
        changes = tokens.provider(wanted).sales_changes(
            session_for(connection),
            tracking.cursor,
            start=tracking.start_date,
            now=now,
            on_page=on_page,
            stop=spent,
            resume=tracking.resume,
            held=lambda: _held(organisation_id),
        )
        fresh, again = _changed(organisation_id, wanted, changes.records, now, _attempt(tracking))
        store.put_documents(organisation_id, {d.document_id: d.model_dump_json() for d in fresh})
    except Exception as err:  # any failure frees the lease at once and is shown as the last pull's error
        reason = err.message if isinstance(err, ServiceError) else f"unexpected error ({type(err).__name__})"
        # a rate-limited part (the first one too) comes back as the pull's next part (``_pull``); any other
        # waits for the next pull, which goes on from the same place
        failed = _failed(carried, reason, now, more=isinstance(err, RateLimited))
        store.release_pull_lease(organisation_id, wanted, owner=owner, last_pull=failed)
        raise
    stored = [d.document_id for d in fresh] + again
    summary = LastPull(
        at=now.isoformat(),
        ok=True,
        read=len(changes.records) + (carried.read if carried else 0),
        stored=len(stored) + (carried.stored if carried else 0),
        parts=carried.parts + 1 if carried else 1,
        more=changes.resume is not None,
    )
    if changes.resume is not None:
        moved = store.save_progress(
            organisation_id, wanted, owner=owner, resume=changes.resume, last_pull=summary
        )
    else:
        moved = store.advance_cursor(
            organisation_id, wanted, owner=owner, cursor=changes.cursor, last_pull=summary
        )
    if not moved:
        raise PullRunning("this pull outlived its lease and another took over; its documents are stored")
    return PullResult(
        provider=wanted,
        read=len(changes.records),
        stored=stored,
        cursor=changes.cursor,
        more=changes.resume is not None,
    )


def _not_pulled(tracking: Tracking | None, reason: str, now: datetime) -> None:
    """Records a pull that ended before it began (no lease taken, nothing read) as the last pull, with why:
    a queued "pull now" shows as ended, and the next one is accepted at once. A pull that stopped part way
    keeps its counts and its place (``resume``): the next pull goes on from it."""
    if tracking is None:
        return
    carried = tracking.last_pull if tracking.resume else None
    ended = _failed(carried, reason, now).model_copy(update={"parts": carried.parts if carried else 0})
    seen = tracking.last_pull.at if tracking.last_pull else None
    store.end_unpulled(
        tracking.organisation_id, tracking.provider, now=int(now.timestamp()), last_pull=ended, seen=seen
    )


def _failed(carried: LastPull | None, reason: str, now: datetime, *, more: bool = False) -> LastPull:
    """A pull (or part) that failed, adding to the counts of the parts before it (``carried``)."""
    return LastPull(
        at=now.isoformat(),
        ok=False,
        error=reason,
        read=carried.read if carried else 0,
        stored=carried.stored if carried else 0,
        parts=carried.parts + 1 if carried else 1,
        more=more,
    )


def _held(organisation_id: str) -> list[str]:
    """The stored documents not known to be deleted (a provider that cannot name deletions asks for them)."""
    stored = map(PulledSale.model_validate_json, store.documents(organisation_id))
    return [d.document_id for d in stored if d.status != "deleted"]


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


def _attempt(tracking: Tracking) -> str:
    """The name of this part of a pull (its company, start date, cursor and place): a part that died after
    storing documents (before the cursor or its place moved) leaves the part that takes over with the same
    name; a part or pull after one that ended has another."""
    where = [tracking.tenant_id, str(tracking.start_date), tracking.cursor, tracking.resume]
    return hashlib.sha256(json.dumps(where).encode()).hexdigest()[:16]


def _changed(
    organisation_id: str, provider: ProviderName, pulled: Iterable[PulledSale], now: datetime, attempt: str
) -> tuple[list[PulledSale], list[str]]:
    """The documents whose stored version this pull changes, stored as by ``attempt``; and the ids of those
    it finds as a part of the same name stored them (it died before its cursor moved: they are this pull's
    too). A deletion keeps the document's last known content (QBO sends only its id); Xero item codes become
    item ids, so a code changed later still maps. A document keeps when a pull first stored it (``now`` for
    a new one)."""
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
    fresh, again = [], []
    for document_id, document in latest.items():
        previous = stored.get(document_id)
        if document.status == "deleted" and previous is None:
            continue  # deleted before Partsemble ever saw it: nothing to take back
        if document.status == "deleted" and previous is not None:
            document = previous.model_copy(update={"status": "deleted", "version": document.version})
        elif codes:
            document = _with_item_ids(document, previous, codes)
        kept = {"first_read": previous.first_read, "stored_by": previous.stored_by} if previous else {}
        document = document.model_copy(update={"first_read": now, **kept})
        if document != previous:
            fresh.append(document.model_copy(update={"stored_by": attempt}))
        elif previous.stored_by == attempt:
            again.append(document_id)
    return fresh, again


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
    """'Pull now': queues a pull of the organisation's live connection when its sales tracking is on (a
    disconnected one keeps its documents and settings, and is not pulled) and answers at once; ``GET
    /sales/status`` shows it pulling until it ends. A connection whose pull runs now, or is queued and has
    not ended, is left to it (a double click, or the same request from two tabs, queues one pull)."""
    live = in_use(organisation_id)
    if live is None:  # a disconnected provider's tracking stays on, and is not pulled: say what is missing
        raise Conflict("this organisation is not connected to QuickBooks Online or Xero; connect it first")
    enabled = [t for t in store.tracked(organisation_id) if t.enabled and t.provider == live.provider]
    label = PROVIDER_LABELS[live.provider]
    if not enabled:
        raise Conflict(f"sales tracking is off for {label}; turn it on first")
    if live.status == "expired":  # its pull would fail at once: said now, not queued
        raise AuthExpired(
            live.provider, f"{label} no longer accepts this connection; reconnect it, then pull the sales"
        )
    idle = [t for t in enabled if t.lease_until < now.timestamp() and not _waiting(t, now)]
    queued = []
    for tracking in idle:  # each queued once: a request made at the same time finds it marked
        name = tracking.provider
        if not store.mark_requested(organisation_id, name, at=now.isoformat(), seen=tracking.requested_at):
            continue
        job = ConnectionJob(organisation_id=organisation_id, provider=name, reason="pull_now")
        try:
            fanout.send_one(settings().sales_pull_queue_url, job)
        except Exception:  # not queued (an outage answers 503): nothing waits for it, so it blocks nothing
            store.unmark_requested(organisation_id, name, at=now.isoformat(), back_to=tracking.requested_at)
            raise
        queued.append(PullQueued(provider=name, queued_at=now.isoformat()))
    if not queued:
        raise PullRunning(
            "a pull of this connection is already queued or running; its results will show when it ends"
        )
    return queued


class PullReport(Model):
    pulled: int = 0
    stored: int = 0
    running: int = 0  # skipped: another pull of that connection was running
    failed: int = 0
    skipped: int = 0  # not tracking sales, no longer connected, or tracking turned off since it was queued
    continued: int = 0  # stopped part way; the next part is queued
    books_exports_queued: int = 0  # COGS days closed and true-ups, by the hourly message
    out_of_balance: int = 0  # the daily check found a discrepancy


def pull_job(job: ConnectionJob, *, now: datetime) -> PullReport:
    """The worker: one part of one connection's pull (a large first pull stops after ``PART_SECONDS`` or
    ``PART_PAGES`` and queues its next part). A failure is recorded as the last pull's error and the cursor
    stays, so the next pass (or "pull now") reads the same changes again; it is never retried in a loop.
    The hourly message then does the connection's books' hour, whatever the pull did."""
    try:
        connection = connection_store.get_connection(job.organisation_id, job.provider)
        if connection is not None:
            connection_store.index_tenant(connection)  # a row from before the tenant index: listed once
        report = _pull(job, connection, now)
        if job.reason == "schedule" and connection is not None and connection.status == "connected":
            # a business day closes on the documents of a pull that read everything: after a failed pull, one
            # going on in its next part, or another pull running (its documents not stored yet), the day's
            # late documents may not be held, and its cost of goods sold would be posted short (corrected only
            # by a true-up dated later); the next hour closes it. True-ups still run.
            caught_up = not (report.failed or report.running or report.continued)
            report.books_exports_queued += books.close_days_of(connection, now, new_days=caught_up)
            report.out_of_balance += reconciliation.check_once_a_day(connection, now)
    except Exception:  # the message comes back (then to the DLQ): its traceback is logged here, once
        # (the status keeps only the error's class); the logger's redaction scrubs any token in it
        logger.exception(
            "sales pull failed unexpectedly",
            extra={"organisation_id": job.organisation_id, "provider": job.provider, "reason": job.reason},
        )
        raise
    return report


def _pull(job: ConnectionJob, connection: connection_store.Connection | None, now: datetime) -> PullReport:
    report = PullReport()
    organisation, name = job.organisation_id, job.provider
    tracking = store.get_tracking(organisation, name)
    if not connection or connection.status not in IN_USE or not tracking or not tracking.enabled:
        report.skipped += 1
        if job.reason != "schedule" and tracking is not None:  # asked for ("pull now", or a next part)
            why = (
                "sales tracking was turned off"
                if not tracking.enabled
                else f"this organisation is no longer connected to {PROVIDER_LABELS[name]}"
            )
            _not_pulled(tracking, f"not pulled: {why}", now)
        return report
    try:
        result = pull_changes(organisation, name, now=now, part_seconds=PART_SECONDS, part_pages=PART_PAGES)
    except PullRunning:
        report.running += 1
        return report
    except RateLimited as err:  # the tenant's budget is spent: the same job again once it allows
        delay = max(1, math.ceil(err.retry_after or 60))  # send_one caps it at SQS's longest
        again = job.model_copy(update={"reason": "continue"})  # the books' hour is done by this message
        fanout.send_one(settings().sales_pull_queue_url, again, delay=delay)
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
