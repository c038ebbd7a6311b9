"""A build's cost against the history behind it: one build of 5 components through the service (DynamoDB in
moto) on an organisation with 100 and with 20,000 movements of history; CPU time and DynamoDB requests per
build, and their ratio (goal, issue 15: <= 1.5x).

The history is a year of a shop's stored ledger: 40 raw materials received 100 at a time as they run low,
10 finished goods each built 10 at a time from 5 of them (the finished goods are never consumed: sales are
not on the stored ledger, so each one's lots grow with its builds). It is written straight to the table,
with the index of documents by key and a checkpoint every 500 movements, then one build of the finished
good stores its stock and its components' (as a first build after this change does); the builds timed come
after it, dated after every movement. Each figure is the median of the builds timed, CPU time of this
process (moto runs in it). Two back-dated receipts are timed last: one a day back, which replays from the
checkpoint before it, and one to the start of the history, before every checkpoint, which replays the whole
ledger. Then the books' state an export's plan reads (``shared.services.books.State``: the books, every
movement, the whole ledger replayed and valued, every export's planning fields), with every event of the
history planned and posted and a receipt just recorded (as the export that follows it reads them): unlike a
build, it grows with the history. Run: python -m bench.bench_build_history
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from moto.core.models import botocore_stubber
from pydantic import TypeAdapter

from infra.local.testbed import moto_stack
from shared.aws import table
from shared.bodies import BuildRequest, ReceiptRequest
from shared.domain.catalog import Product
from shared.domain.inventory import stock_of
from shared.domain.ledger import AnyMovement, BuildRun, ComponentUse, Ledger, Movement, ReceiptIn, order_key
from shared.domain.postings import PostingAccounts
from shared.services import books, inventory
from shared.services.queue import export_id_for
from shared.store import catalog as catalog_store
from shared.store import checkpoints
from shared.store.keys import LEDGER_SK, export_sk, moves_sk, org_pk

D = Decimal
T0 = datetime(2025, 1, 1, tzinfo=UTC)
RAWS, GOODS, PER_GOOD = 40, 10, 5
TIMED = 5  # builds timed per history
PLANS = 3  # export plans' reads timed per history
KEPT = 3  # checkpoints stored: moto's transactions deep-copy the table, so a smaller one keeps the bench fast


def history(size: int, rng: random.Random) -> list[AnyMovement]:
    """``size`` movements: builds of random goods, each preceded by the receipts its components need."""
    recipes = {g: rng.sample(range(RAWS), PER_GOOD) for g in range(GOODS)}
    recipes[0] = list(range(PER_GOOD))  # the good timed: raw0..raw4
    on_hand = [0] * RAWS
    moved: list[AnyMovement] = []
    step = timedelta(seconds=365 * 24 * 3600 // size)

    def receive(r: int) -> None:
        moved.append(
            ReceiptIn(
                movement_id=f"R{len(moved)}/1", document_id=f"R{len(moved)}", at=T0 + step * len(moved),
                product_id=f"raw{r}", quantity=D(100), lot_id=f"R{len(moved)}/1",
                cost=D(f"{rng.randint(100, 9999)}.37"),
            )
        )  # fmt: skip
        on_hand[r] += 100

    last = size - PER_GOOD  # the last movements: a receipt of each component of the builds timed
    while len(moved) < last:
        good = rng.randrange(GOODS)
        for r in recipes[good]:
            if on_hand[r] < 10 and len(moved) < last:
                receive(r)
        if len(moved) < last and all(on_hand[r] >= 10 for r in recipes[good]):
            build_id = f"B{len(moved)}"
            uses = tuple(ComponentUse(product_id=f"raw{r}", quantity=D(10)) for r in recipes[good])
            moved.append(
                BuildRun(
                    movement_id=build_id, document_id=build_id, at=T0 + step * len(moved),
                    product_id=f"good{good}", quantity=D(10), lot_id=build_id,
                    components=uses,
                )
            )  # fmt: skip
            for r in recipes[good]:
                on_hand[r] -= 10
    for r in recipes[0]:
        receive(r)
    return moved


class Requests:
    """The DynamoDB requests made, by operation, and the CPU time moto spent answering AWS requests."""

    def __init__(self) -> None:
        self.made: Counter[str] = Counter()
        self.emulator = 0.0
        table().meta.client.meta.events.register("before-call.dynamodb", self._count)
        answer = botocore_stubber.process_request

        def timed(request: Any) -> Any:
            started = time.process_time()
            try:
                return answer(request)
            finally:
                self.emulator += time.process_time() - started

        botocore_stubber.process_request = timed  # type: ignore[method-assign]  # until moto_stack ends

    def _count(self, model: Any, **_: Any) -> None:
        self.made[model.name] += 1

    def clear(self) -> None:
        self.made.clear()
        self.emulator = 0.0


def seed(organisation: str, moved: list[AnyMovement]) -> None:
    """The history as the service stores it: one document per movement (at ledger version 1) with its entry
    in the index by key, and a checkpoint every ``CHECKPOINT_EVERY`` movements (the stock a replay up to
    there leaves, as the writes of that history would have taken them)."""
    products = sorted({p for m in moved for p in m.products()} | {f"raw{r}" for r in range(PER_GOOD)})
    catalog_store.put_products(organisation, [Product(product_id=p, sku=p, name=p) for p in products])
    adapter, pk = TypeAdapter(list[Movement]), org_pk(organisation)
    with table().batch_writer() as batch:
        for m in moved:
            batch.put_item(
                Item={"pk": pk, "sk": moves_sk(m.document_id), "movements": adapter.dump_json([m]).decode()}
            )
            for item in checkpoints.index_items(pk, {m.document_id: [m]}):
                batch.put_item(Item=item)
    every = inventory.CHECKPOINT_EVERY
    ends = range(every, len(moved) + 1, every)
    ledger = Ledger(moved[: ends[-KEPT] if len(ends) >= KEPT else 0])
    for end in ends[-KEPT:]:  # the latest ones: a back-dated write looks at no others
        ledger.change(add=moved[len(ledger.movements()) : end])
        at = checkpoints.sortable(order_key(moved[end - 1]))
        checkpoints.save(organisation, at, 1, stock_of(ledger, ledger.products()))
    head = {"version": 1, "stocked": 1, "timed": True, "moved": len(moved), "checkpointed": len(moved)}
    table().put_item(
        Item={"pk": pk, "sk": LEDGER_SK, **head, "latest": checkpoints.sortable(order_key(moved[-1]))}
    )


def request(number: int, at: datetime) -> BuildRequest:
    return BuildRequest.model_validate(
        {
            "build_id": f"TIMED{number}",
            "product_id": "good0",
            "quantity": "1",
            "built_at": at,
            "components": [{"product_id": f"raw{r}", "quantity_per_unit": "1"} for r in range(PER_GOOD)],
        }
    )


class Build(NamedTuple):
    service: float  # CPU seconds outside the emulator
    emulator: float  # CPU seconds moto spent answering (its transactions copy every table: not DynamoDB's)
    requests: int


def timed_build(organisation: str, number: int, at: datetime, requests: Requests) -> Build:
    requests.clear()
    started = time.process_time()
    inventory.record_build(organisation, request(number, at), datetime.now(UTC))
    whole = time.process_time() - started
    return Build(whole - requests.emulator, requests.emulator, sum(requests.made.values()))


class Measured(NamedTuple):
    build: Build  # medians, the most requests
    kinds: str
    back_dated: float  # a day back
    from_start: float  # to the start of the history
    plan: Build  # the books' state one export's plan reads (median), with every event planned
    planned: int  # the events planned


# a QBO company's accounts by role (the bench's: no provider is called)
ACCOUNTS = PostingAccounts(
    home_currency="USD", company="bench-company", receiving_debit="1", receiving_credit="2", build_debit="3",
    waste="4", cogs="5",
)  # fmt: skip


def plan_everything(organisation: str) -> int:
    """Every event of the ledger as planned and posted at its value now (no true-up due): the plan index a
    year of exports leaves."""
    state = books.State(organisation, "qbo", ACCOUNTS)
    events = list(state.event_dates())
    with table().batch_writer() as batch:
        for kind, record_id in events:
            export_id = export_id_for(organisation, kind, record_id)
            exact = {a: str(v) for a, v in sorted(state.exact([(kind, record_id)]).items()) if v}
            batch.put_item(
                Item={
                    "pk": org_pk(organisation), "sk": export_sk(export_id), "export_id": export_id,
                    "kind": kind, "record_id": record_id, "status": "posted", "plan_provider": "qbo",
                    "plan_tenant": ACCOUNTS.company, "plan_type": "journal", "plan_exact": json.dumps(exact),
                }
            )  # fmt: skip
    return len(events)


def timed_plan(organisation: str, number: int, at: datetime, requests: Requests) -> Build:
    """A receipt recorded (untimed), then the books' state its export's plan reads."""
    line = {"product_id": "raw0", "quantity": "5", "unit_cost": "1.25"}
    receipt = ReceiptRequest.model_validate(
        {"receipt_id": f"PLAN{number}", "received_at": at, "lines": [line]}
    )
    inventory.record_receipt(organisation, receipt, datetime.now(UTC))
    requests.clear()
    started = time.process_time()
    books.State(organisation, "qbo", ACCOUNTS)
    whole = time.process_time() - started
    return Build(whole - requests.emulator, requests.emulator, sum(requests.made.values()))


def measure(size: int, requests: Requests) -> Measured:
    organisation = f"bench-build-{size}"
    moved = history(size, random.Random(size))
    seed(organisation, moved)
    end = max(m.at for m in moved)
    timed_build(organisation, 0, end + timedelta(hours=1), requests)  # stores the products' stock
    # moto's tables live in this process (a Lambda's do not): kept out of the garbage collector's passes, or
    # a collection the service's allocations trigger walks them and lands seconds in the service's time
    gc.collect()
    gc.freeze()
    runs = [timed_build(organisation, n, end + timedelta(hours=1 + n), requests) for n in range(1, TIMED + 1)]
    kinds = ", ".join(f"{name} {count}" for name, count in sorted(requests.made.items()))  # the last build's
    receipt = ReceiptRequest.model_validate(
        {
            "received_at": end - timedelta(days=1),
            "lines": [{"product_id": "raw0", "quantity": "5", "unit_cost": "1.25"}],
        }
    )
    back_dated = timed_receipt(organisation, receipt, requests)  # from the checkpoint before it
    to_start = receipt.model_copy(update={"received_at": T0 + timedelta(minutes=1)})
    from_start = timed_receipt(organisation, to_start, requests)  # before every checkpoint: the whole ledger
    planned = plan_everything(organisation)
    plans = [timed_plan(organisation, n, end + timedelta(days=1, hours=n), requests) for n in range(PLANS)]
    return Measured(_median(runs), kinds, back_dated, from_start, _median(plans), planned)


def _median(runs: list[Build]) -> Build:
    return Build(
        statistics.median(b.service for b in runs),
        statistics.median(b.emulator for b in runs),
        max(b.requests for b in runs),
    )


def timed_receipt(organisation: str, receipt: ReceiptRequest, requests: Requests) -> float:
    requests.clear()
    started = time.process_time()
    inventory.record_receipt(organisation, receipt, datetime.now(UTC))
    return time.process_time() - started - requests.emulator


def main() -> None:
    with moto_stack():
        requests = Requests()
        small = measure(100, requests)
        large = measure(20_000, requests)
    print(f"one build of 5 components through the service, median of {TIMED} (CPU time outside the emulator;")
    print("moto's own time is shown apart: its transactions deep-copy every table, DynamoDB's do not)")
    for size, found in ((100, small), (20_000, large)):
        print(
            f"   {size:>6,} movements of history: {found.build.service * 1000:6.1f} ms,"
            f" {found.build.requests} DynamoDB requests ({found.kinds});"
            f" moto {found.build.emulator * 1000:,.0f} ms"
        )
        print(
            f"          a receipt back-dated a day (from the checkpoint before it):"
            f" {found.back_dated * 1000:,.0f} ms; to the start (the whole ledger replayed):"
            f" {found.from_start * 1000:,.0f} ms"
        )
    time_ratio = large.build.service / small.build.service
    request_ratio = large.build.requests / small.build.requests
    print(f"   20,000 vs 100: time {time_ratio:.2f}x, DynamoDB requests {request_ratio:.2f}x (goal <= 1.5x)")
    print(f"the books' state one export's plan reads, every event planned, median of {PLANS}:")
    for size, found in ((100, small), (20_000, large)):
        print(
            f"   {size:>6,} movements, {found.planned:,} events planned: {found.plan.service * 1000:,.0f} ms,"
            f" {found.plan.requests} DynamoDB requests; moto {found.plan.emulator * 1000:,.0f} ms"
        )
    print(
        f"   20,000 vs 100: time {large.plan.service / small.plan.service:.0f}x,"
        f" DynamoDB requests {large.plan.requests / small.plan.requests:.0f}x (no goal: grows with history)"
    )


if __name__ == "__main__":
    main()
