"""The books rule checked by an independent accountant: a seeded random history driven only through the public
API (receipts, builds, settings) and the provider sandboxes (invoices, edits, voids, credit notes entered as a
person enters them), settled by the hourly schedule; the accountant values every account from the inputs sent
alone, in exact fractions, and compares each with the provider's trial balance, read over the provider's HTTP
API with a consent of the accountant's own (and with the sum of the lines of the journals posted there, which
must agree with it): |posted - exact rounded half up| <= 0.01 per account, and the accounts balance. The
history must also tell the right books from those a wrong subledger would post (``WRONG_RULES``).

The accountant's rules (README "The accounting model", "Sales and margins"; DESIGN.md "The stock ledger's
replay"; ../shared/DESIGN.md "Books", "Sales pull"):
- Stock is consumed first in, first out in the order of the movements' times; a receipt's accepted units
  (quantity - rejected) are a lot at quantity x unit cost (or their share of the line cost); the rejected
  units go to waste at their cost; the receiving credit is the receipt's whole total.
- A part of a lot costs its share of what is left of the lot (cost x taken / remaining).
- A build's lot costs exactly what its components' lots cost; it sits in finished goods, or in the
  sub-assembly (WIP) account when the product is a component of other builds; consuming a lot credits the
  account it sits in.
- A sale (an invoice dated D) takes its goods at the end of D in the organisation's time zone; an edit
  re-costs it, a void or delete takes it out; cost of goods sold is debited with what it took.
- A credit note naming no sale returns its goods to the customer's latest sale (up to the credit) of that
  product: the units that sale took last go back first, into the lots they came from, at their cost; those
  lots take their original place in the FIFO order.
- A credit the customer's sales cannot match restocks its units as a lot of their own at the unit cost of the
  product's latest lot before it (README). Unstated: which account that lot sits in; the accountant expects
  the account the product's own lots sit in (finished goods, or WIP for a sub-assembly), not raw materials.
- A receipt back-dated before builds already recorded re-costs them (and what they fed) in place.
- Unstated: the receipt's total is credited to the receiving clearing account whatever the QA outcome;
  nothing is left uncosted (the history never sells or builds more than it holds).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from bench import bench_books
from bench.bench_exports import VirtualTime, follow
from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import LocalStack
from infra.local.testbed import QBO_BASE, XERO_BASE
from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo_demo import DEMO_REALM_ID, HARBOR, INCOME, MAPLE
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_exports import ok

# QBO: non-inventory items, as journals mode wants them (README, Known limits: QuickBooks books its own COGS
# for tracked items); created in set_up, ids by part
QBO_SKUS = {"blank": "PS-BLANK", "bolt": "PS-BOLT", "bracket": "PS-BRACKET", "shelf": "PS-SHELF"}
XERO_CODES = bench_books.XERO_CODES
# role -> account (Xero: code; QBO: account id, "wip" made below): the demo charts' as the bench maps them,
# and a sub-assembly (WIP) account
XERO_ACCOUNTS = {**bench_books.XERO_ACCOUNTS, "subassembly": "633"}
QBO_ACCOUNTS = {**bench_books.QBO_ACCOUNTS, "subassembly": "wip"}
RAW, SUB, FINISHED = ("blank", "bolt"), "bracket", "shelf"
BOM = {
    "bracket": {"blank": Fraction(1), "bolt": Fraction(2)},
    "shelf": {"bracket": Fraction(2), "bolt": Fraction(3)},
}
COSTS = ["0.333", "2.675", "7.1234", "0.125", "1.005", "3.333333", "0.0049", "10.015", "0.07"]
START = date(2026, 11, 6)
SALE_TIME = clock_time(23, 59, 59, 999999)  # a sale takes its goods at the end of its day, where the
ZONES = {  # organisation is: each company's own zone (the Xero demo tenant's, the QBO company's)
    "xero": ZoneInfo("Australia/Sydney"),
    "qbo": ZoneInfo("America/Los_Angeles"),
}
CENT = Fraction(1, 100)
AS_OF = date(2026, 12, 31)  # after every journal of the history (true-ups are dated the day they are found)
ACCOUNTANT = ("accountant-app", "accountant-secret", "https://accountant.example/callback")


def text(value: Fraction) -> str:
    """A quantity or cost as a decimal string (each one a history makes has a finite decimal form)."""
    return f"{Decimal(value.numerator) / Decimal(value.denominator):f}"


def cents(value: Fraction) -> Fraction:
    """Rounded to the cent, half away from zero (the service's ROUND_HALF_UP on Decimal)."""
    sign = -1 if value < 0 else 1
    return sign * Fraction(int(abs(value) * 100 + Fraction(1, 2)), 100)


# ---- the accountant ----------------------------------------------------------------------------------------
@dataclass
class Lot:
    lot_id: str
    key: tuple[datetime, int]  # its place in the FIFO order
    product: str
    quantity: Fraction  # remaining
    cost: Fraction  # remaining, exact
    role: str  # the account role it sits in


@dataclass
class Doc:
    """A sales document as the accountant knows it from what was entered in the provider."""

    ref: str
    kind: str  # invoice | credit
    day: date
    customer: str
    product: str
    quantity: Fraction
    zone: ZoneInfo
    active: bool = True

    @property
    def at(self) -> datetime:
        return datetime.combine(self.day, SALE_TIME, tzinfo=self.zone)


@dataclass
class Inputs:
    """Everything sent: receipts (lines: product, quantity, rejected, unit cost or line cost), builds, and the
    sales documents in their latest state."""

    receipts: list[tuple[datetime, list[tuple[str, Fraction, Fraction, Fraction]]]] = field(
        default_factory=list
    )
    recorded_late: dict[int, datetime] = field(default_factory=dict)  # back-dated receipt -> when it was sent
    builds: list[tuple[datetime, str, Fraction, dict[str, Fraction]]] = field(default_factory=list)
    docs: dict[str, Doc] = field(default_factory=dict)


# Rules a wrong subledger could follow instead; the history must tell each from the right one (``run``).
WRONG_RULES = {
    "back-dated receipt costed where it was sent, re-costing nothing": "in place",
    "a credit returns what its sale took first": "return first taken",
    "a credit that matches no sale restocks into raw materials": "restock raw",
    "sub-assemblies sit in finished goods": "no wip",
    "rejections stay in inventory": "no waste",
}


def value(inputs: Inputs, wrong: str = "") -> dict[str, Fraction]:
    """Each role's exact balance (debits positive) once everything is costed (by one of the ``WRONG_RULES``
    instead of the right one, when ``wrong`` names it)."""
    return costed(inputs, wrong)[0]


Drawn = list[tuple["Lot", Fraction, Fraction]]  # (lot, quantity, cost) in the order taken


def costed(inputs: Inputs, wrong: str = "") -> tuple[dict[str, Fraction], dict[str, Drawn]]:
    """The balances by role, and what each sale took."""
    balances: dict[str, Fraction] = defaultdict(Fraction)
    components = {c for _, _, _, bom in inputs.builds for c in bom}

    def role_of(product: str) -> str:
        if product in RAW:
            return "receiving_debit"
        return "subassembly" if product in components and wrong != "no wip" else "build_debit"

    movements: list[tuple[datetime, int, str, Any]] = []
    for n, (at, lines) in enumerate(inputs.receipts):
        at = inputs.recorded_late.get(n, at) if wrong == "in place" else at
        movements.append((at, 0, "receipt", (n, lines)))
    for n, (at, product, quantity, bom) in enumerate(inputs.builds):
        movements.append((at, 0, "build", (n, product, quantity, bom)))
    for doc in inputs.docs.values():
        if doc.active:
            movements.append((doc.at, 1 if doc.kind == "credit" else 0, doc.kind, doc))
    movements.sort(key=lambda m: (m[0], m[1]))

    stock: dict[str, list[Lot]] = defaultdict(list)
    made: dict[str, list[Lot]] = defaultdict(list)  # every lot of a product, as made (original quantity/cost)
    taken: dict[str, Drawn] = {}  # sale ref -> what it took
    returned: dict[str, Fraction] = defaultdict(Fraction)  # sale ref -> units credited back so far

    def take(product: str, wanted: Fraction) -> list[tuple[Lot, Fraction, Fraction]]:
        draws, lots = [], stock[product]
        while wanted:
            assert lots, f"the history ran out of {product}"
            lot = lots[0]
            if lot.quantity <= wanted:
                draws.append((lot, lot.quantity, lot.cost))
                wanted -= lot.quantity
                lots.pop(0)
            else:
                part = lot.cost * wanted / lot.quantity
                draws.append((lot, wanted, part))
                lot.quantity, lot.cost = lot.quantity - wanted, lot.cost - part
                wanted = Fraction(0)
        for lot, _, cost in draws:
            balances[lot.role] -= cost
        return draws

    def add(lot: Lot) -> None:
        lots = stock[lot.product]
        lots.insert(next((i for i, o in enumerate(lots) if o.key > lot.key), len(lots)), lot)

    for at, _, kind, what in movements:
        if kind == "receipt":
            n, lines = what
            for i, (product, quantity, rejected, unit) in enumerate(lines):
                accepted = quantity - rejected
                lot = Lot(f"R{n}.{i}", (at, 0), product, accepted, accepted * unit, "receiving_debit")
                stock[product].append(lot)
                made[product].append(Lot(lot.lot_id, lot.key, product, lot.quantity, lot.cost, lot.role))
                balances["receiving_debit"] += accepted * unit
                balances["waste" if wrong != "no waste" else "receiving_debit"] += rejected * unit
                balances["receiving_credit"] -= quantity * unit
        elif kind == "build":
            n, product, quantity, bom = what
            cost = sum(
                (c for part, per in bom.items() for _, _, c in take(part, per * quantity)), Fraction(0)
            )
            lot = Lot(f"B{n}", (at, 0), product, quantity, cost, role_of(product))
            stock[product].append(lot)
            made[product].append(Lot(lot.lot_id, lot.key, product, quantity, cost, lot.role))
            balances[lot.role] += cost
        elif kind == "invoice":
            draws = taken[what.ref] = take(what.product, what.quantity)
            balances["cogs"] += sum((c for _, _, c in draws), Fraction(0))
        else:  # a credit note
            sale = matched_sale(inputs, what)
            if sale is None:  # its own lot, at the unit cost of the product's latest lot before it
                latest = [lot for lot in made[what.product] if lot.key < (what.at, 1)][-1]
                cost = what.quantity * latest.cost / latest.quantity
                lot = Lot(
                    f"C{what.ref}", (what.at, 1), what.product, what.quantity, cost, role_of(what.product)
                )
                if wrong == "restock raw":
                    lot.role = "receiving_debit"
                add(lot)
                made[what.product].append(Lot(lot.lot_id, lot.key, lot.product, lot.quantity, cost, lot.role))
                balances[lot.role] += cost
                balances["cogs"] -= cost
                continue
            skip, wanted = returned[sale.ref], what.quantity
            returned[sale.ref] += wanted
            order = taken[sale.ref] if wrong == "return first taken" else reversed(taken[sale.ref])
            for lot, quantity, cost in order:  # what the sale took last comes back first
                passed = min(skip, quantity)
                back = min(wanted, quantity - passed)
                skip, wanted = skip - passed, wanted - back
                if not back:
                    continue
                back_cost = cost * back / quantity
                balances[lot.role] += back_cost
                balances["cogs"] -= back_cost
                if lot in stock[lot.product]:
                    lot.quantity, lot.cost = lot.quantity + back, lot.cost + back_cost
                else:
                    lot.quantity, lot.cost = back, back_cost
                    add(lot)
            assert not wanted, "the history credits no more than the sale took"
    return dict(balances), taken


def matched_sale(inputs: Inputs, credit: Doc) -> Doc | None:
    """The customer's latest live sale of the credited product up to the credit (README, "Sales and
    margins"; shared DESIGN.md "Sales pull")."""
    candidates = [
        d
        for d in inputs.docs.values()
        if d.kind == "invoice"
        and d.active
        and d.customer == credit.customer
        and d.product == credit.product
        and d.at <= credit.at
    ]
    return max(candidates, key=lambda d: (d.at, d.ref), default=None)


# ---- driving the service as a user would ------------------------------------------------------------------
class Books:
    """One provider's side: the organisation set up over the API, documents entered in the sandbox, and the
    sum of the journals posted there per account."""

    def __init__(self, api: Api, aws: LocalStack, sandboxes: Sandboxes, provider: str) -> None:
        self.api, self.aws, self.sandboxes, self.provider = api, aws, sandboxes, provider
        self.accounts = dict(XERO_ACCOUNTS if provider == "xero" else QBO_ACCOUNTS)
        self.before: dict[str, Fraction] = {}
        self.balance_before: dict[str, Fraction] = {}
        self.items: dict[str, str] = dict(XERO_CODES)  # part -> Xero item code, or QBO item id
        self.account_ids: dict[str, str] = {}  # role -> the provider's account id
        self.customers = (
            {"main": HARBOR, "other": MAPLE}
            if provider == "qbo"
            else {
                "main": demo_id(AU_TENANT_ID, "contact", "harbour"),
                "other": demo_id(AU_TENANT_ID, "contact", "summit"),
            }
        )

    def set_up(self) -> dict[str, str]:
        """Connected, a WIP account added by the bookkeeper, the chart and items synced, the four parts
        imported, accounts mapped by role, sales tracked from 5 November in the company's zone; product ids by
        part."""
        api, provider = self.api, self.provider
        fields: dict[str, Any]
        if provider == "xero":
            connect(api, self.sandboxes, "xero", choose=[AU_TENANT_ID])
            fields = {"Code": "633", "Name": "Work in Progress", "Type": "CURRENT", "Status": "ACTIVE"}
            self.sandboxes.xero.add_record(AU_TENANT_ID, "Accounts", fields)
        else:
            connect(api, self.sandboxes, "qbo")
            qbo = self.sandboxes.qbo
            fields = {
                "Name": "Work in Progress",
                "AccountType": "Other Current Asset",
                "AcctNum": "1315",
            }
            self.accounts["subassembly"] = str(qbo.create_record(DEMO_REALM_ID, "Account", fields)["Id"])
            for part, sku in QBO_SKUS.items():
                fields = {
                    "Name": f"PS {part}",
                    "Type": "NonInventory",
                    "Sku": sku,
                    "IncomeAccountRef": {"value": INCOME},
                }
                self.items[part] = str(qbo.create_record(DEMO_REALM_ID, "Item", fields)["Id"])
        chart = ok(api.call("POST", f"/integrations/{provider}/sync/accounts"))["accounts"]
        ok(api.call("POST", f"/integrations/{provider}/sync/items"))
        if provider == "xero":
            items = {i["sku"]: i["item_id"] for i in ok(api.call("GET", "/integrations/xero/items"))["items"]}
            item_ids = [items[code] for code in XERO_CODES.values()]
            by_code = {a["code"]: a["account_id"] for a in chart}
            mapped = {role: by_code[code] for role, code in self.accounts.items()}
        else:
            item_ids, mapped = list(self.items.values()), dict(self.accounts)
        self.account_ids = mapped
        body = {"provider": provider, "item_ids": item_ids}
        created = ok(api.call("POST", "/products/import-from-provider", json_body=body))["created"]
        settings = {"mode": "journals", "accounts": mapped}
        ok(api.call("PUT", f"/integrations/{provider}/export-settings", json_body=settings))
        tracking = {"enabled": True, "start_date": "2026-11-05", "time_zone": ZONES[provider].key}
        ok(api.call("PUT", f"/integrations/{provider}/sales-tracking", json_body=tracking))
        self.before = self.posted()
        self.balance_before = self.trial_balance()
        if provider == "xero":
            by_sku = {p["sku"]: p["product_id"] for p in created}
            return {part: by_sku[code] for part, code in XERO_CODES.items()}
        by_item = {p["provider_links"]["qbo"]: p["product_id"] for p in created}
        return {part: by_item[item] for part, item in self.items.items()}

    def lines(self, part: str, quantity: Fraction) -> Any:
        qty = str(int(quantity))
        if self.provider == "qbo":
            detail = {"ItemRef": {"value": self.items[part]}, "Qty": int(quantity), "UnitPrice": "45.00"}
            return [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}]
        return [{"ItemCode": XERO_CODES[part], "Description": part, "Quantity": qty, "UnitAmount": "45"}]

    def document(
        self, kind: str, number: str, day: date, customer: str, part: str, quantity: Fraction
    ) -> str:
        if self.provider == "qbo":
            fields = {
                "DocNumber": number,
                "TxnDate": day.isoformat(),
                "CustomerRef": {"value": self.customers[customer]},
                "Line": self.lines(part, quantity),
            }
            entity = "Invoice" if kind == "invoice" else "CreditMemo"
            return str(self.sandboxes.qbo.create_record(DEMO_REALM_ID, entity, fields)["Id"])
        collection, number_field, id_field, kind_name = (
            ("Invoices", "InvoiceNumber", "InvoiceID", "ACCREC")
            if kind == "invoice"
            else ("CreditNotes", "CreditNoteNumber", "CreditNoteID", "ACCRECCREDIT")
        )
        record = self.sandboxes.xero.add_record(
            AU_TENANT_ID,
            collection,
            {
                number_field: number,
                "Type": kind_name,
                "Contact": {"ContactID": self.customers[customer]},
                "Date": day.isoformat(),
                "Status": "AUTHORISED",
                "LineItems": self.lines(part, quantity),
            },
        )
        return str(record[id_field])

    def edit(self, ref: str, part: str, quantity: Fraction) -> None:
        if self.provider == "qbo":
            self.sandboxes.qbo.edit_record(
                DEMO_REALM_ID, "Invoice", ref, {"Line": self.lines(part, quantity)}
            )
        else:
            changes = {"LineItems": self.lines(part, quantity)}
            self.sandboxes.xero.edit_record(AU_TENANT_ID, "Invoices", ref, changes)

    def void(self, ref: str, delete: bool) -> None:
        if self.provider == "xero":
            self.sandboxes.xero.void_record(AU_TENANT_ID, "Invoices", ref)
        elif delete:
            self.sandboxes.qbo.delete_record(DEMO_REALM_ID, "Invoice", ref)
        else:
            self.sandboxes.qbo.void_record(DEMO_REALM_ID, "Invoice", ref)

    def settle(self, clock: VirtualTime) -> None:
        """An hour on: the hourly schedule fires (its workers pull the sales, close the ended business days
        and plan true-ups), and the queues are drained as Lambda's event sources would."""
        clock.advance(3600)
        Scheduler(self.aws).fire("SalesPullFunction")
        Poller(self.aws).drain()
        Poller(self.aws).drain()

    def posted(self) -> dict[str, Fraction]:
        """Per account, what the journals posted in the provider hold (debits positive), from their lines."""
        sums: dict[str, Fraction] = defaultdict(Fraction)
        if self.provider == "xero":
            for journal in self.sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals"):
                if journal.get("Status") == "POSTED":
                    for line in journal["JournalLines"]:
                        sums[str(line["AccountCode"])] += Fraction(str(line["LineAmount"]))
        else:
            for entry in self.sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry"):
                for line in entry["Line"]:
                    detail = line["JournalEntryLineDetail"]
                    sign = 1 if detail["PostingType"] == "Debit" else -1
                    sums[str(detail["AccountRef"]["value"])] += sign * Fraction(str(line["Amount"]))
        return {account: sums[account] - self.before.get(account, Fraction(0)) for account in sums}

    def accountant_token(self) -> str:
        """The accountant's own consent to the company (an app of their own, never the service's tokens),
        given afresh each time: the virtual clock runs past an access token's 30 minutes."""
        client_id, secret, redirect = ACCOUNTANT
        sandbox: Any
        if self.provider == "xero":
            sandbox, base, choose = self.sandboxes.xero, XERO_BASE, [AU_TENANT_ID]
            authorize, token_path = "/identity/connect/authorize", "/connect/token"
            scope = "openid accounting.reports.trialbalance.read"
        else:
            sandbox, base, choose = self.sandboxes.qbo, QBO_BASE, [DEMO_REALM_ID]
            authorize, token_path = "/connect/oauth2", "/oauth2/v1/tokens/bearer"
            scope = "com.intuit.quickbooks.accounting"
        sandbox.register_app(client_id, secret, [redirect])
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect, "scope": scope}
        url = str(httpx.URL(base + authorize, params={**query, "state": "books"}))
        with self.sandboxes.client() as browser:
            answer = walk_consent(
                browser, url, username="demo@partsemble.test", password="demo", choose=choose
            )
            form = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": redirect}
            tokens = browser.post(base + token_path, data=form, auth=(client_id, secret))
        assert tokens.status_code == 200, tokens.text
        return str(tokens.json()["access_token"])

    def trial_balance(self) -> dict[str, Fraction]:
        """Per role, its account's balance (debits positive) in the provider's trial balance as of ``AS_OF``,
        less what it held before the history."""
        balances = self.balances()
        return {
            role: balances.get(account, Fraction(0)) - self.balance_before.get(role, Fraction(0))
            for role, account in self.account_ids.items()
        }

    def balances(self, as_of: date = AS_OF) -> dict[str, Fraction]:
        """Per account id, its balance (debits positive) in the provider's trial balance as of ``as_of``, read
        over the provider's HTTP API."""
        headers = {"authorization": f"Bearer {self.accountant_token()}", "accept": "application/json"}
        balances: dict[str, Fraction] = {}

        def money(text: str) -> Fraction:
            return Fraction(text.replace(",", "")) if text else Fraction(0)

        with self.sandboxes.client() as client:
            if self.provider == "xero":
                headers["xero-tenant-id"] = AU_TENANT_ID
                answer = client.get(
                    f"{XERO_BASE}/api.xro/2.0/Reports/TrialBalance",
                    params={"date": as_of.isoformat()},
                    headers=headers,
                )
                assert answer.status_code == 200, answer.text
                for section in answer.json()["Reports"][0]["Rows"]:
                    for row in section.get("Rows", []):
                        cells = row["Cells"]
                        if row.get("RowType") != "Row" or not cells[0].get("Attributes"):
                            continue
                        account = next(a["Value"] for a in cells[0]["Attributes"] if a["Id"] == "account")
                        balances[account] = money(cells[3]["Value"]) - money(cells[4]["Value"])
            else:
                answer = client.get(
                    f"{QBO_BASE}/v3/company/{DEMO_REALM_ID}/reports/TrialBalance",
                    params={"end_date": as_of.isoformat(), "minorversion": "75"},
                    headers=headers,
                )
                assert answer.status_code == 200, answer.text
                for row in answer.json()["Rows"].get("Row", []):
                    cells = row.get("ColData")
                    if cells and cells[0].get("id"):
                        balances[cells[0]["id"]] = money(cells[1]["value"]) - money(cells[2]["value"])
        return balances


# ---- the history -------------------------------------------------------------------------------------------
class History:
    """A seeded random history; every event is recorded in ``inputs`` exactly as it was sent."""

    BOMS = BOM

    def __init__(self, books: Books, parts: dict[str, str], clock: VirtualTime, seed: int) -> None:
        self.books, self.parts, self.clock = books, parts, clock
        self.zone = ZONES[books.provider]
        self.rng = random.Random(seed)
        self.inputs = Inputs()
        self.day, self.minute = START, 0
        self.on_hand: dict[str, Fraction] = defaultdict(Fraction)
        self.kinds: dict[str, int] = defaultdict(int)
        self.credited: set[str] = set()  # sales a credit returned goods to: never edited or voided after
        self.returned: dict[str, int] = defaultdict(int)
        self.numbers = 0

    def now(self) -> datetime:
        self.minute += 7
        return datetime.combine(self.day, clock_time(8), tzinfo=self.zone) + timedelta(minutes=self.minute)

    def next_day(self) -> None:
        self.day += timedelta(days=1)
        self.minute = 0

    def receipt(self, at: datetime | None = None, plenty: bool = False) -> bool:
        back = at is not None
        at = at or self.now()
        lines: list[tuple[str, Fraction, Fraction, Fraction]] = []
        body: list[dict[str, Any]] = []
        for _ in range(2 if plenty else self.rng.choice([1, 1, 2])):
            part = self.rng.choice([p for p in RAW if p not in {line[0] for line in lines}])
            quantity = Fraction(self.rng.randint(30, 40) if plenty else self.rng.randint(6, 30))
            rejected = Fraction(self.rng.choice([0, 0, 1, 2]))
            line: dict[str, Any] = {"product_id": self.parts[part], "quantity": str(quantity)}
            if rejected:
                line["rejected"] = str(rejected)
            if self.rng.random() < 0.2:  # priced as a line: 10.00 for the lot, a third of a cent a unit
                line["line_cost"] = "10.00"
                unit = Fraction(10) / quantity
            else:
                cost = self.rng.choice(COSTS)
                line["unit_cost"] = cost
                unit = Fraction(cost)
            body.append(line)
            lines.append((part, quantity, rejected, unit))
            self.on_hand[part] += quantity - rejected
        answer = self.books.api.call(
            "POST", "/receipts", json_body={"received_at": at.isoformat(), "lines": body}
        )
        ok(answer, 201)
        if back:
            self.inputs.recorded_late[len(self.inputs.receipts)] = self.now()
        self.inputs.receipts.append((at, lines))
        self.kinds["back-dated receipt" if back else "receipt"] += 1
        self.kinds["rejection"] += any(line[2] for line in lines)
        self.kinds["line cost"] += any("line_cost" in line for line in body)
        return True

    def can_build(self, bom: dict[str, Fraction]) -> Fraction:
        """How many units the components on hand make (whole units here)."""
        return Fraction(min(self.on_hand[c] // per for c, per in bom.items()))

    def build_quantity(self, product: str, can: Fraction) -> Fraction | None:
        """A random quantity to build, at most ``can``; None when none fits."""
        return Fraction(self.rng.randint(1, min(int(can), 4))) if can >= 1 else None

    def build(
        self, product: str, quantity: Fraction | None = None, bom: dict[str, Fraction] | None = None
    ) -> bool:
        bom = bom or self.BOMS[product]
        can = self.can_build(bom)
        quantity = self.build_quantity(product, can) if quantity is None else quantity
        if quantity is None or quantity > can:
            return False
        at = self.now()
        body = {
            "product_id": self.parts[product],
            "quantity": text(quantity),
            "built_at": at.isoformat(),
            "components": [
                {"product_id": self.parts[c], "quantity_per_unit": text(per)} for c, per in bom.items()
            ],
        }
        ok(self.books.api.call("POST", "/builds", json_body=body), 201)
        for c, per in bom.items():
            self.on_hand[c] -= per * quantity
        self.on_hand[product] += quantity
        self.inputs.builds.append((at, product, quantity, bom))
        self.kinds[f"build {product}"] += 1
        return True

    def sale(self, part: str | None = None, quantity: Fraction | None = None) -> bool:
        """An invoice for what is on hand at the end of today; it ends the day (one sale a day)."""
        choices = [p for p in (SUB, FINISHED) if self.on_hand[p] >= 1]
        if not choices:
            return False
        part = part or self.rng.choice(choices)
        quantity = quantity or Fraction(self.rng.randint(1, min(int(self.on_hand[part]), 3)))
        self.numbers += 1
        ref = self.books.document("invoice", f"S-{self.numbers}", self.day, "main", part, quantity)
        self.inputs.docs[ref] = Doc(ref, "invoice", self.day, "main", part, quantity, self.zone)
        self.on_hand[part] -= quantity
        self.kinds[f"sale {part}"] += 1
        self.next_day()
        return True

    def live_sales(self) -> list[Doc]:
        return [
            d
            for d in self.inputs.docs.values()
            if d.kind == "invoice" and d.active and d.ref not in self.credited
        ]

    def edit(self) -> bool:
        """A live invoice for fewer units than first sold."""
        sales = [d for d in self.live_sales() if d.quantity > 1]
        if not sales:
            return False
        doc = self.rng.choice(sales)
        quantity = Fraction(self.rng.randint(1, int(doc.quantity) - 1))
        self.clock.advance(60)
        self.books.edit(doc.ref, doc.product, quantity)
        self.on_hand[doc.product] += doc.quantity - quantity
        doc.quantity = quantity
        self.kinds["sale edited"] += 1
        return True

    def void(self) -> bool:
        sales = self.live_sales()
        if not sales:
            return False
        doc = self.rng.choice(sales)
        self.clock.advance(60)
        delete = self.rng.random() < 0.5
        self.books.void(doc.ref, delete)
        doc.active = False
        self.on_hand[doc.product] += doc.quantity
        self.kinds["sale deleted" if delete and self.books.provider == "qbo" else "sale voided"] += 1
        return True

    def credit(self, customer: str = "main") -> bool:
        """A credit note on a day of its own for one unit of a finished good (``main``: the customer's latest
        sale of it up to then, which the service matches; ``other``: a customer who bought none)."""
        if customer == "main":
            probe = Doc(
                "", "credit", self.day + timedelta(days=1), customer, FINISHED, Fraction(1), self.zone
            )
            sale = matched_sale(self.inputs, probe)
            if sale is None or self.returned[sale.ref] >= sale.quantity:
                return False
            # one whose units came from lots at different costs: which of them come back first matters
            drawn = costed(self.inputs)[1][sale.ref]
            if len({cost / quantity for _, quantity, cost in drawn}) < 2:
                return False
            self.returned[sale.ref] += 1
            self.credited.add(sale.ref)
        elif not self.kinds["build shelf"]:
            return False
        self.next_day()
        self.numbers += 1
        ref = self.books.document("credit", f"C-{self.numbers}", self.day, customer, FINISHED, Fraction(1))
        self.inputs.docs[ref] = Doc(ref, "credit", self.day, customer, FINISHED, Fraction(1), self.zone)
        self.on_hand[FINISHED] += 1
        self.kinds["credit" if customer == "main" else "unmatched credit"] += 1
        self.next_day()
        return True

    def credit_across_lots(self) -> bool:
        """Raw materials for it, two shelf builds (two lots at different costs: the second with a bolt more),
        a sale of every shelf on hand (it takes from more than one lot), and a credit for one of them."""
        for _ in range(3):
            self.receipt(plenty=True)
        for extra in (0, 1):
            while self.on_hand[SUB] < 2:
                assert self.build(SUB)
            bom = {**BOM[FINISHED], "bolt": BOM[FINISHED]["bolt"] + extra}
            assert self.build(FINISHED, quantity=Fraction(1), bom=bom)
        assert self.sale(FINISHED, self.on_hand[FINISHED])
        return self.credit()

    def sale_of_two(self, then: Callable[[], None]) -> bool:
        """A sale of two brackets (built from raw materials received for them when there are too few), then
        (once ``then`` has run: it is posted) its edit."""
        if self.on_hand[SUB] < 2:
            self.receipt(plenty=True)
            assert self.build(SUB, quantity=Fraction(2))
        assert self.sale(SUB, Fraction(2))
        then()
        return self.edit()

    def back_dated_receipt(self) -> bool:
        """A receipt dated before builds already recorded (and exported): the first before everything (its lot
        is the first every build takes), the others two to four days back."""
        builds = [at for at, _, _, _ in self.inputs.builds]
        if not builds:
            return False
        at = max(builds) - timedelta(days=self.rng.randint(2, 4), minutes=self.rng.randint(1, 5) * 3 + 1)
        if not self.kinds["back-dated receipt"]:
            at = datetime.combine(START, clock_time(7), tzinfo=self.zone)
        at = at.replace(second=self.rng.randint(1, 59))  # never at the time of anything else
        self.receipt(at)
        return True

    def event(self) -> None:
        roll = self.rng.random()
        if roll < 0.30:
            self.receipt()
        elif roll < 0.48:
            self.build(SUB) or self.receipt()
        elif roll < 0.60:
            self.build(FINISHED) or self.build(SUB) or self.receipt()
        elif roll < 0.78:
            self.sale() or self.build(SUB) or self.receipt()
        elif roll < 0.84:
            self.back_dated_receipt() or self.receipt()
        elif roll < 0.89:
            self.edit() or self.receipt()
        elif roll < 0.94:
            self.void() or self.receipt()
        else:
            self.credit() or self.receipt()


def run(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, provider: str, seed: int
) -> None:
    clock = VirtualTime(sandboxes)
    follow(clock, monkeypatch.setattr)  # one virtual clock for the sandboxes and every wait
    books = Books(api, aws, sandboxes, provider)
    history = History(books, books.set_up(), clock, seed)
    started = time.perf_counter()
    for n in range(34):
        history.event()
        if n % 6 == 5:
            books.settle(clock)
    # the rare ones, when chance left them out: each after what it changes has been posted
    rare: tuple[tuple[str, Callable[[], bool]], ...] = (
        ("build shelf", lambda: history.build(FINISHED)),
        ("back-dated receipt", history.back_dated_receipt),
        ("sale shelf", history.sale),
        ("credit", lambda: history.credit() or history.credit_across_lots()),
        ("unmatched credit", lambda: history.credit("other")),
        (
            "sale edited",
            lambda: history.edit() or history.sale_of_two(then=lambda: books.settle(clock)),
        ),
        ("sale voided", history.void),
    )
    for kind, happen in rare:
        if not history.kinds[kind] and not (kind == "sale voided" and history.kinds["sale deleted"]):
            books.settle(clock)
            assert happen(), kind
    books.settle(clock)
    books.settle(clock)  # true-ups found by the last pass
    took = time.perf_counter() - started

    exports = ok(api.call("GET", "/exports"))["items"]
    assert not [e for e in exports if e["status"] not in ("posted", "skipped")], exports
    exact = value(history.inputs)
    journals = books.posted()  # the lines of the journals in the provider, per account
    balances = books.trial_balance()  # the provider's trial balance, per role, less what it held before
    report = []
    for role, account in books.accounts.items():
        want, got, lines = exact.get(role, Fraction(0)), balances[role], journals.get(account, Fraction(0))
        report.append(
            f"{role:<17} {account:>5} exact {float(want):>12.6f} rounded {float(cents(want)):>10.2f} "
            f"trial balance {float(got):>10.2f} journals {float(lines):>10.2f} "
            f"off {float(got - cents(want)):>6.2f}"
        )
    detail = f"{provider} seed {seed}, {dict(history.kinds)}, {took:.1f} s\n" + "\n".join(report)
    print(detail)
    assert sum(exact.values()) == 0
    assert sum(journals.values()) == 0 and sum(balances.values()) == 0, detail
    assert {a for a, v in journals.items() if v} <= set(books.accounts.values()), (
        journals,
        detail,
    )  # nothing outside the roles
    for role, account in books.accounts.items():
        assert balances[role] == journals.get(account, Fraction(0)), detail
        assert abs(balances[role] - cents(exact.get(role, Fraction(0)))) <= CENT, detail
    for rule, wrong in WRONG_RULES.items():  # the history is one that a subledger following it would fail
        other = value(history.inputs, wrong)
        apart = max(
            abs(cents(other.get(r, Fraction(0))) - cents(exact.get(r, Fraction(0)))) for r in books.accounts
        )
        assert apart > 2 * CENT, f"the history cannot tell the books from ones where {rule}"


# seeds whose histories tell every one of the WRONG_RULES apart (not all do: seed 5's ends with no
# sub-assembly in stock, so where they would sit cannot show); seeds 1-6 agree with the books too
@pytest.mark.parametrize(("provider", "seed"), [("xero", 11), ("qbo", 12)])
def test_an_independent_accountant_agrees_with_the_books_to_the_cent(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, provider: str, seed: int
) -> None:
    run(api, aws, sandboxes, monkeypatch, provider, seed)
