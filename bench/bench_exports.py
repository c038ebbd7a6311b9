"""Exports under faults, in-process against the QBO sandbox on one virtual clock: provider calls per
export without faults, then distinct documents and duplicates under every kind of fault (DESIGN.md,
"Benchmarks: exports under faults").
Run: python -m bench bench_exports"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest.mock import patch

import boto3
import httpx
from moto.sqs import models as moto_sqs

from bench.bench_token_refresh import connect
from functions.export import app as export_app
from infra.local.context import LocalLambdaContext
from infra.local.stack import REGION, LocalStack
from infra.local.testbed import Sandboxes, moto_stack, sandboxes_installed
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from shared.aws import client, table
from shared.bodies import (
    ExportAccounts,
    ExportSettingsRequest,
    ImportRequest,
    ReceiptLineRequest,
    ReceiptRequest,
)
from shared.contracts import ExportJob
from shared.providers import http
from shared.providers.base import Session
from shared.services import catalog, export_settings, exports, inventory, queue, sales, sessions
from shared.store import exports as export_store
from shared.store.connections import Connection
from shared.store.keys import export_settings_sk, org_pk
from shared.store.rate_budget import DynamoRateBudget

CLEAN, FAULTED, ROUNDS = 100, 1_000, 10
FAULT_EVERY = 10  # one write in ten meets a fault
DUPLICATE_EVERY = 20
KINDS = ("429", "500", "503", "timeout", "drop", "lost_response", "crash")
API = f"/v3/company/{DEMO_REALM_ID}"
WRITES = f"{API}/journalentry"
ADJUSTMENTS = f"{API}/inventoryadjustment"
SWITCH_EVERY = 3  # batches between posting-mode switches
IDLE_WAIT = 60  # virtual seconds the event source waits when the queue shows nothing but holds messages
ACCOUNTS = ExportAccounts(
    build_debit="10", build_credit="11", receiving_debit="1", receiving_credit="5", waste="7", cogs="2"
)


class VirtualTime:
    """One virtual clock for both sandboxes, the rate budget and the service's waits; waits advance it."""

    def __init__(self, sandboxes: Sandboxes) -> None:
        self.sandboxes, self.offset = sandboxes, 0.0
        self.start = sandboxes.qbo.clock.now()

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        for sandbox in (self.sandboxes.qbo, self.sandboxes.xero):
            sandbox.clock.set(self.now())

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.offset)

    def epoch(self) -> float:
        return self.now().timestamp()

    def epoch_millis(self) -> float:
        return self.epoch() * 1000


Patch = Callable[[object, str, object], object]


def follow(clock: VirtualTime, patch: Patch = setattr) -> None:
    """Points every wait and clock of the service at ``clock`` (``patch``: a test's ``monkeypatch.setattr``,
    so that it is undone after the test)."""
    patch(http, "sleep", clock.advance)
    patch(exports, "clock", clock.now)

    # the service's own sessions, on the virtual clock's rate budget; every wait is taken in place here
    # (retry_after_limit left out): it only advances the virtual clock
    service_session = sessions.session_for

    def session_for(connection: Connection, *, retry_after_limit: float | None = None) -> Session:
        return replace(service_session(connection), budget=DynamoRateBudget(clock=clock.epoch))

    # the sales pull and the catalog import it by name: a budget on the wall clock there would count their
    # calls in real 10-second windows and wait them out on the virtual clock, which never ends such a window
    for module in (sessions, sales, catalog):
        patch(module, "session_for", session_for)


def install(clock: VirtualTime, patch: Patch = setattr) -> None:
    """``follow``, and SQS's timers in moto on ``clock`` too: a message hidden for a backoff or a visibility
    timeout shows again once the virtual clock passes it, not after as long in real time."""
    patch(moto_sqs, "unix_time", clock.epoch)
    patch(moto_sqs, "unix_time_millis", clock.epoch_millis)
    follow(clock, patch)


def prepare(sandboxes: Sandboxes) -> tuple[str, str]:
    """(organisation, product id): connected to QBO, accounts and items synced, journals configured."""
    organisation = str(connect(sandboxes, "qbo").organisation_id)
    return organisation, configure_exports(organisation)


def configure_exports(organisation: str) -> str:
    """For an organisation connected to QBO: accounts and items synced, journals configured; the id of a
    product (QBO item 2) whose receipts export."""
    now = datetime.now(UTC)
    catalog.sync_accounts(organisation, "qbo", now)
    catalog.sync_items(organisation, "qbo", now)
    (bolt,) = catalog.import_products(organisation, ImportRequest(provider="qbo", item_ids=["2"])).created
    export_settings.put_settings(
        organisation, "qbo", ExportSettingsRequest(mode="journals", accounts=ACCOUNTS), now
    )
    return bolt.product_id


class QueueOutage:
    """SQS refuses SendMessage while ``down`` is set: the receipt is stored; its export waits, outboxed."""

    def __init__(self) -> None:
        self.down, self.refused = False, 0
        client("sqs").meta.events.register("before-call.sqs.SendMessage", self._refuse)

    def _refuse(self, **_: Any) -> None:
        if self.down:
            self.refused += 1
            raise ConnectionError("SQS is unavailable")


def record(
    organisation: str,
    product_id: str,
    count: int,
    duplicate_every: int = 0,
    outage: QueueOutage | None = None,
) -> None:
    for n in range(count):
        if outage is not None:
            outage.down = n % 7 == 3
        line = ReceiptLineRequest(
            product_id=product_id, quantity=Decimal(1 + n % 7), unit_cost=Decimal("0.08")
        )
        view = inventory.record_receipt(
            organisation,
            ReceiptRequest(received_at=datetime(2026, 11, 2, 9, tzinfo=UTC), lines=[line]),
            datetime.now(UTC),
        )
        if outage is not None:
            outage.down = False
        if duplicate_every and n % duplicate_every == 0:  # SQS delivers at least once: some twice
            queue.enqueue(
                ExportJob(organisation_id=organisation, kind="receipt", record_id=view.receipt.receipt_id)
            )


def deliver(stack: LocalStack, clock: VirtualTime, on_batch: Any = None) -> int:
    """The event source mapping: batches of 10 to the handler. A reported record stays hidden for its backoff
    (a crashed worker's, for the queue's visibility timeout): when nothing else is visible, the virtual clock
    moves on until SQS shows it again. Returns how many batches it took."""
    sqs, url, arn = boto3.client("sqs"), stack.physical("ExportQueue"), stack.physical("ExportQueue", "Arn")
    batches = 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not messages:
            if not in_flight(sqs, url):
                return batches
            clock.advance(IDLE_WAIT)
            continue
        batches += 1
        if on_batch:
            on_batch(batches)
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }
        context: Any = LocalLambdaContext("ExportFunction")
        answer = export_app.lambda_handler(event, context)
        assert isinstance(answer["batchItemFailures"], list), answer
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def in_flight(sqs: Any, url: str) -> int:
    """Messages SQS holds but does not show yet: hidden for a backoff or a visibility timeout, or delayed."""
    names = ["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def documents(sandboxes: Sandboxes) -> Counter[str]:
    """Journal entries and inventory adjustments by the export marker they carry."""
    return Counter(
        j["DocNumber"]
        for entity in ("JournalEntry", "InventoryAdjustment")
        for j in sandboxes.qbo.list_records(DEMO_REALM_ID, entity)
        if str(j.get("DocNumber", "")).startswith("PS-")
    )


def api_calls(sandboxes: Sandboxes) -> int:
    return sandboxes.qbo.call_count(None, API)


def crash_after_commit(sandboxes: Sandboxes) -> list[bool]:
    """Arms a crash of the worker right after the sandbox commits the next write (once per arming)."""
    armed: list[bool] = []
    handle = sandboxes.qbo.handle

    def wrapped(request: httpx.Request) -> httpx.Response:
        response: httpx.Response = handle(request)
        if (
            armed
            and request.method == "POST"
            and request.url.path in (WRITES, ADJUSTMENTS)
            and response.is_success
        ):
            armed.clear()
            raise RuntimeError("the worker died after the provider committed")
        return response

    sandboxes.qbo.handle = wrapped  # type: ignore[method-assign]
    return armed


class Round:
    """One fresh stack (moto copies the whole table on every transaction, so rounds stay small)."""

    def __init__(self, exports_wanted: int, *, faults: bool, first_kind: int = 0) -> None:
        self.wanted, self.faults, self.first_kind = exports_wanted, faults, first_kind
        self.injected: Counter[str] = Counter()
        self.documents: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.calls = self.batches = self.queue_refused = self.swept = self.switches = 0
        self.virtual_minutes = 0.0

    def run(self) -> Round:
        with moto_stack() as stack, sandboxes_installed(stack) as sandboxes:
            clock = VirtualTime(sandboxes)
            with ExitStack() as patched:  # the clock's patches are undone when the round ends
                install(
                    clock, lambda module, name, new: patched.enter_context(patch.object(module, name, new))
                )
                organisation, product = prepare(sandboxes)
                outage = QueueOutage() if self.faults else None
                record(
                    organisation,
                    product,
                    self.wanted,
                    duplicate_every=DUPLICATE_EVERY if self.faults else 0,
                    outage=outage,
                )
                self.queue_refused = outage.refused if outage else 0
                armed = crash_after_commit(sandboxes)
                before = api_calls(sandboxes)
                inject = self._injector(sandboxes, armed, organisation) if self.faults else None
                self.batches = deliver(stack, clock, inject)
                swept = queue.sweep(datetime.now(UTC) + queue.SWEEP_AFTER + timedelta(seconds=1))
                self.swept = swept
                self.batches += deliver(stack, clock, inject)
                self.calls = api_calls(sandboxes) - before
                self.documents = documents(sandboxes)
                listed = export_store.list_exports(organisation)
                self.statuses = Counter(e.status for e in listed)
                self.errors = Counter(e.last_error or "" for e in listed if e.status != "posted")
                self.virtual_minutes = clock.offset / 60
        return self

    def _injector(self, sandboxes: Sandboxes, armed: list[bool], organisation: str) -> Any:
        def inject(batch: int) -> None:  # a batch holds ten writes: one of them meets a fault, kinds in turn
            if batch % SWITCH_EVERY == 0:  # the posting mode switches between batches
                self.switches += 1
                mode = "inventory_adjustments" if self.switches % 2 else "journals"
                accounts = ACCOUNTS.model_copy(update={"adjustment": "3" if self.switches % 2 else None})
                # written as no save can (the API and the store refuse a switch once an export is planned:
                # the mode is locked), the lock dropped with it: the worker's other guard, the document
                # fixed at its first claim, is what keeps one document per export here
                chosen = {role: a for role, a in accounts.by_role().items() if a}
                table().update_item(
                    Key={"pk": org_pk(organisation), "sk": export_settings_sk("qbo")},
                    UpdateExpression="SET #m = :mode, accounts = :accounts REMOVE planned_mode",
                    ExpressionAttributeNames={"#m": "mode"},
                    ExpressionAttributeValues={":mode": mode, ":accounts": chosen},
                )
            if sum(self.injected.values()) >= self.wanted // FAULT_EVERY:
                return
            kind = KINDS[(self.first_kind + sum(self.injected.values())) % len(KINDS)]
            self.injected[kind] += 1
            if kind == "crash":
                armed.append(True)
            else:
                sandboxes.qbo.inject(kind, method="POST", path_prefix=WRITES)

        return inject


def main() -> None:
    started = time.perf_counter()
    clean = Round(CLEAN, faults=False).run()
    print(
        f"{CLEAN} exports without faults: {sum(clean.documents.values())} documents, "
        f"provider calls per export {clean.calls / CLEAN:.3f} (target <= 1.1; includes the one "
        f"home-currency read); {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    size = FAULTED // ROUNDS
    rounds = [Round(size, faults=True, first_kind=n * size // FAULT_EVERY).run() for n in range(ROUNDS)]
    markers = sum((r.documents for r in rounds), Counter[str]())
    injected = sum((r.injected for r in rounds), Counter[str]())
    statuses = sum((r.statuses for r in rounds), Counter[str]())
    errors = sum((r.errors for r in rounds), Counter[str]())
    calls = sum(r.calls for r in rounds)
    print(
        f"{FAULTED} exports ({ROUNDS} rounds), {sum(injected.values())} write faults injected "
        f"{dict(injected)}, {FAULTED // DUPLICATE_EVERY} messages delivered twice, "
        f"{sum(r.queue_refused for r in rounds)} messages refused by SQS ({sum(r.swept for r in rounds)} "
        f"queued by the outbox sweep), {sum(r.switches for r in rounds)} posting-mode switches:"
    )
    print(
        f"  distinct documents posted: {len(markers)} (target {FAULTED}); duplicates: "
        f"{sum(markers.values()) - len(markers)} (target 0)"
    )
    virtual = sum(r.virtual_minutes for r in rounds)
    print(
        f"  export statuses: {dict(statuses)}{f' {dict(errors)}' if errors else ''}; "
        f"provider calls per export {calls / FAULTED:.3f}; batches {sum(r.batches for r in rounds)}; "
        f"{time.perf_counter() - started:.1f} s (virtual time {virtual:.0f} min)"
    )


if __name__ == "__main__":
    main()
