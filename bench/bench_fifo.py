"""FIFO ledger benchmark: a 10,000-lot build, a 100,000-movement replay, re-costing after an early edit, and
the service's read + replay for a build.

Each figure is CPU time of this process (other processes' load does not count) and its ratio to a plain
Python FIFO written below, on the same movements: a deque of [quantity, cost] layers per product, Decimal
arithmetic, the same movements sorted the same way, costs only. The ledger does more for its time: it records
every movement's result with the lots it drew (by name), keeps checkpoints and indexes its documents, and for
the build checks shortages and returns its record.

How a figure is measured (`alternated`): the ledger's samples and the deque's (and, for re-costing, those of
the full replay and the re-costs) alternate round after round, the order turning each round, so a change in
the machine's load falls on every side; each figure is the median of its `ROUNDS` samples and the ratio is
of medians taken in the same run. Every sample, of either side, runs after a full collection with the
garbage collector paused, as the ledger pauses it for its own replays (`Ledger.change`): the deque is not
slowed by collections the ledger does not pay, and the ledger's work outside its replay (the build's checks
and record) gets no collection either. Inputs are built before timing: the movements, and for the build
each sample's `BUILDS_PER_SAMPLE` ledgers of the 10,000 lots and as many deques of them (a single build
takes a few ms, too short for one sample); the build figure is the time per build. What a sample leaves
(the ledgers built on, the replays' results) is freed after its timing, but what a job drops as it runs
(a replayed ledger, the deque's used-up layers) is freed inside it.

Goals (issue 15): build and replay within 1.5x of the deque; re-cost after a back-dated raw-material receipt
under 0.1x of a full replay. Run: python -m bench bench_fifo
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

from pydantic import TypeAdapter

from infra.local.testbed import moto_stack
from shared.aws import table
from shared.bodies import BuildRequest, ComponentRequest
from shared.domain.catalog import Product
from shared.domain.costing import SaleDocument, SaleLine, apply_sales
from shared.domain.inventory import Build, Component, record_build
from shared.domain.ledger import (
    AnyMovement,
    BuildRun,
    ComponentUse,
    Ledger,
    Movement,
    ReceiptIn,
    SaleOut,
    order_key,
)
from shared.services import inventory
from shared.store import catalog as catalog_store
from shared.store import inventory as inventory_store
from shared.store.keys import LEDGER_SK, moves_sk, org_pk

D = Decimal
T0 = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_SECONDS = 365 * 24 * 3600
ROUNDS = 7  # samples of each side, alternated
BUILDS_PER_SAMPLE = 20  # a build takes a few ms: a sample of one would be mostly the clock's noise


def sample(jobs: list[Callable[[], object]]) -> float:
    """The CPU time of running the jobs one after the other, per job, with the collector paused (after a full
    collection, untimed): each side of a comparison gets the treatment the ledger gives its own replay."""
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        for job in jobs:
            job()
        return (time.process_time() - started) / len(jobs)
    finally:
        gc.enable()


def alternated(rounds: int, *sides: Callable[[], list[Callable[[], object]]]) -> list[float]:
    """Samples of the sides alternated round after round (the order turning by one each round), so a change in
    the machine's load falls on all of them; each side's median sample. Each side prepares, untimed, the jobs
    of one sample."""
    times: list[list[float]] = [[] for _ in sides]
    for turn in range(rounds):
        for side in range(len(sides)):
            chosen = (side + turn) % len(sides)
            times[chosen].append(sample(sides[chosen]()))
    return [statistics.median(t) for t in times]


def fifo_take(queue: deque[list[Decimal]], wanted: Decimal) -> Decimal:
    """The plain FIFO: take from the head layer, proportionally from a partly used one."""
    cost = D(0)
    while wanted and queue:
        head = queue[0]
        if head[0] <= wanted:
            queue.popleft()
            wanted -= head[0]
            cost += head[1]
        else:
            part = head[1] * wanted / head[0]
            head[0] -= wanted
            head[1] -= part
            cost += part
            wanted = D(0)
    return cost


def baseline_replay(movements: Iterable[AnyMovement]) -> dict[str, Decimal]:
    """Sort, then per product a deque of [quantity, cost]; returns each consumption's cost."""
    layers: dict[str, deque[list[Decimal]]] = defaultdict(deque)
    costs: dict[str, Decimal] = {}
    for m in sorted(movements, key=order_key):
        if isinstance(m, ReceiptIn):
            layers[m.product_id].append([m.quantity, m.cost])
        elif isinstance(m, BuildRun):
            made = sum((fifo_take(layers[c.product_id], c.quantity) for c in m.components), D(0))
            layers[m.product_id].append([m.quantity, made])
            costs[m.movement_id] = made
        else:
            costs[m.movement_id] = fifo_take(layers[m.product_id], m.quantity)
    return costs


def receipt(i: int, product: str, at: datetime, qty: int, cost: str) -> ReceiptIn:
    return ReceiptIn(
        movement_id=f"R{i}",
        document_id=f"R{i}",
        at=at,
        product_id=product,
        quantity=D(qty),
        lot_id=f"R{i}",
        cost=D(cost),
    )


def build_from_10000_lots() -> None:
    rng = random.Random(1)
    lots = [
        receipt(i, "A", T0 + timedelta(minutes=i), rng.randint(1, 5), f"{rng.randint(100, 999)}.13")
        for i in range(10_000)
    ]
    need = sum((m.quantity for m in lots), D(0))
    build = Build(
        build_id="B",
        product_id="F",
        quantity=need,
        built_at=T0 + timedelta(days=30),
        components=(Component(product_id="A", quantity_per_unit=D(1)),),
    )

    def ours() -> list[Callable[[], object]]:  # each on a ledger of the lots, built untimed
        return [partial(record_build, Ledger(lots), build) for _ in range(BUILDS_PER_SAMPLE)]

    def base() -> list[Callable[[], object]]:
        return [
            partial(fifo_take, deque([m.quantity, m.cost] for m in lots), need)
            for _ in range(BUILDS_PER_SAMPLE)
        ]

    ledger, deque_fifo = alternated(ROUNDS, ours, base)
    report("1. build consuming 10,000 lots (record_build)", ledger, deque_fifo)


def history(
    rng: random.Random, *, sales: int, products: int, raws: int, receipts: int, builds: int
) -> list[AnyMovement]:
    """A year: raw materials received, finished goods built from two of them, then sold."""
    at = [
        T0 + timedelta(seconds=s)
        for s in sorted(rng.randrange(YEAR_SECONDS) for _ in range(receipts + builds))
    ]
    rng.shuffle(at)
    movements: list[AnyMovement] = [
        receipt(i, f"raw{i % raws}", at[i], rng.randint(50, 200), f"{rng.randint(100, 9999)}.37")
        for i in range(receipts)
    ]
    for j in range(builds):
        product, pair = f"fg{j % products}", rng.sample(range(raws), 2)
        uses = tuple(ComponentUse(product_id=f"raw{r}", quantity=D(rng.randint(1, 3))) for r in sorted(pair))
        movements.append(
            BuildRun(
                movement_id=f"B{j}",
                document_id=f"B{j}",
                at=at[receipts + j],
                product_id=product,
                quantity=D(10),
                lot_id=f"B{j}",
                components=uses,
            )
        )
    for k in range(sales):
        when = T0 + timedelta(seconds=rng.randrange(YEAR_SECONDS))
        movements.append(
            SaleOut(
                movement_id=f"S{k}/1",
                document_id=f"S{k}",
                at=when,
                product_id=f"fg{rng.randrange(products)}",
                quantity=D(rng.randint(1, 3)),
            )
        )
    return movements


def replay_100000() -> None:
    movements = history(random.Random(2), sales=70_000, products=100, raws=40, receipts=20_000, builds=10_000)
    ours, base = alternated(
        ROUNDS, lambda: [partial(Ledger, movements)], lambda: [partial(baseline_replay, movements)]
    )
    report(f"2. replay of {len(movements):,} movements (Ledger)", ours, base)


def recost_after_early_edit() -> None:
    movements = history(random.Random(3), sales=50_000, products=200, raws=20, receipts=2_000, builds=10_000)
    first_sale = min((m for m in movements if isinstance(m, SaleOut)), key=order_key)
    ledger = Ledger(movements)
    edited = SaleDocument(
        document_id=first_sale.document_id,
        kind="invoice",
        at=first_sale.at,
        currency="USD",
        lines=(SaleLine(line_id="1", product_id=first_sale.product_id, quantity=D(7)),),
    )
    original = edited.model_copy(
        update={"lines": (edited.lines[0].model_copy(update={"quantity": first_sale.quantity}),)}
    )
    early_raw = min((m for m in movements if isinstance(m, ReceiptIn)), key=order_key)
    late_receipt = receipt(999_999, early_raw.product_id, early_raw.at - timedelta(hours=1), 50, "1.00")

    def edits() -> list[Callable[[], object]]:  # the edit and its undoing, each a re-cost
        return [partial(apply_sales, ledger, [version]) for version in (edited, original)]

    def back_dated_receipt() -> list[Callable[[], object]]:  # the receipt added and removed, each a re-cost
        return [
            partial(ledger.change, add=[late_receipt]),
            partial(ledger.change, remove=[late_receipt.movement_id]),
        ]

    full, base, fast, wide = alternated(
        ROUNDS, lambda: [partial(Ledger, movements)], lambda: [partial(baseline_replay, movements)], edits,
        back_dated_receipt,
    )  # fmt: skip
    apply_sales(ledger, [edited])  # re-costed fast, as a full replay costs it
    assert ledger.entries() == Ledger(ledger.movements()).entries(), (
        "fast re-cost diverged from a full replay"
    )
    print(f"3. 12-month history: {len(movements):,} movements, 50,000 sales lines, 200 products")
    print(
        "   (the plain FIFO re-costs the full history; the edit is at the very start, so checkpoints cannot"
    )
    print("   help: the saving comes from replaying only the products the edit can reach)")
    report("   full costing from scratch (Ledger)", full, base)
    report("   re-cost after editing the first sale line", fast, base)
    report(f"   re-cost after a receipt of {early_raw.product_id} back-dated to the start", wide, base)
    print(
        f"   fast re-cost vs full costing from scratch: {full / fast:,.0f}x faster (one sale), "
        f"{full / wide:,.1f}x faster (receipt re-costing every product built from it)"
    )
    print(f"   re-cost after the back-dated receipt = {wide / full:.3f}x a full replay (goal < 0.1x)")


def service_build() -> None:
    """What a build costs in the service when it replays: it reads every movement of the organisation from
    DynamoDB (moto here) and replays them all before applying the build (services/inventory.py)."""
    movements = history(random.Random(4), sales=7_000, products=20, raws=8, receipts=2_000, builds=1_000)
    organisation, adapter = "bench-fifo", TypeAdapter(list[Movement])
    with moto_stack():
        catalog_store.put_products(
            organisation, [Product(product_id=p, sku=p, name=p) for p in _ids(movements)]
        )
        with table().batch_writer() as batch:  # the history, one document per movement, at ledger version 1
            for m in movements:
                movements_json = adapter.dump_json([m]).decode()
                batch.put_item(
                    Item={
                        "pk": org_pk(organisation),
                        "sk": moves_sk(m.document_id),
                        "movements": movements_json,
                    }
                )
            batch.put_item(Item={"pk": org_pk(organisation), "sk": LEDGER_SK, "version": 1})

        def another_write() -> None:
            """As after a back-dated write: a warm function reads every movement again, and no product's
            stored stock is trusted, so the build replays the whole ledger (a build dated after its products'
            latest movements does not: bench_build_history)."""
            version = inventory_store.ledger_version(organisation) + 1
            item = {"pk": org_pk(organisation), "sk": LEDGER_SK, "version": version, "recost": version}
            table().put_item(Item=item)

        def read() -> None:
            another_write()
            started = time.process_time()
            inventory_store.movements(organisation)
            clock[0] += time.process_time() - started

        clock = [0.0]  # the time spent reading, without the write that makes it read everything
        reads = min(_timed(clock, read) for _ in range(2))
        found = inventory_store.movements(organisation)  # as read: each time with its own UTC tzinfo object
        replays, base = alternated(
            3, lambda: [partial(Ledger, found)], lambda: [partial(baseline_replay, found)]
        )
        builds = iter(range(10))
        now = datetime.now(UTC)

        def build() -> None:
            another_write()
            request = BuildRequest(
                build_id=f"BENCH{next(builds)}", product_id="fg0", quantity=D(1), built_at=now,
                components=[ComponentRequest(product_id="raw0", quantity_per_unit=D(1))],
            )  # fmt: skip
            started = time.process_time()
            inventory.record_build(organisation, request, now)
            clock[0] += time.process_time() - started

        whole = min(_timed(clock, build) for _ in range(2))
    print(f"4. the service's build on {len(movements):,} movements of history (DynamoDB in moto; the deque")
    print("   FIFO replays the movements as read)")
    report("   read of every movement (query + validation)", reads, base)
    report("   replay of them (Ledger)", replays, base)
    report("   whole build (read, replay, apply, write)", whole, base)


def _timed(clock: list[float], work: Callable[[], object]) -> float:
    clock[0] = 0.0
    work()
    return clock[0]


def _ids(movements: list[AnyMovement]) -> set[str]:
    return {p for m in movements for p in m.products()}


def report(label: str, ours: float, base: float) -> None:
    ratio = f"{ours / base:6.2f}x the plain deque FIFO's {base * 1000:.1f} ms"
    print(f"{label:<62} {ours * 1000:9.1f} ms  = {ratio}")


def main() -> None:
    started = time.perf_counter()
    build_from_10000_lots()
    replay_100000()
    recost_after_early_edit()
    service_build()
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
