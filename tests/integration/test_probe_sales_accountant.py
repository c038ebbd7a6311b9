"""Probe: an independent accountant, in exact Fractions, checks the margins report over random histories.

Each seed writes a history through the service's own doors: receipts (odd unit costs, line costs with QA
rejections, back-dated ones) and builds over ``POST /receipts`` and ``/builds``; invoices and sales receipts
(QBO), some discounted (a QBO discount line, Xero line discount rates); credit notes naming their sale or
none (some not restockable, some for more than the sale took, some for a sale that found too little stock);
foreign-currency documents; later edits, voids and deletes; all entered in the QBO or Xero sandbox and read
by "Pull now" (the sales pull queue drained), in one of three business time zones. After each pull
the accountant replays the history from the inputs alone, FIFO over the finished goods' lots, and every
figure of ``GET /margins`` (by document, product and month) must agree with it to the cent.

The rounding rule modelled (README "Sales and margins", ``shared/domain/costing.py``): a line's revenue is
its net amount times the document's rate (home units per document unit: QBO ``ExchangeRate``, 1 / Xero
``CurrencyRate``) rounded to the cent half up; a line's cost of goods sold is its exact FIFO cost rounded
half up; a total (document, product, month, report) adds its lines' revenue cents and rounds its lines'
exact cost once; margin = revenue - COGS, none while some sale's uncosted units are not all given back by
credits in the same total, or a credit returned units beyond its sale; margin % = margin x 100 / revenue,
to the cent half up. A credit gives back what its sale took, the last taken first: the sale's
uncosted tail first (a negative uncosted quantity), then its lots (restocked at their cost, or at that cost
to waste when not restockable); what is left is beyond the sale and uncosted. A credit naming no live sale
returns to the customer's latest sale of its good up to it; with none, its units are restocked as a lot of
their own at the unit cost of the good's latest lot before it (nothing, when not restockable).

``PROBE_SEEDS=N`` runs N seeds per provider (2 by default)."""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction as F
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra.sandboxes.qbo_demo import DEMO_REALM_ID, HARBOR
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_margins import ok

pytestmark = pytest.mark.usefixtures("no_real_sleep")

SEEDS = range(1, 1 + int(os.environ.get("PROBE_SEEDS", "2")))
START = date(2026, 11, 10)  # after the demo companies' own sales; the history runs into December
QBO_ITEMS = {"blank": "1", "bolt": "2", "bracket": "5", "shelf": "7"}
XERO_CODES = {"blank": "WIDGET-10", "bolt": "BOLT-M8", "bracket": "BRACKET-S", "shelf": "PANEL-A"}
GOODS = ("bracket", "shelf")  # sold; received and built from the parts
PARTS = ("blank", "bolt")  # received and built with, never sold
RECIPES = {"bracket": {"blank": F(1), "bolt": F(2)}, "shelf": {"blank": F(2), "bolt": F(3)}}
UNIT_COSTS = ["0.125", "0.333", "1.005", "2.4999", "0.0049", "7.77", "0", "10.015", "3.3333"]
PRICES = ["4.99", "12.50", "0.03", "19.95", "7.01", "25.00"]
QBO_RATES = ["1.0850", "0.9137", "1.3333"]  # home units per EUR
XERO_RATES = ["1.2", "0.6512", "1.5", "0.8"]  # USD per AUD (Xero's CurrencyRate)
# the organisation's business day: a day's sales take stock at its end there (Auckland: before 11:00 UTC,
# between the morning's receipts and the afternoon's builds)
ZONES = ["UTC", "Pacific/Auckland", "America/New_York"]


def cents(x: F) -> Decimal:
    """To the cent, half away from zero (Decimal's ROUND_HALF_UP)."""
    q = abs(x) * 100
    n = q.numerator // q.denominator
    if q - n >= F(1, 2):
        n += 1
    return Decimal(n if x >= 0 else -n) / 100


# ---- the accountant's books: the history as entered, and its replay ---------------------------------------
@dataclass
class Lot:
    key: tuple[Any, ...]  # its place in FIFO order (when it was made)
    lot_id: str
    quantity: F
    unit: F


@dataclass
class Doc:
    doc_id: str  # the service's document id ("qbo:<realm>:Invoice:<id>", "xero:Invoice:<GUID>")
    ref: str  # the provider's id
    kind: str  # invoice, sales_receipt, credit_note
    number: str
    day: date
    order: int  # a day's documents in the order they take stock (QBO: entered; Xero: sales, then credits)
    lines: list[tuple[str, F, F]]  # (good, quantity, net amount in the document's currency)
    rate: F = F(1)  # home units per document unit
    currency: str = ""
    status: str = "active"  # active, voided, deleted
    sale: str | None = None  # the sale a credit names (doc id); None: it names none
    restock: bool = True
    line_ids: list[str] = field(default_factory=list)  # the provider's, as the service keys the lines
    discount: F = F(0)  # QBO: the discount line's amount, over every line above it
    line_rates: list[F] = field(default_factory=list)  # Xero: each line's DiscountRate (%)

    def net(self, i: int) -> F:
        """A line's revenue in the document's currency: after its discount (Xero: its LineAmount, which Xero
        keeps to the cent half up) or its share of the document's (QBO: by line amount, to the cent)."""
        gross = self.lines[i][2]
        if self.line_rates and self.line_rates[i]:
            return F(cents(gross * (100 - self.line_rates[i]) / 100))
        return gross - spread(self.discount, [g for _, _, g in self.lines])[i]

    def at(self, zone: ZoneInfo) -> datetime:
        """A document takes stock at the very end of its day in the organisation's zone."""
        return datetime.combine(self.day, time(23, 59, 59, 999999), zone)


@dataclass
class Line:
    revenue: Decimal
    cogs: F  # exact
    lots: list[tuple[str, F, F]]  # (lot id, quantity, exact cost)
    # units no lot covered by the sale they were sold on (given back by a credit: negative) or the credit
    # line they were returned beyond its sale on; a total knows its cost only where each nets to zero
    open: dict[str, F] = field(default_factory=dict)

    @property
    def uncosted(self) -> F:
        return sum(self.open.values(), F(0))


@dataclass
class Books:
    zone: ZoneInfo
    receipts: list[tuple[datetime, str, F, F, str]] = field(default_factory=list)  # at, good, qty, cost, lot
    builds: list[tuple[datetime, str, F, str]] = field(default_factory=list)  # at, good, qty, lot
    docs: dict[str, Doc] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)  # what the last replay met

    def movements(self) -> list[tuple[tuple[Any, ...], str, Any]]:
        moves: list[tuple[tuple[Any, ...], str, Any]] = []
        moves += [((r[0], 0, r[4]), "receipt", r) for r in self.receipts]
        moves += [((b[0], 0, b[3]), "build", b) for b in self.builds]
        for d in self.docs.values():
            if d.status == "active":
                moves += [
                    ((d.at(self.zone), d.order, f"{d.doc_id}/{i:09d}"), "doc", (d, i))
                    for i in range(len(d.line_ids))
                ]
        return sorted(moves, key=lambda m: m[0])

    def sale_of(self, credit: Doc) -> str | None:
        """The sale a credit returns its goods to: the one it names while that one is live, else the
        customer's (there is one) latest live sale up to it with its good (the credits here have one)."""
        named = self.docs.get(credit.sale or "")
        if named is not None and named.status == "active":
            return named.doc_id
        good = credit.lines[0][0]
        earlier = [
            d
            for d in self.docs.values()
            if d.kind != "credit_note"
            and d.status == "active"
            and (d.day, d.order) <= (credit.day, credit.order)
            and good in [g for g, _, _ in d.lines]
        ]
        return max(earlier, key=lambda d: (d.day, d.order, d.doc_id)).doc_id if earlier else None

    def replay(self) -> dict[tuple[str, int], Line]:
        """Every active document line's figures, replaying the movements in order, FIFO per product."""
        lots: dict[str, list[Lot]] = {p: [] for p in (*GOODS, *PARTS)}
        taken: dict[tuple[str, str], list[tuple[str, F, F]]] = {}  # (sale, good) -> pieces, "" = uncosted
        result: dict[tuple[str, int], Line] = {}
        self.seen = Counter()
        for key, kind, m in self.movements():
            if kind == "receipt":
                _, good, qty, cost, lot = m
                lots[good].append(Lot(key, lot, qty, cost / qty))
            elif kind == "build":
                _, good, qty, lot = m
                cost = F(0)
                for part, per_unit in RECIPES[good].items():
                    draws, short = take(lots[part], qty * per_unit)
                    assert not short, f"the accountant let build {lot} run short of {part}"
                    cost += sum((c for _, _, c in draws), F(0))
                lots[good].append(Lot(key, lot, qty, cost / qty))
            else:
                d, i = m
                good, qty, _ = d.lines[i]
                revenue = cents(d.net(i) * d.rate)
                if d.kind != "credit_note":
                    draws, short = take(lots[good], qty)
                    self.seen["sale beyond stock"] += bool(short)
                    taken.setdefault((d.doc_id, good), []).extend([*draws, ("", short, F(0))])
                    cogs = sum((c for _, _, c in draws), F(0))
                    result[d.doc_id, i] = Line(revenue, cogs, draws, {d.doc_id: short})
                    continue
                sale = self.sale_of(d)
                if sale is None:  # restocked as a lot at the unit cost of the good's latest lot before it
                    before = [x for x in lots[good] if x.key < key]
                    restocked = []
                    if before and d.restock:
                        unit = max(before, key=lambda x: x.key).unit
                        lot_id = f"{d.doc_id}/{d.line_ids[i]}"
                        lots[good].append(Lot(key, lot_id, qty, unit))
                        restocked = [(lot_id, qty, qty * unit)]
                    cost = sum((c for _, _, c in restocked), F(0))
                    self.seen["credit matching no sale, restocked"] += bool(restocked)
                    result[d.doc_id, i] = Line(-revenue, -cost, restocked)
                    continue
                pieces = taken.setdefault((sale, good), [])
                back, given_back, wanted = [], F(0), qty
                while wanted and pieces:  # the last taken first: the uncosted tail, then the lots
                    lot_id, n, c = pieces[-1]
                    undone = min(n, wanted)
                    wanted -= undone
                    if undone == n:
                        pieces.pop()
                    else:
                        pieces[-1] = (lot_id, n - undone, c - c * undone / n)
                    if lot_id:
                        back.append((lot_id, undone, c * undone / n))
                    else:
                        given_back += undone
                back = [b for b in back if b[1]]
                self.seen["credit giving back uncosted units"] += bool(given_back)
                self.seen["credit beyond its sale"] += bool(wanted)
                self.seen["credit not restocked"] += not d.restock
                if d.restock:
                    for lot_id, n, _ in back:
                        (lot,) = [x for x in lots[good] if x.lot_id == lot_id]
                        lot.quantity += n
                cogs = sum((c for _, _, c in back), F(0))
                result[d.doc_id, i] = Line(-revenue, -cogs, back, {sale: -given_back, key[2]: wanted})
        return result

    def on_hand(self, part: str, at: datetime) -> F:
        """What is left of a part at ``at`` (parts are only received and built with)."""
        have = sum((r[2] for r in self.receipts if r[1] == part and r[0] <= at), F(0))
        used = sum((b[2] * RECIPES[b[1]][part] for b in self.builds if b[0] <= at), F(0))
        return have - used


def spread(amount: F, weights: list[F]) -> list[F]:
    """An amount in cents over parts by weight, to the cent: each part's exact share cut to the cent, the
    cents left one each to the largest remainders (ties to the earlier part)."""
    exact = [amount * w / sum(weights) for w in weights]
    floors = [F(int(e * 100), 100) for e in exact]
    left = int((amount - sum(floors)) * 100)
    for i in sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))[:left]:
        floors[i] += F(1, 100)
    return floors


def take(stock: list[Lot], wanted: F) -> tuple[list[tuple[str, F, F]], F]:
    """FIFO from the earliest lot with stock left (a lot restocked comes back at its own place)."""
    draws = []
    for lot in sorted(stock, key=lambda x: x.key):
        if not wanted:
            break
        n = min(lot.quantity, wanted)
        if n:
            lot.quantity -= n
            wanted -= n
            draws.append((lot.lot_id, n, n * lot.unit))
    return draws, wanted


# ---- the history, entered through the service and the sandboxes -------------------------------------------
class History:
    def __init__(self, api: Api, sandboxes: Sandboxes, provider: str, seed: int) -> None:
        self.api, self.sandboxes, self.provider = api, sandboxes, provider
        self.rng = random.Random(f"{provider}-{seed}")
        self.zone = self.rng.choice(ZONES)
        self.books = Books(ZoneInfo(self.zone))
        self.kinds: Counter[str] = Counter()  # what the history holds
        self.products: dict[str, str] = {}  # good or part -> product id
        self.n = 0
        # sales a credit names: Xero refuses to edit or void them (their allocations); QBO allows it
        self.credited: set[str] = set()

    def setup(self) -> None:
        if self.provider == "qbo":
            connect(self.api, self.sandboxes, "qbo")
            items = dict(QBO_ITEMS)
        else:
            connect(self.api, self.sandboxes, "xero", choose=[AU_TENANT_ID])
            items = {k: demo_id(AU_TENANT_ID, "item", c) for k, c in XERO_CODES.items()}
        ok(self.api.call("POST", f"/integrations/{self.provider}/sync/items"))
        body = {"provider": self.provider, "item_ids": list(items.values())}
        ok(self.api.call("POST", "/products/import-from-provider", json_body=body))
        listed = ok(self.api.call("GET", "/products?limit=500"))["items"]
        by_item = {p["provider_links"].get(self.provider): p["product_id"] for p in listed}
        self.products = {k: by_item[v] for k, v in items.items()}
        tracking = {"enabled": True, "start_date": START.isoformat(), "time_zone": self.zone}
        ok(self.api.call("PUT", f"/integrations/{self.provider}/sales-tracking", json_body=tracking))

    def next_id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    # -- stock --
    def receipt(self, at: datetime, good: str) -> None:
        rid = self.next_id("R")
        qty = F(self.rng.choice([1, 2, 3, 5, 7, 12]))
        line: dict[str, Any] = {"product_id": self.products[good], "quantity": str(qty)}
        if self.rng.random() < 0.3:  # priced as a line, some of it rejected: the lot's share is not in cents
            rejected = F(self.rng.choice([0, 1]))
            line_cost = F(self.rng.choice(["10.00", "7.01", "1.00", "33.33"]))
            line |= {"line_cost": str(Decimal(line_cost.numerator) / line_cost.denominator)}
            line["quantity"], line["rejected"] = str(qty + rejected), str(rejected)
            cost = line_cost * qty / (qty + rejected)
        else:
            unit = self.rng.choice(UNIT_COSTS)
            line["unit_cost"] = unit
            cost = qty * F(unit)
        body = {"receipt_id": rid, "received_at": at.isoformat(), "lines": [line]}
        ok(self.api.call("POST", "/receipts", json_body=body), 201)
        self.books.receipts.append((at, good, qty, cost, f"{rid}/1"))

    def build(self, at: datetime) -> None:
        good = self.rng.choice(GOODS)
        qty = F(self.rng.choice([1, 2, 3]))
        if any(self.books.on_hand(p, at) < qty * q for p, q in RECIPES[good].items()):
            return  # the accountant knows it would be short: not tried
        bid = self.next_id("B")
        body = {
            "build_id": bid,
            "product_id": self.products[good],
            "quantity": str(qty),
            "built_at": at.isoformat(),
            "components": [
                {"product_id": self.products[p], "quantity_per_unit": str(q)}
                for p, q in RECIPES[good].items()
            ],
        }
        ok(self.api.call("POST", "/builds", json_body=body), 201)
        self.books.builds.append((at, good, qty, bid))

    # -- documents --
    def sale(self, day: date) -> None:
        goods = self.rng.sample(GOODS, self.rng.choice([1, 1, 2]))
        lines = [(g, F(self.rng.choice([1, 2, 3, 4, 6])), F(self.rng.choice(PRICES))) for g in goods]
        kind = "sales_receipt" if self.provider == "qbo" and self.rng.random() < 0.2 else "invoice"
        foreign = self.rng.random() < 0.25
        self.document(kind, day, [(g, q, q * p) for g, q, p in lines], foreign=foreign)

    def credit(self, day: date) -> None:
        sales = [
            d
            for d in self.books.docs.values()
            if d.kind == "invoice" and d.status == "active" and d.day <= day
        ]
        restock = self.rng.random() < 0.75
        if not sales or self.rng.random() < 0.25:  # names no sale: the service finds one, or none
            good, qty = self.rng.choice(GOODS), F(self.rng.choice([1, 2]))
            self.kinds["credit naming no sale"] += 1
            self.document(
                "credit_note", day, [(good, qty, qty * F(self.rng.choice(PRICES)))], restock=restock
            )
            return
        sale = self.rng.choice(sales)
        good, sold, net = self.rng.choice(sale.lines)
        qty = F(self.rng.choice([1, 1, 2])) if self.rng.random() < 0.85 else sold + 1  # some beyond the sale
        price = net / sold
        self.document("credit_note", day, [(good, qty, qty * price)], sale=sale, restock=restock)

    def document(
        self,
        kind: str,
        day: date,
        lines: list[tuple[str, F, F]],
        *,
        foreign: bool = False,
        sale: Doc | None = None,
        restock: bool = True,
    ) -> None:
        number = self.next_id("S" if kind != "credit_note" else "C")
        if sale is not None:
            foreign = sale.currency != ""
        if self.provider == "qbo":
            doc = self.qbo_document(kind, number, day, lines, foreign, sale, restock)
        else:
            doc = self.xero_document(kind, number, day, lines, foreign, sale, restock)
        self.books.docs[doc.doc_id] = doc
        self.kinds[kind] += 1
        self.kinds["foreign"] += foreign
        self.kinds["not restockable"] += not restock
        if sale is not None:
            self.credited.add(sale.doc_id)

    def qbo_document(
        self,
        kind: str,
        number: str,
        day: date,
        lines: list[tuple[str, F, F]],
        foreign: bool,
        sale: Doc | None,
        restock: bool,
    ) -> Doc:
        qbo = self.sandboxes.qbo
        qbo.clock.advance(1)  # entered a second after the one before: the order they take stock in a day
        entity = {"invoice": "Invoice", "sales_receipt": "SalesReceipt", "credit_note": "CreditMemo"}[kind]
        body: dict[str, Any] = {
            "CustomerRef": {"value": HARBOR},
            "DocNumber": number,
            "TxnDate": day.isoformat(),
            "Line": qbo_lines(lines),
        }
        rate = F(1)
        if foreign:
            chosen = sale.currency if sale else self.rng.choice(QBO_RATES)
            body |= {"CurrencyRef": {"value": "EUR", "name": "Euro"}, "ExchangeRate": chosen}
            rate = F(chosen)
        if sale is not None:
            body["LinkedTxn"] = [{"TxnId": sale.ref, "TxnType": "Invoice"}]
        if not restock:
            body["PrivateNote"] = "damaged: not restockable"
        discount = F(0)
        if kind != "credit_note" and self.rng.random() < 0.3:  # a discount line under the item lines
            subtotal = sum((g for _, _, g in lines), F(0))
            if self.rng.random() < 0.6:
                percent = self.rng.choice(["10", "12.5", "7", "33.333"])
                detail = {"PercentBased": True, "DiscountPercent": percent}
                discount = F(cents(subtotal * F(percent) / 100))  # QBO keeps it to the cent, half up
                body["Line"].append({"DetailType": "DiscountLineDetail", "DiscountLineDetail": detail})
            else:
                discount = min(subtotal, F(self.rng.choice(["0.05", "1.00", "3.33"])))
                body["Line"].append(
                    {
                        "DetailType": "DiscountLineDetail",
                        "Amount": money(discount),
                        "DiscountLineDetail": {"PercentBased": False},
                    }
                )
        made = qbo.create_record(DEMO_REALM_ID, entity, body)
        created = datetime.fromisoformat(made["MetaData"]["CreateTime"])
        order = 2 * int(created.timestamp()) + (kind == "credit_note")
        return Doc(
            doc_id=f"qbo:{DEMO_REALM_ID}:{entity}:{made['Id']}",
            ref=str(made["Id"]),
            kind=kind,
            number=number,
            day=day,
            order=order,
            lines=lines,
            rate=rate,
            currency=body.get("ExchangeRate", ""),
            sale=sale.doc_id if sale else None,
            restock=restock,
            line_ids=[
                str(line["Id"]) for line in made["Line"] if line["DetailType"] == "SalesItemLineDetail"
            ],
            discount=discount,
        )

    def xero_document(
        self,
        kind: str,
        number: str,
        day: date,
        lines: list[tuple[str, F, F]],
        foreign: bool,
        sale: Doc | None,
        restock: bool,
    ) -> Doc:
        credit = kind == "credit_note"
        collection = "CreditNotes" if credit else "Invoices"
        # Xero takes a discount on ACCREC invoices' lines only (spec LineItem.DiscountRate)
        rates = [
            F(0) if credit or self.rng.random() < 0.75 else F(self.rng.choice(["12.5", "10", "33.33"]))
            for _ in lines
        ]
        record: dict[str, Any] = {
            "CreditNoteNumber" if credit else "InvoiceNumber": number,
            "Type": "ACCRECCREDIT" if credit else "ACCREC",
            "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")},
            "Date": day.isoformat(),
            "Status": "AUTHORISED",
            "LineItems": xero_lines(lines, rates),
        }
        rate = F(1)
        if foreign:
            chosen = sale.currency if sale else self.rng.choice(XERO_RATES)
            record |= {"CurrencyCode": "USD", "CurrencyRate": chosen}
            rate = 1 / F(chosen)
        if sale is not None:
            record["Allocations"] = [
                {"Invoice": {"InvoiceID": sale.ref}, "Amount": "0.01", "Date": day.isoformat()}
            ]
        if not restock:
            record["Reference"] = "damaged: not restockable"
        made = self.sandboxes.xero.add_record(AU_TENANT_ID, collection, record)
        ref = str(made["CreditNoteID" if credit else "InvoiceID"])
        return Doc(
            doc_id=f"xero:{'CreditNote' if credit else 'Invoice'}:{ref}",
            ref=ref,
            kind=kind,
            number=number,
            day=day,
            order=int(credit),
            lines=lines,
            rate=rate,
            currency=record.get("CurrencyRate", ""),
            sale=sale.doc_id if sale else None,
            restock=restock,
            line_ids=[str(line["LineItemID"]) for line in made["LineItems"]],
            line_rates=rates,
        )

    # -- changes in the provider --
    def change(self) -> None:
        """An invoice edited (new quantities), voided, or deleted (QBO); in Xero, one no credit names."""
        free = [
            d
            for d in self.books.docs.values()
            if d.kind == "invoice"
            and d.status == "active"
            and (self.provider == "qbo" or d.doc_id not in self.credited)
        ]
        if not free:
            return
        doc = self.rng.choice(free)
        roll = self.rng.random()
        if roll < 0.5:
            changed = [(g, q + self.rng.choice([-1, 1, 2]) or q + 1, net / q) for g, q, net in doc.lines]
            doc.lines = [(g, q, q * unit) for g, q, unit in changed]  # at the same unit price, never 0
            if self.provider == "qbo":
                made = self.sandboxes.qbo.edit_record(
                    DEMO_REALM_ID, "Invoice", doc.ref, {"Line": qbo_lines(doc.lines)}
                )
                doc.line_ids = [
                    str(x["Id"]) for x in made["Line"] if x["DetailType"] == "SalesItemLineDetail"
                ]
                doc.discount = F(0)  # the lines sent anew, without the discount line
            else:
                made = self.sandboxes.xero.edit_record(
                    AU_TENANT_ID, "Invoices", doc.ref, {"LineItems": xero_lines(doc.lines)}
                )
                doc.line_ids = [str(x["LineItemID"]) for x in made["LineItems"]]
                doc.line_rates = []  # the lines sent anew, without their discounts
            self.kinds["edited"] += 1
        elif roll < 0.8 or self.provider == "xero":
            doc.status = "voided"
            self.kinds["voided"] += 1
            if self.provider == "qbo":
                self.sandboxes.qbo.void_record(DEMO_REALM_ID, "Invoice", doc.ref)
            else:
                self.sandboxes.xero.void_record(AU_TENANT_ID, "Invoices", doc.ref)
        else:
            doc.status = "deleted"
            self.kinds["deleted"] += 1
            self.sandboxes.qbo.delete_record(DEMO_REALM_ID, "Invoice", doc.ref)

    def days(self, first: int, last: int) -> None:
        for offset in range(first, last):
            day = START + timedelta(days=offset)
            morning = datetime.combine(day, time(9), UTC)
            for minute in range(self.rng.choice([1, 2, 3])):
                at = morning + timedelta(minutes=minute)
                roll = self.rng.random()
                if roll < 0.45:
                    self.receipt(at, self.rng.choice(PARTS))
                elif roll < 0.6:
                    self.receipt(at, self.rng.choice(GOODS))
                else:
                    self.build(at + timedelta(hours=3))
            for _ in range(self.rng.choice([0, 1, 2, 3])):
                (self.sale if self.rng.random() < 0.7 else self.credit)(day)

    def pull(self) -> None:
        (self.sandboxes.qbo if self.provider == "qbo" else self.sandboxes.xero).clock.advance(60)
        self.api.pull_sales()


def qbo_lines(lines: list[tuple[str, F, F]]) -> list[dict[str, Any]]:
    return [
        {
            "DetailType": "SalesItemLineDetail",
            "Amount": money(net),
            "SalesItemLineDetail": {
                "ItemRef": {"value": QBO_ITEMS[g]},
                "Qty": str(q),
                "UnitPrice": money(net / q),
            },
        }
        for g, q, net in lines
    ]


def xero_lines(lines: list[tuple[str, F, F]], rates: list[F] | None = None) -> list[dict[str, Any]]:
    items = []
    for i, (g, q, gross) in enumerate(lines):
        line = {
            "ItemCode": XERO_CODES[g],
            "Description": g,
            "Quantity": str(q),
            "UnitAmount": money(gross / q),
        }
        if rates and rates[i]:
            line["DiscountRate"] = str(Decimal(rates[i].numerator) / rates[i].denominator)
        items.append(line)
    return items


def money(x: F) -> str:
    assert (x * 100).denominator == 1, x
    return str(Decimal(x.numerator) / x.denominator)


# ---- the comparison -------------------------------------------------------------------------------------
Shown = tuple[Decimal, Decimal, Decimal | None, Decimal | None, Decimal]


def expected(lines: list[Line]) -> Shown:
    revenue = sum((line.revenue for line in lines), Decimal(0))
    cogs = cents(sum((line.cogs for line in lines), F(0)))
    uncosted = sum((line.uncosted for line in lines), F(0))
    open_units: Counter[str] = Counter()
    for line in lines:
        open_units.update(line.open)
    margin = None if any(open_units.values()) else revenue - cogs
    pct = None if margin is None or not revenue else cents(F(margin) * 100 / F(revenue))
    return revenue, cogs, margin, pct, Decimal(uncosted.numerator) / uncosted.denominator


def shown(f: dict[str, Any]) -> Shown:
    def d(v: Any) -> Decimal | None:
        return None if v is None else Decimal(v)

    return (
        Decimal(f["revenue"]),
        Decimal(f["cogs"]),
        d(f["margin"]),
        d(f["margin_pct"]),
        Decimal(f["uncosted"]).normalize() + 0,
    )


def disagreements(history: History) -> list[str]:
    books, api = history.books, history.api
    lines = books.replay()
    report = ok(api.call("GET", "/margins"))
    found = []
    docs = {d["number"]: d for d in report["documents"]}
    sku_of = {p["product_id"]: p["sku"] for p in ok(api.call("GET", "/products?limit=500"))["items"]}
    good_of = {pid: g for g, pid in history.products.items()}
    for doc in books.docs.values():
        got = docs.get(doc.number)
        if doc.status == "deleted":
            if got is not None:
                found.append(f"{doc.number}: deleted, still reported")
            continue
        if got is None:
            found.append(f"{doc.number}: not reported")
            continue
        mine = [lines[doc.doc_id, i] for i in range(len(doc.lines))] if doc.status == "active" else []
        by_good = {good_of.get(line["product_id"]): line for line in got["lines"]}
        for i, (good, _, _) in enumerate(doc.lines if doc.status == "active" else []):
            theirs = by_good.get(good)
            if theirs is None:
                found.append(f"{doc.number} {good}: line missing")
                continue
            want = expected([mine[i]])
            if shown(theirs["figures"]) != want:
                found.append(f"{doc.number} {good}: {shown(theirs['figures'])} != {want}")
            lots = [(lot["lot_id"], F(lot["quantity"])) for lot in theirs["lots"]]
            if lots != [(lot, n) for lot, n, _ in mine[i].lots]:
                found.append(f"{doc.number} {good} lots: {lots} != {mine[i].lots}")
            for lot, (_, _, cost) in zip(theirs["lots"], mine[i].lots, strict=False):
                if abs(F(lot["cost"]) - cost) > F(1, 10**24):
                    found.append(
                        f"{doc.number} {good} lot {lot['lot_id']} cost {lot['cost']} != {float(cost)}"
                    )
        if shown(got["figures"]) != expected(mine):
            found.append(f"{doc.number}: {shown(got['figures'])} != {expected(mine)}")
        beyond_stock_given_back = any(n < 0 for line in mine for n in line.open.values())
        if beyond_stock_given_back and not any("gives back" in issue for issue in got["issues"]):
            found.append(f"{doc.number}: gives back uncosted units without saying so: {got['issues']}")
    every = list(lines.values())
    if shown(report["totals"]) != expected(every):
        found.append(f"totals: {shown(report['totals'])} != {expected(every)}")
    products = ok(api.call("GET", "/margins?group=product"))["groups"]
    for group in products:
        good = good_of[group["key"]]
        mine = [
            lines[d.doc_id, i]
            for d in books.docs.values()
            if d.status == "active"
            for i, (g, _, _) in enumerate(d.lines)
            if g == good
        ]
        if shown(group["figures"]) != expected(mine):
            found.append(f"product {sku_of[group['key']]}: {shown(group['figures'])} != {expected(mine)}")
    months = ok(api.call("GET", "/margins?group=period"))["groups"]
    for group in months:
        mine = [
            lines[d.doc_id, i]
            for d in books.docs.values()
            if d.status == "active" and d.day.strftime("%Y-%m") == group["key"]
            for i in range(len(d.lines))
        ]
        if shown(group["figures"]) != expected(mine):
            found.append(f"month {group['key']}: {shown(group['figures'])} != {expected(mine)}")
    window = random.Random(len(books.docs))  # a date range (its own draw: the history stays as it is)
    first = START + timedelta(days=window.randrange(12))
    last = first + timedelta(days=window.randrange(3, 12))
    ranged = ok(api.call("GET", f"/margins?group=product&from={first}&to={last}"))["totals"]
    mine = [
        lines[d.doc_id, i]
        for d in books.docs.values()
        if d.status == "active" and first <= d.day <= last
        for i in range(len(d.lines))
    ]
    if shown(ranged) != expected(mine):
        found.append(f"{first} to {last}: {shown(ranged)} != {expected(mine)}")
    return found


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_margins_agree_with_an_exact_accountant(
    api: Api, sandboxes: Sandboxes, provider: str, seed: int
) -> None:
    history = History(api, sandboxes, provider, seed)
    history.setup()
    history.days(0, 14)
    history.pull()
    first = disagreements(history)
    for _ in range(3):
        history.change()
    # a receipt of a finished good dated back before sales already pulled: they cost again from it
    back = START + timedelta(days=history.rng.randrange(10))
    history.receipt(datetime.combine(back, time(8), UTC), history.rng.choice(GOODS))
    history.days(14, 24)
    history.pull()
    second = disagreements(history)
    assert (first, second) == ([], []), "\n".join(["after the first pull:", *first, "at the end:", *second])
    if seed in (1, 2):  # the default seeds' histories hold what the accountant is here for (and all but
        # qbo-2 a credit not restocked)
        met = {k for k, n in (history.books.seen + history.kinds).items() if n}
        wanted = {"credit giving back uncosted units", "credit beyond its sale", "credit naming no sale"}
        assert wanted | {"foreign", "sale beyond stock"} <= met, met
