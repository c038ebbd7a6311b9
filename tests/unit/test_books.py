"""The books rule, worked by hand and over random histories: for every account, what is posted equals the
stock ledger's value rounded to the cent (never a cent or more away), every journal balances, and changes
to values already posted come back as true-ups."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain import books
from shared.domain.books import Balances, EventKey
from shared.domain.inventory import (
    Build,
    Component,
    LaterUseUncovered,
    Receipt,
    ReceiptLine,
    receipt_movements,
    record_build,
    rejection_movements,
    rejection_of,
)
from shared.domain.ledger import AnyMovement, Ledger, ReceiptIn, SaleOut, SaleReturn
from shared.money import CENT, ZERO, to_cents, total

D = Decimal
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
ROLES = {
    "receiving_debit": "INV",
    "build_debit": "FG",
    "receiving_credit": "AP",
    "waste": "WASTE",
    "cogs": "COGS",
}


def account(role: str) -> str:
    return ROLES["build_debit" if role == "subassembly" else role]  # no WIP account: finished goods


def utc_day(at: datetime) -> date:
    return at.astimezone(UTC).date()


class Books:
    """The export side in miniature: plans events in the order they are exported, true-ups first."""

    def __init__(self, rounding: str | None = None) -> None:
        self.rounding = rounding
        self.ledger = Ledger()
        self.posted: Balances = {}
        self.planned: list[EventKey] = []
        self.journals: list[tuple[str, Balances]] = []

    def record(self, movements: list[AnyMovement]) -> None:
        self.ledger.change(add=movements)

    def export(self, event: EventKey) -> Balances:
        found = books.effects(self.ledger, utc_day)
        trued, after = books.plan(found, self.planned, event, self.posted, account, self.rounding)
        if trueup := books.difference(trued, self.posted):
            self.journals.append(("trueup", trueup))
        journal = books.difference(after, trued)
        self.journals.append((f"{event[0]} {event[1]}", journal))
        self.posted, self.planned = after, [*self.planned, event]
        return journal

    def true_up(self) -> None:
        found = books.effects(self.ledger, utc_day)
        trued, _ = books.plan(found, self.planned, None, self.posted, account, self.rounding)
        if trueup := books.difference(trued, self.posted):
            self.journals.append(("trueup", trueup))
            self.posted = trued

    def exact(self) -> Balances:
        return books.subledger(books.effects(self.ledger, utc_day), self.planned, account)


def receipt(rid: str, at: datetime, *lines: tuple[str, str, str, str]) -> Receipt:
    """lines: (product, accepted, rejected, unit cost)"""
    return Receipt(
        receipt_id=rid,
        received_at=at,
        lines=tuple(
            ReceiptLine(line_id=str(n), product_id=p, accepted=D(a), rejected=D(r), unit_cost=D(c))
            for n, (p, a, r, c) in enumerate(lines, 1)
        ),
    )


def build(bid: str, product: str, qty: str, at: datetime, **per_unit: str) -> Build:
    components = tuple(Component(product_id=p, quantity_per_unit=D(q)) for p, q in per_unit.items())
    return Build(build_id=bid, product_id=product, quantity=D(qty), built_at=at, components=components)


def test_four_receipts_at_an_eighth_of_a_cent_post_what_is_on_hand() -> None:
    shop = Books()
    for n in range(4):
        shop.record(list(receipt_movements(receipt(f"R{n}", T0, ("A", "1", "0", "0.125")))))
        shop.export(("receipt", f"R{n}"))
    assert [j["INV"] for _, j in shop.journals] == [D("0.13"), D("0.12"), D("0.13"), D("0.12")]
    assert (shop.posted["INV"], shop.posted["AP"]) == (D("0.50"), D("-0.50"))


def test_three_builds_from_one_receipt_empty_raw_materials_exactly() -> None:
    shop = Books()
    shop.record(list(receipt_movements(receipt("R", T0, ("A", "3", "0", "3.3333333333")))))
    shop.ledger.replace_document("R", [])  # 3 for 10.00 as a line cost
    line = ReceiptLine(line_id="1", product_id="A", accepted=D(3), line_cost=D("10.00"))
    shop.record(list(receipt_movements(Receipt(receipt_id="R", received_at=T0, lines=(line,)))))
    shop.export(("receipt", "R"))
    for n in range(3):
        record_build(shop.ledger, build(f"B{n}", "F", "1", T0 + timedelta(days=n + 1), A="1"))
        shop.export(("build", f"B{n}"))
    builds = [j for name, j in shop.journals if name.startswith("build")]
    assert [j["FG"] for j in builds] == [D("3.33"), D("3.34"), D("3.33")]
    assert all(sum(j.values()) == 0 for j in builds)
    assert shop.posted.get("INV", ZERO) == ZERO and shop.posted["FG"] == D("10.00")


def test_a_receipt_and_its_rejection_credit_exactly_the_supplier_total() -> None:
    shop = Books()
    received = receipt("R", T0, ("A", "1", "1", "0.125"))
    rejection = rejection_of(received)
    assert rejection is not None
    shop.record([*receipt_movements(received), *rejection_movements(rejection)])
    assert shop.export(("receipt", "R")) == {"AP": D("-0.13"), "INV": D("0.13")}
    # AP now holds 0.25 exactly; inventory and waste are 0.125 each: one of them takes 0.12 so it balances
    assert shop.export(("rejection", "R/rejected")) == {"AP": D("-0.12"), "WASTE": D("0.12")}
    assert shop.posted == {"AP": D("-0.25"), "INV": D("0.13"), "WASTE": D("0.12")}


def test_a_rejection_never_gives_the_receiving_credit_a_rounding_cent() -> None:
    """Two at 0.007, one rejected: 0.014 owed, 0.01 rounded. The rejection's journal rounded stock, waste and
    the receiving credit to 0.01 each and gave the odd cent to the one nearest its half cent, the receiving
    credit (-0.02 for a supplier total of 0.01); the waste takes it instead, and the receiving credit holds
    the supplier total. No rounding account: every account stays within a cent of its exact value."""
    found: dict[EventKey, Balances] = {
        ("receipt", "R"): {"inv": D("0.007"), "sup": D("-0.007")},
        ("rejection", "R/rejected"): {"waste": D("0.007"), "sup": D("-0.007")},
    }
    posted: Balances = {}
    planned: list[EventKey] = []
    for event in found:
        _, posted = books.plan(found, planned, event, posted, lambda role: role, steady=("sup",))
        planned.append(event)
    assert posted == {"inv": D("0.01"), "sup": D("-0.01")}


def test_a_sub_assembly_leaves_finished_goods_not_raw_materials() -> None:
    shop = Books()
    shop.record(list(receipt_movements(receipt("R", T0, ("RAW", "10", "0", "1")))))
    record_build(shop.ledger, build("SUB", "S", "1", T0 + timedelta(days=1), RAW="10"))
    record_build(shop.ledger, build("TOP", "P", "1", T0 + timedelta(days=2), S="1"))
    for event in (("receipt", "R"), ("build", "SUB"), ("build", "TOP")):
        shop.export(event)  # type: ignore[arg-type]
    assert shop.posted.get("INV", ZERO) == ZERO and shop.posted["FG"] == D("10.00")
    assert shop.journals[-1][1] == {}  # the finished good moved within finished goods: nothing to post


def test_a_mapped_wip_account_holds_sub_assemblies_until_they_are_consumed() -> None:
    """A built product is a sub-assembly once a build consumes it: its lots sit in WIP (a true-up moves what
    was posted to finished goods before that), and consuming them credits WIP."""
    roles = {**ROLES, "subassembly": "WIP"}
    shop = Books()
    shop.record(list(receipt_movements(receipt("R", T0, ("RAW", "10", "0", "1")))))
    record_build(shop.ledger, build("SUB", "S", "1", T0 + timedelta(days=1), RAW="10"))
    alone = books.effects(shop.ledger, utc_day)
    assert books.subledger(alone, [("build", "SUB")], roles.__getitem__) == {"FG": D(10), "INV": D(-10)}
    record_build(shop.ledger, build("TOP", "P", "1", T0 + timedelta(days=2), S="1"))
    found = books.effects(shop.ledger, utc_day)
    assert books.subledger(found, [("build", "SUB")], roles.__getitem__) == {"WIP": D(10), "INV": D(-10)}
    assert books.subledger(found, [("build", "TOP")], roles.__getitem__) == {"FG": D(10), "WIP": D(-10)}


def test_a_back_dated_build_that_would_empty_a_later_one_is_refused() -> None:
    ledger = Ledger(receipt_movements(receipt("R", T0, ("A", "10", "0", "1"))))
    record_build(ledger, build("B2", "F", "10", T0 + timedelta(days=2), A="1"))
    with pytest.raises(LaterUseUncovered, match="B2") as refused:
        record_build(ledger, build("B1", "F", "10", T0 + timedelta(days=1), A="1"))
    assert refused.value.response_fields()["later_records"][0]["short"] == "10"
    assert [m.movement_id for m in ledger.movements()] == ["R/1", "B2"]  # nothing applied
    assert ledger.entries_of("B2")[0].uncosted == 0


def test_a_back_dated_receipt_that_re_costs_an_exported_build_is_trued_up() -> None:
    shop = Books()
    shop.record(list(receipt_movements(receipt("R2", T0 + timedelta(days=2), ("A", "10", "0", "1")))))
    record_build(shop.ledger, build("B", "F", "5", T0 + timedelta(days=3), A="1"))
    shop.export(("receipt", "R2"))
    shop.export(("build", "B"))
    shop.record(list(receipt_movements(receipt("R1", T0 + timedelta(days=1), ("A", "10", "0", "2")))))
    assert shop.export(("receipt", "R1")) == {"AP": D("-20.00"), "INV": D("20.00")}
    assert shop.journals[-2] == ("trueup", {"FG": D("5.00"), "INV": D("-5.00")})  # the build now costs 10
    assert shop.posted == {"AP": D("-30.00"), "FG": D("10.00"), "INV": D("20.00")}


def test_a_change_held_back_for_the_next_true_up_is_not_trued_up_yet() -> None:
    """A true-up restates only so many exports: the changes of the others wait, held back at the values
    they were planned with, and the next true-up moves exactly them."""
    shop = Books()
    shop.record(list(receipt_movements(receipt("R2", T0 + timedelta(days=2), ("A", "10", "0", "1")))))
    record_build(shop.ledger, build("B1", "F", "5", T0 + timedelta(days=3), A="1"))
    record_build(shop.ledger, build("B2", "F", "5", T0 + timedelta(days=4), A="1"))
    for event in (("receipt", "R2"), ("build", "B1"), ("build", "B2")):
        shop.export(event)  # type: ignore[arg-type]
    was = books.subledger(books.effects(shop.ledger, utc_day), [("build", "B2")], account)
    shop.record(list(receipt_movements(receipt("R1", T0 + timedelta(days=1), ("A", "10", "0", "2")))))
    found = books.effects(shop.ledger, utc_day)
    waiting = books.difference(books.subledger(found, [("build", "B2")], account), was)
    assert waiting == {"FG": D(5), "INV": D(-5)}  # B2 now costs 10.00
    first, _ = books.plan(found, shop.planned, None, shop.posted, account, waiting=waiting)
    assert books.difference(first, shop.posted) == {"FG": D("5.00"), "INV": D("-5.00")}  # B1's change only
    everything, _ = books.plan(found, shop.planned, None, shop.posted, account)
    assert books.difference(everything, first) == {"FG": D("5.00"), "INV": D("-5.00")}  # then B2's


def test_sales_post_cost_of_goods_sold_per_day_and_credits_reverse_it() -> None:
    shop = Books()
    shop.record(list(receipt_movements(receipt("R", T0, ("F", "3", "0", "3.335")))))
    sale = SaleOut(
        movement_id="S/1", document_id="S", at=T0 + timedelta(hours=5), product_id="F", quantity=D(2)
    )
    credit = SaleReturn(
        movement_id="C/1",
        document_id="C",
        at=T0 + timedelta(days=1),
        product_id="F",
        quantity=D(1),
        sale_document_id="S",
    )
    shop.record([sale, credit])
    shop.export(("receipt", "R"))
    assert shop.export(("cogs", "2026-03-01")) == {"COGS": D("6.67"), "INV": D("-6.67")}
    # the credit brings back 3.335: inventory holds 6.67 exactly again, COGS 3.335 rounds up to 3.34
    assert shop.export(("cogs", "2026-03-02")) == {"COGS": D("-3.33"), "INV": D("3.33")}
    assert shop.posted == {"AP": D("-10.01"), "COGS": D("3.34"), "INV": D("6.67")}  # 10.005, 3.335, 6.67


def test_a_credit_that_matches_no_sale_restocks_a_finished_good_into_finished_goods() -> None:
    """Its units come back as a lot of their own at the unit cost of the product's latest lot, and sit where
    that lot sits: finished goods (WIP for a sub-assembly), never the raw materials' account."""
    roles = {**ROLES, "subassembly": "WIP"}
    shop = Books()
    shop.record(list(receipt_movements(receipt("R", T0, ("RAW", "9", "0", "1")))))
    record_build(shop.ledger, build("SUB", "S", "3", T0 + timedelta(days=1), RAW="2"))
    record_build(shop.ledger, build("TOP", "P", "1", T0 + timedelta(days=2), S="1", RAW="1"))
    returned = [  # the lots apply_sales makes of two credits that named no sale
        ReceiptIn(
            movement_id=f"{credit}/1",
            document_id=credit,
            at=T0 + timedelta(days=3),
            product_id=product,
            quantity=D(1),
            lot_id=f"{credit}/1",
            cost=D(cost),
        )
        for credit, product, cost in (("C1", "P", "3"), ("C2", "S", "2"))
    ]
    shop.record(returned)
    found = books.effects(shop.ledger, utc_day, {"C1": "", "C2": ""})
    assert books.subledger(found, [("cogs", "2026-03-04")], roles.__getitem__) == {
        "FG": D(3),
        "WIP": D(2),
        "COGS": D(-5),
    }


def test_a_rounding_account_keeps_every_other_account_at_its_rounded_value() -> None:
    shop = Books(rounding="ROUNDING")
    received = receipt("R", T0, ("A", "1", "1", "0.125"))
    rejection = rejection_of(received)
    assert rejection is not None
    shop.record([*receipt_movements(received), *rejection_movements(rejection)])
    shop.export(("receipt", "R"))
    assert shop.export(("rejection", "R/rejected")) == {
        "AP": D("-0.12"),
        "WASTE": D("0.13"),
        "ROUNDING": D("-0.01"),
    }
    assert shop.posted == {"AP": D("-0.25"), "INV": D("0.13"), "WASTE": D("0.13"), "ROUNDING": D("-0.01")}


def test_a_cent_stepped_to_balance_a_journal_is_not_trued_up_later() -> None:
    """Without a rounding account, a journal balances by leaving an account a cent from its rounded value
    (less than a cent from its exact one). Planning the next event changes no value, so it posts no true-up
    that would only move that cent to another account."""
    found: dict[EventKey, Balances] = {
        ("receipt", "R0"): {"waste": D("1.115"), "cogs": D("0.0051"), "sup": D("-1.1201")},
        ("receipt", "R1"): {"inv": D("0.0051"), "sup": D("0.125"), "cogs": D("-0.1301")},
        ("receipt", "R2"): {"sup": D("0.015"), "inv": D("0.005"), "cogs": D("-0.020")},
    }
    posted: Balances = {}
    planned: list[EventKey] = []
    for event in found:
        trued, after = books.plan(found, planned, event, posted, lambda role: role)
        assert trued == posted, f"a true-up of {books.difference(trued, posted)} before {event}"
        exact = books.subledger(found, [*planned, event], lambda role: role)
        assert total(after.values()) == 0 and all(
            abs(after.get(a, ZERO) - v) < CENT for a, v in exact.items()
        )
        posted, planned = after, [*planned, event]


def test_a_back_dated_receipt_takes_the_cents_that_keep_its_date_nearest_its_exact_value() -> None:
    """Inventory holds 1.506 exactly, posted 1.51 (dated 10 November), and a receipt of 1.504 dated
    20 November is planned (posted 1.50: 3.01 for 3.010). A second receipt of 1.506 dated 10 November: the
    running rounding posts 1.51 (4.52 for 4.516 today), which leaves 10 November at 3.02 for 3.012. The
    cut at 10 November (residue +0.004 before it) and at 20 November (residue 0 before it: the receipt
    after it holds 1.50 for 1.504, -0.004) weigh alike: 1.51 leaves them 0.008 and 0.004 away, 1.50 leaves
    them 0.002 and 0.006 away, so 1.50 is posted, and today's balances stay within a cent."""
    found: dict[EventKey, Balances] = {
        ("receipt", "R10"): {"INV": D("1.506"), "AP": D("-1.506")},
        ("receipt", "R20"): {"INV": D("1.504"), "AP": D("-1.504")},
        ("receipt", "R11"): {"INV": D("1.506"), "AP": D("-1.506")},
    }
    posted = {"INV": D("3.01"), "AP": D("-3.01")}
    tail = {"INV": D("-0.004"), "AP": D("0.004")}  # the 20-November journal less its exact value
    planned: list[EventKey] = [("receipt", "R10"), ("receipt", "R20")]
    later = books.After([tail])
    trued, after = books.plan(
        found, planned, ("receipt", "R11"), posted, lambda r: r, dated_after=lambda _: later
    )
    assert trued == posted and books.difference(after, trued) == {"INV": D("1.50"), "AP": D("-1.50")}
    trued, running = books.plan(found, planned, ("receipt", "R11"), posted, lambda role: role)
    assert books.difference(running, trued) == {"INV": D("1.51"), "AP": D("-1.51")}


MONEY = st.decimals(min_value=-50, max_value=50, places=4, allow_nan=False, allow_infinity=False)
GAPS = st.decimals(min_value=D("-0.02"), max_value=D("0.02"), places=4)


def furthest(trued: Balances, exact: Balances, tails: list[Balances], cents: Balances) -> Decimal:
    """The largest distance from its exact value, at the event's date or a later one, of the accounts an
    event moves once its journal posts ``cents``."""
    return max(
        abs(trued.get(a, ZERO) + cents.get(a, ZERO) - exact[a] - tail.get(a, ZERO))
        for tail in [{}, *tails]
        for a in ("INV", "AP")
    )


@settings(max_examples=600, deadline=None)
@given(
    MONEY,
    MONEY,
    MONEY,
    st.lists(st.tuples(GAPS, GAPS), max_size=5),
    st.sampled_from([(), ("AP",)]),
    st.sampled_from([None, "ROUND"]),
)
def test_an_event_dated_before_others_is_never_further_from_exact_at_any_later_date(
    inventory: Decimal,
    waste: Decimal,
    moved: Decimal,
    gaps: list[tuple[Decimal, Decimal]],
    fixed: tuple[str, ...],
    rounding: str | None,
) -> None:
    """Whatever the books hold after the event's date, the journal ``evened`` chooses balances (``evened_to``
    with a rounding account), leaves no date from the event's on further from its exact value than the
    running rounding's journal would, on any account but the rounding account, and today's balances (with
    the true-up it asks for, which moves no ``fixed`` account) less than a cent from their exact values;
    with a rounding account, every other account at its rounded value, as the running rounding leaves it."""
    exact_before = {"INV": inventory, "WASTE": waste, "AP": -inventory - waste}
    trued = books.rounded(exact_before, {}, exact_before, rounding)
    event = {"INV": moved, "AP": -moved}
    exact = books.summed([exact_before, event])
    tails = [{"INV": a, "WASTE": b, "AP": -a - b} for a, b in gaps]
    if rounding is None:
        before, after = books.evened(trued, exact, event, tails, fixed)
    else:
        before, after = books.evened_to(trued, exact, event, tails, fixed, rounding)
    journal = books.difference(after, before)
    assert total(journal.values()) == 0 and total(before.values()) == 0
    assert not {a for a in fixed if before.get(a, ZERO) != trued.get(a, ZERO)}  # no true-up moves them
    running_after = books.rounded(exact, trued, event, rounding)
    for account_id, value in exact.items():
        held = after.get(account_id, ZERO)
        assert abs(held - value) < CENT and (rounding is None or held == to_cents(value)), (account_id, held)
    if rounding is not None:
        assert books.difference(after, running_after) == {}  # today: the running rounding's balances
    running = books.difference(running_after, trued)
    assert furthest(trued, exact, tails, journal) <= furthest(trued, exact, tails, running), (
        journal,
        running,
    )


def test_a_zero_value_event_has_nothing_to_post() -> None:
    shop = Books()
    shop.record(list(receipt_movements(receipt("FREE", T0, ("A", "5", "0", "0")))))
    assert shop.export(("receipt", "FREE")) == {}


# ---- random histories ---------------------------------------------------------------------------------
COSTS = st.sampled_from(["0.125", "0.333", "1", "2.005", "0.0049", "7.77", "0", "10.01"])
QTY = st.sampled_from(["1", "2", "3", "0.5", "7"])
ACTIONS = ["receipt", "receipt", "build", "build", "sale", "sale", "credit", "edit", "export", "export"]
Step = tuple[str, int, str, str, int, int]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.integers(0, 2),  # which product (and which way: a credit of a sale or not, an edit or a void)
        QTY,
        COSTS,
        st.integers(0, 8),  # day (back-dated when earlier than the last)
        st.integers(0, 1_000),  # which pending event to export, which sale to edit or credit
    ),
    min_size=5,
    max_size=40,
)


def _sale(shop: Books, n: int, step: Step, at: datetime) -> AnyMovement | None:
    """A sale, or a credit (of an earlier sale of the product when ``which`` says so, else of none)."""
    action, which, qty, _, _, pick = step
    product = ["A", "B", "C"][which]
    if action == "sale":
        return SaleOut(movement_id=f"S{n}", document_id=f"S{n}", at=at, product_id=product, quantity=D(qty))
    sales = [m for m in shop.ledger.movements() if isinstance(m, SaleOut) and m.at <= at]
    original = sales[pick % len(sales)] if sales and which else None
    product = original.product_id if original else product
    return SaleReturn(
        movement_id=f"S{n}", document_id=f"S{n}", at=at, product_id=product,
        quantity=min(D(qty), original.quantity) if original else D(qty),
        sale_document_id=original.document_id if original else None, restock=pick % 3 != 0,
    )  # fmt: skip


def _step(shop: Books, pending: list[EventKey], n: int, step: Step) -> None:
    action, which, qty, cost, day_no, pick = step
    at = T0 + timedelta(days=day_no, minutes=n % 3)  # some events share a timestamp
    if action == "receipt":
        got = receipt(f"R{n}", at, ("A", "4", "1" if which == 1 else "0", cost), ("B", qty, "0", cost))
        rejected = rejection_of(got)
        shop.record([*receipt_movements(got), *(rejection_movements(rejected) if rejected else [])])
        pending += [("receipt", f"R{n}")] + ([("rejection", f"R{n}/rejected")] if rejected else [])
    elif action == "build":  # C from A and B; a sub-assembly B2 from C
        made = build(f"B{n}", "C", qty, at, A="1", B="0.5") if which else build(f"B{n}", "B2", "1", at, C=qty)
        try:
            record_build(shop.ledger, made)
        except Exception:
            return  # refused (short, or would empty a later record): nothing happened
        pending.append(("build", f"B{n}"))
    elif action in ("sale", "credit") and (movement := _sale(shop, n, step, at)):
        shop.record([movement])
        pending.append(("cogs", utc_day(at).isoformat()))
    elif action == "edit":  # a sale edited (another quantity) or voided / deleted
        sales = [m for m in shop.ledger.movements() if isinstance(m, SaleOut)]
        if sales:
            sale = sales[pick % len(sales)]
            edited = [sale.model_copy(update={"quantity": D(qty)})] if which else []
            shop.ledger.replace_document(sale.document_id, edited)
    elif action == "export" and pending:
        event = pending.pop(pick % len(pending))
        if event not in shop.planned:
            shop.export(event)


def _check(shop: Books) -> None:
    exact = shop.exact()
    for name, journal in shop.journals:
        assert total(journal.values()) == 0, name
    for account_id in (exact.keys() | shop.posted.keys()) - {shop.rounding}:
        value, held = exact.get(account_id, ZERO), shop.posted.get(account_id, ZERO)
        assert abs(held - value) < CENT, (account_id, held, value)
        if shop.rounding:  # every account holds exactly its rounded value; the rounding account the rest
            assert held == to_cents(value), (account_id, held, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS, st.sampled_from([None, "ROUNDING"]))
def test_posted_equals_the_subledger_to_the_cent_after_every_export(
    steps: list[Step], rounding: str | None
) -> None:
    """After every step (and the true-up a change brings), each account holds the exact value of what was
    exported rounded to the cent (with a rounding account) or within a cent of it (without); once everything
    is exported, stock accounts hold what is on hand."""
    shop, pending = Books(rounding), []
    for n, step in enumerate(steps):
        _step(shop, pending, n, step)
        shop.true_up()
        _check(shop)
    for event in pending:
        if event not in shop.planned:
            shop.export(event)
    _check(shop)
    on_hand = total(layer.cost for p in shop.ledger.products() for layer in shop.ledger.layers(p))
    assert abs(shop.posted.get("INV", ZERO) + shop.posted.get("FG", ZERO) - on_hand) < 2 * CENT
    assert shop.posted.get("INV", ZERO) >= 0 and shop.posted.get("FG", ZERO) >= 0


@pytest.mark.parametrize(
    ("on", "end", "start"),
    [
        (date(2026, 7, 1), (6, 30), date(2026, 7, 1)),  # Australia: the first day of the year
        (date(2026, 6, 30), (6, 30), date(2025, 7, 1)),  # its last day
        (date(2026, 12, 1), (12, 31), date(2026, 1, 1)),
        (date(2025, 3, 1), (2, 29), date(2025, 3, 1)),  # "29 February" ends on the 28th in other years
        (date(2024, 2, 29), (2, 29), date(2023, 3, 1)),
        (date(2026, 4, 1), (3, 31), date(2026, 4, 1)),
    ],
)
def test_the_financial_year_starts_the_day_after_its_end(on: date, end: tuple[int, int], start: date) -> None:
    assert books.financial_year_start(on, *end) == start


@given(st.dates(date(2001, 1, 1), date(2098, 12, 31)), st.integers(1, 12), st.integers(1, 31))
def test_every_day_lies_in_the_year_that_starts_at_most_a_year_before(on: date, month: int, day: int) -> None:
    start = books.financial_year_start(on, month, day)
    assert start <= on < books.financial_year_start(start + timedelta(days=366), month, day)
    assert books.financial_year_start(start, month, day) == start


def test_qbo_names_the_month_its_fiscal_year_starts() -> None:
    from shared.providers.qbo.reports import fiscal_year_start

    assert fiscal_year_start("April", date(2026, 3, 31)) == date(2025, 4, 1)
    assert fiscal_year_start("April", date(2026, 4, 1)) == date(2026, 4, 1)
    assert fiscal_year_start("", date(2026, 12, 1)) == date(2026, 1, 1)  # January when not given
