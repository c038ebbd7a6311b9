"""A dependency outage at any step changes nothing. Each operation runs once to list the AWS calls the
service's own code makes (and the provider calls), then again on a fresh stack with each of those calls
failing in turn (for a Xero export every third one, every other of those stopping the function there as
Lambda's timeout does; each provider read failing for good). An API request answers 503 and leaves the
stored state as it was (or, where the service rides the fault out, answers as the clean run did and ends
where it ended); a worker leaves its work to come back, and the retry ends exactly where the clean run
ended, with one provider document.

Each run starts a stack and repeats the operation's set-up, so by default every other call is swept (the
first, the third, ...: minutes fewer); ``OUTAGE_SWEEP=every-step`` sweeps each."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.client
import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto.sqs.models import sqs_backends

from functions.sales_pull import app as sales_pull_app
from infra.local.devauth import DevIdentityProvider
from infra.local.gateway import Gateway, GatewayResponse
from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import ACCOUNT_ID, REGION, LocalStack
from infra.local.testbed import PARAMETERS, moto_stack, sandboxes_installed
from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared import aws as shared_aws
from shared import vault
from shared.domain import product_summary
from shared.domain.catalog import Product, ProviderItem
from shared.providers import http
from shared.services import credentials, exports, paging, queue, tokens
from shared.store import books as books_store
from shared.store import catalog as catalog_store
from shared.store import exports as export_store
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import DEMO_USER, callback, connect, start
from tests.integration.test_exports import RECEIVED, bracket_build, setup_qbo, setup_xero
from tests.integration.test_probe_exactly_once import deactivate

pytestmark = pytest.mark.usefixtures("no_real_sleep")
ROOT = Path(__file__).resolve().parents[2]
SERVICE_CODE = (f"{ROOT / 'shared'}/", f"{ROOT / 'functions'}/")
STRIDE = 1 if os.environ.get("OUTAGE_SWEEP") == "every-step" else 2  # the calls swept: every STRIDE-th


def swept(calls: list[str], every: int = 1) -> list[tuple[int, str]]:
    """The calls (numbered from 1) made to fail: every ``every``-th (0: none), and of those every
    ``STRIDE``-th."""
    return list(enumerate(calls, start=1))[:: every * STRIDE] if every else []


# ---- the faults: the k-th AWS call of the service's own code, the k-th provider call -----------------------
def _error(k: int, operation: str) -> Exception:
    """A throttle, a 503 or a connection that failed, in turn (botocore's own retries spent)."""
    if k % 3 == 0:
        return EndpointConnectionError(endpoint_url="https://aws.test")
    code, status = (
        ("ServiceUnavailable", 503) if k % 3 == 1 else ("ProvisionedThroughputExceededException", 400)
    )
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


def _from_service() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(SERVICE_CODE):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class Killed(BaseException):
    """The function stopped where it stood (Lambda's timeout): no handler of the service's runs after it."""


@dataclass
class Faults:
    """While ``armed``: the service's AWS calls and provider calls as made, and the one made to fail. With
    ``killed`` the function stops at that AWS call (it and every later one raise ``Killed``); the provider
    call fails ``provider_repeats`` times in a row (its retries too)."""

    aws_at: int | None = None
    killed: bool = False
    provider_at: int | None = None
    provider_fault: str = "503"
    provider_repeats: int = 1
    armed: bool = False
    aws: list[str] = field(default_factory=list)
    provider: list[str] = field(default_factory=list)


@contextmanager
def faults_installed(faults: Faults, sandboxes: Sandboxes) -> Iterator[Faults]:
    original = botocore.client.BaseClient._make_api_call

    def aws_call(client: Any, operation: str, params: Any) -> Any:
        if faults.armed and _from_service():
            faults.aws.append(f"{client.meta.service_model.service_name}.{operation}")
            if faults.killed and faults.aws_at is not None and len(faults.aws) >= faults.aws_at:
                raise Killed(operation)
            if len(faults.aws) == faults.aws_at:
                raise _error(len(faults.aws), operation)
        return original(client, operation, params)

    def provider_handler(sandbox: Any) -> Callable[[httpx.Request], httpx.Response]:
        handle = sandbox.handle

        def provider_call(request: httpx.Request) -> httpx.Response:
            if faults.armed:
                faults.provider.append(f"{request.method} {request.url.host}{request.url.path}")
                if len(faults.provider) == faults.provider_at:  # the sandbox's own fault, on this request
                    sandbox.inject(
                        faults.provider_fault,
                        method=request.method,
                        path_prefix=request.url.path,
                        count=faults.provider_repeats,
                    )
            response: httpx.Response = handle(request)
            return response

        return provider_call

    botocore.client.BaseClient._make_api_call = aws_call  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as patched:
        for sandbox in (sandboxes.qbo, sandboxes.xero):
            patched.setattr(sandbox, "handle", provider_handler(sandbox))
        try:
            yield faults
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def cold() -> None:
    """A cold function holds nothing yet: no opened tokens, secrets or DLQ address."""
    vault._opened.cache_clear()
    credentials.clear()
    tokens.provider.cache_clear()
    queue.redrive.cache_clear()
    paging._key.cache_clear()


# ---- a world, and what it holds ----------------------------------------------------------------------------
@dataclass
class World:
    stack: LocalStack
    api: Api
    sandboxes: Sandboxes
    patched: pytest.MonkeyPatch
    faults: Faults
    held: dict[str, Any] = field(default_factory=dict)  # what the set-up made, for the operation


IDENTITY = DevIdentityProvider(issuer=PARAMETERS["JwtIssuer"], audience=PARAMETERS["JwtAudience"])


@contextmanager
def fresh_world(faults: Faults) -> Iterator[World]:
    """A fresh stack and sandboxes, with ids drawn from one seeded stream (each run makes the same ones)."""
    seeded = random.Random(7)
    with ExitStack() as stack_of:
        patched = stack_of.enter_context(pytest.MonkeyPatch.context())
        patched.setattr(uuid, "uuid4", lambda: uuid.UUID(int=seeded.getrandbits(128), version=4))
        stack = stack_of.enter_context(moto_stack())
        sandboxes = stack_of.enter_context(sandboxes_installed(stack))
        stack_of.enter_context(faults_installed(faults, sandboxes))
        cold()
        yield World(stack, Api(Gateway(stack, IDENTITY), IDENTITY), sandboxes, patched, faults)


def _plain(value: Any) -> str:
    return repr(getattr(value, "value", value))  # Binary holds bytes; Decimals and sets as repr


def _live_grants(sandboxes: Sandboxes) -> tuple[int, int]:
    return (
        sum(not grant.revoked for grant in sandboxes.qbo.grants),
        sum(not grant.revoked for grant in sandboxes.xero.identity.grants.values()),
    )


def stored(world: World) -> Counter[str]:
    """The table's items (but the rate budget's windows), the queues' distinct messages (SQS delivers at
    least once; the worker posts an export once however often it is queued) and the providers' books and
    live consents, as a multiset of texts."""
    client = shared_aws.table().meta.client
    texts: list[str] = []
    for page in client.get_paginator("scan").paginate(TableName=shared_aws.table().name):
        texts.extend(
            json.dumps(item, sort_keys=True, default=_plain)
            for item in page["Items"]
            if not str(item["pk"]).startswith("RATE#")
        )
    for name, held in sqs_backends[ACCOUNT_ID][REGION].queues.items():
        texts.extend({f"queue {name}: {message.body}" for message in held._messages})
    qbo, xero = world.sandboxes.qbo, world.sandboxes.xero
    texts.append(f"live consents (qbo, xero): {_live_grants(world.sandboxes)}")
    for entity in ("JournalEntry", "InventoryAdjustment", "Vendor"):
        texts.extend(
            f"qbo {entity}: {json.dumps(r, sort_keys=True, default=_plain)}"
            for r in qbo.list_records(DEMO_REALM_ID, entity)
        )
    for collection in ("ManualJournals", "Contacts"):
        texts.extend(f"xero {collection}: {r!r}" for r in xero.list_records(AU_TENANT_ID, collection))
    return Counter(texts)


# the instants of one run (today's, in any offset; epoch seconds; Xero's "/Date(ms+0000)/"), which another run
# has at other times
_INSTANT = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)|Decimal\('1[789]\d{8}(\.\d+)?'\)"
    r"|/Date\(\d{13}\+0000\)/"
)
# ids a retry draws afresh: a record's, a grant's; an OAuth state's random parts
_IDS = re.compile(
    r"\b(RCV|BLD|REJ|PS)-[0-9A-F]{12,16}\b|[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"
)
_STATE = ("browser", "code_verifier", "nonce", "pk")
# what differs from run to run for one outcome: leases, sealed tokens and their keys, an export's attempts
_RUN_FIELDS = (
    *("ciphertext", "nonce", "wrapped_key", "write"),
    *("lease_owner", "lease_until", "attempts", "adopted", "unsure"),
    "last_checked_at",  # a connection check that ran while the person waited to retry
)


def _today(match: re.Match[str]) -> str:
    text = match.group(0)
    if text.startswith("Decimal"):
        return "<now>"
    if text.startswith("/Date("):
        instant = datetime.fromtimestamp(int(text[6:19]) / 1000, UTC)
    else:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return "<now>" if abs(instant - datetime.now(UTC)) < timedelta(days=2) else text


def normalised(state: Counter[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for text, n in state.items():
        if text.startswith("{"):
            item = json.loads(text)
            state = str(item["pk"]).startswith("STATE#")
            dropped = (*_RUN_FIELDS, *(_STATE if state else ()))
            kept = {k: v for k, v in item.items() if k not in dropped}
            if isinstance(kept.get("last_pull"), dict):  # a retried pull counts what it stored itself
                kept["last_pull"] = {k: v for k, v in kept["last_pull"].items() if k != "stored"}
            text = json.dumps(kept, sort_keys=True)
        out[_IDS.sub(lambda m: f"{m.group(1) or ''}<id>", _INSTANT.sub(_today, text))] += n
    return out


def ours(state: Counter[str]) -> Counter[str]:
    """The service's own state: the table and the queues (not the providers')."""
    return Counter({t: n for t, n in state.items() if t.startswith(("{", "queue "))})


def diff(a: Counter[str], b: Counter[str]) -> str:
    gone, added = a - b, b - a
    lines = [f"  - {t[:240]}" for t in gone] + [f"  + {t[:240]}" for t in added]
    return "\n".join(lines[:6])


def time_passes(world: World, *, checks: bool = False, minutes: int = 10) -> None:
    """What the schedules and queues do over the next minutes: every backoff, visibility timeout and lease
    over, the outbox swept, the queues drained; with ``checks``, the connections checked too."""
    later = datetime.now(UTC) + timedelta(minutes=minutes)
    world.patched.setattr(exports, "clock", lambda: later)
    for sandbox in (world.sandboxes.qbo, world.sandboxes.xero):
        sandbox.clock.advance(minutes * 60)  # a clock a worker may read (the tokens' lease, in a test)

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Later:
            return cls.fromtimestamp(later.timestamp(), tz)

    world.patched.setattr(sales_pull_app, "datetime", Later)  # the sales worker's clock (its pull's lease)
    for held in sqs_backends[ACCOUNT_ID][REGION].queues.values():
        for message in held._messages:
            message.visible_at = message.delayed_until = 0
    schedules = Scheduler(world.stack)
    schedules.fire("ExportFunction", later)
    if checks:
        schedules.fire("TokenRefreshFunction", later)
    Poller(world.stack).drain()


# ---- API requests ------------------------------------------------------------------------------------------
Step = Callable[[World], Any]
Request = Callable[[World], GatewayResponse]


@dataclass(frozen=True)
class Case:
    prepare: Step
    request: Request
    provider_faults: tuple[str, ...] = ()
    retry: Request | None = None  # what the person does after a 503 (by default: the same request again)
    spent: str = "~"  # keys (pk prefix) a request may use up even when it fails (a single-use OAuth state)
    checks: bool = False  # whether the connection checks' schedule finishes its work (``time_passes``)
    partial: str = ""  # the error of a 503 that says part was written (a product file's apply), else ""


@dataclass(frozen=True)
class Outcome:
    faults: Faults
    status: int
    body: str
    before: Counter[str]
    after: Counter[str]
    settled: Counter[str]


def _without(state: Counter[str], spent: str) -> Counter[str]:
    return Counter({t: n for t, n in state.items() if f'"pk": "{spent}' not in t})


def run_request(case: Case, faults: Faults) -> Outcome:
    with fresh_world(faults) as world:
        case.prepare(world)
        before = stored(world)
        cold()
        faults.armed = True
        try:
            response = case.request(world)
        finally:
            faults.armed = False
        after = stored(world) if response.status == 503 else Counter[str]()
        if response.status == 503:  # the person tries again once it answers
            time_passes(world, checks=case.checks)
            cold()
            retried = (case.retry or case.request)(world)
            if retried.status >= 300:
                body = f"503, then the retry answered {retried.status} {retried.body.decode()[:200]}"
                return Outcome(faults, retried.status, body, before, after, Counter())
        time_passes(world, checks=case.checks)
        body = response.body.decode()[:240]
        return Outcome(faults, response.status, body, before, after, _without(stored(world), case.spent))


def judge_request(what: str, outcome: Outcome, clean: Outcome, case: Case) -> list[str]:
    """An outage answers 503 with nothing of ours changed (or, where the case allows it, with its error
    saying part was written), and a retry ends as the clean run did (one provider document); a fault the
    service rode out answers as the clean run did and ends where it ended."""
    if outcome.status not in (503, clean.status) or not outcome.settled:
        return [f"{what}: answered {outcome.status} {outcome.body}"]
    problems = []
    if outcome.status == 503:
        before, after = _without(ours(outcome.before), case.spent), _without(ours(outcome.after), case.spent)
        says_partial = bool(case.partial) and f'"error":"{case.partial}"' in outcome.body.replace(" ", "")
        if after != before and not says_partial:
            problems.append(f"{what}: 503, but it changed\n{diff(before, after)}")
        if after == before and says_partial:
            problems.append(f"{what}: 503 saying part was written, but nothing changed")
    if normalised(outcome.settled) != normalised(clean.settled):
        change = diff(normalised(clean.settled), normalised(outcome.settled))
        problems.append(f"{what}: {outcome.status}, and it ended elsewhere\n{change}")
    return problems


def sweep_request(case: Case) -> list[str]:
    clean = run_request(case, Faults())
    assert 200 <= clean.status < 300, clean.body
    problems: list[str] = []
    for k, call in swept(clean.faults.aws):
        outcome = run_request(case, Faults(aws_at=k))
        problems += judge_request(f"AWS call {k} ({call}) failing", outcome, clean, case)
    for kind in case.provider_faults:
        for k, call in swept(clean.faults.provider):
            outcome = run_request(case, Faults(provider_at=k, provider_fault=kind))
            problems += judge_request(f"provider call {k} ({call}) {kind}", outcome, clean, case)
    return problems


def qbo_export_ready(world: World) -> None:
    world.held["parts"] = setup_qbo(world.api, world.sandboxes)


def receive_bolts(world: World) -> GatewayResponse:
    line = {"product_id": world.held["parts"]["bolt"], "quantity": "10", "unit_cost": "0.50"}
    return world.api.call("POST", "/receipts", json_body={"received_at": RECEIVED, "lines": [line]})


def parts_received(world: World) -> None:
    qbo_export_ready(world)
    parts = world.held["parts"]
    lines = [
        {"product_id": parts["blank"], "quantity": "10", "unit_cost": "1.20"},
        {"product_id": parts["bolt"], "quantity": "100", "unit_cost": "0.08"},
    ]
    answer = world.api.call("POST", "/receipts", json_body={"received_at": RECEIVED, "lines": lines})
    assert answer.status == 201, answer.body
    time_passes(world)  # its export posted


def a_refused_receipt(world: World, mode: str = "journals", account: str = "1") -> None:
    """A receipt's export refused for good (an account it posts to inactive in QBO: it never reached QBO, and
    is failed with its plan), then the account made active again: a retry plans it anew."""
    world.held["parts"] = setup_qbo(world.api, world.sandboxes, mode=mode)
    deactivate(world.sandboxes, "qbo", account, False)
    assert receive_bolts(world).status == 201
    time_passes(world)
    world.patched.setattr(exports, "clock", tokens.utc_now)  # the retry is now, not in those minutes
    (failed,) = export_store.list_exports("org-a", status="failed")
    assert failed.plan is not None and not failed.unsure, failed
    world.held["export_id"] = failed.export_id
    deactivate(world.sandboxes, "qbo", account, True)


def a_refused_adjustment(world: World) -> None:
    a_refused_receipt(world, mode="inventory_adjustments", account="3")  # its adjustment account


def a_waiting_export(world: World) -> None:
    """A receipt's export waiting for the connection (revoked in QBO), and a reconnect whose resume of it
    failed: a retry resumes it."""
    qbo_export_ready(world)
    world.sandboxes.qbo.revoke_realm(DEMO_REALM_ID)
    assert receive_bolts(world).status == 201
    time_passes(world)
    world.patched.setattr(exports, "clock", tokens.utc_now)  # the retry is now, not in those minutes

    def throttled(*args: Any, **kwargs: Any) -> int:
        raise _error(2, "Query")

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(exports, "resume_waiting", throttled)
        connected_qbo(world)
    (waiting,) = export_store.list_exports("org-a", status="waiting")
    world.held["export_id"] = waiting.export_id


def retry_export(world: World) -> GatewayResponse:
    return world.api.call("POST", f"/exports/{world.held['export_id']}/retry")


def build_brackets(world: World) -> GatewayResponse:
    return world.api.call("POST", "/builds", json_body=bracket_build(world.held["parts"]))


def change_waste_account(world: World) -> GatewayResponse:
    accounts = {
        "build_debit": "10",
        "build_credit": "11",
        "receiving_debit": "1",
        "receiving_credit": "5",
        "waste": "3",
        "cogs": "2",
    }
    return world.api.call(
        "PUT", "/integrations/qbo/export-settings", json_body={"mode": "journals", "accounts": accounts}
    )


def connected_qbo(world: World) -> None:
    assert connect(world.api, world.sandboxes, "qbo").page.status == 200


def track_sales(world: World) -> GatewayResponse:
    body = {"enabled": True, "start_date": "2026-08-01"}
    return world.api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body)


def tracking_qbo(world: World) -> None:
    connected_qbo(world)
    assert track_sales(world).status == 200


def nothing(world: World) -> None:
    """A new organisation: nothing stored yet."""


def start_connect(world: World) -> GatewayResponse:
    return world.api.call("POST", "/integrations/qbo/connect", json_body={})


def consent_and_callback(world: World) -> GatewayResponse:
    """Connect: started, the person consents at QBO (the browser, not the service: no faults there), and
    the callback."""
    world.faults.armed, armed = False, world.faults.armed
    started = start(world.api, "qbo")
    with world.sandboxes.client() as browser:
        params = walk_consent(browser, started.authorize_url, username=DEMO_USER[0], password=DEMO_USER[1])
    world.faults.armed = armed
    return callback(world.api, "qbo", params, started.cookie)


def disconnect(world: World) -> GatewayResponse:
    return world.api.call("POST", "/integrations/qbo/disconnect")


def pull_now(world: World) -> GatewayResponse:
    return world.api.call("POST", "/sales/pull")


def sync_items(world: World) -> GatewayResponse:
    return world.api.call("POST", "/integrations/qbo/sync/items")


def create_supplier(world: World) -> GatewayResponse:
    return world.api.call("POST", "/integrations/qbo/suppliers", json_body={"name": "Acme Fasteners"})


# A product file of two chunks, the first written in two batches (of 25 and 5): its re-import updates the
# catalog's products (one linked to a QBO item, which stays linked) and creates the others.
PRODUCT_FILE = b"SKU,Name,Unit cost\n" + b"".join(b"P-%02d,Part %d,2.50\n" % (n, n) for n in range(40))


def catalog_with_a_linked_product(world: World) -> None:
    world.patched.setattr(product_summary, "CHUNK_ROWS", 30)
    linked = Product(product_id="kept", sku="p-07", name="Old part", provider_links={"qbo": "19"})
    others = [Product(product_id=f"old-{n}", sku=f"P-{n:02d}", name="Old part") for n in range(28, 33)]
    catalog_store.put_products("org-a", [linked, *others])


def synced_items_and_a_product_of_one(world: World) -> None:
    items = [
        ProviderItem(provider="qbo", item_id=str(n), name=f"Item {n}", sku=f"P-0{n}", kind="inventory")
        for n in (1, 2, 7)
    ]
    catalog_store.put_provider_items("org-a", items)
    catalog_store.put_products("org-a", [Product(product_id="kept", sku="p-07", name="Old part")])


def import_items(world: World) -> GatewayResponse:
    body = {"provider": "qbo", "item_ids": ["1", "2", "7"]}
    return world.api.call("POST", "/products/import-from-provider", json_body=body)


def import_product_file(world: World) -> GatewayResponse:
    body = {"filename": "products.csv", "content_base64": base64.b64encode(PRODUCT_FILE).decode()}
    return world.api.call("POST", "/products/import?mode=apply", json_body=body)


REQUESTS: dict[str, Any] = {
    "receipt": Case(qbo_export_ready, receive_bolts),
    "build": Case(parts_received, build_brackets),
    "export settings": Case(qbo_export_ready, change_waste_account),
    "sales tracking": Case(connected_qbo, track_sales, ("503",)),
    "connect": Case(nothing, start_connect),
    # the callback's OAuth state is spent once its code went to QBO: the person connects again
    # (a connection whose resume of waiting exports failed is resumed by the next connection check)
    "callback": Case(nothing, consent_and_callback, ("503",), spent="STATE#", checks=True),
    # a revoke the provider refuses is best effort, said in last_error (test_probe_oauth_lifecycle): no 503
    "disconnect": Case(connected_qbo, disconnect),
    "pull now": Case(tracking_qbo, pull_now),
    # a sync cut short after storing part of what it read says so; syncing again stores the rest
    "item sync": Case(connected_qbo, sync_items, ("503",), partial="SyncInterrupted"),
    "supplier": Case(connected_qbo, create_supplier, ("503", "lost_response")),
    # an apply cut short after writing says the products written stay; applying the file again writes the rest
    "product file": Case(catalog_with_a_linked_product, import_product_file, partial="ImportInterrupted"),
    "provider items as products": Case(synced_items_and_a_product_of_one, import_items),
    # its plan taken out of the books and the export queued again, or neither
    "retry of a refused export": Case(a_refused_receipt, retry_export),
    "retry of a refused inventory adjustment": Case(a_refused_adjustment, retry_export),
    "retry of a waiting export": Case(a_waiting_export, retry_export),
}


@pytest.mark.parametrize("case", REQUESTS.values(), ids=REQUESTS.keys())
def test_a_request_meeting_an_outage_at_any_step_answers_503_and_changes_nothing(case: Case) -> None:
    problems = sweep_request(case)
    assert not problems, "\n".join(problems)


def test_a_retry_outrun_by_other_exports_at_every_try_answers_503_and_changes_nothing() -> None:
    """Other exports of the company committing their plans before the retry's at each of its tries (a burst):
    the retry answers 503 with nothing changed, and the person's next retry goes through."""
    with fresh_world(Faults()) as world:
        a_refused_receipt(world)
        before = ours(stored(world))

        def outrun(*args: Any, **kwargs: Any) -> bool:
            raise books_store.BooksMoved()

        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(books_store, "drop_plan", outrun)
            answer = retry_export(world)
        assert answer.status == 503, answer.body
        assert "try again" in json.loads(answer.body)["message"]
        assert ours(stored(world)) == before
        assert retry_export(world).status == 200
        time_passes(world)
        (posted,) = export_store.list_exports("org-a", status="posted")
        assert posted.export_id == world.held["export_id"]


# ---- workers -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    prepare: Step  # leaves the work queued
    work: Step  # one delivery of it
    provider_faults: tuple[str, ...] = ()
    checks: bool = False  # as ``Case.checks``
    aws: int = 1  # each AWS call failing in turn (every ``aws``-th one: 0, none)
    kills: bool = False  # every other one swept stopping the function there instead (Lambda's timeout)
    reads_fail: bool = False  # each provider read failing for good in turn (its retries too)


def run_job(job: Job, faults: Faults) -> Counter[str]:
    """The work delivered once under the fault, then the minutes after (its retry); where it all ended."""
    with fresh_world(faults) as world:
        job.prepare(world)
        cold()
        faults.armed = True
        try:
            job.work(world)
        except (Exception, Killed):  # the invocation failed whole: Lambda delivers its batch again
            pass
        finally:
            faults.armed = False
        time_passes(world, checks=job.checks)
        return stored(world)


READ_FAULTS = ("503", "timeout", "lost_response")  # in turn, as ``_error`` takes AWS's


def _aws_faults(job: Job, calls: list[str]) -> list[tuple[str, Faults]]:
    return [
        (f"the function stopped at AWS call {k} ({call})", Faults(aws_at=k, killed=True))
        if job.kills and n % 2
        else (f"AWS call {k} ({call}) failing", Faults(aws_at=k))
        for n, (k, call) in enumerate(swept(calls, job.aws))
    ]


def sweep_job(job: Job) -> list[str]:
    clean_faults = Faults()
    clean = normalised(run_job(job, clean_faults))
    problems: list[str] = []
    runs = _aws_faults(job, clean_faults.aws)
    runs += [
        (f"provider call {k} ({call}) {kind}", Faults(provider_at=k, provider_fault=kind))
        for kind in job.provider_faults
        for k, call in swept(clean_faults.provider)
    ]
    runs += [
        (
            f"provider read {k} ({call}) failing for good ({READ_FAULTS[k % 3]})",
            Faults(provider_at=k, provider_fault=READ_FAULTS[k % 3], provider_repeats=http.MAX_ATTEMPTS),
        )
        for k, call in swept(clean_faults.provider)
        if job.reads_fail and call.startswith("GET ")
    ]
    for what, faults in runs:
        settled = normalised(run_job(job, faults))
        if settled != clean:
            problems.append(f"{what}: the retry ended elsewhere\n{diff(clean, settled)}")
    return problems


def one_delivery(world: World) -> None:
    Poller(world.stack).poll_once()


def receipt_queued(world: World) -> None:
    qbo_export_ready(world)
    assert receive_bolts(world).status == 201


def xero_token_near_expiry(world: World) -> None:
    assert connect(world.api, world.sandboxes, "xero", choose=[AU_TENANT_ID]).page.status == 200
    clock = world.sandboxes.xero.clock
    world.patched.setattr(tokens, "utc_now", clock.now)  # the service's clock: the sandbox's
    clock.advance(25 * 60)  # 5 minutes left: inside the scheduled margin


def connection_check(world: World) -> None:
    Scheduler(world.stack).fire("TokenRefreshFunction")
    Poller(world.stack).poll_once()


def xero_receipt_queued(world: World) -> None:
    world.held["parts"] = setup_xero(world.api, world.sandboxes)
    assert receive_bolts(world).status == 201


def adjustment_queued(world: World) -> None:
    world.held["parts"] = setup_qbo(world.api, world.sandboxes, mode="inventory_adjustments")
    assert receive_bolts(world).status == 201


def sales_pull_queued(world: World) -> None:
    tracking_qbo(world)
    assert pull_now(world).status == 202


JOBS = {
    "export": Job(receipt_queued, one_delivery, ("lost_response",)),
    # its path is the QBO export's but for the provider's: every third call, failing or stopping the function
    "xero export": Job(xero_receipt_queued, one_delivery, aws=3, kills=True, reads_fail=True),
    "qbo inventory adjustment": Job(adjustment_queued, one_delivery, aws=0, reads_fail=True),
    "token refresh": Job(xero_token_near_expiry, connection_check, ("lost_response",), checks=True),
    "sales pull": Job(sales_pull_queued, one_delivery),
}


@pytest.mark.parametrize("job", JOBS.values(), ids=JOBS.keys())
def test_a_worker_meeting_an_outage_at_any_step_is_retried_to_the_same_end_posting_once(job: Job) -> None:
    problems = sweep_job(job)
    assert not problems, "\n".join(problems)
