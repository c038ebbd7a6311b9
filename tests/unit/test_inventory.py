"""Receipts, QA rejections and builds: lots, FIFO component consumption, shortages, multi-level builds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.inventory import (
    Build,
    Component,
    LaterUseUncovered,
    Receipt,
    ReceiptLine,
    ShortageError,
    Stock,
    build_movement,
    build_record,
    consumed,
    receipt_movements,
    record_build,
    rejection_movements,
    rejection_of,
    resumed,
    same_stock,
    stock_of,
)
from shared.domain.ledger import AnyMovement, Ledger, SaleOut, order_key

D = Decimal
T0 = datetime(2025, 3, 1, 8, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def receive(ledger: Ledger, receipt_id: str, at: int, *lines: tuple[str, str, str]) -> Receipt:
    """Lines are (product, accepted quantity, unit cost)."""
    receipt = Receipt(
        receipt_id=receipt_id,
        supplier_id="SUP",
        received_at=day(at),
        lines=tuple(
            ReceiptLine(line_id=str(i), product_id=p, accepted=D(q), unit_cost=D(c))
            for i, (p, q, c) in enumerate(lines)
        ),
    )
    ledger.change(add=receipt_movements(receipt))
    return receipt


def make_build(build_id: str, product: str, qty: str, at: int, **per_unit: str) -> Build:
    components = tuple(Component(product_id=p, quantity_per_unit=D(q)) for p, q in per_unit.items())
    return Build(
        build_id=build_id, product_id=product, quantity=D(qty), built_at=day(at), components=components
    )


def test_a_build_consumes_components_oldest_lot_first_and_costs_the_finished_lot_exactly() -> None:
    ledger = Ledger()
    receive(ledger, "R1", 0, ("A", "4", "1.25"), ("B", "10", "0.40"))
    receive(ledger, "R2", 1, ("A", "10", "1.50"))
    record = record_build(ledger, make_build("B1", "F", "3", 2, A="2", B="3"))
    # A: 6 needed = 4 x 1.25 (R1) + 2 x 1.50 (R2) = 5.00 + 3.00 = 8.00; B: 9 x 0.40 = 3.60; total 11.60
    a, b = record.components
    assert [(d.lot_id, d.quantity, d.cost) for d in a.lots] == [
        ("R1/0", 4, D("5.00")),
        ("R2/0", 2, D("3.00")),
    ]
    assert (a.cost, b.cost, record.cost) == (D("8.00"), D("3.60"), D("11.60"))
    assert record.unit_cost == D("3.866666666666666666666666666666667")  # kept to 34 digits, not cents
    assert [(layer.lot_id, layer.quantity, layer.cost) for layer in ledger.layers("F")] == [
        ("B1", 3, D("11.60"))
    ]


def test_too_little_stock_refuses_the_build_with_each_shortage_and_applies_nothing() -> None:
    ledger = Ledger()
    receive(ledger, "R1", 0, ("A", "5", "1.00"), ("B", "2", "1.00"), ("C", "100", "1.00"))
    before = (ledger.entries(), ledger.layers("A"), ledger.layers("B"))
    with pytest.raises(ShortageError) as refused:
        record_build(ledger, make_build("B1", "F", "3", 1, A="2", B="3", C="1"))
    assert [(s.product_id, s.required, s.available, s.short) for s in refused.value.shortages] == [
        ("A", 6, 5, 1),
        ("B", 9, 2, 7),
    ]
    assert "A short 1" in refused.value.message and "B short 7" in refused.value.message
    assert (ledger.entries(), ledger.layers("A"), ledger.layers("B")) == before
    assert ledger.document_movements("B1") == []


def test_stock_is_checked_at_the_builds_own_time() -> None:
    ledger = Ledger()
    receive(ledger, "R1", 5, ("A", "10", "1.00"))
    with pytest.raises(ShortageError):
        record_build(ledger, make_build("B1", "F", "1", 2, A="1"))  # dated before the stock arrived


def test_an_edited_build_that_would_be_short_keeps_its_previous_version() -> None:
    ledger = Ledger()
    receive(ledger, "R1", 0, ("A", "4", "1.00"))
    record_build(ledger, make_build("B1", "F", "2", 1, A="1"))
    with pytest.raises(ShortageError):
        record_build(ledger, make_build("B1", "F", "5", 1, A="1"))
    assert build_record(ledger, make_build("B1", "F", "2", 1, A="1")).cost == D("2.00")
    assert ledger.on_hand("F") == 2


def test_a_build_back_dated_or_moved_before_a_later_build_that_it_would_leave_short_is_refused() -> None:
    """A build reads the components' records from its own place on (or its earlier version's, if earlier):
    a later build it would leave short is named, whether the build is new or an edit moved it, and nothing
    changes; one moved after every other use is made."""
    ledger = Ledger()
    for n in range(200):  # history before: what the build need not read
        receive(ledger, f"R{n}", 0, ("A", "1", "1.00"))
        record_build(ledger, make_build(f"old{n}", "G", "1", 0, A="1"))
    receive(ledger, "R", 1, ("A", "5", "2.00"))
    record_build(ledger, make_build("late", "F", "3", 5, A="1"))
    with pytest.raises(LaterUseUncovered) as short:
        record_build(ledger, make_build("early", "F", "3", 3, A="1"))
    assert [(e.document_id, e.uncosted) for e in short.value.uncovered] == [("late", D(1))]
    record_build(ledger, make_build("after", "F", "2", 7, A="1"))
    with pytest.raises(LaterUseUncovered):  # an edit moving it before "late" with one more takes its stock
        record_build(ledger, make_build("after", "F", "3", 4, A="1"))
    assert ledger.on_hand("A") == 0 and ledger.on_hand("F") == 5
    record_build(ledger, make_build("late", "F", "3", 8, A="1"))  # moved after "after": both covered
    assert build_record(ledger, make_build("late", "F", "3", 8, A="1")).cost == D("6.00")


def test_multi_level_build_carries_the_sub_assemblys_cost_into_the_finished_good() -> None:
    ledger = Ledger()
    receive(ledger, "R1", 0, ("A", "10", "0.50"), ("B", "4", "2.25"))
    sub = record_build(ledger, make_build("S1", "SUB", "2", 1, A="3"))  # 6 x 0.50 = 3.00, 1.50 each
    top = record_build(ledger, make_build("T1", "TOP", "1", 2, SUB="2", B="1"))  # 3.00 + 2.25 = 5.25
    assert (sub.cost, top.cost) == (D("3.00"), D("5.25"))
    assert [d.lot_id for c in top.components for d in c.lots] == ["S1", "R1/1"]
    ledger.change(
        add=[SaleOut(movement_id="S/1", document_id="S", at=day(3), product_id="TOP", quantity=D(1))]
    )
    assert ledger.entries_of("S/1")[0].draws[0][:3] == ("T1", 1, D("5.25"))


def test_a_back_dated_receipt_re_costs_a_later_build_and_its_sales() -> None:
    ledger = Ledger()
    receive(ledger, "R2", 2, ("A", "2", "1.00"), ("A", "2", "3.00"))
    build = make_build("B1", "F", "2", 5, A="1")
    assert record_build(ledger, build).cost == D("2.00")  # 2 x 1.00 from R2
    ledger.change(add=[SaleOut(movement_id="S/1", document_id="S", at=day(6), product_id="F", quantity=D(1))])
    receive(ledger, "R1", 1, ("A", "2", "0.25"))  # arrived before R2: FIFO now takes it first
    assert build_record(ledger, build).cost == D("0.50")  # 2 x 0.25
    assert ledger.entries_of("S/1")[0].cost == D("0.25")


def test_receipt_line_priced_as_a_total_splits_exactly_between_accepted_and_rejected() -> None:
    # 3 units invoiced at 10.00 for the line; QA rejects 1: accepted 6.666..., rejected 3.333..., sum 10.00
    line = ReceiptLine(line_id="1", product_id="A", accepted=D(2), rejected=D(1), line_cost=D("10.00"))
    receipt = Receipt(receipt_id="R1", received_at=day(0), lines=(line,))
    rejection = rejection_of(receipt)
    assert rejection is not None and rejection.rejection_id == "R1/rejected"
    assert receipt.accepted_cost + rejection.cost == D("10.00")
    assert receipt.accepted_cost.quantize(D("0.001")) == D("6.667")


def test_rejected_units_never_enter_stock() -> None:
    line = ReceiptLine(line_id="1", product_id="A", accepted=D(2), rejected=D(3), unit_cost=D("4.00"))
    receipt = Receipt(receipt_id="R1", received_at=day(0), lines=(line,))
    rejection = rejection_of(receipt)
    assert rejection is not None
    sale = SaleOut(movement_id="S/1", document_id="S", at=day(1), product_id="A", quantity=D(4))
    ledger = Ledger([*receipt_movements(receipt), *rejection_movements(rejection), sale])
    (waste,) = ledger.entries_of("R1/rejected/0")
    assert (waste.quantity, waste.cost) == (3, D("12.00"))
    assert ledger.entries_of("S/1")[0].uncosted == 2  # only the 2 accepted units could be sold


def test_a_receipt_line_needs_exactly_one_price() -> None:
    with pytest.raises(ValueError, match="either unit_cost or line_cost"):
        ReceiptLine(line_id="1", product_id="A", accepted=D(1), unit_cost=D(1), line_cost=D(1))


RECIPES = {"M": {"A": "1", "B": "0.5"}, "N": {"B": "1.5", "C": "2"}, "T": {"M": "1", "N": "2", "C": "0.25"}}
COSTS = st.sampled_from(["0.07", "1.333", "3"])
RAW_LINES = st.lists(
    st.tuples(st.sampled_from("ABC"), st.sampled_from(["3", "7", "12.5"]), COSTS),
    min_size=1,
    max_size=3,
    unique_by=lambda line: line[0],
)
BUILT = st.tuples(st.sampled_from(sorted(RECIPES)), st.sampled_from(["1", "0.5", "2"]))
# each event: hours after the one before (before it: back-dated), then a receipt's lines or a build
HISTORY = st.lists(st.tuples(st.integers(-3, 6), st.one_of(RAW_LINES, BUILT)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(history=HISTORY)
def test_a_write_after_its_products_latest_movements_costs_the_same_on_just_their_stock(
    history: list[tuple[int, list[tuple[str, str, str]] | tuple[str, str]]],
) -> None:
    """Each receipt and build that ``resumed`` accepts gives, on just the stock of the products it consumes,
    the whole ledger's results and stock to the digit; back-dated ones are left to the whole ledger."""
    ledger, when = Ledger(), 20
    for number, (step, event) in enumerate(history):
        when += step
        build = None
        moved: list[AnyMovement]
        if isinstance(event, list):
            lines = tuple(
                ReceiptLine(line_id=str(i), product_id=p, accepted=D(q), unit_cost=D(c))
                for i, (p, q, c) in enumerate(event)
            )
            moved = [
                *receipt_movements(
                    Receipt(receipt_id=f"R{number}", received_at=day(when), seq=number, lines=lines)
                )
            ]
        else:
            product, quantity = event
            build = make_build(f"B{number}", product, quantity, when, **RECIPES[product]).model_copy(
                update={"seq": number}
            )
            moved = [build_movement(build)]
        used = consumed(moved)
        touched = sorted({p for m in moved for p in m.products()})
        before = stock_of(ledger, touched)
        latest = {p: found.last for p, found in before.items() if p not in used}
        small = resumed({p: before[p] for p in used if p in before}, latest, moved)
        if small is not None:
            assert all(before[p].last < order_key(moved[0]) for p in touched)
        outcome = _apply(ledger, moved, build)
        if small is None:
            continue
        assert repr(_apply(small, moved, build)) == repr(outcome)  # a Decimal's repr shows its digits
        if isinstance(outcome, tuple):  # refused: nothing is stored
            continue
        after, on_small = stock_of(ledger, touched), stock_of(small, touched)
        for p in touched:
            if p in used:
                assert same_stock(after[p], on_small[p])
            else:  # only added to: what it had, then what the write added
                assert same_stock(after[p], Stock(before[p].lots + on_small[p].lots, on_small[p].last))


def _apply(ledger: Ledger, moved: list[AnyMovement], build: Build | None) -> object:
    if build is None:
        ledger.change(add=moved)
        return None
    try:
        return record_build(ledger, build)
    except ShortageError as short:
        return short.shortages
    except LaterUseUncovered as later:  # back-dated: only the whole ledger knows the later records
        return later.uncovered
