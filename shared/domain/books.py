"""The general ledger's view of the stock ledger: what each export moves between accounts, and the cents to
post so that every account's posted balance is its subledger value rounded to the cent. A lot sits in the
account its making debited (so a consumed sub-assembly leaves finished goods); the events and the running
rounding are the README's "The accounting model"."""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, NamedTuple

from shared.domain.ledger import BuildRun, Entry, EntryKind, Ledger, ReceiptIn
from shared.money import CENT, ZERO, to_cents, total

EventKind = Literal["receipt", "rejection", "build", "cogs"]
# (kind, record id); a COGS event's id is its business day (ISO date) and, after "@", the company whose
# sales documents it costs (``cogs_id``): each company's cost of goods sold goes to its own books
EventKey = tuple[EventKind, str]
SalesDocuments = Mapping[str, str]  # the documents that are sales -> the company they were read from ("")
Balances = dict[str, Decimal]
RoleOf = Callable[[str], str]  # role -> account id (raises when the role has no account)

_EVENT_OF: dict[EntryKind, EventKind] = {
    EntryKind.RECEIPT_IN: "receipt",
    EntryKind.WASTE: "rejection",
    EntryKind.BUILD_CONSUME: "build",
    EntryKind.BUILD_PRODUCE: "build",
    EntryKind.SALE_CONSUME: "cogs",
    EntryKind.SALE_RETURN: "cogs",
    EntryKind.RETURN_WASTE: "cogs",
}


def cogs_id(day: date, company: str) -> str:
    """The record id of a business day's cost of goods sold of one company's sales ("": not known)."""
    return f"{day.isoformat()}@{company}" if company else day.isoformat()


def cogs_day(record_id: str) -> date:
    """The business day of a cost of goods sold's record id."""
    return date.fromisoformat(record_id.partition("@")[0])


def cogs_company(record_id: str) -> str:
    """The company whose sales a cost of goods sold's record id costs ("": not known)."""
    return record_id.partition("@")[2]


def record_day(zone: tzinfo | None) -> Callable[[datetime], date]:
    """The day a receipt, QA rejection or build is in the books: where the organisation is (its business time
    zone, as its sales' days are), so a month's cut-off is the same for what it received, built and sold; as
    the time was given (with its own offset) when it has no time zone set."""
    if zone is None:
        return lambda at: at.date()
    return lambda at: at.astimezone(zone).date()


def of_company(planned_for: str | None, company: str) -> bool:
    """Whether what was planned (or read) for ``planned_for`` belongs to ``company``'s books: what names no
    company (planned or read before companies were recorded) counts as the company's connected now."""
    return (planned_for or company) == company


def sales_of_another(record_id: str, company: str) -> bool:
    """Whether a cost of goods sold's record id costs the sales of a company other than ``company``."""
    return not of_company(cogs_company(record_id), company)


NO_SALES: SalesDocuments = MappingProxyType({})


def lot_roles(ledger: Ledger, sales_documents: SalesDocuments = NO_SALES) -> dict[str, str]:
    """The role of the account each lot was debited to when it was made: received lots the receiving debit
    account; built lots finished goods, or the sub-assembly (WIP) account when other builds consume that
    product (an organisation without one keeps them in finished goods). A lot restocked by a credit that
    matched no sale (received from one of the ``sales_documents``) copies the unit cost of the product's
    latest lot before it, and sits in that lot's account: a finished good credited back is finished goods
    again, not raw materials."""
    movements = ledger.movements()
    components = {c.product_id for m in movements if isinstance(m, BuildRun) for c in m.components}
    roles: dict[str, str] = {}
    latest: dict[str, str] = {}  # product -> the role of its latest lot so far, in replay order
    for m in movements:
        if isinstance(m, ReceiptIn):
            restocked = m.document_id in sales_documents
            role = latest.get(m.product_id, "receiving_debit") if restocked else "receiving_debit"
        elif isinstance(m, BuildRun):
            role = "subassembly" if m.product_id in components else "build_debit"
        else:
            continue
        roles[m.lot_id] = latest[m.product_id] = role
    return roles


def event_of(entry: Entry, day_of: Callable[[datetime], date], sales_documents: SalesDocuments) -> EventKey:
    """The export an entry of the ledger belongs to: its record's, or the COGS of its business day and of
    the company its sales document came from."""
    restocked = entry.kind is EntryKind.RECEIPT_IN and entry.document_id in sales_documents
    kind = "cogs" if restocked else _EVENT_OF[entry.kind]
    if kind != "cogs":
        return (kind, entry.document_id)
    return (kind, cogs_id(day_of(entry.at), sales_documents.get(entry.document_id, "")))


def effects(
    ledger: Ledger,
    day_of: Callable[[datetime], date],
    sales_documents: SalesDocuments = NO_SALES,
    entries: Iterable[Entry] | None = None,
) -> dict[EventKey, Balances]:
    """Each event's exact effect per account role (debits positive), from the ledger as it costs things now;
    ``day_of`` gives the business day of a sale's time (its COGS event, one per company). A lot received
    from one of the ``sales_documents`` is a credit that matched no sale, restocked: it comes back out of
    COGS. ``entries``: the ledger's, when the caller has them already (building them costs)."""
    lots = lot_roles(ledger, sales_documents)
    found: dict[EventKey, Balances] = {}

    def move(event: EventKey, role: str, amount: Decimal) -> None:
        if amount:
            into = found.setdefault(event, {})
            into[role] = into.get(role, ZERO) + amount

    for entry in ledger.entries() if entries is None else entries:
        event = event_of(entry, day_of, sales_documents)
        restocked = entry.kind is EntryKind.RECEIPT_IN and event[0] == "cogs"
        if restocked:  # into the account its lot sits in
            move(event, lots[entry.draws[0].lot_id], entry.cost)
            move(event, "cogs", -entry.cost)
        elif entry.kind is EntryKind.RECEIPT_IN:
            move(event, "receiving_debit", entry.cost)
            move(event, "receiving_credit", -entry.cost)
        elif entry.kind is EntryKind.WASTE:
            move(event, "waste", entry.cost)
            move(event, "receiving_credit", -entry.cost)
        elif entry.kind is EntryKind.BUILD_PRODUCE:  # into the made lot's account
            move(event, lots[entry.draws[0].lot_id], entry.cost)
        else:  # lots leave their own account (a return puts them back, or into waste)
            sign = 1 if entry.kind in (EntryKind.SALE_RETURN, EntryKind.RETURN_WASTE) else -1
            for draw in entry.draws:
                role = "waste" if entry.kind is EntryKind.RETURN_WASTE else lots[draw.lot_id]
                move(event, role, sign * draw.cost)
            if entry.kind is not EntryKind.BUILD_CONSUME:
                move(event, "cogs", -sign * entry.cost)
    return found


def subledger(found: Mapping[EventKey, Balances], events: Iterable[EventKey], account: RoleOf) -> Balances:
    """The exact balance per account id of the given events, their roles mapped to accounts by
    ``account`` (which refuses a role that has none)."""
    balances: Balances = {}
    for event in events:
        for role, amount in found.get(event, {}).items():
            account_id = account(role)
            balances[account_id] = balances.get(account_id, ZERO) + amount
    return balances


def rounded(
    exact: Mapping[str, Decimal],
    posted: Mapping[str, Decimal],
    touched: Iterable[str],
    rounding_account: str | None = None,
    fixed: Collection[str] = (),
    steady: Collection[str] = (),
) -> Balances:
    """The cents each account should hold for ``exact`` (summing to zero), moving as few accounts as can be
    away from ``posted``: touched accounts go to their value rounded half up, untouched ones keep what they
    hold while it is within a cent. With a ``rounding_account``, that account takes whatever the rounded
    values leave, so every other account holds exactly its rounded value; without one, while the sum is off,
    the account nearest its half cent on the side of the error (touched ones first) steps a cent toward the
    other side. An account in ``steady`` (the receiving credit: a receipt and its rejection credit exactly
    the supplier total) or ``fixed`` (QBO's Accounts Payable: each of its lines names a vendor) never takes
    that cent; one in ``fixed`` also keeps what it holds when untouched: only the journals of the records
    that name its vendor move it."""
    changed, stepless = set(touched), {*fixed, *steady}
    target: Balances = {}
    for account_id in sorted((set(exact) | set(posted)) - {rounding_account}):
        value, held = exact.get(account_id, ZERO), posted.get(account_id, ZERO)
        kept = account_id in fixed or (abs(held - value) < CENT and rounding_account is None)
        target[account_id] = held if account_id not in changed and kept else to_cents(value)
    error = total(target.values())
    if rounding_account is not None:
        target[rounding_account] = -error
        return {a: cents for a, cents in target.items() if cents or a in posted}
    step = CENT if error > 0 else -CENT
    while error:
        candidates = [
            a
            for a, cents in target.items()
            if a not in stepless
            and (cents - exact.get(a, ZERO)) * step > 0
            and abs(cents - step - exact.get(a, ZERO)) < CENT
        ]
        if not candidates:  # cannot happen for balanced exact values; refuse rather than post wrong cents
            raise ValueError(f"cannot round balances that do not add up to zero: {dict(exact)}")
        chosen = min(
            candidates,
            key=lambda a: (a not in changed, -abs(target[a] - exact.get(a, ZERO)), a),
        )
        target[chosen] -= step
        error -= step
    return {a: cents for a, cents in target.items() if cents or a in posted}


def summed(changes: Iterable[Mapping[str, Decimal]]) -> Balances:
    """The sum of the ``changes`` per account."""
    found: Balances = {}
    for change in changes:
        for account_id, amount in change.items():
            found[account_id] = found.get(account_id, ZERO) + amount
    return found


def difference(after: Mapping[str, Decimal], before: Mapping[str, Decimal]) -> Balances:
    """What to post to go from ``before`` to ``after`` (debits positive), accounts with no change left out."""
    return {
        a: after.get(a, ZERO) - before.get(a, ZERO)
        for a in sorted(set(after) | set(before))
        if after.get(a, ZERO) != before.get(a, ZERO)
    }


def plan(
    found: Mapping[EventKey, Balances],
    planned: Iterable[EventKey],
    event: EventKey | None,
    posted: Mapping[str, Decimal],
    account: RoleOf,
    rounding_account: str | None = None,
    waiting: Mapping[str, Decimal] | None = None,
    dated_after: Callable[[Balances], After] | None = None,
    fixed: Collection[str] = (),
    steady: Collection[str] = (),
) -> tuple[Balances, Balances]:
    """(the balances the planned events should hold now, those once ``event`` is added too). The first
    differs from ``posted`` when values already posted changed (a true-up is due); the second less the
    first is the event's own journal. ``waiting``: changes of planned events (exact, per account) left for
    a later true-up, held back from both. ``dated_after``: what is dated after the event, given the first
    balances (``evened``, or ``evened_to`` with a rounding account). ``fixed``: the accounts no true-up may
    move (QBO's Accounts Payable: a true-up's lines name no vendor), which never take a rounding cent;
    ``steady``: those that never take one either (the receiving credit's: ``rounded``)."""
    events = list(planned)
    before = difference(subledger(found, events, account), waiting or {})
    drift = {
        a
        for a in before.keys() | posted.keys()
        if a != rounding_account
        and a not in fixed
        and _drifted(posted.get(a, ZERO), before.get(a, ZERO), rounding_account)
    }
    trued = rounded(before, posted, drift, rounding_account, fixed, steady) if drift else dict(posted)
    if event is None:
        return trued, trued
    touched = subledger(found, [event], account)
    after = difference(subledger(found, [*events, event], account), waiting or {})
    later = dated_after(trued) if dated_after is not None else None
    if later is not None and later.tails and rounding_account is not None:
        return evened_to(trued, after, touched, later.tails, later.fixed, rounding_account)
    if later is not None and later.tails:
        return evened(trued, after, touched, later.tails, later.fixed)
    return trued, rounded(after, trued, touched, rounding_account, fixed, steady)


class After(NamedTuple):
    """What is dated after an event planned out of date order (``evened``): ``tails``, for each date from
    the event's on at which the books change, what the journals dated after it hold beyond the exact values
    of the events they stand for, per account; ``fixed``, the accounts no true-up may move."""

    tails: Sequence[Mapping[str, Decimal]]
    fixed: Collection[str] = ()


STEPS = tuple(k * CENT for k in (0, -1, 1, -2, 2))  # an account's cents tried about the running rounding's


def evened(
    trued: Mapping[str, Decimal],
    exact: Mapping[str, Decimal],
    event: Mapping[str, Decimal],
    tails: Sequence[Mapping[str, Decimal]],
    fixed: Collection[str] = (),
) -> tuple[Balances, Balances]:
    """``plan``'s answer, with no rounding account, for an event dated before journals already planned. The
    running rounding chooses a journal's cents for today's balances alone, so records entered out of date
    order pile their odd cents up on the days before the others (ten receipts put 15.10 in the books of a
    date whose stock is worth 15.06). Here each account the event moves takes the cents that keep the books
    cut at the event's date and at every later date nearest their exact values (the largest gap of any of
    those dates smallest; the running rounding's cents when it ties), balanced by the account that loses
    least by a cent's step, and a true-up dated today (what the first balances differ by) brings an account
    that is then a cent or more from its exact value today back to its rounded value. An account in
    ``fixed`` takes no true-up (QBO's Accounts Payable: its lines need a vendor): it keeps within a cent
    today. When no cents do all that, the running rounding's journal stands. ``exact``: the planned events'
    exact balances with the event; ``event``: the event's own exact effect; ``tails``: for each date from
    the event's on at which the books change, what the journals dated after it hold beyond the exact values
    of the events they stand for, per account (the cut at that date holds the journals' residue less that)."""
    after = rounded(exact, trued, event, fixed=fixed)
    residue = {a: trued.get(a, ZERO) - exact.get(a, ZERO) + event.get(a, ZERO) for a in exact.keys() | trued}

    def today(account_id: str, cents: Decimal) -> Decimal:
        """How far from its exact value today an account the event's journal moves by ``cents`` is."""
        return residue.get(account_id, ZERO) + cents - event.get(account_id, ZERO)

    def gap(account_id: str, cents: Decimal) -> Decimal:
        """The largest distance from its exact value, at the event's date or after, of such an account."""
        at = today(account_id, cents)
        return max([abs(at)] + [abs(at - tail.get(account_id, ZERO)) for tail in tails])

    def allowed(account_id: str, cents: Decimal) -> bool:
        return account_id not in fixed or abs(today(account_id, cents)) < CENT

    journal = difference(after, trued)
    moved = sorted(event)
    for account_id in moved:
        running = journal.get(account_id, ZERO)
        tried = [(gap(account_id, c), abs(s), c) for s in STEPS if allowed(account_id, c := running + s)]
        journal[account_id] = min(tried)[2]
    if not _balanced(journal, moved, allowed, gap):
        return dict(trued), after
    held = {a: trued.get(a, ZERO) + journal.get(a, ZERO) for a in trued.keys() | journal.keys()}
    trueup = {
        a: to_cents(exact.get(a, ZERO)) - v for a, v in held.items() if abs(v - exact.get(a, ZERO)) >= CENT
    }
    free = [a for a in moved if a not in fixed]

    def kept(account_id: str, cents: Decimal) -> bool:  # within a cent of its exact value after the true-up
        return abs(held.get(account_id, ZERO) + cents - exact.get(account_id, ZERO)) < CENT

    if not _balanced(trueup, free, kept, lambda a, c: abs(held.get(a, ZERO) + c - exact.get(a, ZERO))):
        return dict(trued), after
    before = {a: trued.get(a, ZERO) + trueup.get(a, ZERO) for a in trued.keys() | trueup.keys()}
    moved_to = {a: held.get(a, ZERO) + trueup.get(a, ZERO) for a in held.keys() | trueup.keys()}
    keep = sorted(a for a in moved_to if a in trued or moved_to[a] or before.get(a))
    return {a: before.get(a, ZERO) for a in keep}, {a: moved_to[a] for a in keep}


def evened_to(
    trued: Mapping[str, Decimal],
    exact: Mapping[str, Decimal],
    event: Mapping[str, Decimal],
    tails: Sequence[Mapping[str, Decimal]],
    fixed: Collection[str],
    rounding_account: str,
) -> tuple[Balances, Balances]:
    """``evened`` with a rounding account: the event's journal gives each account it moves the cents that
    keep the books cut at its date and every later date nearest their exact values (the running rounding's
    when it ties), the rounding account taking what they leave over, and a true-up dated today brings each
    account back to today's rounded value, the rounding account again taking the rest: today's balances are
    the running rounding's, every other account at its rounded value. An account in ``fixed`` (no true-up may
    move it) keeps the running rounding's cents."""
    after = rounded(exact, trued, event, rounding_account, fixed)
    residue = {a: trued.get(a, ZERO) - exact.get(a, ZERO) + event.get(a, ZERO) for a in exact.keys() | trued}

    def gap(account_id: str, cents: Decimal) -> Decimal:
        """The largest distance from its exact value, at the event's date or after, of an account the
        event's journal moves by ``cents``."""
        at = residue.get(account_id, ZERO) + cents - event.get(account_id, ZERO)
        return max([abs(at)] + [abs(at - tail.get(account_id, ZERO)) for tail in tails])

    journal = difference(after, trued)
    for account_id in sorted(a for a in event if a != rounding_account and a not in fixed):
        running = journal.get(account_id, ZERO)
        journal[account_id] = min((gap(account_id, running + s), abs(s), running + s) for s in STEPS)[2]
    journal[rounding_account] = ZERO
    journal[rounding_account] = -total(journal.values())
    held = {a: trued.get(a, ZERO) + journal.get(a, ZERO) for a in trued.keys() | journal.keys()}
    trueup = difference(after, held)
    before = {a: trued.get(a, ZERO) + trueup.get(a, ZERO) for a in trued.keys() | trueup.keys()}
    keep = sorted(a for a in after.keys() | before.keys() if a in trued or after.get(a) or before.get(a))
    return {a: before.get(a, ZERO) for a in keep}, {a: after.get(a, ZERO) for a in keep}


def _balanced(
    cents: Balances,
    accounts: Sequence[str],
    allowed: Callable[[str, Decimal], bool],
    cost: Callable[[str, Decimal], Decimal],
) -> bool:
    """Steps ``cents`` a cent at a time until they sum to zero, each step on the account of ``accounts``
    (where ``allowed``) it costs least; False when none may take the next one."""
    error = total(cents.values())
    step = CENT if error > 0 else -CENT
    while error:
        can = [a for a in accounts if allowed(a, cents.get(a, ZERO) - step)]
        if not can:
            return False
        chosen = min(can, key=lambda a: (cost(a, cents.get(a, ZERO) - step), a))
        cents[chosen] = cents.get(chosen, ZERO) - step
        error -= step
    return True


def _drifted(held: Decimal, exact: Decimal, rounding_account: str | None) -> bool:
    """Whether an account's posted cents no longer stand for its exact value: with a rounding account, every
    other account holds exactly its rounded value; without one, an account may hold the cent ``rounded``
    stepped it to balance a journal, so only a cent or more away is drift (re-rounding one that is not would
    post a true-up that only moves that cent to another account)."""
    if rounding_account is not None:
        return held != to_cents(exact)
    return abs(held - exact) >= CENT


def financial_year_start(on: date, end_month: int, end_day: int) -> date:
    """The first day of the financial year holding ``on``, for years ending on ``end_day`` of ``end_month``
    (a day past the month's end, as 31 for June or 29 for February in other years, is its last day)."""

    def year_end(year: int) -> date:
        return date(year, end_month, min(max(end_day, 1), monthrange(year, end_month)[1]))

    end = year_end(on.year)
    last_end = end if end < on else year_end(on.year - 1)
    return last_end + timedelta(days=1)
