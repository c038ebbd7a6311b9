"""Probe: margins over HTTP with odd unit costs, a discount spread, a partial linked credit, a void, an edited
quantity and a foreign-currency invoice, each figure checked against FIFO worked in the test with Fractions
from the inputs alone (README "Sales and margins": line revenue to the cent half up, a total's COGS its
lines' exact cost rounded once, margin = revenue - COGS, margin % to the cent half up)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction as F
from typing import Any

import pytest

from infra.sandboxes.qbo_demo import BRACKET_20, BRACKET_40, DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_margins import by_number, figures, ok, products_by_sku, receive

pytestmark = pytest.mark.usefixtures("no_real_sleep")


def cents(x: F) -> Decimal:
    """Round an exact Fraction to cents, half up (away from zero on a half, as Decimal ROUND_HALF_UP)."""
    q = abs(x) * 100
    n = q.numerator // q.denominator
    if q - n >= F(1, 2):
        n += 1
    return Decimal(n if x >= 0 else -n) / 100


def spread(amount: F, weights: list[F]) -> list[F]:
    """Largest-remainder split to the cent (ties to the earlier part)."""
    exact = [amount * w / sum(weights) for w in weights]
    floors = [F(int(e * 100), 100) for e in exact]
    left = int((amount - sum(floors)) * 100)
    for i in sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))[:left]:
        floors[i] += F(1, 100)
    return floors


class Fifo:
    def __init__(self) -> None:
        self.lots: dict[str, list[tuple[str, F, F]]] = {}  # product -> [(lot, qty, unit)]
        self.draws: dict[tuple[str, str], list[tuple[str, F, F]]] = {}  # (doc, product) -> draws

    def add(self, product: str, lot: str, qty: F, unit: F) -> None:
        self.lots.setdefault(product, []).append((lot, qty, unit))

    def take(self, doc: str, product: str, qty: F) -> F:
        cost, taken = F(0), []
        stock = self.lots[product]
        while qty:
            lot, have, unit = stock[0]
            n = min(have, qty)
            qty -= n
            cost += n * unit
            taken.append((lot, n, unit))
            stock[0] = (lot, have - n, unit)
            if not stock[0][1]:
                stock.pop(0)
        self.draws.setdefault((doc, product), []).extend(taken)
        return cost

    def give_back(self, doc: str, product: str, qty: F) -> F:
        """Return to the lots the sale drew from, the last drawn first, at their cost."""
        cost = F(0)
        draws = self.draws[(doc, product)]
        while qty:
            lot, n, unit = draws[-1]
            m = min(n, qty)
            qty -= m
            cost += m * unit
            draws[-1] = (lot, n - m, unit)
            if not draws[-1][1]:
                draws.pop()
            stock = self.lots[product]
            for i, (name, have, u) in enumerate(stock):
                if name == lot:
                    stock[i] = (name, have + m, u)
                    break
            else:  # the lot was used up: it is back, in its place in FIFO order (lots are named in order)
                stock.append((lot, m, unit))
                stock.sort(key=lambda s: s[0])
        return cost


def expected(revenue: Decimal, exact_cogs: F) -> tuple[Decimal, Decimal, Decimal, Decimal | None]:
    cogs = cents(exact_cogs)
    margin = revenue - cogs
    pct = None if not revenue else cents(F(margin) * 100 / F(revenue))
    return (revenue, cogs, margin, pct)


def line_of(doc: dict[str, Any], sku: str) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [line for line in doc["lines"] if line["sku"] == sku]
    assert len(lines) == 1, doc
    return lines[0]


def test_probe_margins_exact(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    qbo = sandboxes.qbo
    sku = products_by_sku(api, "qbo", [BRACKET_20, BRACKET_40])
    w20, w40 = "FG-WB-20", "FG-WB-40"
    inputs = [
        ("A", w20, "7", "0.333"),
        ("B", w20, "10", "1.005"),
        ("C", w40, "5", "0.125"),
        ("D", w40, "4", "2.3333"),
    ]
    receive(api, [(n, sku[s], q, c) for n, s, q, c in inputs])
    fifo = Fifo()
    for n, s, q, c in inputs:
        fifo.add(s, n, F(q), F(c))
    customer = qbo.create_record(DEMO_REALM_ID, "Customer", {"DisplayName": "Probe"})["Id"]

    def line(item: str, qty: int, price: str) -> dict[str, Any]:
        return {
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": price},
        }

    def create(kind: str, number: str, day: str, lines: list[dict[str, Any]], **extra: Any) -> str:
        body = {
            "CustomerRef": {"value": customer},
            "DocNumber": number,
            "TxnDate": day,
            "Line": lines,
            **extra,
        }
        return str(qbo.create_record(DEMO_REALM_ID, kind, body)["Id"])

    discount = {
        "DetailType": "DiscountLineDetail",
        "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10},
    }
    p1 = create(
        "Invoice", "P-1", "2026-11-12", [line(BRACKET_20, 5, "2.35"), line(BRACKET_40, 3, "1.99"), discount]
    )
    p2 = create("Invoice", "P-2", "2026-11-13", [line(BRACKET_20, 6, "1.10")])
    p3 = create("Invoice", "P-3", "2026-11-14", [line(BRACKET_20, 3, "9.99")])
    create(
        "CreditMemo",
        "P-CM",
        "2026-11-15",
        [line(BRACKET_20, 2, "2.35")],
        LinkedTxn=[{"TxnId": p1, "TxnType": "Invoice"}],
    )
    create(
        "Invoice",
        "P-4",
        "2026-11-16",
        [line(BRACKET_20, 3, "1.15"), line(BRACKET_40, 2, "3.33")],
        CurrencyRef={"value": "EUR", "name": "Euro"},
        ExchangeRate="1.0850",
    )
    p5 = create("Invoice", "P-5", "2026-11-17", [line(BRACKET_40, 4, "5.00")])
    create(
        "CreditMemo",
        "P-CM2",
        "2026-11-18",
        [line(BRACKET_40, 1, "5.00")],
        LinkedTxn=[{"TxnId": p5, "TxnType": "Invoice"}],
    )
    ok(
        api.call(
            "PUT", "/integrations/qbo/sales-tracking", json_body={"enabled": True, "start_date": "2026-11-12"}
        )
    )
    api.pull_sales()
    qbo.clock.advance(60)
    qbo.edit_record(DEMO_REALM_ID, "Invoice", p2, {"Line": [line(BRACKET_20, 4, "1.10")]})
    qbo.void_record(DEMO_REALM_ID, "Invoice", p3)
    api.pull_sales()

    # ---- by hand ----
    exp: dict[str, dict[str, tuple[Decimal, F]]] = {}  # doc -> sku -> (revenue, exact cogs)
    # P-1: QBO's discount is 10 % of 17.72 = 1.772 -> 1.77, spread by line amount
    gross = [F("11.75"), F("5.97")]
    disc = spread(F(cents(F("17.72") / 10)), gross)
    exp["P-1"] = {
        w20: (cents(gross[0] - disc[0]), fifo.take("P-1", w20, F(5))),
        w40: (cents(gross[1] - disc[1]), fifo.take("P-1", w40, F(3))),
    }
    exp["P-2"] = {w20: (cents(4 * F("1.10")), fifo.take("P-2", w20, F(4)))}
    exp["P-CM"] = {w20: (-cents(2 * F("2.35")), -fifo.give_back("P-1", w20, F(2)))}
    rate = F("1.0850")
    exp["P-4"] = {
        w20: (cents(3 * F("1.15") * rate), fifo.take("P-4", w20, F(3))),
        w40: (cents(2 * F("3.33") * rate), fifo.take("P-4", w40, F(2))),
    }
    exp["P-5"] = {w40: (cents(4 * F(5)), fifo.take("P-5", w40, F(4)))}
    exp["P-CM2"] = {w40: (-cents(F(5)), -fifo.give_back("P-5", w40, F(1)))}

    report = ok(api.call("GET", "/margins"))
    assert by_number(report)["P-3"]["status"] == "voided" and by_number(report)["P-3"]["lines"] == []
    check(api, report, exp, (w20, w40))


def check(
    api: Api, report: dict[str, Any], exp: dict[str, dict[str, tuple[Decimal, F]]], skus: tuple[str, ...]
) -> None:
    docs = by_number(report)
    problems = []
    for number, lines in exp.items():
        doc = docs[number]
        for s, (revenue, cogs) in lines.items():
            got = figures(line_of(doc, s)["figures"])
            if got != expected(revenue, cogs):
                problems.append((number, s, got, expected(revenue, cogs)))
        want = expected(
            sum((r for r, _ in lines.values()), Decimal(0)), sum((c for _, c in lines.values()), F(0))
        )
        if figures(doc["figures"]) != want:
            problems.append((number, "doc", figures(doc["figures"]), want))
    everything = [v for lines in exp.values() for v in lines.values()]
    want = expected(sum((r for r, _ in everything), Decimal(0)), sum((c for _, c in everything), F(0)))
    if figures(report["totals"]) != want:
        problems.append(("totals", "", figures(report["totals"]), want))
    groups = {
        g["label"].split()[0]: figures(g["figures"])
        for g in ok(api.call("GET", "/margins?group=product"))["groups"]
    }
    for s in skus:
        mine = [lines[s] for lines in exp.values() if s in lines]
        want = expected(sum((r for r, _ in mine), Decimal(0)), sum((c for _, c in mine), F(0)))
        if groups[s] != want:
            problems.append(("product", s, groups[s], want))
    (month,) = ok(api.call("GET", "/margins?group=period&from=2026-11-01&to=2026-11-30"))["groups"]
    want = expected(sum((r for r, _ in everything), Decimal(0)), sum((c for _, c in everything), F(0)))
    if figures(month["figures"]) != want:
        problems.append(("period", "", figures(month["figures"]), want))
    issues = [(d["number"], d["issues"]) for d in report["documents"] if d["issues"]]
    assert problems == [], "\n".join(map(str, [*problems, report["notes"], issues]))


def test_probe_xero_margins_exact(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    xero = sandboxes.xero
    sku = products_by_sku(api, "xero", [demo_id(AU_TENANT_ID, "item", c) for c in ("WIDGET-10", "BOLT-M8")])
    w, b = "WIDGET-10", "BOLT-M8"
    inputs = [("W1", w, "3", "0.333"), ("W2", w, "10", "1.005"), ("X", b, "7", "0.0125")]
    receive(api, [(n, sku[s], q, c) for n, s, q, c in inputs])
    fifo = Fifo()
    for n, s, q, c in inputs:
        fifo.add(s, n, F(q), F(c))
    harbour = {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")}

    def add(
        collection: str,
        number: str,
        day: str,
        lines: list[dict[str, Any]],
        status: str = "AUTHORISED",
        **extra: Any,
    ) -> str:
        kind = "ACCREC" if collection == "Invoices" else "ACCRECCREDIT"
        key = "InvoiceNumber" if collection == "Invoices" else "CreditNoteNumber"
        record = {
            key: number,
            "Type": kind,
            "Contact": harbour,
            "Date": day,
            "Status": status,
            "LineItems": lines,
            **extra,
        }
        made = xero.add_record(AU_TENANT_ID, collection, record)
        return str(made["InvoiceID" if collection == "Invoices" else "CreditNoteID"])

    x1 = add(
        "Invoices",
        "X-1",
        "2026-11-12",
        [
            {"ItemCode": w, "Quantity": "4", "UnitAmount": "6.00", "DiscountRate": "12.5"},
            {"ItemCode": b, "Quantity": "5", "UnitAmount": "0.33"},
        ],
    )
    add(
        "Invoices",
        "X-2",
        "2026-11-13",
        [
            {"ItemCode": w, "Quantity": "3", "UnitAmount": "1.01"},
            {"ItemCode": b, "Quantity": "1", "UnitAmount": "0.03"},
        ],
        CurrencyCode="USD",
        CurrencyRate="1.2",
    )
    add(
        "CreditNotes",
        "X-CN",
        "2026-11-14",
        [{"ItemCode": w, "Quantity": "1", "UnitAmount": "5.25"}],
        Allocations=[{"Invoice": {"InvoiceID": x1}, "Amount": "5.25", "Date": "2026-11-14"}],
    )
    x3 = add("Invoices", "X-3", "2026-11-15", [{"ItemCode": w, "Quantity": "5", "UnitAmount": "2.00"}])
    x4 = add("Invoices", "X-4", "2026-11-16", [{"ItemCode": w, "Quantity": "1", "UnitAmount": "9.00"}])
    ok(
        api.call(
            "PUT",
            "/integrations/xero/sales-tracking",
            json_body={"enabled": True, "start_date": "2026-11-12"},
        )
    )
    api.pull_sales()
    xero.clock.advance(60)
    xero.edit_record(
        AU_TENANT_ID, "Invoices", x3, {"LineItems": [{"ItemCode": w, "Quantity": "2", "UnitAmount": "2.00"}]}
    )
    xero.void_record(AU_TENANT_ID, "Invoices", x4)
    api.pull_sales()

    exp: dict[str, dict[str, tuple[Decimal, F]]] = {}
    exp["X-1"] = {
        w: (cents(4 * F(6) * F(875, 1000)), fifo.take("X-1", w, F(4))),
        b: (cents(5 * F("0.33")), fifo.take("X-1", b, F(5))),
    }
    usd = 1 / F("1.2")  # AUD per USD
    exp["X-2"] = {
        w: (cents(3 * F("1.01") * usd), fifo.take("X-2", w, F(3))),
        b: (cents(F("0.03") * usd), fifo.take("X-2", b, F(1))),
    }
    exp["X-CN"] = {w: (-cents(F("5.25")), -fifo.give_back("X-1", w, F(1)))}
    exp["X-3"] = {w: (cents(2 * F(2)), fifo.take("X-3", w, F(2)))}
    report = ok(api.call("GET", "/margins"))
    assert by_number(report)["X-4"]["status"] == "voided" and by_number(report)["X-CN"]["issues"] == []
    check(api, report, exp, (w, b))
