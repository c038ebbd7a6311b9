"""The general ledger kept equal to the stock ledger, to the cent: each export's journal planned from the
running balances (``shared.domain.books``), true-ups when values already posted change, and each business
day's cost of goods sold.

Planning reads the books (cents planned per account), the costed ledger and which events are already
planned, and commits the new balances with the export's journal in one conditional transaction; the
journal is then posted as it was planned, however many attempts that takes. When the events already
planned are now worth something else (a back-dated receipt, an edited or voided sale, a credit, a late
sale), the difference is planned first as a true-up export of its own, dated the day it was found, which
names the exports it corrects; a posted document is never edited or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.contracts import ExportJob
from shared.domain import books as domain
from shared.domain import catalog as catalog_roles
from shared.domain.books import Balances, EventKey
from shared.domain.inventory import BuildRecord, Receipt, Rejection
from shared.domain.ledger import EntryKind
from shared.domain.postings import Journal, NothingToPost, PostingAccounts, journal_of
from shared.lazy import lazy_module
from shared.money import ZERO
from shared.observability import logger
from shared.services import queue

if TYPE_CHECKING:
    from shared.services import margins
else:  # the margins code loads only when a plan or a day's close needs the costed ledger
    margins = lazy_module("shared.services.margins")
from shared.store import books as store
from shared.store import connections as connection_store
from shared.store import exports as export_store
from shared.store import inventory as inventory_store
from shared.store import sales as sales_store
from shared.store import settings as settings_store
from shared.store.exports import ExportRow
from shared.store.inventory import InventoryRecord

MAX_TRIES = 8  # concurrent plans of one organisation: each loser plans again on the newer balances
COGS_GRACE = timedelta(hours=6)  # a day's sales post this long after the day ends, for late documents
EVENT_KINDS = ("receipt", "rejection", "build", "cogs")
ROLES = tuple(r for r in catalog_roles.ROLES if r != "build_credit")  # build_credit: no longer posted to
LISTED = 10  # exports named in a true-up's narration (the rest are counted)


def _day_of(zone: tzinfo) -> Callable[[datetime], date]:
    return lambda at: at.astimezone(zone).date()


def _exact_json(balances: Mapping[str, Decimal]) -> str:
    return json.dumps({a: str(v) for a, v in sorted(balances.items()) if v})


def _exact_of(text: str | None) -> dict[str, Decimal]:
    return {a: Decimal(v) for a, v in json.loads(text or "{}").items()}


def stored_journal(plan: str) -> Journal:
    """The journal a plan holds; ``NothingToPost`` when it held nothing."""
    if not plan:
        raise NothingToPost("nothing to post: its value rounds to 0.00 in every account")
    return Journal.model_validate_json(plan)


class State:
    """One read of everything a plan depends on."""

    def __init__(self, organisation_id: str, provider: str, accounts: PostingAccounts) -> None:
        self.books = store.get_books(organisation_id, provider)
        costed = margins.costed_ledger(organisation_id)
        self.zone, self.ledger, self.sales_documents = costed.zone, costed.ledger, costed.sales_documents
        self.found = domain.effects(costed.ledger, _day_of(costed.zone), costed.sales_documents)
        self.rows = export_store.plan_index(organisation_id)
        self.planned: dict[EventKey, ExportRow] = {
            (row.kind, row.record_id): row  # type: ignore[misc]  # kind is one of EVENT_KINDS here
            for row in self.rows
            if row.plan_provider == provider and row.kind in EVENT_KINDS and row.plan_type == "journal"
        }
        self.account = accounts.account
        self.currency = accounts.home_currency
        self.rounding = accounts.rounding

    def event_dates(self) -> dict[EventKey, date]:
        """Each event's date, as its journal is dated: a record's own local date, a COGS event's day."""
        day_of = _day_of(self.zone)
        dates = {}
        for entry in self.ledger.entries():
            event = domain.event_of(entry, day_of, self.sales_documents)
            dates[event] = date.fromisoformat(event[1]) if event[0] == "cogs" else entry.at.date()
        return dates

    def exact(self, events: Iterable[EventKey]) -> dict[str, Decimal]:
        return domain.subledger(self.found, events, self.account)

    def trued(self, event: EventKey | None = None) -> tuple[Balances, Balances, dict[str, str]]:
        """The balances the planned events should hold now, those with ``event`` too, and the exports
        whose values changed since they were planned."""
        trued, after = domain.plan(
            self.found, self.planned, event, self.books.posted, self.account, self.rounding
        )
        return trued, after, self.restated()

    def restated(self) -> dict[str, str]:
        """The planned exports whose values changed since they were planned (or last trued up): their
        values now, by export id."""
        found = {}
        for key, row in sorted(self.planned.items()):
            now = {a: v for a, v in self.exact([key]).items() if v}
            if _exact_of(row.plan_exact) != now:
                found[row.export_id] = _exact_json(now)
        return found


def _trueup(
    organisation_id: str, state: State, trued: Balances, restated: dict[str, str], moment: datetime
) -> tuple[store.PlanWrite, ExportJob] | None:
    change = domain.difference(trued, state.books.posted)
    if not change:
        return None
    record_id = f"{state.books.provider}-{state.books.version + 1}"
    export_id = queue.export_id_for(organisation_id, "trueup", record_id)
    changed = list(restated)
    more = f" and {len(changed) - LISTED} more" if len(changed) > LISTED else ""
    named = ", ".join(changed[:LISTED]) + more
    narration = f"True-up of values already posted, after re-costing: {named or 'rounding'}"
    on = moment.astimezone(state.zone).date()
    journal = journal_of(change, marker=export_id, on=on, currency=state.currency, narration=narration)
    row = export_store.new_export(
        organisation_id,
        export_id,
        kind="trueup",
        record_id=record_id,
        at=moment.isoformat(),
        now=moment.isoformat(),
    )
    write = store.PlanWrite(
        export_id=export_id,
        plan=journal.model_dump_json(),
        exact=json.dumps({"corrects": changed}),
        new_row=row,
    )
    return write, ExportJob(organisation_id=organisation_id, kind="trueup", record_id=record_id)


def plan(
    organisation_id: str,
    job: ExportJob,
    *,
    export_id: str,
    owner: str,
    provider: str,
    accounts: PostingAccounts,
    moment: datetime,
    finish: Callable[[Journal, InventoryRecord | None], Journal] | None = None,
) -> Journal:
    """The journal this export posts, planned now on the running balances (a true-up first when values
    already planned have changed), completed by ``finish`` (a provider's own rules) before it is stored.
    ``NothingToPost`` when it moves no account by a cent. The event's record is read once, and ``finish``
    gets it too."""
    event: EventKey = (job.kind, job.record_id)  # type: ignore[assignment]
    record = record_of(organisation_id, job)
    on, narration = describe(job, record)
    for _ in range(MAX_TRIES):
        state = State(organisation_id, provider, accounts)
        state.planned.pop(event, None)
        trued, after, restated = state.trued(event)
        writes, jobs = [], []
        if found := _trueup(organisation_id, state, trued, restated, moment):
            writes.append(found[0])
            jobs.append(found[1])
        try:
            journal: Journal | None = journal_of(
                domain.difference(after, trued),
                marker=export_id,
                on=on,
                currency=accounts.home_currency,
                narration=narration,
            )
        except NothingToPost:
            journal = None
        if journal is not None and finish is not None:
            journal = finish(journal, record)
        writes.append(
            store.PlanWrite(
                export_id=export_id,
                plan=journal.model_dump_json() if journal else "",
                exact=_exact_json(state.exact([event])),
                owner=owner,
            )
        )
        try:
            store.commit_plans(organisation_id, state.books, after, writes, restated if jobs else None)
        except store.BooksMoved:
            continue
        for queued in jobs:
            queue.deliver(queued)
        return stored_journal(writes[-1].plan)
    raise store.BooksMoved()


def record_of(organisation_id: str, job: ExportJob) -> InventoryRecord | None:
    """The stored record an event's journal is about (None for a day's cost of goods sold)."""
    if job.kind == "cogs":
        return None
    record = inventory_store.load_record(organisation_id, job.kind, job.record_id)
    if record is None:
        raise NothingToPost(f"the {job.kind} {job.record_id} is not recorded: nothing to post")
    return record


def describe(job: ExportJob, record: InventoryRecord | None) -> tuple[date, str]:
    """The date and narration of an event's journal (``record``: ``record_of`` the event)."""
    if isinstance(record, Receipt):
        supplier = f" from {record.supplier_id}" if record.supplier_id else ""
        return record.received_at.date(), f"Receipt {record.receipt_id}{supplier}"
    if isinstance(record, Rejection):
        return record.rejected_at.date(), f"QA rejection on receipt {record.receipt_id}"
    if isinstance(record, BuildRecord):
        build = record.build
        return build.built_at.date(), f"Build {build.build_id}: {build.quantity} x {build.product_id}"
    return date.fromisoformat(job.record_id), f"Cost of goods sold for the sales of {job.record_id}"


def change_of(plan: str) -> Balances:
    """What a stored plan moves, per account (debits positive); nothing for an empty plan."""
    if not plan:
        return {}
    return {
        line.account_id: line.amount if line.side == "debit" else -line.amount
        for line in Journal.model_validate_json(plan).lines
    }


def unplan(organisation_id: str, row: ExportRow) -> None:
    """Takes a failed export's plan out of the books, so that a retry plans it on the values of then."""
    change = change_of(str(row.plan))
    for _ in range(MAX_TRIES):
        books = store.get_books(organisation_id, str(row.plan_provider))
        posted = {a: books.posted.get(a, ZERO) - change.get(a, ZERO) for a in books.posted.keys() | change}
        try:
            store.drop_plan(organisation_id, books, posted, row.export_id)
            return
        except store.BooksMoved:
            continue
    raise store.BooksMoved()


# ---- scheduled: business days closed, values re-checked ------------------------------------------------
def due_cogs_days(organisation_id: str, now: datetime) -> list[str]:
    """Business days with sales that have ended (plus the grace period) and have no COGS export yet."""
    ledger, documents, zone = margins.costed_ledger(organisation_id)
    sale_kinds = (EntryKind.SALE_CONSUME, EntryKind.SALE_RETURN, EntryKind.RETURN_WASTE)
    days = {
        e.at.astimezone(zone).date()
        for e in ledger.entries()
        if e.cost and (e.kind in sale_kinds or e.document_id in documents)
    }
    known = {row.record_id for row in export_store.list_exports(organisation_id) if row.kind == "cogs"}
    return sorted(
        day.isoformat()
        for day in days
        if day.isoformat() not in known
        and datetime.combine(day + timedelta(days=1), time(), zone) + COGS_GRACE <= now
    )


def true_up(organisation_id: str, provider: str, accounts: PostingAccounts, moment: datetime) -> bool:
    """Plans (and queues) a true-up when values already planned have changed; whether one was needed."""
    for _ in range(MAX_TRIES):
        state = State(organisation_id, provider, accounts)
        trued, _, restated = state.trued()
        found = _trueup(organisation_id, state, trued, restated, moment)
        if found is None:
            return False
        try:
            store.commit_plans(organisation_id, state.books, trued, [found[0]], restated)
        except store.BooksMoved:
            continue
        queue.deliver(found[1])
        return True
    raise store.BooksMoved()


def close_days_of(connection: connection_store.Connection, now: datetime) -> int:
    """The scheduled close of one connection's books (the hourly pull message of each connection runs it):
    the COGS export of each business day that has ended, and a true-up when posted values changed. A failure
    is logged, never raised: the next hour tries again. Returns how many exports it queued."""
    try:
        return _close_days(connection.organisation_id, connection.provider, connection, now)
    except Exception:
        logger.exception(
            "closing business days failed", extra={"organisation_id": connection.organisation_id}
        )
        return 0


def _close_days(
    organisation_id: str, name: str, connection: connection_store.Connection, now: datetime
) -> int:
    tracking = sales_store.get_tracking(organisation_id, name)
    chosen = settings_store.get_export_settings(organisation_id, name)
    if connection.status != "connected" or not chosen:
        return 0
    if name == "qbo" and chosen.quantity_mode:
        return 0  # QBO books its own cost of goods sold in inventory mode
    queued = 0
    if tracking and tracking.enabled:
        for day in due_cogs_days(organisation_id, now):
            export_id = queue.export_id_for(organisation_id, "cogs", day)
            row = export_store.new_export(
                organisation_id, export_id, kind="cogs", record_id=day, at=day, now=now.isoformat()
            )
            if export_store.put_new(row):
                queue.deliver(ExportJob(organisation_id=organisation_id, kind="cogs", record_id=day))
                queued += 1
    currency = export_store.home_currency(organisation_id, name, connection.tenant_id or "")
    if currency is None:  # nothing exported yet (the first export reads it): nothing to true up either
        return queued
    accounts = PostingAccounts(home_currency=currency, **{role: chosen.account(role) for role in ROLES})
    return queued + true_up(organisation_id, name, accounts, now)
