"""The FIFO ledger: costs to the cent, replay determinism, returns to original lots, fast re-costing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.domain.ledger import (
    AnyMovement,
    BuildRun,
    ComponentUse,
    DuplicateMovement,
    EntryKind,
    Ledger,
    ReceiptIn,
    SaleOut,
    SaleReturn,
)
from shared.money import total

D = Decimal
T0 = datetime(2025, 1, 1, 9, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def receipt(lot: str, product: str, qty: str, cost: str, at: float) -> ReceiptIn:
    return ReceiptIn(
        movement_id=lot,
        document_id=lot,
        at=day(at),
        product_id=product,
        quantity=D(qty),
        lot_id=lot,
        cost=D(cost),
    )


def sale(doc: str, product: str, qty: str, at: float, line: str = "1") -> SaleOut:
    return SaleOut(
        movement_id=f"{doc}/{line}", document_id=doc, at=day(at), product_id=product, quantity=D(qty)
    )


def credit(doc: str, of: str | None, product: str, qty: str, at: float, restock: bool = True) -> SaleReturn:
    return SaleReturn(
        movement_id=f"{doc}/1",
        document_id=doc,
        at=day(at),
        product_id=product,
        quantity=D(qty),
        sale_document_id=of,
        restock=restock,
    )


def build(run: str, product: str, qty: str, at: float, **components: str) -> BuildRun:
    uses = tuple(ComponentUse(product_id=p, quantity=D(q)) for p, q in components.items())
    return BuildRun(
        movement_id=run,
        document_id=run,
        at=day(at),
        product_id=product,
        quantity=D(qty),
        lot_id=run,
        components=uses,
    )


def state(ledger: Ledger) -> tuple[object, ...]:
    return tuple(ledger.entries()), tuple(ledger.layers(p) for p in ledger.products())


def test_sale_consumes_the_oldest_lots_first_to_the_cent() -> None:
    ledger = Ledger(
        [receipt("L2", "A", "10", "31.00", 2), receipt("L1", "A", "10", "25.00", 1), sale("S", "A", "15", 3)]
    )
    (entry,) = ledger.entries_of("S/1")
    # 10 x 2.50 from L1 = 25.00, then 5 x 3.10 from L2 = 15.50: 40.50
    assert entry.cost == D("40.50")
    assert [(d.lot_id, d.quantity, d.cost) for d in entry.draws] == [
        ("L1", 10, D("25.00")),
        ("L2", 5, D("15.50")),
    ]
    assert [(layer.lot_id, layer.quantity, layer.cost) for layer in ledger.layers("A")] == [
        ("L2", 5, D("15.50"))
    ]


def test_a_lot_priced_as_a_total_is_consumed_without_losing_a_cent() -> None:
    # 3 units for 10.00: the units cost 3.333... each and the last one takes exactly what is left
    ledger = Ledger([receipt("L", "A", "3", "10.00", 0), *(sale(f"S{i}", "A", "1", i + 1) for i in range(3))])
    costs = [ledger.entries_of(f"S{i}/1")[0].cost for i in range(3)]
    assert total(costs) == D("10.00")
    assert costs[0].quantize(D("0.0001")) == D("3.3333")


def test_a_sale_beyond_stock_is_flagged_uncosted_not_costed_at_zero() -> None:
    ledger = Ledger([receipt("L", "A", "4", "20.00", 0), sale("S", "A", "6", 1)])
    (entry,) = ledger.entries_of("S/1")
    assert (entry.cost, entry.uncosted) == (D("20.00"), D(2))
    assert ledger.on_hand("A") == 0


def test_a_credit_returns_units_to_the_lots_the_sale_took_most_recent_first() -> None:
    ledger = Ledger(
        [
            receipt("L1", "A", "2", "2.00", 0),
            receipt("L2", "A", "5", "20.00", 1),
            sale("S", "A", "4", 2),  # L1 2 x 1.00 + L2 2 x 4.00 = 10.00
            receipt("L3", "A", "1", "9.00", 3),
            credit("C", "S", "A", "3", 4),  # back: L2 2 x 4.00, then L1 1 x 1.00 = 9.00
            sale("T", "A", "1", 5),  # L1 came back to its old place at the head of the queue: 1.00
        ]
    )
    (returned,) = ledger.entries_of("C/1")
    assert returned.kind is EntryKind.SALE_RETURN
    assert [(d.lot_id, d.quantity, d.cost) for d in returned.draws] == [
        ("L2", 2, D("8.00")),
        ("L1", 1, D("1.00")),
    ]
    assert ledger.entries_of("T/1")[0].draws[0][:3] == ("L1", 1, D("1.00"))
    assert [(layer.lot_id, layer.quantity, layer.cost) for layer in ledger.layers("A")] == [
        ("L2", 5, D("20.00")),
        ("L3", 1, D("9.00")),
    ]


def test_a_second_credit_continues_where_the_first_stopped() -> None:
    base = [receipt("L1", "A", "1", "1.00", 0), receipt("L2", "A", "5", "20.00", 1), sale("S", "A", "3", 2)]
    ledger = Ledger([*base, credit("C1", "S", "A", "1", 3), credit("C2", "S", "A", "2", 4)])
    second = ledger.entries_of("C2/1")[0]
    assert [(d.lot_id, d.quantity) for d in second.draws] == [("L2", 1), ("L1", 1)]
    assert second.cost == D("5.00") and second.uncosted == 0


def test_returning_more_than_was_sold_or_with_no_sale_is_uncosted() -> None:
    ledger = Ledger(
        [
            receipt("L", "A", "5", "5.00", 0),
            sale("S", "A", "2", 1),
            credit("C", "S", "A", "3", 2),
            credit("X", None, "A", "1", 3),
        ]
    )
    returned = ledger.entries_of("C/1")[0]
    assert (returned.cost, returned.uncosted) == (D("2.00"), D(1))
    assert ledger.entries_of("X/1")[0].uncosted == 1
    assert ledger.on_hand("A") == 5


def test_a_credit_not_restockable_goes_to_waste_at_the_original_cost() -> None:
    ledger = Ledger(
        [receipt("L", "A", "5", "10.00", 0), sale("S", "A", "2", 1), credit("C", "S", "A", "2", 2, False)]
    )
    (wasted,) = ledger.entries_of("C/1")
    assert (wasted.kind, wasted.cost, wasted.draws[0].lot_id) == (EntryKind.RETURN_WASTE, D("4.00"), "L")
    assert ledger.on_hand("A") == 3


def test_voiding_a_sale_recosts_the_later_sales_by_replay() -> None:
    movements = [receipt("L1", "A", "2", "2.00", 0), receipt("L2", "A", "2", "6.00", 1)]
    ledger = Ledger([*movements, sale("S", "A", "2", 2), sale("T", "A", "2", 3)])
    assert ledger.entries_of("T/1")[0].cost == D("6.00")
    ledger.replace_document("S", [])  # voided: its movements are gone and T is replayed
    assert ledger.entries_of("T/1")[0].cost == D("2.00")
    assert state(ledger) == state(Ledger([*movements, sale("T", "A", "2", 3)]))


def test_a_refused_change_leaves_the_ledger_untouched() -> None:
    ledger = Ledger([receipt("L", "A", "5", "5.00", 0), sale("S", "A", "2", 1)])
    before = state(ledger)
    with pytest.raises(DuplicateMovement):
        ledger.change(add=[sale("T", "A", "1", 2), sale("S", "A", "9", 3)], remove=["L"])
    assert state(ledger) == before


def _history(rng: random.Random, size: int) -> list[AnyMovement]:
    movements: list[AnyMovement] = []
    for i in range(size):
        at, product = rng.randrange(0, 365) + rng.random(), rng.choice("ABC")
        roll = rng.random()
        if roll < 0.3:
            movements.append(
                receipt(f"R{i}", product, str(rng.randint(1, 9)), f"{rng.randint(100, 999)}.07", at)
            )
        elif roll < 0.4:
            movements.append(build(f"B{i}", rng.choice("FG"), "2", at, A="1.5", B="2"))
        elif roll < 0.45:
            movements.append(build(f"H{i}", "H", "1", at, F="1", C="3"))  # a second level: H from F
        elif roll < 0.9:
            movements.append(sale(f"S{i}", rng.choice("ABCFGH"), str(rng.randint(1, 4)), at))
        else:
            earlier = rng.choice(
                [m for m in movements if isinstance(m, SaleOut)] or [sale("none", "A", "1", 0)]
            )
            movements.append(
                credit(f"C{i}", earlier.document_id, earlier.product_id, "1", at, rng.random() < 0.8)
            )
    return movements


def test_replaying_in_any_insertion_order_gives_the_same_costs() -> None:
    movements = _history(random.Random(7), 400)
    expected = state(Ledger(movements))
    for seed in range(3):
        shuffled = movements[:]
        random.Random(seed).shuffle(shuffled)
        assert state(Ledger(shuffled, checkpoint_every=5 + seed)) == expected


def test_fast_recosting_after_edits_equals_a_full_replay() -> None:
    rng = random.Random(11)
    movements = _history(rng, 600)
    ledger = Ledger(movements, checkpoint_every=8)
    for step in range(40):
        victim = rng.choice(ledger.movements())
        if isinstance(victim, SaleOut) and step % 3 == 0:  # edit a sale's quantity and back-date it
            edited = victim.model_copy(
                update={"quantity": victim.quantity + 1, "at": victim.at - timedelta(days=9)}
            )
            ledger.replace_document(victim.document_id, [edited])
        elif step % 3 == 1:  # a back-dated receipt
            ledger.change(add=[receipt(f"late{step}", rng.choice("ABC"), "3", "4.50", rng.randrange(0, 200))])
        else:  # delete or void whatever it was
            ledger.replace_document(victim.document_id, [])
        assert state(ledger) == state(Ledger(ledger.movements())), f"diverged at step {step}"


def test_a_first_replay_with_a_repeated_movement_or_lot_id_is_refused() -> None:
    with pytest.raises(DuplicateMovement, match="movement id"):
        Ledger([receipt("L", "A", "1", "1.00", 0), sale("S", "A", "1", 1), sale("S", "A", "1", 2)])
    twin = receipt("L", "A", "1", "1.00", 2).model_copy(update={"movement_id": "M"})
    with pytest.raises(DuplicateMovement, match="lot id"):
        Ledger([receipt("L", "A", "1", "1.00", 0), twin])
    ledger = Ledger()
    with pytest.raises(DuplicateMovement):
        ledger.change(add=[receipt("L", "A", "1", "1.00", 0), twin])
    assert state(ledger) == state(Ledger()) and ledger.movements() == []
