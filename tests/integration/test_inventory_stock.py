"""A product's stock (its open lots, as the whole ledger's replay leaves them) kept with every receipt and
build: a write dated after the latest movement of the products it moves computes on just their stock and
reads no history, and every result and every stored stock is the full replay's to the digit, back-dated
writes, refusals and races included (DynamoDB in moto, the service's own functions)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from infra.local.stack import LocalStack
from shared.aws import table
from shared.bodies import BuildRequest, ReceiptRequest
from shared.domain import inventory as domain
from shared.domain.catalog import Product
from shared.domain.inventory import Build, Component, Stock, stock_of
from shared.domain.ledger import AnyMovement, Draw, Ledger, Movement, ReceiptIn
from shared.errors import Conflict
from shared.services import inventory
from shared.store import catalog as catalog_store
from shared.store import checkpoints
from shared.store import inventory as store
from shared.store.keys import LEDGER_SK, MOVES_PREFIX, moves_sk, org_pk

D = Decimal
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
RAWS = ("r0", "r1", "r2")
RECIPES = {  # multi-level: m0 and m1 from raw parts, top from both and a raw part
    "m0": {"r0": "1", "r1": "0.5"},
    "m1": {"r1": "1.5", "r2": "2"},
    "top": {"m0": "1", "m1": "2", "r2": "0.25"},
}
PRODUCTS = (*RAWS, *RECIPES)
_MOVES = TypeAdapter(list[Movement])


def organisation() -> str:
    org = f"org-{uuid.uuid4().hex[:8]}"
    catalog_store.put_products(org, [Product(product_id=p, sku=p.upper(), name=p) for p in PRODUCTS])
    return org


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def receipt(hours: int, lines: list[tuple[str, str, str, str]]) -> ReceiptRequest:
    """Lines are (product, quantity, rejected, unit cost)."""
    return ReceiptRequest.model_validate(
        {
            "received_at": at(hours),
            "lines": [
                {"product_id": p, "quantity": q, "rejected": r, "unit_cost": c} for p, q, r, c in lines
            ],
        }
    )


def build(hours: int, product: str, quantity: str) -> BuildRequest:
    return BuildRequest.model_validate(
        {
            "product_id": product,
            "quantity": quantity,
            "built_at": at(hours),
            "components": [{"product_id": c, "quantity_per_unit": q} for c, q in RECIPES[product].items()],
        }
    )


class Requests:
    """DynamoDB requests the service makes, by operation ("Query movements": a read of the history)."""

    def __init__(self) -> None:
        self.made: list[str] = []
        table().meta.client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not (model.name == "Query" and MOVES_PREFIX in str(params)):  # a history read counts once
            self.made.append(model.name)

    def during(self, work: Callable[[], object]) -> list[str]:
        """The requests ``work`` made; a read of the history counts even when a warm function's copy of it
        answers (it is a replay all the same)."""
        self.made.clear()
        read = store.movements

        def replayed(organisation_id: str) -> list[AnyMovement]:
            self.made.append("Query movements")
            return read(organisation_id)

        store.movements = replayed  # type: ignore[assignment]
        try:
            work()
        finally:
            store.movements = read  # type: ignore[assignment]
        return list(self.made)


def known_stock(org: str) -> dict[str, Stock]:
    """The stock the service trusts: its stock items', and none for a product known never to have moved."""
    return store.stock(org, PRODUCTS, store.ledger_head(org))


def stored_stock(org: str) -> dict[str, Stock]:
    return {p: found for p, found in known_stock(org).items() if found.last != store.NEVER_MOVED}


def assert_stock_is_the_replays(org: str) -> None:
    """Every trusted stock holds exactly what a full replay of the stored ledger leaves."""
    replayed = stock_of(Ledger(store.movements(org)), PRODUCTS)
    for p, found in known_stock(org).items():
        expected = replayed.get(p, Stock((), store.NEVER_MOVED))
        assert domain.same_stock(found, expected), f"{p}: {found} != {expected}"


def digits(value: Decimal) -> tuple[Any, ...]:
    return tuple(value.as_tuple())


def replayed_build(org: str, request: BuildRequest) -> domain.BuildRecord | Conflict:
    """What the full replay of the stored ledger makes of the build (the service before stock items)."""
    version = store.ledger_version(org)
    ledger = Ledger(store.movements(org))
    made = Build(
        build_id=request.build_id or "", product_id=request.product_id, quantity=request.quantity,
        built_at=request.built_at, seq=version + 1,
        components=tuple(Component(product_id=c.product_id, quantity_per_unit=c.quantity_per_unit)
                         for c in request.components),
    )  # fmt: skip
    try:
        return domain.record_build(ledger, made)
    except Conflict as refused:
        return refused


def assert_same_build(view: inventory.BuildView, expected: domain.BuildRecord) -> None:
    assert view.lot_id == expected.lot_id
    assert digits(view.cost) == digits(expected.cost)
    assert digits(view.unit_cost) == digits(expected.unit_cost)
    assert [(c.product_id, digits(c.quantity), digits(c.cost)) for c in view.components] == [
        (c.product_id, digits(c.quantity), digits(c.cost)) for c in expected.components
    ]
    assert [draws(c.lots) for c in view.components] == [draws(c.lots) for c in expected.components]


def draws(lots: tuple[Draw, ...]) -> list[tuple[Any, ...]]:
    return [(d.lot_id, digits(d.quantity), digits(d.cost), d.incomplete) for d in lots]


def record(org: str, request: BuildRequest) -> inventory.BuildView | Conflict:
    try:
        return inventory.record_build(org, request, datetime.now(UTC))
    except Conflict as refused:
        return refused


QUANTITIES = st.sampled_from(["1", "2", "3", "0.5", "1.25"])  # built
COSTS = st.sampled_from(["0.07", "1.333", "2.5", "0.10", "3", "0.0125"])
RECEIPT_LINES = st.lists(
    st.tuples(
        st.sampled_from(RAWS), st.sampled_from(["3", "7", "12.5"]), st.sampled_from(["0", "0", "0.5"]), COSTS
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda line: line[0],
)
STEP = st.integers(-8, 12)  # hours after the event before (before it: back-dated)
EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("receipt"), STEP, RECEIPT_LINES),
        st.tuples(st.just("build"), STEP, st.sampled_from(sorted(RECIPES)), QUANTITIES),
    ),
    min_size=4,
    max_size=14,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=EVENTS,
    page_bytes=st.sampled_from([store.LOTS_PAGE_BYTES, 300]),
    every=st.sampled_from([inventory.CHECKPOINT_EVERY, 1, 3]),
)
def test_every_build_and_every_stock_is_the_full_replays_to_the_digit(
    aws: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    events: list[tuple[Any, ...]],
    page_bytes: int,
    every: int,
) -> None:
    """Random histories (receipts with rejections, builds of builds, back-dated ones, shortages), with lots
    stored in pages of ~3 or in one, and checkpoints (in parts of ~3 lots) taken every 1 or 3 movements or
    not at all: each build
    costs, or is refused, exactly as the full replay of the ledger before it, and after each write every
    trusted product stock is the replay's."""
    monkeypatch.setattr(store, "LOTS_PAGE_BYTES", page_bytes)
    monkeypatch.setattr(inventory, "CHECKPOINT_EVERY", every)
    monkeypatch.setattr(checkpoints, "PART_BYTES", 300)  # a checkpoint's lots in parts of ~3
    org, hours = organisation(), 24
    opening = [(p, "10", "0", "1.10") for p in RAWS]
    inventory.record_receipt(org, receipt(hours, opening), datetime.now(UTC))
    for event in events:
        hours += event[1]
        if event[0] == "receipt":
            inventory.record_receipt(org, receipt(hours, event[2]), datetime.now(UTC))
        else:
            _, _, product, quantity = event
            request = build(hours, product, quantity).model_copy(update={"build_id": uuid.uuid4().hex[:10]})
            expected = replayed_build(org, request)
            got = record(org, request)
            if isinstance(expected, Conflict):
                assert isinstance(got, type(expected)), got
                if isinstance(expected, domain.ShortageError):
                    assert isinstance(got, domain.ShortageError)
                    assert got.shortages == expected.shortages
            else:
                assert isinstance(got, inventory.BuildView), got
                assert_same_build(got, expected)
        assert_stock_is_the_replays(org)


@pytest.fixture
def org(aws: LocalStack) -> Iterator[str]:
    yield organisation()


def test_a_build_after_the_latest_movements_reads_just_its_products_stock(org: str) -> None:
    requests = Requests()
    received = requests.during(
        lambda: inventory.record_receipt(
            org, receipt(0, [("r0", "10", "0", "1.333"), ("r1", "10", "0", "0.07")]), datetime.now(UTC)
        )
    )
    assert "Query movements" not in received  # r0 and r1 never moved: their stock is known, and empty
    first = requests.during(lambda: inventory.record_build(org, build(1, "m0", "2"), datetime.now(UTC)))
    assert "Query movements" not in first, first  # nor had m0
    assert_stock_is_the_replays(org)
    again = requests.during(lambda: inventory.record_build(org, build(2, "m0", "3"), datetime.now(UTC)))
    assert "Query movements" not in again, again  # no history read
    assert again.count("TransactWriteItems") == 1
    assert set(stored_stock(org)) == {"r0", "r1", "m0"}
    assert_stock_is_the_replays(org)
    receipt_requests = requests.during(
        lambda: inventory.record_receipt(org, receipt(3, [("r0", "4", "1", "2.5")]), datetime.now(UTC))
    )
    assert "Query movements" not in receipt_requests
    assert_stock_is_the_replays(org)


def test_a_back_dated_receipt_re_costs_the_stock_built_from_it(org: str) -> None:
    now = datetime.now(UTC)
    inventory.record_receipt(org, receipt(5, [("r0", "4", "0", "1.00"), ("r1", "4", "0", "1.00")]), now)
    inventory.record_build(org, build(6, "m0", "2"), now)
    inventory.record_build(org, build(7, "m0", "1"), now)  # the fast path: m0's stock is stored
    before = stored_stock(org)["m0"]
    # an earlier, dearer r0 lot: the builds after it now take it first, so m0's lots cost more
    inventory.record_receipt(org, receipt(1, [("r0", "3", "0", "5.00")]), now)
    after = stored_stock(org)["m0"]
    assert [lot.cost for lot in before.lots] == [D("3.00"), D("1.50")]
    assert [lot.cost for lot in after.lots] == [D("11.00"), D("5.50")]
    assert_stock_is_the_replays(org)
    made = inventory.record_build(org, build(8, "m0", "1"), now)
    assert made.cost == D("1.50")  # r0 from the lot received at 5 (the back-dated one is used up), r1
    assert_stock_is_the_replays(org)


def test_stock_too_many_for_one_transaction_is_replayed_when_next_needed(org: str) -> None:
    parts = [f"p{i:03}" for i in range(120)]
    catalog_store.put_products(org, [Product(product_id=p, sku=p, name=p) for p in parts])
    now = datetime.now(UTC)
    inventory.record_receipt(org, receipt(0, [("r0", "5", "0", "1.00")]), now)
    inventory.record_build(org, _one_part_build(2, "r0"), now)
    assert "r0" in stored_stock(org)
    wide = ReceiptRequest.model_validate(
        {
            "received_at": at(3),
            "lines": [{"product_id": p, "quantity": "1", "unit_cost": "0.5"} for p in parts],
        }
    )
    inventory.record_receipt(org, wide, now)  # 120 products' stock: more than one transaction holds
    assert stored_stock(org) == {}  # none stored, and every older one no longer trusted
    assert store.ledger_head(org).recost == store.ledger_version(org)
    inventory.record_build(org, _one_part_build(4, "r0"), now)  # replayed, stored again
    assert set(stored_stock(org)) == {"r0", "m0"}
    assert_stock_is_the_replays(org)
    # the 120 parts moved and have no stock item: one without an item is no longer known to be empty
    assert not store.ledger_head(org).complete
    again = Requests().during(
        lambda: inventory.record_receipt(org, receipt(5, [("p007", "2", "0", "1")]), now)
    )
    assert "Query movements" in again
    assert_stock_is_the_replays(org)


def _one_part_build(hours: int, part: str) -> BuildRequest:
    return BuildRequest.model_validate(
        {
            "product_id": "m0",
            "quantity": "1",
            "built_at": at(hours),
            "components": [{"product_id": part, "quantity_per_unit": "1"}],
        }
    )


def test_two_builds_racing_on_their_stock_never_take_the_same_lots(org: str) -> None:
    """Both read r0's and r1's stock (the fast path); the ledger's version lets one commit, the other
    computes again on what is left and finds too little (moto handles one request at a time, as DynamoDB's
    conditions are atomic)."""
    now = datetime.now(UTC)
    inventory.record_receipt(org, receipt(0, [("r0", "3", "0", "1.00"), ("r1", "9", "0", "0.50")]), now)
    inventory.record_build(org, build(1, "m0", "1"), now)  # stores m0's stock: both racers take the fast path
    outcomes: list[object] = []
    racers = [
        threading.Thread(target=lambda: outcomes.append(record(org, build(2, "m0", "2")))) for _ in range(2)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["BuildView", "ShortageError"]
    assert [(lot.quantity, lot.cost) for lot in stored_stock(org)["m0"].lots] == [
        (D(1), D("1.25")),
        (D(2), D("2.50")),
    ]
    assert stored_stock(org)["r0"].lots == ()
    assert_stock_is_the_replays(org)


def test_a_repeated_build_id_is_refused_as_recorded_even_when_its_stock_is_used_up(org: str) -> None:
    """A client that sends a build again with its own build id (its answer was lost) is told the build is
    already recorded, as the full replay tells it, not that the stock the build itself used is short."""
    now = datetime.now(UTC)
    inventory.record_receipt(org, receipt(0, [("r0", "2", "0", "1.00"), ("r1", "1", "0", "1.00")]), now)
    request = build(1, "m0", "2").model_copy(update={"build_id": "B-7"})
    made = inventory.record_build(org, request, now)
    again = record(org, request)
    assert isinstance(again, store.DuplicateRecord), again
    assert [b.build.build_id for b in inventory.list_builds(org, 50).items] == ["B-7"]
    assert stored_stock(org)["m0"].lots[0].cost == made.cost
    assert_stock_is_the_replays(org)


def write_without_stock(org: str, document_id: str, moved: list[AnyMovement]) -> None:
    """A write as the service made them before it kept stock items (a function still running that code
    during a deployment, or after a rollback): the document's movements and the ledger's next version."""
    version = store.ledger_version(org)
    moved = [m.model_copy(update={"seq": version + 1}) for m in moved]
    pk = org_pk(org)
    table().put_item(
        Item={"pk": pk, "sk": moves_sk(document_id), "movements": _MOVES.dump_json(moved).decode()}
    )
    table().update_item(
        Key={"pk": pk, "sk": LEDGER_SK},
        UpdateExpression="SET version = :next",
        ConditionExpression="version = :read",
        ExpressionAttributeValues={":next": version + 1, ":read": version},
    )


def test_writes_that_stored_no_stock_are_replayed_not_trusted_away(org: str) -> None:
    """Stock items are trusted only up to the last write that stored its stock: a product whose stored stock
    a write that kept none used is not costed on lots it no longer holds, and a product first received by
    such a write is not taken for one that never moved."""
    now = datetime.now(UTC)
    inventory.record_receipt(org, receipt(0, [("r0", "2", "0", "1.00"), ("r1", "10", "0", "1.00")]), now)
    inventory.record_receipt(org, receipt(1, [("r0", "4", "0", "3.00")]), now)
    assert store.ledger_head(org).complete
    old_build = Build(
        build_id="OLD-B", product_id="m0", quantity=D(2), built_at=at(2),
        components=(Component(product_id="r0", quantity_per_unit=D(1)),
                    Component(product_id="r1", quantity_per_unit=D("0.5"))),
    )  # fmt: skip
    write_without_stock(org, "OLD-B", [domain.build_movement(old_build)])  # the 1.00 lot of r0, used up
    write_without_stock(
        org, "OLD-R", [ReceiptIn(movement_id="OLD-R/1", document_id="OLD-R", at=at(2), product_id="r2",
                                 quantity=D(10), lot_id="OLD-R/1", cost=D("20.00"))],
    )  # fmt: skip
    for number, request in enumerate((build(4, "m0", "2"), build(5, "m1", "1"))):
        request = request.model_copy(update={"build_id": f"NEW-{number}"})
        expected = replayed_build(org, request)
        assert isinstance(expected, domain.BuildRecord), expected
        made = record(org, request)
        assert isinstance(made, inventory.BuildView), made
        assert_same_build(made, expected)
        assert_stock_is_the_replays(org)
    assert store.ledger_head(org).stocked


def test_a_build_whose_answer_was_lost_in_transit_is_answered_as_made_once(org: str) -> None:
    """DynamoDB committed the build, its answer never arrived, and botocore sent the same transaction again:
    the build is answered as made (not "already recorded" for the caller's own write), and made once."""
    now = datetime.now(UTC)
    inventory.record_receipt(org, receipt(0, [("r0", "5", "0", "1.00"), ("r1", "5", "0", "1.00")]), now)
    events = table().meta.client.meta.events
    resent: list[int] = []

    def lose_first_answer(response: Any, attempts: int, caught_exception: Any, **_: Any) -> int | None:
        if caught_exception is None and response[0].status_code == 200 and not resent:
            resent.append(attempts)
            return 0  # retry at once, as botocore does after a connection reset
        return None

    events.register("needs-retry.dynamodb.TransactWriteItems", lose_first_answer)
    try:
        made = inventory.record_build(org, build(1, "m0", "2"), now)
    finally:
        events.unregister("needs-retry.dynamodb.TransactWriteItems", lose_first_answer)
    assert resent == [1]  # the transaction really was sent twice
    assert made.cost == D("3.00")
    assert [b.build.build_id for b in inventory.list_builds(org, 50).items] == [made.build.build_id]
    assert store.ledger_version(org) == 2
    assert_stock_is_the_replays(org)


def test_a_product_whose_lots_outgrow_one_item_keeps_them_in_pages_and_the_fast_path(
    org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished good gains a lot with every build and loses none (sales are not on the stored ledger): its
    lots go on in pages of their own (here pages of ~3 lots), and its builds still read no history."""
    monkeypatch.setattr(store, "LOTS_PAGE_BYTES", 400)
    now = datetime.now(UTC)
    inventory.record_receipt(org, receipt(0, [("r0", "40", "0", "1.333"), ("r1", "40", "0", "0.07")]), now)
    inventory.record_build(org, build(1, "m0", "1"), now)
    requests = Requests()
    for hour in range(2, 12):
        made = requests.during(lambda: inventory.record_build(org, build(hour, "m0", "1"), now))  # noqa: B023
        assert "Query movements" not in made, (hour, made)
    head = table().get_item(Key={"pk": org_pk(org), "sk": "INVENTORY#STOCK#m0"})["Item"]
    assert int(head["pages"]) >= 2  # eleven lots: the item's page and two or more of their own
    assert len(stored_stock(org)["m0"].lots) == 11
    assert_stock_is_the_replays(org)
    # a build consuming m0 reads all its pages and stores what is left in fewer
    top = requests.during(lambda: inventory.record_build(org, _from_m0(13, "4"), now))
    assert "Query movements" not in top, top
    assert len(stored_stock(org)["m0"].lots) == 7
    assert_stock_is_the_replays(org)
    inventory.record_build(org, build(14, "m0", "2"), now)  # appended after the shorter stock
    assert_stock_is_the_replays(org)
    # a back-dated receipt replays, and stores m0's re-costed lots whole, in pages
    inventory.record_receipt(org, receipt(1, [("r0", "3", "0", "9.00")]), now)
    assert_stock_is_the_replays(org)
    assert "Query movements" not in requests.during(
        lambda: inventory.record_build(org, build(15, "m0", "1"), now)
    )
    assert_stock_is_the_replays(org)


def test_a_product_with_more_lots_than_its_pages_hold_is_replayed_not_cut_short(
    org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "LOTS_PAGE_BYTES", 400)
    monkeypatch.setattr(store, "MAX_STOCK_PAGES", 2)
    now = datetime.now(UTC)
    inventory.record_receipt(org, receipt(0, [("r0", "40", "0", "1.333"), ("r1", "40", "0", "0.07")]), now)
    for hour in range(1, 14):
        inventory.record_build(org, build(hour, "m0", "1"), now)
    assert "m0" not in stored_stock(org)  # thirteen lots: more than three pages hold; none trusted
    again = Requests().during(lambda: inventory.record_build(org, build(14, "m0", "1"), now))
    assert "Query movements" in again
    assert_stock_is_the_replays(org)
    inventory.record_build(org, _from_m0(15, "12"), now)  # read from the ledger, not from a cut-short stock
    assert_stock_is_the_replays(org)


def _from_m0(hours: int, quantity: str) -> BuildRequest:
    return BuildRequest.model_validate(
        {
            "product_id": "top",
            "quantity": quantity,
            "built_at": at(hours),
            "components": [{"product_id": "m0", "quantity_per_unit": "1"}],
        }
    )


def test_a_back_dated_write_replays_from_the_nearest_checkpoint_before_it(
    org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints every 4 movements: a receipt back-dated into the history reads the lots at the checkpoint
    before it and the documents after that, not the whole ledger; a checkpoint after a back-dated write
    (taken before it) is no longer used."""
    monkeypatch.setattr(inventory, "CHECKPOINT_EVERY", 4)
    now = datetime.now(UTC)
    for day in range(6):  # a receipt of r0 at 9:00, a build of m0 from it at 10:00
        inventory.record_receipt(org, receipt(day * 24, [("r0", "2", "0", f"{day + 1}.00")]), now)
        inventory.record_build(org, _one_part_build(day * 24 + 1, "r0"), now)
    assert store.ledger_head(org).checkpointed == 12  # taken after the builds of 3, 5 and 7 November
    read: list[str] = []
    movements_after = checkpoints.movements_after

    def reading(organisation_id: str, key: str) -> list[AnyMovement]:
        read.append(key)
        return movements_after(organisation_id, key)

    monkeypatch.setattr(checkpoints, "movements_after", reading)
    requests = Requests()
    on_6th = requests.during(
        lambda: inventory.record_receipt(org, receipt(101, [("r0", "1", "0", "9")]), now)
    )
    assert "Query movements" not in on_6th, on_6th
    assert read[-1].startswith("2026-11-05T10:00")  # 6 November 14:00: from the checkpoint of the 5th
    assert_stock_is_the_replays(org)
    on_3rd = requests.during(lambda: inventory.record_receipt(org, receipt(30, [("r0", "1", "0", "7")]), now))
    assert "Query movements" not in on_3rd, on_3rd
    assert read[-1].startswith("2026-11-03T10:00")  # 3 November 15:00: from the checkpoint of the 3rd
    assert_stock_is_the_replays(org)
    inventory.record_receipt(org, receipt(102, [("r0", "1", "0", "3")]), now)  # 6 November 15:00 again
    assert read[-1].startswith("2026-11-03T10:00")  # the checkpoint of the 5th misses the receipt of the 3rd
    assert_stock_is_the_replays(org)
    request = _one_part_build(6 * 24, "r0").model_copy(update={"build_id": "B-8"})
    expected = replayed_build(org, request)
    assert isinstance(expected, domain.BuildRecord)
    assert_same_build(inventory.record_build(org, request, now), expected)
    assert_stock_is_the_replays(org)
