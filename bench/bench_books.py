"""The books rule over random histories, in-process against each sandbox in each mode (QBO journals, QBO
inventory mode, Xero): receipts at odd unit costs with QA rejections, two-level builds, sales with edits,
back-dated receipts (dated before something already recorded; counted as such), and always some rare events
(``History.rare``): a live invoice voided or deleted in the provider, a credit note for a finished good
already sold, a late sale (dated 2 or 5 days back), a build back-dated 1 or 2 days, and a one-off provider
fault (500, lost response, 429 or timeout) on the next journal write. Exports delivered, sales pulled and
business days closed as the schedules would, then a reconciliation of every month-end, at the first pass
after it and again at the end (a past date by then: true-ups due or dated later explain what re-costing
changed), and of the end. Printed per mode: what the history did, exports by status, provider calls per
event, and per account the largest gap between what Partsemble posted and its stock ledger (target 0.00
once everything is exported) and anything the reconciliation left unexplained (target 0.00).

Time is virtual (the sandboxes' clocks, the rate budget's and the export worker's); the work is real.
``BOOKS_EVENTS`` sets the number of events per mode (default 300): every export re-reads and replays the
organisation's whole history, so the run grows with the square of the events on moto.
Run: python -m bench bench_books
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

from bench.bench_exports import VirtualTime, deliver, follow
from bench.bench_token_refresh import connect
from infra.local.stack import LocalStack
from infra.local.testbed import Sandboxes, moto_stack, sandboxes_installed
from infra.sandboxes.qbo_demo import DEMO_REALM_ID, HARBOR
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from shared.bodies import (
    BuildRequest,
    ComponentRequest,
    ExportAccounts,
    ExportSettingsRequest,
    ImportRequest,
    ReceiptLineRequest,
    ReceiptRequest,
    TrackingRequest,
)
from shared.errors import RateLimited, ServiceError
from shared.money import ZERO
from shared.services import (
    books,
    catalog,
    export_settings,
    inventory,
    reconciliation,
    sales,
    sessions,
)
from shared.store import catalog as catalog_store
from shared.store import exports as export_store

EVENTS = int(os.environ.get("BOOKS_EVENTS", "300"))
START = datetime(2026, 11, 5, 9, tzinfo=UTC)  # after the demo companies' own sales
DAYS = 45  # past a month-end, within the financial year (income and expenses are reported year to date)
QBO_ITEMS = {"blank": "1", "bolt": "2", "bracket": "5", "shelf": "7"}
XERO_CODES = {"blank": "WIDGET-10", "bolt": "BOLT-M8", "bracket": "BRACKET-S", "shelf": "PANEL-A"}
QBO_ACCOUNTS = {
    "build_debit": "10",
    "receiving_debit": "1",
    "receiving_credit": "5",
    "waste": "7",
    "cogs": "2",
}
XERO_ACCOUNTS = {
    "build_debit": "632",
    "receiving_debit": "630",
    "receiving_credit": "820",
    "waste": "480",
    "cogs": "310",
}
COSTS = ["0.125", "0.333", "1.005", "2.4999", "0.0049", "7.77", "0", "10.015"]


def prepare(sandboxes: Sandboxes, provider: str, mode: str) -> tuple[str, dict[str, str]]:
    tenants = [AU_TENANT_ID] if provider == "xero" else None
    organisation = connect(sandboxes, provider, tenants).organisation_id
    now = datetime.now(UTC)
    if provider == "qbo":  # a rounding account, as a bookkeeper would add one
        fields = {"Name": "Rounding", "AccountType": "Expense", "AcctNum": "6990"}
        rounding = str(sandboxes.qbo.create_record(DEMO_REALM_ID, "Account", fields)["Id"])
    else:
        fields = {"Code": "860", "Name": "Rounding", "Type": "OVERHEADS", "Status": "ACTIVE"}
        sandboxes.xero.add_record(AU_TENANT_ID, "Accounts", fields)
    chart = {a.code: a.account_id for a in catalog.sync_accounts(organisation, provider, now).accounts}
    catalog.sync_items(organisation, provider, now)
    if provider == "qbo":
        ids, accounts = list(QBO_ITEMS.values()), {**QBO_ACCOUNTS, "rounding": rounding}
        if mode == "inventory_adjustments":
            accounts["adjustment"] = "3"
    else:
        by_code = {i.sku: i.item_id for i in catalog_store.provider_items(organisation, provider)}
        ids = [by_code[c] for c in XERO_CODES.values()]
        accounts = {role: chart[code] for role, code in {**XERO_ACCOUNTS, "rounding": "860"}.items()}
    created = catalog.import_products(organisation, ImportRequest(provider=provider, item_ids=ids)).created
    by_sku = {p.sku: p.product_id for p in created}
    by_item = {p.provider_links[provider]: p.product_id for p in created}
    parts = (
        {part: by_item[item] for part, item in QBO_ITEMS.items()}
        if provider == "qbo"
        else {part: by_sku[code] for part, code in XERO_CODES.items()}
    )
    settings = ExportSettingsRequest(mode=mode, accounts=ExportAccounts(**accounts))
    export_settings.put_settings(organisation, provider, settings, now)
    tracking = TrackingRequest(enabled=True, start_date=START.date(), time_zone="UTC")
    sales.set_tracking(organisation, provider, tracking, now)
    return organisation, parts


class Document(NamedTuple):
    """A kind of sales document as each sandbox names it."""

    qbo_entity: str
    xero_collection: str
    xero_type: str
    xero_number: str  # the field of its number
    xero_id: str  # the field of its id


INVOICE = Document("Invoice", "Invoices", "ACCREC", "InvoiceNumber", "InvoiceID")
CREDIT = Document("CreditMemo", "CreditNotes", "ACCRECCREDIT", "CreditNoteNumber", "CreditNoteID")
# where the export worker writes a journal (Xero's searches GET the same path)
JOURNAL_WRITES = {
    "qbo": ("POST", f"/v3/company/{DEMO_REALM_ID}/journalentry"),
    "xero": ("PUT", "/api.xro/2.0/ManualJournals"),
}
FAULTS = ("500", "lost_response", "429", "timeout")


def qbo_lines(part: str, qty: int) -> list[dict[str, Any]]:
    line = {"ItemRef": {"value": QBO_ITEMS[part]}, "Qty": qty, "UnitPrice": "25.00"}
    return [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": line}]


def xero_lines(part: str, qty: int) -> list[dict[str, Any]]:
    return [{"ItemCode": XERO_CODES[part], "Description": part, "Quantity": str(qty), "UnitAmount": "25"}]


def document(
    sandboxes: Sandboxes, provider: str, kind: Document, number: str, day: date, part: str, qty: int
) -> str:
    """An approved sales document (an invoice or a credit note) to the demo customer, as a person enters it
    in the provider; its id there."""
    if provider == "qbo":
        fields = {
            "DocNumber": number,
            "TxnDate": day.isoformat(),
            "CustomerRef": {"value": HARBOR},
            "Line": qbo_lines(part, qty),
        }
        return str(sandboxes.qbo.create_record(DEMO_REALM_ID, kind.qbo_entity, fields)["Id"])
    record = sandboxes.xero.add_record(
        AU_TENANT_ID,
        kind.xero_collection,
        {
            kind.xero_number: number,
            "Type": kind.xero_type,
            "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")},
            "Date": day.isoformat(),
            "Status": "AUTHORISED",
            "LineItems": xero_lines(part, qty),
        },
    )
    return str(record[kind.xero_id])


def invoice(sandboxes: Sandboxes, provider: str, number: str, day: date, part: str, qty: int) -> str:
    return document(sandboxes, provider, INVOICE, number, day, part, qty)


class History:
    def __init__(
        self, sandboxes: Sandboxes, provider: str, organisation: str, parts: dict[str, str], seed: int = 7
    ) -> None:
        self.sandboxes, self.provider, self.organisation, self.parts = (
            sandboxes,
            provider,
            organisation,
            parts,
        )
        self.sandbox = sandboxes.qbo if provider == "qbo" else sandboxes.xero
        self.rng = random.Random(seed)
        self.invoices: list[tuple[str, str]] = []  # the live invoices: (provider id, finished good sold)
        self.kinds: Counter[str] = Counter()
        self.latest: datetime | None = None  # the latest date of anything recorded so far

    def recorded(self, at: datetime, kind: str, back: str | None = None) -> None:
        """Counts a ``kind`` of thing dated ``at``, as ``back`` when something already recorded is dated
        later."""
        late = back is not None and self.latest is not None and at < self.latest
        self.latest = at if self.latest is None else max(self.latest, at)
        self.kinds[back if late and back else kind] += 1

    def event(self, n: int, day: datetime) -> None:
        roll = self.rng.random()
        try:
            if roll < 0.40:
                self.receipt(n, day - timedelta(days=self.rng.choice([0, 0, 0, 3])))
            elif roll < 0.60:
                self.build(n, day)
            elif roll < 0.86:
                self.sale(n, day)
            elif roll < 0.92:
                self.rare(n, day)
            elif self.invoices:
                self.edit()
        except ServiceError:
            self.kinds["refused"] += 1  # a short or back-dated build: refused, nothing recorded

    def rare(self, n: int, day: datetime) -> None:
        """One of the rare events, at random among those possible now: a live invoice voided or deleted, a
        credit note for a finished good already sold, a sale dated 2 or 5 days back (not before tracking
        starts), a build dated 1 or 2 days back, a one-off fault on the next journal write (none pending)."""
        late = day - timedelta(days=self.rng.choice([2, 5]))
        back = day - timedelta(days=self.rng.choice([1, 2]))
        possible: dict[str, Callable[[], None]] = {"back-dated build": partial(self.build, n, back)}
        if self.invoices:
            possible |= {"void": self.void, "credit": partial(self.credit, n, day)}
        if late.date() >= START.date():
            possible["late sale"] = partial(self.sale, n, late)
        if not self.sandbox.faults:
            possible["fault"] = self.fault
        possible[self.rng.choice(sorted(possible))]()

    def receipt(self, n: int, at: datetime) -> None:
        """A receipt dated ``at``: back-dated when something already recorded is dated later."""
        part = self.rng.choice(["blank", "bolt"])
        line = ReceiptLineRequest(
            product_id=self.parts[part],
            quantity=Decimal(self.rng.randint(5, 40)),
            rejected=Decimal(self.rng.choice([0, 0, 0, 1, 2])),
            unit_cost=Decimal(self.rng.choice(COSTS)),
        )
        inventory.record_receipt(
            self.organisation, ReceiptRequest(received_at=at, lines=[line]), datetime.now(UTC)
        )
        self.recorded(at, "receipt", "back-dated receipt")

    def build(self, n: int, at: datetime) -> None:
        """A build dated ``at``: back-dated when something already recorded is dated later."""
        if self.rng.random() < 0.6:
            product, quantity = "bracket", Decimal(self.rng.randint(1, 3))
            components = [("blank", "1"), ("bolt", "2")]
        else:
            product, quantity, components = "shelf", Decimal(1), [("bracket", "2"), ("bolt", "4")]
        request = BuildRequest(
            product_id=self.parts[product],
            quantity=quantity,
            built_at=at,
            components=[
                ComponentRequest(product_id=self.parts[p], quantity_per_unit=Decimal(q))
                for p, q in components
            ],
        )
        inventory.record_build(self.organisation, request, datetime.now(UTC))
        self.recorded(at, "build", "back-dated build")

    def sale(self, number: int, day: datetime) -> None:
        """An invoice dated ``day`` for one or two finished goods: late when something already recorded is
        dated later."""
        part = self.rng.choice(["bracket", "shelf"])
        ref = invoice(self.sandboxes, self.provider, f"S-{number}", day.date(), part, self.rng.randint(1, 2))
        self.invoices.append((ref, part))
        self.recorded(day, "sale", "late sale")

    def credit(self, number: int, day: datetime) -> None:
        """A credit note dated ``day`` for one unit of a finished good a live invoice sold (it names no sale:
        the service returns its goods to the customer's latest sale of that good up to the credit)."""
        _, part = self.rng.choice(self.invoices)
        document(self.sandboxes, self.provider, CREDIT, f"C-{number}", day.date(), part, 1)
        self.recorded(day, "credit")

    def void(self) -> None:
        """A live invoice voided or deleted in the provider, as QBO and Xero allow it: QBO keeps a voided one
        with every amount and quantity 0 and deletes a transaction outright (CDC names it Deleted); Xero voids
        an approved invoice (only drafts may be deleted there)."""
        ref, _ = self.invoices.pop(self.rng.randrange(len(self.invoices)))
        if self.provider == "xero":
            self.sandboxes.xero.void_record(AU_TENANT_ID, INVOICE.xero_collection, ref)
            self.kinds["sale voided"] += 1
        elif self.rng.random() < 0.5:
            self.sandboxes.qbo.void_record(DEMO_REALM_ID, INVOICE.qbo_entity, ref)
            self.kinds["sale voided"] += 1
        else:
            self.sandboxes.qbo.delete_record(DEMO_REALM_ID, INVOICE.qbo_entity, ref)
            self.kinds["sale deleted"] += 1

    def fault(self) -> None:
        """The provider fails the next journal write once: a 500, a lost response (the journal is written
        but the answer never comes), a 429 or a timeout."""
        kind = self.rng.choice(FAULTS)
        method, path = JOURNAL_WRITES[self.provider]
        self.sandbox.inject(kind, method=method, path_prefix=path)
        self.kinds[f"fault {kind}"] += 1

    def edit(self) -> None:
        ref, part = self.rng.choice(self.invoices)
        qty = self.rng.randint(1, 3)
        if self.provider == "qbo":
            changes = {"Line": qbo_lines(part, qty)}
            self.sandboxes.qbo.edit_record(DEMO_REALM_ID, INVOICE.qbo_entity, ref, changes)
        else:
            changes = {"LineItems": xero_lines(part, qty)}
            self.sandboxes.xero.edit_record(AU_TENANT_ID, INVOICE.xero_collection, ref, changes)
        self.kinds["sale edited"] += 1


def settle(history: History, clock: VirtualTime, stack: Any, day: datetime) -> None:
    """What the schedules do: pull sales, close ended days (and plan true-ups), deliver the exports."""
    clock.advance(3600)
    for _ in range(5):  # a pull the rate budget paces out is tried again, as the next tick would
        try:
            sales.pull_changes(history.organisation, history.provider, now=clock.now())
            break
        except RateLimited:
            clock.advance(120)
    else:  # never silently: the books would still agree, only without the sales the history made
        raise AssertionError("the sales pull was still paced out after 5 tries")
    connection = sessions.in_use(history.organisation)
    assert connection is not None
    books.close_days_of(connection, day + timedelta(days=1, hours=12))  # the hourly message's books part
    deliver(stack, clock)


def month_ends(first: date, last: date) -> list[date]:
    """The last days of the months from ``first``'s that end before ``last``."""

    def end_of(day: date) -> date:
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)

    found, end = [], end_of(first)
    while end < last:
        found.append(end)
        end = end_of(end + timedelta(days=1))
    return found


def reason_kinds(result: reconciliation.Reconciliation) -> dict[str, int]:
    """How many of each kind of reason explain the accounts' differences."""
    return dict(Counter(r.kind for account in result.accounts for r in account.reasons))


SETTLE_EVERY = 25  # events between the schedules' passes
Midway = Callable[[History], None]  # what a person does once, between the first settle and the next event


class Outcome(NamedTuple):
    history: History
    final: reconciliation.Reconciliation  # the end, after the last true-up
    then: dict[date, reconciliation.Reconciliation]  # each month-end at the first pass after it
    at_end: dict[date, reconciliation.Reconciliation]  # each month-end again at the end (a past date)
    starting: dict[str, Any]  # QBO's items' QtyOnHand before the history
    calls: int  # provider calls
    took: float  # seconds


def simulate(
    stack: LocalStack,
    sandboxes: Sandboxes,
    clock: VirtualTime,
    provider: str,
    mode: str,
    events: int,
    seed: int = 7,
    midway: Midway | None = None,
) -> Outcome:
    """A random history of ``events`` against the sandbox (``clock`` followed: ``follow``), settled as the
    schedules would every ``SETTLE_EVERY`` events, and reconciled; ``midway`` runs once, after the first
    settle (a change of the export settings once exports are posted, say)."""
    organisation, parts = prepare(sandboxes, provider, mode)
    history = History(sandboxes, provider, organisation, parts, seed)
    starting = {i["Id"]: i.get("QtyOnHand") for i in sandboxes.qbo.list_records(DEMO_REALM_ID, "Item")}
    sandbox = sandboxes.qbo if provider == "qbo" else sandboxes.xero
    calls_before, started = sum(sandbox.calls.values()), time.perf_counter()
    ends = month_ends(START.date(), (START + timedelta(days=DAYS)).date()) if mode == "journals" else []
    then: dict[date, reconciliation.Reconciliation] = {}
    for n in range(events):
        day = START + timedelta(days=n * DAYS / events)
        history.event(n, day)
        if n % SETTLE_EVERY == SETTLE_EVERY - 1:
            settle(history, clock, stack, day)
            for month_end in (e for e in ends if e < day.date() and e not in then):
                then[month_end] = reconciliation.reconcile(organisation, month_end, day)
            if midway is not None and n == SETTLE_EVERY - 1:  # after the first settle
                midway(history)
    end = START + timedelta(days=DAYS)
    settle(history, clock, stack, end + timedelta(days=3))
    settle(history, clock, stack, end + timedelta(days=4))  # true-ups found by the last pass
    last = end + timedelta(days=5)  # after the last true-up's date
    final = reconciliation.reconcile(organisation, last.date(), last)
    took = time.perf_counter() - started
    calls = sum(sandbox.calls.values()) - calls_before
    at_end = {when: reconciliation.reconcile(organisation, when, last) for when in ends}
    return Outcome(history, final, then, at_end, starting, calls, took)


def gaps(result: reconciliation.Reconciliation) -> tuple[Decimal, Decimal]:
    """The largest |posted - subledger| of the books' accounts (the rounding account holds the cents left
    over) and the largest unexplained difference."""
    books_accounts = [a for a in result.accounts if "rounding" not in a.roles]
    gap = max((abs(a.posted - a.subledger) for a in books_accounts), default=ZERO)
    return gap, max((abs(a.unexplained) for a in result.accounts), default=ZERO)


def unexplained_quantity(item: reconciliation.ItemQuantity, starting: dict[str, Any]) -> Decimal:
    """What an item's QtyOnHand differs from our on hand by beyond QuickBooks' own starting quantity, the
    units sold or built without stock (which QBO counts out and we cannot) and the units of credits we wrote
    off (which QBO counts back in): 0 when the books agree."""
    return (
        (item.difference or ZERO)
        - Decimal(str(starting.get(item.item_id) or 0))
        + item.sold_without_stock
        + item.built_without_stock
        - item.written_off_credits
    )


def run(provider: str, mode: str) -> None:
    with moto_stack() as stack, sandboxes_installed(stack) as sandboxes:
        clock = VirtualTime(sandboxes)
        follow(clock)
        outcome = simulate(stack, sandboxes, clock, provider, mode, EVENTS)
        history, final, then, at_end, starting, calls, took = outcome
        organisation = history.organisation
        statuses = Counter(row.status for row in export_store.list_exports(organisation))
        kinds = Counter(row.kind for row in export_store.list_exports(organisation))
        print(f"{provider} {mode}: {EVENTS} events ({dict(history.kinds)}) in {took:.1f} s")
        print(
            f"  exports {dict(kinds)}; by status {dict(statuses)}; "
            f"provider calls per event {calls / EVENTS:.2f}"
        )
        if final.mode == "journals":
            gap, left = gaps(final)
            print(
                f"  end: status {final.status}; largest |posted - subledger| {gap:.2f} (target 0.00); "
                f"largest unexplained {left:.2f} (target 0.00)"
            )
            for account in final.accounts:
                others = sum((r.amount for r in account.reasons if r.kind == "others_entries"), ZERO)
                print(
                    f"    {account.code or account.account_id:>6} {','.join(account.roles):<32} provider "
                    f"{account.provider_balance or 0:>10} posted {account.posted:>10} "
                    f"subledger {account.subledger:>10}"
                    f" (others' entries {others})"
                )
            for when, result_at_end in at_end.items():
                for moment, result in (("then", then.get(when)), ("at the end", result_at_end)):
                    if result is not None:
                        print(
                            f"  month-end {when} reconciled {moment}: status {result.status}; largest "
                            f"unexplained {gaps(result)[1]:.2f} (target 0.00); reasons {reason_kinds(result)}"
                        )
        else:
            off = [i for i in final.items if i.difference]
            print(
                f"  end: status {final.status}; "
                f"items whose QtyOnHand differs: {len(off)} of {len(final.items)}"
            )
            for item in final.items:
                beyond = unexplained_quantity(item, starting)
                print(
                    f"    item {item.item_id} {item.label:<28} QtyOnHand {item.provider_quantity} on hand "
                    f"{item.on_hand}: difference {item.difference}, beyond QBO's starting quantity and "
                    f"units sold or built without stock {beyond} (target 0)"
                )


def main() -> None:
    for provider, mode in (("qbo", "journals"), ("xero", "journals"), ("qbo", "inventory_adjustments")):
        run(provider, mode)


if __name__ == "__main__":
    main()
