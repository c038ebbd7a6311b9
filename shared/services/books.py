"""The general ledger kept equal to the stock ledger, to the cent: each export's journal planned from the
running balances (``shared.domain.books``), true-ups when values already posted change, and each business
day's cost of goods sold.

Planning reads the books (cents planned per account), the costed ledger and which events are already
planned, and commits the new balances with the export's journal in one conditional transaction; the
journal is then posted as it was planned, however many attempts that takes. When the events already
planned are now worth something else (a back-dated receipt, an edited or voided sale, a credit, a late
sale), the difference is planned first as a true-up export of its own, dated the day it was found, which
names the exports it corrects and records the exact change of each; a posted document is never edited or
deleted. One true-up restates at most ``MAX_RESTATED`` exports (a transaction's limit): the changes of any
others are held back at their planned values for the next true-ups, planned straight after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from functools import cached_property, partial
from typing import TYPE_CHECKING, NamedTuple

from shared.contracts import ExportJob
from shared.domain import books as domain
from shared.domain import catalog as catalog_roles
from shared.domain.books import Balances, EventKey
from shared.domain.inventory import BuildRecord, Receipt, Rejection
from shared.domain.ledger import EntryKind
from shared.domain.postings import Journal, NothingToPost, PostingAccounts, journal_of
from shared.errors import Busy
from shared.lazy import lazy_module
from shared.money import ZERO, to_cents
from shared.observability import logger
from shared.services import queue

if TYPE_CHECKING:
    from shared.services import margins
else:  # the margins code loads only when a plan or a day's close needs the costed ledger
    margins = lazy_module("shared.services.margins")
from shared.store import books as store
from shared.store import catalog as catalog_store
from shared.store import connections as connection_store
from shared.store import exports as export_store
from shared.store import inventory as inventory_store
from shared.store import sales as sales_store
from shared.store import settings as settings_store
from shared.store.exports import ExportRow
from shared.store.inventory import InventoryRecord

MAX_TRIES = 8  # concurrent plans of one organisation: each loser plans again on the newer balances
BUSY = f"other exports changed these books at each of {MAX_TRIES} tries: nothing changed; try again shortly"
COGS_GRACE = timedelta(hours=6)  # a day's sales post this long after the day ends, for late documents
EVENT_KINDS = ("receipt", "rejection", "build", "cogs")
ROLES = tuple(r for r in catalog_roles.ROLES if r != "build_credit")  # build_credit: no longer posted to
LISTED = 10  # exports named in a true-up's narration (the rest are counted)


def _day_of(zone: tzinfo) -> Callable[[datetime], date]:
    return lambda at: at.astimezone(zone).date()


def _exact_dict(balances: Mapping[str, Decimal]) -> dict[str, str]:
    return {a: str(v) for a, v in sorted(balances.items()) if v}


def _exact_json(balances: Mapping[str, Decimal]) -> str:
    return json.dumps(_exact_dict(balances))


def _exact_of(text: str | None) -> dict[str, Decimal]:
    return {a: Decimal(v) for a, v in json.loads(text or "{}").items()}


def stored_journal(plan: str) -> Journal:
    """The journal a plan holds; ``NothingToPost`` when it held nothing."""
    if not plan:
        raise NothingToPost("nothing to post: its value rounds to 0.00 in every account")
    return Journal.model_validate_json(plan)


class State:
    """One read of everything a plan depends on, for the company ``accounts`` are of."""

    def __init__(self, organisation_id: str, provider: str, accounts: PostingAccounts) -> None:
        self.books = store.get_books(organisation_id, provider, accounts.company)
        costed = margins.costed_ledger(organisation_id)
        self.zone, self.ledger, self.sales_documents = costed.zone, costed.ledger, costed.sales_documents
        self.business_zone = costed.business_zone  # what the plans are dated in (None: each time as given)
        self.record_day = domain.record_day(costed.business_zone)
        self.entries = costed.ledger.entries()
        self.found = domain.effects(costed.ledger, _day_of(costed.zone), costed.sales_documents, self.entries)
        self.rows = export_store.plan_index(organisation_id)
        self.planned: dict[EventKey, ExportRow] = {
            (row.kind, row.record_id): row  # type: ignore[misc]  # kind is one of EVENT_KINDS here
            for row in self.rows
            if row.plan_provider == provider
            and row.kind in EVENT_KINDS
            and row.plan_type == "journal"
            and domain.of_company(row.plan_tenant, accounts.company)
        }
        self.organisation_id, self.provider, self.company = organisation_id, provider, accounts.company
        self.accounts = accounts
        self.account = accounts.account
        self.currency = accounts.home_currency
        self.rounding = accounts.rounding
        # a receipt and its rejection credit exactly the supplier total: no rounding cent lands there
        self.steady = tuple(a for a in (accounts.receiving_credit,) if a)

    def event_dates(self) -> dict[EventKey, date]:
        """Each event's date, as its journal is dated: a record's own local date, a COGS event's day."""
        day_of = _day_of(self.zone)
        dates = {}
        for entry in self.entries:
            event = domain.event_of(entry, day_of, self.sales_documents)
            dates[event] = domain.cogs_day(event[1]) if event[0] == "cogs" else self.record_day(entry.at)
        return dates

    def exact(self, events: Iterable[EventKey]) -> dict[str, Decimal]:
        return domain.subledger(self.found, events, self.account)

    def trued(
        self, event: EventKey | None = None, day: date | None = None, today: date | None = None
    ) -> Trued:
        """The balances the planned events should hold once the first ``MAX_RESTATED`` changed ones are
        restated, those with ``event`` (its journal dated ``day``) too, and those changes. Any other changed
        event waits, held back at the value it was planned with, for the next true-up (a transaction
        restates at most that many). ``today``: the day a true-up found now is dated."""
        changed = self.changes()
        restating = dict(list(changed.items())[: store.MAX_RESTATED])
        waiting = {key: change for key, change in changed.items() if key not in restating}
        held_back = domain.summed(waiting.values())
        planned: list[Balances] = []  # the true-up's balances before an evened journal's cents
        later = (
            None
            if day is None or today is None
            else partial(self.after, day, today, restating, waiting, planned)
        )
        trued, after = domain.plan(
            self.found,
            self.planned,
            event,
            self.books.posted,
            self.account,
            self.rounding,
            held_back,
            later,
            self.fixed,
            self.steady,
        )
        rounding = domain.difference(trued, planned[0]) if planned else {}
        return Trued(trued, after, restating, len(changed) > len(restating), rounding)

    @cached_property
    def fixed(self) -> frozenset[str]:
        """The mapped accounts whose journal lines must name someone (QBO's Accounts Payable: a vendor, which
        a true-up has none of, error 6000; ``catalog.name_required``): no true-up may move them, nor a
        rounding cent land on them."""
        if self.provider != "qbo":
            return frozenset()
        mapped = sorted({a for role in ROLES if (a := getattr(self.accounts, role))})
        found = catalog_store.get_accounts(self.organisation_id, "qbo", mapped)
        return frozenset(a.account_id for a in found if catalog_roles.name_required(a) is not None)

    def corrections(self, restating: Mapping[EventKey, Balances]) -> dict[str, Balances]:
        """What a true-up made now corrects of each export (exact, per account): the changes it restates, and
        what the true-ups that corrected an export planned anew since take back."""
        restated = {self.planned[key].export_id: delta for key, delta in restating.items()}
        taken_back = self.books.taken_back
        return {
            corrected: domain.summed([restated.get(corrected, {}), taken_back.get(corrected, {})])
            for corrected in restated | taken_back
        }

    def after(
        self,
        day: date,
        today: date,
        restating: Mapping[EventKey, Balances],
        waiting: Mapping[EventKey, Balances],
        planned: list[Balances],
        trued: Balances,
    ) -> domain.After:
        """What is dated after an event dated ``day`` (``domain.After``), the books trued to ``trued`` (kept
        in ``planned``). Its tails: for each date from ``day`` on at which the books change, what the journals
        dated after it hold beyond the exact values of the events they stand for (``domain.evened``), counted
        as a reconciliation of that date counts them: the journals of the events dated after it (by their
        journal's date when their event is gone), less their exact values now (less ``waiting`` changes);
        and the true-ups dated after it (this plan's one, to ``trued`` restating ``restating``, dated
        ``today``), less what they correct of exports dated by then (``corrected_by_then``). Empty when
        nothing is dated after ``day`` or nothing after it holds a cent's part: the running rounding alone is
        then the books' at every date."""
        planned.append(trued)
        dates = self.event_dates()
        export_day = {row.export_id: dates.get(key) for key, row in self.planned.items()}
        later = [(key, row) for key, row in self.planned.items() if dates.get(key, date.max) > day]
        trueups = [
            row
            for row in self.rows
            if row.kind == "trueup"
            and row.plan_provider == self.provider
            and domain.of_company(row.plan_tenant, self.company)
            and ((on := dated(row)) is None or on > day)  # undated: planned before they recorded it
        ]
        if not later and not trueups and today <= day:
            return domain.After(())
        reading = [row.export_id for _, row in later] + [row.export_id for row in trueups]
        plans = export_store.plans_of(self.organisation_id, reading)
        events: dict[date, list[Balances]] = {}  # the event journals' part, by the date they are dated
        for key, row in later:
            plan = plans.get(row.export_id, "")
            on = dates.get(key) or (stored_journal(plan).date if plan else None)
            export_day[row.export_id] = on
            if on is not None and on > day:
                exact = domain.difference(self.exact([key]), waiting.get(key, {}))
                events.setdefault(on, []).append(domain.difference(change_of(plan), exact))
        correcting: list[Correcting] = []
        for row in trueups:
            plan = plans.get(row.export_id, "")
            on = dated(row) or (stored_journal(plan).date if plan else None)
            if on is not None and on > day:
                corrects = corrections(row.plan_exact)
                correcting.append(Correcting(on, change_of(plan), corrects, rounding_of(row.plan_exact)))
        if today > day:  # this plan's true-up (to ``trued``), if it makes one
            change, corrects_now = domain.difference(trued, self.books.posted), self.corrections(restating)
            if _recorded(change, corrects_now):
                correcting.append(Correcting(today, change, corrects_now, {}))
        starts = {export_day.get(e) for c in correcting for e in c.corrects}
        ends = {*events, *(c.on for c in correcting), *(s for s in starts if s is not None)}
        tails: list[Balances] = []
        tail: Balances = {}
        for at in sorted((d for d in ends if d > day), reverse=True):  # each date's tail is that of the
            tail = domain.summed([tail, *events.get(at, [])])  # days after it; taken just before ``at``
            before = max((d for d in ends if day <= d < at), default=day)
            counted = [c.change_after(before, export_day) for c in correcting if c.on > before]
            tails.append(domain.summed([tail, *counted]))
        if not any(v for t in tails for v in t.values()):
            return domain.After(())
        return domain.After(tails, self.fixed)

    def due(self) -> Balances:
        """What true-ups have still to post, per account (cents): every change, however many true-ups it
        takes."""
        trued, _ = domain.plan(
            self.found,
            self.planned,
            None,
            self.books.posted,
            self.account,
            self.rounding,
            fixed=self.fixed,
            steady=self.steady,
        )
        return domain.difference(trued, self.books.posted)

    def changes(self) -> dict[EventKey, Balances]:
        """The planned events whose values changed since they were planned (or last trued up): the change
        of each, per account (exact)."""
        found = {}
        for key, row in sorted(self.planned.items()):
            if change := domain.difference(self.exact([key]), _exact_of(row.plan_exact)):
                found[key] = change
        return found

    def restatements(self, restating: Mapping[EventKey, Balances]) -> dict[str, str]:
        """The exact values now of the ``restating`` events' exports (their new ``plan_exact``), by id."""
        return {self.planned[key].export_id: _exact_json(self.exact([key])) for key in restating}


class Correcting(NamedTuple):
    """A true-up dated after an event's date, as a reconciliation of an earlier date counts it."""

    on: date  # the day it is dated
    change: Balances  # what it posts
    corrects: dict[str, Balances]  # the exact change of each export it corrects
    rounding: Balances  # cents it posts for today's balances alone, correcting no export

    def change_after(self, by: date, export_day: Mapping[str, date | None]) -> Balances:
        """What the books at the end of ``by`` hold of it beyond what it counts there: all of it less what it
        corrects of exports dated by then (``corrected_by_then``; an export with no known day counts)."""

        def by_then(export_id: str) -> bool:
            start = export_day.get(export_id)
            return start is None or start <= by

        counted = corrected_by_then(self.change, self.corrects, self.rounding, by_then, {})
        return domain.difference(self.change, counted)


class Trued(NamedTuple):
    trued: Balances  # what the planned events hold once ``restating`` is restated
    after: Balances  # and with the event planned now
    restating: dict[EventKey, Balances]  # the changes restated now, per event (exact)
    more: bool  # changes left for the next true-up
    rounding: (
        Balances  # of ``trued``: cents for today's balances alone (``domain.evened``), correcting nothing
    )


def _trueup(
    organisation_id: str, state: State, trued: Trued, moment: datetime
) -> tuple[store.PlanWrite, ExportJob] | None:
    """The true-up export of ``trued``'s change, recording each export it corrects with the exact change it
    corrects (what a reconciliation of an earlier date counts of it)."""
    change = domain.difference(trued.trued, state.books.posted)
    corrections = state.corrections(trued.restating)
    if not _recorded(change, corrections):
        return None
    # one true-up per version of one company's books (each company's start at version 0)
    books = state.books
    record_id = "-".join(p for p in (books.provider, books.company, str(books.version + 1)) if p)
    export_id = queue.export_id_for(organisation_id, "trueup", record_id)
    corrects = {corrected: _exact_dict(delta) for corrected, delta in corrections.items()}
    changed = list(corrects)
    more = f" and {len(changed) - LISTED} more" if len(changed) > LISTED else ""
    named = ", ".join(changed[:LISTED]) + more
    narration = (
        f"True-up of values already posted, after re-costing or a changed account: {named or 'rounding'}"
    )
    on = moment.astimezone(state.zone).date()
    journal = (
        journal_of(change, marker=export_id, on=on, currency=state.currency, narration=narration)
        if change
        else None
    )
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
        plan=journal.model_dump_json() if journal else "",  # "": nothing to post, settled as skipped
        exact=json.dumps(
            {"corrects": corrects, "on": on.isoformat()}
            | ({"rounding": _exact_dict(trued.rounding)} if trued.rounding else {})
        ),
        new_row=row,
    )
    return write, ExportJob(organisation_id=organisation_id, kind="trueup", record_id=record_id)


def _recorded(change: Balances, corrections: Mapping[str, Balances]) -> bool:
    """Whether a true-up is made of ``change`` and ``corrections``: changes that cancel out (re-costing moved
    value from one day's cost of goods sold to another's) post nothing, but a reconciliation of a date between
    them needs to know what moved, so a cent's correction is recorded all the same."""
    return bool(change) or any(to_cents(v) for delta in corrections.values() for v in delta.values())


def dated(row: ExportRow) -> date | None:
    """The day a planned export's journal is dated; a true-up that posts nothing (its changes cancel out), or
    one read without its plan (``plan_index``), is dated the day it was planned. None: nothing planned, or a
    true-up planned before true-ups recorded their day."""
    if row.plan:
        return stored_journal(row.plan).date
    on = json.loads(row.plan_exact or "{}").get("on") if row.kind == "trueup" else None
    return date.fromisoformat(on) if on else None


def rounding_of(plan_exact: str | None) -> Balances:
    """What of a true-up's journal is cents for today's balances alone (``domain.evened``), correcting no
    export: a reconciliation of an earlier date leaves them in the books of the day the true-up is dated."""
    rounding = json.loads(plan_exact or "{}").get("rounding", {})
    return {a: Decimal(v) for a, v in rounding.items()} if isinstance(rounding, dict) else {}


def corrected_by_then(
    change: Balances,
    corrects: Mapping[str, Balances],
    rounding: Balances,
    by_then: Callable[[str], bool],
    partly: Balances,
) -> Balances:
    """What of a true-up's ``change`` corrects exports dated by then: all of it (less its ``rounding``) when
    it corrects only such exports, none when it corrects none of them, else their exact changes. Those are
    added to ``partly`` (the exact corrections of the other true-ups correcting only part of that date), and
    the true-up explains what they move that running total's cents by: the true-ups of a correction paged
    over several transactions round it once, never a half cent each."""
    mine = [export_id for export_id in corrects if by_then(export_id)]
    if len(mine) == len(corrects):
        return domain.difference(change, rounding) if mine else {}
    before = {a: to_cents(v) for a, v in partly.items()}
    partly.update(domain.summed([partly, *(corrects[e] for e in mine)]))
    return domain.difference({a: to_cents(v) for a, v in partly.items()}, before)


def corrections(plan_exact: str | None) -> dict[str, Balances]:
    """What a true-up corrects: the exact change per account of each export it names (none known for a
    true-up planned before they were recorded, which listed the exports only)."""
    corrects = json.loads(plan_exact or "{}").get("corrects", {})
    if isinstance(corrects, list):
        return {export_id: {} for export_id in corrects}
    return {e: {a: Decimal(v) for a, v in change.items()} for e, change in corrects.items()}


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
    for _ in range(MAX_TRIES):
        state = State(organisation_id, provider, accounts)
        on, narration = describe(job, record, state.record_day)
        state.planned.pop(event, None)
        trued = state.trued(event, on, moment.astimezone(state.zone).date())
        writes, jobs = [], []
        if found := _trueup(organisation_id, state, trued, moment):
            writes.append(found[0])
            jobs.append(found[1])
        try:
            journal: Journal | None = journal_of(
                domain.difference(trued.after, trued.trued),
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
            store.commit_plans(
                organisation_id,
                state.books,
                trued.after,
                writes,
                state.restatements(trued.restating),
                taken_back={} if found else None,  # a true-up made now records the take-backs
                zone=state.business_zone,
            )
        except store.BooksMoved:
            continue
        for queued in jobs:
            queue.deliver(queued)
        if trued.more:  # what one transaction could not restate: the next true-ups now, else the hourly pass
            try:
                true_up(organisation_id, provider, accounts, moment)
            except Exception:
                logger.exception("next true-ups left to the hourly pass", extra={"export_id": export_id})
        return stored_journal(writes[-1].plan)
    raise Busy(BUSY)


def record_of(organisation_id: str, job: ExportJob) -> InventoryRecord | None:
    """The stored record an event's journal is about (None for a day's cost of goods sold)."""
    if job.kind == "cogs":
        return None
    record = inventory_store.load_record(organisation_id, job.kind, job.record_id)
    if record is None:
        raise NothingToPost(f"the {job.kind} {job.record_id} is not recorded: nothing to post")
    return record


def _label(job: ExportJob, product_id: str) -> str:
    """A product as an accountant reads it in a narration: its SKU (or name), not Partsemble's id."""
    found = catalog_store.get_products(job.organisation_id, [product_id])
    return next((p.sku or p.name for p in found if p.sku or p.name), product_id)


def describe(
    job: ExportJob, record: InventoryRecord | None, record_day: Callable[[datetime], date]
) -> tuple[date, str]:
    """The date and narration of an event's journal (``record``: ``record_of`` the event; ``record_day``:
    ``domain.record_day`` of the organisation's time zone)."""
    if isinstance(record, Receipt):
        supplier = f" from {record.supplier_id}" if record.supplier_id else ""
        return record_day(record.received_at), f"Receipt {record.receipt_id}{supplier}"
    if isinstance(record, Rejection):
        return record_day(record.rejected_at), f"QA rejection on receipt {record.receipt_id}"
    if isinstance(record, BuildRecord):
        build = record.build
        return (
            record_day(build.built_at),
            f"Build {build.build_id}: {build.quantity} x {_label(job, build.product_id)}",
        )
    day = domain.cogs_day(job.record_id)
    return day, f"Cost of goods sold for the sales of {day.isoformat()}"


def change_of(plan: str) -> Balances:
    """What a stored plan moves, per account (debits positive); nothing for an empty plan."""
    if not plan:
        return {}
    return {
        line.account_id: line.amount if line.side == "debit" else -line.amount
        for line in Journal.model_validate_json(plan).lines
    }


def unplan(
    organisation_id: str, row: ExportRow, connected: str, *, at: str, post_on: str | None
) -> ExportRow | None:
    """Takes a failed export's plan out of its company's books (``connected``'s, the company connected now,
    for a plan made before plans named their company) and makes it pending again (dated ``post_on``), in the
    outbox until its message is queued, in one transaction: its retry plans it on the values of then. The
    true-ups that corrected it stay posted: the next true-up takes their corrections back, and records that
    it corrects this export by that much (what a reconciliation of an earlier date counts of it). The export
    as written, or None when another retry took it meanwhile (nothing written)."""
    change = change_of(str(row.plan))
    provider, company = str(row.plan_provider), row.plan_tenant or connected
    corrected = domain.summed(
        corrections(other.plan_exact).get(row.export_id, {})
        for other in export_store.plan_index(organisation_id)
        if other.kind == "trueup"
        and other.plan_provider == provider
        and domain.of_company(other.plan_tenant, company)
    )
    requeue = export_store.requeue_write(
        organisation_id, row.export_id, from_statuses=("failed",), at=at, post_on=post_on, forget=True
    )
    for _ in range(MAX_TRIES):
        books = store.get_books(organisation_id, provider, company)
        posted = {a: books.posted.get(a, ZERO) - change.get(a, ZERO) for a in books.posted.keys() | change}
        taken_back = {a: -v for a, v in corrected.items() if v}
        try:
            dropped = store.drop_plan(organisation_id, books, posted, row.export_id, taken_back, requeue)
        except store.BooksMoved:
            continue
        return export_store.requeued(row, at=at, post_on=post_on) if dropped else None
    raise Busy(BUSY)


# ---- scheduled: business days closed, values re-checked ------------------------------------------------
def due_cogs_days(organisation_id: str, company: str, now: datetime) -> list[str]:
    """The cost of goods sold of business days with sales of ``company``'s documents (or of documents whose
    company was not recorded) that have ended (plus the grace period) and have no export yet: their record
    ids. Another company's sales wait for it to be connected."""
    costed = margins.costed_ledger(organisation_id)
    ledger, documents, zone = costed.ledger, costed.sales_documents, costed.zone
    sale_kinds = (EntryKind.SALE_CONSUME, EntryKind.SALE_RETURN, EntryKind.RETURN_WASTE)
    days = {
        (e.at.astimezone(zone).date(), documents.get(e.document_id, ""))
        for e in ledger.entries()
        if e.cost and (e.kind in sale_kinds or e.document_id in documents)
    }
    known = {row.record_id for row in export_store.list_exports(organisation_id) if row.kind == "cogs"}
    return sorted(
        record_id
        for day, of in days
        if domain.of_company(of, company)
        and (record_id := domain.cogs_id(day, of)) not in known
        and datetime.combine(day + timedelta(days=1), time(), zone) + COGS_GRACE <= now
    )


def true_up(organisation_id: str, provider: str, accounts: PostingAccounts, moment: datetime) -> int:
    """Plans (and queues) the true-ups due when values already planned have changed, one per
    ``MAX_RESTATED`` changed exports; how many it queued."""
    queued, more = 0, True
    while more:
        one, more = _true_up_page(organisation_id, provider, accounts, moment)
        queued += one
    return queued


def _true_up_page(
    organisation_id: str, provider: str, accounts: PostingAccounts, moment: datetime
) -> tuple[bool, bool]:
    """One true-up, restating at most ``MAX_RESTATED`` exports: (whether it queued one, whether more
    changed exports wait for the next). Changes worth less than a cent in every account are restated
    without a journal."""
    for _ in range(MAX_TRIES):
        state = State(organisation_id, provider, accounts)
        trued = state.trued()
        found = _trueup(organisation_id, state, trued, moment)
        if found is None and not trued.restating:
            return False, False
        writes, restated = [found[0]] if found else [], state.restatements(trued.restating)
        try:
            store.commit_plans(
                organisation_id,
                state.books,
                trued.trued,
                writes,
                restated,
                taken_back={} if found else None,
                zone=state.business_zone,
            )
        except store.BooksMoved:
            continue
        if found:
            queue.deliver(found[1])
        return found is not None, trued.more
    raise Busy(BUSY)


def close_days_of(connection: connection_store.Connection, now: datetime, *, new_days: bool = True) -> int:
    """The scheduled close of one connection's books (the hourly pull message of each connection runs it):
    the COGS export of each business day that has ended (unless ``new_days`` is False: the sales pull did not
    read everything), and a true-up when posted values changed. A failure is logged, never raised: the next
    hour tries again. Returns how many exports it queued."""
    try:
        return _close_days(connection.organisation_id, connection.provider, connection, now, new_days)
    except Exception:
        logger.exception(
            "closing business days failed", extra={"organisation_id": connection.organisation_id}
        )
        return 0


def _close_days(
    organisation_id: str,
    name: str,
    connection: connection_store.Connection,
    now: datetime,
    new_days: bool = True,
) -> int:
    tracking = sales_store.get_tracking(organisation_id, name)
    chosen = settings_store.get_export_settings(organisation_id, name)
    if connection.status != "connected" or not chosen or not chosen.for_company(connection.tenant_id):
        return 0
    if name == "qbo" and chosen.quantity_mode:
        return 0  # QBO books its own cost of goods sold in inventory mode
    queued = 0
    if tracking and tracking.enabled and new_days:
        for record_id in due_cogs_days(organisation_id, connection.tenant_id or "", now):
            export_id = queue.export_id_for(organisation_id, "cogs", record_id)
            day = domain.cogs_day(record_id).isoformat()
            row = export_store.new_export(
                organisation_id, export_id, kind="cogs", record_id=record_id, at=day, now=now.isoformat()
            )
            if export_store.put_new(row):
                queue.deliver(ExportJob(organisation_id=organisation_id, kind="cogs", record_id=record_id))
                queued += 1
    currency = export_store.home_currency(organisation_id, name, connection.tenant_id or "")
    if currency is None:  # nothing exported yet (the first export reads it): nothing to true up either
        return queued
    accounts = PostingAccounts(
        home_currency=currency,
        company=connection.tenant_id or "",
        **{role: chosen.account(role) for role in ROLES},
    )
    return queued + true_up(organisation_id, name, accounts, now)
