"""The FIFO ledger: costs to the cent, replay determinism, returns to original lots, fast re-costing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.ledger import (
    AnyMovement,
    BuildRun,
    ComponentUse,
    Draw,
    DuplicateMovement,
    EntryKind,
    Ledger,
    ReceiptIn,
    SaleOut,
    SaleReturn,
    in_order,
    order_key,
)
from shared.money import COST_CONTEXT, ZERO, total

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


@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from([0, 1, -8]), st.integers(0, 2), st.integers(0, 99)),
        max_size=60,
    )
)
def test_the_replay_order_is_the_order_of_the_whole_key_however_many_times_are_equal(
    picks: list[tuple[int, int, int, int]],
) -> None:
    """Sorted by time, then runs of equal times by the whole key: the order sorting by the key at once gives,
    also when one instant is written in other time zones (equal times, other objects)."""
    movements = [
        SaleOut(
            movement_id=f"m{n:02}",
            document_id=f"d{n}",
            at=(T0 + timedelta(hours=hour)).astimezone(timezone(timedelta(hours=zone))),
            seq=seq,
            product_id="A",
            quantity=D(1),
        )
        for hour, zone, seq, n in picks
    ]
    assert [order_key(m) for m in in_order(iter(movements))] == sorted(map(order_key, movements))


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


# ---- random histories against an independent FIFO, and incremental re-costing against a full replay -------
QTY = st.sampled_from(["1", "2", "3", "0.5", "1.5", "7"])
COST = st.sampled_from(["0", "0.01", "1", "2.005", "10.01", "33.333", "7.77", "1E+1"])
Op = tuple[str, int, str, str, int, int]
OP = st.tuples(
    st.sampled_from(["receipt", "receipt", "sale", "sale", "build", "sub", "credit"]),
    st.integers(0, 2),  # which product
    QTY,
    COST,
    st.integers(0, 30),  # day
    st.integers(0, 1_000),  # which earlier sale a credit returns
)


def _movements(ops: list[Op], *, credits: bool = True) -> list[AnyMovement]:
    """Receipts of A, B, C; builds of F from A and B, sub-assemblies H from F and C; sales; credits."""
    movements: list[AnyMovement] = []
    for n, (action, which, qty, cost, at, pick) in enumerate(ops):
        product, when = "ABC"[which], at + n / 1000
        if action == "receipt":  # mostly raw materials, now and then a finished good bought in
            movements.append(receipt(f"R{n}", "ABCABF"[(which + n) % 6], qty, cost, when))
        elif action == "build":
            movements.append(build(f"B{n}", "F", qty, when, A=qty, B="1"))
        elif action == "sub":
            movements.append(build(f"H{n}", "H", "1", when, F=qty, C="0.5"))
        elif action == "sale" or not credits:
            movements.append(sale(f"S{n}", "ABCFH"[(which + n) % 5], qty, when))
        else:
            sold = [m for m in movements if isinstance(m, SaleOut)]
            of = sold[pick % len(sold)] if sold and which else None
            movements.append(
                credit(f"C{n}", of.document_id if of else None, of.product_id if of else product, qty, when,
                       restock=pick % 3 != 0)
            )  # fmt: skip
    return movements


Lot = tuple[str, Decimal, Decimal, bool]


def _reference(
    movements: list[AnyMovement],
) -> tuple[dict[tuple[str, str], tuple[object, ...]], dict[str, list[Lot]]]:
    """A plain FIFO written apart from the ledger: per product a list of lots (lot, quantity, cost,
    incomplete) in the order they were made; a part of a lot costs its share of the remaining cost, the
    rest what is left; a credit returns units to the lots its sale took, most recently taken first."""
    stock: dict[str, list[Lot]] = {}
    done: dict[tuple[str, str], tuple[object, ...]] = {}

    def take(product: str, wanted: Decimal) -> tuple[object, ...]:
        lots, drawn, spent = stock.setdefault(product, []), [], ZERO
        while wanted and lots:
            lot, quantity, cost, incomplete = lots[0]
            if quantity > wanted:
                part = cost * wanted / quantity
                lots[0] = (lot, quantity - wanted, cost - part, incomplete)
                drawn.append((lot, wanted, part, incomplete))
                spent, wanted = spent + part, ZERO
            else:
                lots.pop(0)
                drawn.append(lots_taken := (lot, quantity, cost, incomplete))
                spent, wanted = spent + lots_taken[2], wanted - quantity
        return spent, wanted, any(d[3] for d in drawn), tuple(drawn)

    made_at = {
        m.lot_id: (m.at, m.seq, m.movement_id) for m in movements if isinstance(m, ReceiptIn | BuildRun)
    }
    ordered = sorted(movements, key=lambda m: (m.at, m.seq, m.movement_id))
    with localcontext(COST_CONTEXT):
        for m in ordered:
            if isinstance(m, ReceiptIn):
                stock.setdefault(m.product_id, []).append((m.lot_id, m.quantity, m.cost, False))
            elif isinstance(m, BuildRun):
                parts = [take(c.product_id, c.quantity) for c in m.components]
                for c, part in zip(m.components, parts, strict=True):
                    done[m.movement_id, c.product_id] = part
                cost = sum((p[0] for p in parts), ZERO)  # type: ignore[misc]
                lacking = any(p[1] or p[2] for p in parts)
                stock.setdefault(m.product_id, []).append((m.lot_id, m.quantity, cost, lacking))
                done[m.movement_id, m.product_id] = (
                    cost,
                    ZERO,
                    lacking,
                    ((m.lot_id, m.quantity, cost, lacking),),
                )
            elif isinstance(m, SaleOut):
                done[m.movement_id, m.product_id] = take(m.product_id, m.quantity)
            elif isinstance(m, SaleReturn):
                earlier = [
                    e for e in ordered[: ordered.index(m)]
                    if e.product_id == m.product_id and m.sale_document_id is not None
                    and ((e.document_id == m.sale_document_id and isinstance(e, SaleOut))
                         or (isinstance(e, SaleReturn) and e.sale_document_id == m.sale_document_id))
                ]  # fmt: skip
                pieces: list[Lot] = []
                already = ZERO
                for e in earlier:
                    result = done[e.movement_id, m.product_id]
                    if isinstance(e, SaleReturn):
                        already += e.quantity
                    else:
                        pieces += [*result[3], ("", result[1], ZERO, False)]  # type: ignore[misc]
                wanted, back = m.quantity, []
                for lot, quantity, cost, incomplete in reversed(pieces):
                    skip = min(already, quantity)
                    part = min(wanted, quantity - skip)
                    already, wanted = already - skip, wanted - part
                    if part and lot:
                        back.append((lot, part, cost * part / quantity, incomplete))
                spent = sum((b[2] for b in back), ZERO)
                done[m.movement_id, m.product_id] = (spent, wanted, any(b[3] for b in back), tuple(back))
                for lot, quantity, cost, incomplete in back if m.restock else ():
                    lots = stock.setdefault(m.product_id, [])
                    same = [i for i, held in enumerate(lots) if held[0] == lot]
                    if same:
                        held = lots[same[0]]
                        lots[same[0]] = (lot, held[1] + quantity, held[2] + cost, held[3])
                    else:
                        at = next(
                            (i for i, held in enumerate(lots) if made_at[held[0]] > made_at[lot]), len(lots)
                        )
                        lots.insert(at, (lot, quantity, cost, incomplete))
    return done, stock


def _digits(value: object) -> object:
    """A result with each Decimal as its exact digits (Decimal("1.0") == Decimal("1.00"), but not here)."""
    if isinstance(value, Decimal):
        return value.as_tuple()
    if isinstance(value, tuple | list):
        return tuple(_digits(v) for v in value)
    return value


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OP, min_size=1, max_size=45), st.integers(1, 9))
def test_the_ledger_costs_exactly_as_an_independent_fifo_to_the_digit(ops: list[Op], every: int) -> None:
    movements = _movements(ops)
    ledger, (expected, stock) = Ledger(movements, checkpoint_every=every), _reference(movements)
    for m in movements:
        for entry in ledger.entries_of(m.movement_id):
            if (m.movement_id, entry.product_id) in expected:
                got = (entry.cost, entry.uncosted, entry.incomplete, tuple(tuple(d) for d in entry.draws))
                assert _digits(got) == _digits(expected[m.movement_id, entry.product_id]), m
            assert all(type(d) is Draw for d in entry.draws), m  # whatever the ledger holds them as
    for p in ledger.products():
        assert _digits([tuple(layer)[1:] for layer in ledger.layers(p)]) == _digits(stock.get(p, []))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(OP, min_size=12, max_size=60),
    st.lists(st.tuples(st.integers(0, 3), QTY, COST, st.integers(0, 30), st.integers(0, 1_000)), max_size=6),
    st.booleans(),
)
def test_re_costing_after_any_change_equals_a_replay_from_scratch_to_the_digit(
    ops: list[Op], changes: list[tuple[int, str, str, int, int]], credits: bool
) -> None:
    """Back-dated receipts (re-priced along recorded draws downstream), removals and edits, with and
    without credits, each compared with a fresh ledger of the same movements."""
    ledger = Ledger(_movements(ops, credits=credits), checkpoint_every=3)
    for n, (action, qty, cost, at, pick) in enumerate(changes):
        present = ledger.movements()
        if action <= 1 or not present:  # a receipt, back-dated into the history
            ledger.change(add=[receipt(f"late{n}", "AB"[action % 2], qty, cost, at - 0.5)])
        elif action == 2:  # a movement removed
            ledger.change(remove=[present[pick % len(present)].movement_id])
        else:  # a sale edited: another quantity, earlier
            sold = [m for m in present if isinstance(m, SaleOut)]
            if sold:
                m = sold[pick % len(sold)]
                ledger.replace_document(
                    m.document_id, [m.model_copy(update={"quantity": D(qty), "at": m.at - timedelta(days=2)})]
                )
        fresh = Ledger(ledger.movements())
        assert _digits([tuple(e) for e in ledger.entries()]) == _digits(
            [tuple(e) for e in fresh.entries()]
        ), n
        assert _digits(state(ledger)[1]) == _digits(state(fresh)[1]), n
        assert all(type(d) is Draw for e in ledger.entries() for d in e.draws), n


def test_back_dated_receipts_re_cost_every_product_built_from_them_as_a_replay_would() -> None:
    """No credits, so products built from the received one are re-priced along the draws they recorded."""
    rng = random.Random(4)
    ops: list[Op] = [
        (rng.choice(["receipt", "receipt", "sale", "sale", "build", "sub"]), rng.randrange(3),
         rng.choice(["1", "2", "0.5", "3"]), rng.choice(["1", "2.005", "7.77", "0"]), rng.randrange(60), 0)
        for _ in range(400)
    ]  # fmt: skip
    ledger = Ledger(_movements(ops, credits=False), checkpoint_every=4)
    for n in range(12):
        ledger.change(
            add=[
                receipt(f"late{n}", rng.choice("AB"), rng.choice(["1", "4"]), "3.33", rng.randrange(60) - 0.5)
            ]
        )
        if n % 3 == 2:
            ledger.change(remove=[f"late{n - 1}"])
        fresh = Ledger(ledger.movements())
        assert _digits([tuple(e) for e in ledger.entries()]) == _digits(
            [tuple(e) for e in fresh.entries()]
        ), n
        assert _digits(state(ledger)[1]) == _digits(state(fresh)[1]), n


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(OP, min_size=20, max_size=80),
    st.lists(st.tuples(st.booleans(), QTY, COST, st.integers(0, 30)), min_size=1, max_size=6),
    st.integers(1, 9),
)
def test_re_pricing_along_recorded_draws_equals_a_replay_and_keeps_its_index(
    ops: list[Op], changes: list[tuple[bool, str, str, int]], every: int
) -> None:
    """No credits, so every product built from a changed one is re-priced along its draws, each changed lot
    from the first result drawing it (found by a binary search of the results by stream index): the same
    results, layers and lots made as a replay, and each result still at its index by id."""
    ledger = Ledger(_movements(ops, credits=False), checkpoint_every=every)
    for n, (remove, qty, cost, at) in enumerate(changes):
        if remove and n:
            ledger.change(remove=[f"late{n - 1}"])
        ledger.change(add=[receipt(f"late{n}", "AB"[n % 2], qty, cost, at - 0.5)])
        fresh = Ledger(ledger.movements(), checkpoint_every=every)
        assert _digits([tuple(e) for e in ledger.entries()]) == _digits([tuple(e) for e in fresh.entries()])
        assert _digits(state(ledger)[1]) == _digits(state(fresh)[1]), n
        for p in ledger.products():
            assert _digits(ledger._made[p]) == _digits(fresh._made[p]), p
            stream, recorded, positions = ledger._streams[p], ledger._recorded[p], ledger._positions[p]
            assert len(recorded) == len(stream)
            resulted = {m.movement_id: i for i, (m, r) in enumerate(zip(stream, recorded, strict=True)) if r}
            assert positions == resulted  # each result's index by id: re-pricing moves none
