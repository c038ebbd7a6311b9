"""Every fault ends with exactly one document in the provider, or a ``failed`` export with its reason (and
its message in the DLQ): duplicate and concurrent deliveries, a crash after the provider committed, lost
responses, timeouts, dropped connections, 5xx, 429 storms, an expired connection mid-batch, a lock date or
closed period, an unmapped item, an inactive account. Messages are delivered as Lambda's poller does; the
time a backoff would take is skipped by making a reported record visible again at once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest

from functions.export import app as export_app
from infra.local.context import LocalLambdaContext
from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import REGION, LocalStack
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared.bodies import ExportSettingsRequest
from shared.domain.catalog import Product
from shared.providers.qbo import api as qbo_api
from shared.services import export_settings, exports, queue
from shared.store import catalog as catalog_store
from shared.store import settings as settings_store
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_exports import RECEIVED, ok, setup_qbo, setup_xero

pytestmark = pytest.mark.usefixtures("no_real_sleep")
WRITES = {"qbo": f"/v3/company/{DEMO_REALM_ID}/journalentry", "xero": "/api.xro/2.0/ManualJournals"}
WRITE_METHODS = {"qbo": "POST", "xero": "PUT"}  # Xero's searches read the same path
SEARCHES = {"qbo": f"/v3/company/{DEMO_REALM_ID}/query", "xero": "/api.xro/2.0/ManualJournals"}


# ---- delivery, as Lambda's event source mapping does it ----------------------------------------------------
def sqs_event(messages: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def invoke(aws: LocalStack, messages: list[dict[str, Any]]) -> set[str]:
    """Runs the export handler on a batch; the message ids it reported failed."""
    event = sqs_event(messages, aws.physical("ExportQueue", "Arn"))
    response = export_app.lambda_handler(event, LocalLambdaContext("ExportFunction"))
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def receive(aws: LocalStack, queue: str = "ExportQueue") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (
        boto3.client("sqs")
        .receive_message(
            QueueUrl=aws.physical(queue),
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        .get("Messages", [])
    )
    return messages


def deliver(aws: LocalStack, rounds: int = 12) -> int:
    """Receive, invoke, delete the done ones; a reported one comes back at once (its backoff elapsed)."""
    sqs, url, invocations = boto3.client("sqs"), aws.physical("ExportQueue"), 0
    for _ in range(rounds):
        messages = receive(aws)
        if not messages:
            break
        invocations += 1
        failed = invoke(aws, messages)
        for m in messages:
            if m["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return invocations


# ---- setup -------------------------------------------------------------------------------------------------
def receipt(api: Api, product_id: str, quantity: str = "10") -> str:
    body = {
        "received_at": RECEIVED,
        "lines": [{"product_id": product_id, "quantity": quantity, "unit_cost": "0.50"}],
    }
    return str(ok(api.call("POST", "/receipts", json_body=body), 201)["receipt"]["receipt_id"])


def setup(api: Api, sandboxes: Sandboxes, provider: str) -> str:
    """Connected with export settings; returns a product id to receive."""
    return (setup_qbo if provider == "qbo" else setup_xero)(api, sandboxes)["bolt"]


def documents(sandboxes: Sandboxes, provider: str) -> list[dict[str, Any]]:
    if provider == "qbo":
        return sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")
    return sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")


def the_export(api: Api) -> dict[str, Any]:
    (export,) = ok(api.call("GET", "/exports"))["items"]
    return export  # type: ignore[no-any-return]


def posted_once(api: Api, sandboxes: Sandboxes, provider: str) -> dict[str, Any]:
    export = the_export(api)
    found = [
        d
        for d in documents(sandboxes, provider)
        if export["export_id"] in (d.get("PrivateNote") or d.get("Narration"))
    ]
    assert export["status"] == "posted", export
    assert [d.get("Id") or d.get("ManualJournalID") for d in found] == [export["document_id"]]
    return export


def after_write(sandbox: Any, path: str, action: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs ``action`` right after the sandbox commits the first write to ``path`` (the caller sees it)."""
    handle = sandbox.handle
    done: list[bool] = []

    def wrapped(request: httpx.Request) -> httpx.Response:
        response: httpx.Response = handle(request)
        if (
            request.method in ("POST", "PUT")
            and request.url.path == path
            and response.is_success
            and not done
        ):
            done.append(True)
            action()
        return response

    monkeypatch.setattr(sandbox, "handle", wrapped)


@pytest.fixture
def dlq(aws: LocalStack) -> Callable[[], list[dict[str, Any]]]:
    return lambda: receive(aws, "ExportDeadLetterQueue")


PROVIDERS = pytest.mark.parametrize("provider", ["qbo", "xero"])


# ---- duplicates and crashes --------------------------------------------------------------------------------
@PROVIDERS
def test_repeated_and_concurrent_deliveries_post_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, provider: str
) -> None:
    receipt(api, setup(api, sandboxes, provider))
    (message,) = receive(aws)
    sandbox = getattr(sandboxes, provider)
    failures: list[set[str]] = []
    threads = [threading.Thread(target=lambda: failures.append(invoke(aws, [message]))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writes = sandbox.call_count(None, WRITES[provider])
    assert invoke(aws, [message]) == set()  # delivered once more, after the others finished
    assert sandbox.call_count(None, WRITES[provider]) == writes  # an export already posted calls nobody
    posted_once(api, sandboxes, provider)


def test_export_log_lines_carry_the_sqs_message_id(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.observability import logger

    receipt(api, setup(api, sandboxes, "qbo"))
    (message,) = receive(aws)
    caplog.handler.setFormatter(logger.registered_formatter)  # lines as the function writes them
    caplog.clear()
    assert invoke(aws, [message]) == set()
    lines = [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]
    posted = [line for line in lines if line.get("message") == "export posted"]
    assert posted and all(line["correlation_id"] == message["MessageId"] for line in posted)


@PROVIDERS
def test_a_crash_after_the_provider_committed_is_settled_by_the_marker(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipt(api, setup(api, sandboxes, provider))

    def crash() -> None:
        raise RuntimeError("the worker died after the provider committed")

    after_write(getattr(sandboxes, provider), WRITES[provider], crash, monkeypatch)
    (message,) = receive(aws)
    assert invoke(aws, [message]) == {message["MessageId"]}
    assert the_export(api)["status"] == "posting"

    later = exports.clock() + timedelta(seconds=exports.LEASE_SECONDS + 120)  # SQS redelivers after the lease
    monkeypatch.setattr(exports, "clock", lambda: later)
    assert invoke(aws, [message]) == set()
    export = posted_once(api, sandboxes, provider)
    assert export["adopted"] and export["attempts"] == 2


@pytest.mark.parametrize("switch_to", ["inventory_adjustments", "journals"])
def test_a_mode_switch_after_a_crash_is_refused_and_the_retry_posts_one_document(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, switch_to: str
) -> None:
    """Once an export is planned, the mode can't change (the other mode could not take its document over);
    the retry looks where the first attempt wrote."""
    start = "journals" if switch_to == "inventory_adjustments" else "inventory_adjustments"
    product = setup_qbo(api, sandboxes, start)["bolt"]
    receipt(api, product)
    path = WRITES["qbo"] if start == "journals" else f"/v3/company/{DEMO_REALM_ID}/inventoryadjustment"

    def crash() -> None:
        raise RuntimeError("the worker died after the provider committed")

    after_write(sandboxes.qbo, path, crash, monkeypatch)
    (message,) = receive(aws)
    assert invoke(aws, [message]) == {message["MessageId"]}
    settings = ok(api.call("GET", "/integrations/qbo/export-settings"))
    accounts = {role: (a or {}).get("account_id") for role, a in settings["accounts"].items()}
    accounts["adjustment"] = "3" if switch_to == "inventory_adjustments" else None
    body = {"mode": switch_to, "accounts": {k: v for k, v in accounts.items() if v}}
    refused = api.call("PUT", "/integrations/qbo/export-settings", json_body=body)
    assert refused.status == 400, refused.body
    assert [d["field"] for d in refused.json()["details"]] == ["mode"], refused.json()
    assert ok(api.call("GET", "/integrations/qbo/export-settings"))["mode"] == start

    later = exports.clock() + timedelta(seconds=exports.LEASE_SECONDS + 120)
    monkeypatch.setattr(exports, "clock", lambda: later)
    assert invoke(aws, [message]) == set()
    export = the_export(api)
    assert export["status"] == "posted" and export["adopted"], export
    written = [
        d
        for entity in ("JournalEntry", "InventoryAdjustment")
        for d in sandboxes.qbo.list_records(DEMO_REALM_ID, entity)
        if d.get("DocNumber") == export["export_id"]
    ]
    assert [d["Id"] for d in written] == [export["document_id"]]  # one document, where it was first posted


def _switch_body(api: Api, switch_to: str) -> dict[str, Any]:
    settings = ok(api.call("GET", "/integrations/qbo/export-settings"))
    accounts = {role: (a or {}).get("account_id") for role, a in settings["accounts"].items()}
    accounts["adjustment"] = "3" if switch_to == "inventory_adjustments" else None
    return {"mode": switch_to, "accounts": {k: v for k, v in accounts.items() if v}}


def test_a_mode_switch_saved_between_an_exports_read_and_its_plan_makes_the_export_wait_for_the_new_mode(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The switch lands after the worker read the settings (journals) and before it planned: the mode is
    fixed by a conditional write before the first plan, which fails, so the export comes back and posts as
    the settings now say (an inventory adjustment), never a journal the books could no longer follow."""
    product = setup_qbo(api, sandboxes, "journals")["bolt"]
    receipt(api, product)
    switch = ExportSettingsRequest.model_validate(_switch_body(api, "inventory_adjustments"))
    read = settings_store.get_export_settings

    saved: list[bool] = []

    def read_then_switched(organisation_id: str, provider: str) -> Any:
        found = read(organisation_id, provider)
        if not saved:  # the worker's read: the person saves now
            saved.append(True)
            export_settings.put_settings(organisation_id, provider, switch, datetime.now(UTC))
        return found

    monkeypatch.setattr(settings_store, "get_export_settings", read_then_switched)
    (message,) = receive(aws)
    assert invoke(aws, [message]) == {message["MessageId"]}  # comes back: the mode changed under it
    assert ok(api.call("GET", "/integrations/qbo/export-settings"))["mode"] == "inventory_adjustments"
    monkeypatch.setattr(settings_store, "get_export_settings", read)
    assert invoke(aws, [message]) == set()
    export = the_export(api)
    assert export["status"] == "posted" and export["document_type"] == "InventoryAdjustment", export
    journals = sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")
    assert not [j for j in journals if j.get("DocNumber") == export["export_id"]]


def test_a_mode_switch_after_an_export_fixed_the_mode_is_refused_even_before_its_plan_is_stored(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A worker has fixed the mode (the write before its plan) but stored no plan yet: the exports show none,
    and the save is still refused, by the same condition in DynamoDB."""
    setup_qbo(api, sandboxes, "journals")
    assert settings_store.lock_mode("org-a", "qbo", "journals")  # as a worker does just before its plan
    switch = _switch_body(api, "inventory_adjustments")
    refused = api.call("PUT", "/integrations/qbo/export-settings", json_body=switch)
    assert refused.status == 400, refused.body
    assert refused.json()["details"] == [
        {
            "field": "mode",
            "problem": "can't change once exports are planned: an export is being planned in the other mode",
        }
    ]
    assert ok(api.call("GET", "/integrations/qbo/export-settings"))["mode"] == "journals"
    again = ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=_switch_body(api, "journals")))
    assert again["mode"] == "journals"  # the same mode is saved as before


# ---- faults on the wire ------------------------------------------------------------------------------------
@PROVIDERS
def test_a_lost_response_is_found_by_its_marker_not_posted_again(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, provider: str
) -> None:
    receipt(api, setup(api, sandboxes, provider))
    sandbox = getattr(sandboxes, provider)
    sandbox.inject("lost_response", method=WRITE_METHODS[provider], path_prefix=WRITES[provider])
    searches = sandbox.call_count("GET", SEARCHES[provider])
    assert deliver(aws) == 2
    export = posted_once(api, sandboxes, provider)
    assert export["adopted"] and export["attempts"] == 2
    assert sandbox.call_count("GET", SEARCHES[provider]) == searches + 1


def test_a_xero_search_answered_without_its_manual_journals_is_no_proof_of_none_and_posts_nothing_again(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Xero's envelope always names its collection (an empty list when nothing matches: xero.md section 4),
    so a search answered without ``ManualJournals`` is broken: the export comes back, as after an outage,
    rather than taking the lost write for one that never reached Xero."""
    receipt(api, setup(api, sandboxes, "xero"))
    sandboxes.xero.inject("lost_response", method="PUT", path_prefix=WRITES["xero"])
    serve, broken = sandboxes.xero.serve_request, [True]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == SEARCHES["xero"] and broken:
            broken.clear()
            return httpx.Response(200, json={"Status": "OK", "ProviderName": "Partsemble"})
        return serve(request)

    monkeypatch.setattr(sandboxes.xero, "serve_request", answer)
    deliveries = deliver(aws)  # the write's answer lost; the broken search; the search that finds it
    export = posted_once(api, sandboxes, "xero")
    assert export["adopted"] and (deliveries, export["attempts"]) == (3, 3)


def test_a_lost_write_whose_journal_a_person_archived_in_xero_is_adopted_not_posted_again(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """Archiving hides a posted journal in Xero; it stays in the books (only voiding reverses one:
    ``xero.postings.NOT_IN_BOOKS`` cites the source): the search after a lost write adopts it, rather than
    posting the receipt's value a second time."""
    receipt(api, setup(api, sandboxes, "xero"))
    sandboxes.xero.inject("lost_response", method="PUT", path_prefix=WRITES["xero"])
    (message,) = receive(aws)
    assert invoke(aws, [message]) == {message["MessageId"]}  # the write's answer lost: it comes back
    (journal,) = documents(sandboxes, "xero")
    archived = {"Status": "ARCHIVED"}
    sandboxes.xero.edit_record(AU_TENANT_ID, "ManualJournals", journal["ManualJournalID"], archived)
    boto3.client("sqs").change_message_visibility(
        QueueUrl=aws.physical("ExportQueue"), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    assert deliver(aws) == 1
    export = posted_once(api, sandboxes, "xero")
    assert export["adopted"] and export["document_id"] == journal["ManualJournalID"]


@PROVIDERS
def test_a_write_answered_without_the_document_it_made_is_found_by_the_search_not_posted_again(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    """A write's 200 that names no document (QBO's object, Xero's ManualJournals) leaves the outcome unknown:
    a provider error, after which the search finds the journal that was made, as after a lost answer."""
    receipt(api, setup(api, sandboxes, provider))
    sandbox = getattr(sandboxes, provider)
    serve, broken = sandbox.serve_request, [True]

    def answer(request: httpx.Request) -> httpx.Response:
        made = serve(request)
        if request.method == WRITE_METHODS[provider] and request.url.path == WRITES[provider] and broken:
            broken.clear()
            return httpx.Response(200, json={"Status": "OK"} if provider == "xero" else {"time": "now"})
        return made

    monkeypatch.setattr(sandbox, "serve_request", answer)
    assert deliver(aws) == 2
    export = posted_once(api, sandboxes, provider)
    assert export["adopted"] and export["attempts"] == 2, export


@pytest.mark.parametrize("kind", ["timeout", "drop", "500", "503"])
@PROVIDERS
def test_unanswered_or_failed_writes_are_retried_and_post_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, provider: str, kind: str
) -> None:
    receipt(api, setup(api, sandboxes, provider))
    getattr(sandboxes, provider).inject(
        kind, method=WRITE_METHODS[provider], path_prefix=WRITES[provider], count=2
    )
    assert deliver(aws) == 3
    export = posted_once(api, sandboxes, provider)
    assert (export["attempts"], export["adopted"], export["last_error"]) == (3, False, None)


# Xero allows 60 calls a minute, which the rate budget spreads as 8 per 10 s: a longer storm there would be
# paced by the budget (on the real clock) rather than by the provider's 429s. Xero's 429 says how long to
# wait (to the end of its minute): longer than the worker waits in place, so each brings the record back
# later through the queue instead, and the rest of the batch is not held up.
@pytest.mark.parametrize(("provider", "storm", "deliveries"), [("qbo", 12, 3), ("xero", 3, 4)])
def test_a_429_storm_is_waited_out(
    api: Api,
    aws: LocalStack,
    sandboxes: Sandboxes,
    provider: str,
    storm: int,
    deliveries: int,
    no_real_sleep: list[float],
) -> None:
    receipt(api, setup(api, sandboxes, provider))
    sandbox = getattr(sandboxes, provider)
    # Xero's minute limit asks to wait until the next minute: at 10 s past one, 50 s, past what an export
    # waits in place (in a minute's last 2 s it would be waited out in place, and the storm not seen)
    sandbox.clock.advance((70 - sandbox.clock.now().second) % 60)
    sandbox.inject("429", method=WRITE_METHODS[provider], path_prefix=WRITES[provider], count=storm)
    assert (
        deliver(aws) == deliveries
    )  # five tries per delivery (waiting as told in between), then SQS backoff
    posted_once(api, sandboxes, provider)
    assert len(no_real_sleep) == storm - (deliveries - 1)  # within a delivery it waits between tries


def test_a_qbo_throttle_answered_as_403_with_code_3001_is_waited_out_and_the_connection_stays(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, no_real_sleep: list[float]
) -> None:
    """QBO's throttling has come back as HTTP 403 (XML, code 3001; qbo.md section 2.6): it is a rate limit,
    not a refused company, so the export waits and posts, and the connection is not marked expired."""
    receipt(api, setup(api, sandboxes, "qbo"))
    sandboxes.qbo.throttle_status = 403
    sandboxes.qbo.inject("429", method="POST", path_prefix=WRITES["qbo"], count=3)
    assert deliver(aws) == 1  # waited in place between the tries, not sent back through the queue
    posted_once(api, sandboxes, "qbo")
    assert len(no_real_sleep) == 3  # a backoff between each two of the four tries
    connection = next(c for c in ok(api.call("GET", "/integrations")) if c["provider"] == "qbo")
    assert connection["status"] == "connected"


def test_xero_s_minute_limit_never_runs_an_export_out_of_attempts(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, no_real_sleep: list[float]
) -> None:
    """Refused by Xero's minute limit at every one of its five receives, the export is queued anew after
    Xero's Retry-After instead of failing, and then posts."""
    receipt(api, setup(api, sandboxes, "xero"))
    now = sandboxes.xero.clock.now()
    # Xero's minute ends in 3 s: Retry-After 3, longer than the worker waits in place
    sandboxes.xero.clock.set(now.replace(second=57))
    sandboxes.xero.inject("429", method="PUT", path_prefix=WRITES["xero"], count=5)
    assert deliver(aws) == 5  # each receive refused once; the fifth queues a new message, 4 s later
    export = the_export(api)
    assert export["status"] == "pending" and "rate limit" in export["last_error"], export
    sandboxes.xero.clock.advance(3)
    time.sleep(4.5)  # the new message's delay, on SQS's (real) clock
    assert deliver(aws) == 1
    assert posted_once(api, sandboxes, "xero")["attempts"] == 6


def test_retries_run_out_into_a_failure_and_a_retry_cannot_duplicate(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, dlq: Callable[[], list[dict[str, Any]]]
) -> None:
    receipt(api, setup(api, sandboxes, "qbo"))
    sandboxes.qbo.inject("timeout", path_prefix=WRITES["qbo"], count=3)
    sandboxes.qbo.inject("lost_response", path_prefix=WRITES["qbo"], count=1)  # the fourth try did commit
    assert deliver(aws, rounds=4) == 4
    sandboxes.qbo.inject("503", path_prefix=SEARCHES["qbo"], count=10)  # and then the searches fail too
    deliver(aws)
    export = the_export(api)
    assert export["status"] == "failed"
    assert export["last_error"] == "gave up after 5 attempts: qbo: the provider is unavailable (HTTP 503)"
    (dead,) = dlq()
    assert dead["MessageAttributes"]["export_id"]["StringValue"] == export["export_id"]
    assert "gave up after 5 attempts" in dead["MessageAttributes"]["reason"]["StringValue"]

    retried = ok(api.call("POST", f"/exports/{export['export_id']}/retry"))
    assert retried["status"] == "pending"
    deliver(aws)
    assert posted_once(api, sandboxes, "qbo")["adopted"]  # the fourth, lost write was there all along
    assert api.call("POST", f"/exports/{export['export_id']}/retry").status == 409


# ---- connection expiry -------------------------------------------------------------------------------------
def test_an_expired_connection_makes_exports_wait_and_reconnecting_resumes_them(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    bolt = setup(api, sandboxes, "qbo")
    for _ in range(3):
        receipt(api, bolt)
    after_write(sandboxes.qbo, WRITES["qbo"], lambda: sandboxes.qbo.revoke_realm(DEMO_REALM_ID), monkeypatch)
    deliver(aws)
    statuses = sorted(e["status"] for e in ok(api.call("GET", "/exports"))["items"])
    assert statuses == ["posted", "waiting", "waiting"]
    assert (
        next(c for c in ok(api.call("GET", "/integrations")) if c["provider"] == "qbo")["status"] == "expired"
    )

    connect(api, sandboxes, "qbo")  # the person reconnects; nothing else is asked of them
    deliver(aws)
    exported = ok(api.call("GET", "/exports"))["items"]
    assert [e["status"] for e in exported] == ["posted"] * 3
    assert len(documents(sandboxes, "qbo")) == 3


def test_a_reconnect_whose_resume_of_waiting_exports_fails_is_connected_and_a_retry_resumes_them(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection is made even when resuming its waiting exports hits an outage: the popup says so, and
    a retry of a waiting export (refused while nothing is connected) resumes it."""
    from botocore.exceptions import ClientError

    from shared.services import exports

    bolt = setup(api, sandboxes, "qbo")
    for _ in range(2):
        receipt(api, bolt)
    after_write(sandboxes.qbo, WRITES["qbo"], lambda: sandboxes.qbo.revoke_realm(DEMO_REALM_ID), monkeypatch)
    deliver(aws)
    waiting = next(e for e in ok(api.call("GET", "/exports"))["items"] if e["status"] == "waiting")

    def throttled(*args: Any, **kwargs: Any) -> int:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Query")

    with monkeypatch.context() as patch:
        patch.setattr(exports, "resume_waiting", throttled)
        assert connect(api, sandboxes, "qbo").page.status == 200
    connection = next(c for c in ok(api.call("GET", "/integrations")) if c["provider"] == "qbo")
    assert connection["status"] == "connected"
    assert ok(api.call("POST", f"/exports/{waiting['export_id']}/retry"))["status"] == "pending"
    deliver(aws)
    assert [e["status"] for e in ok(api.call("GET", "/exports"))["items"]] == ["posted"] * 2
    assert len(documents(sandboxes, "qbo")) == 2


def test_a_connect_whose_resume_failed_has_its_waiting_exports_resumed_by_the_next_connection_check(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody has to notice: the scheduled check of the connection resumes them (once: the mark is taken
    off), and a check whose own resume fails leaves them for the next one."""
    from botocore.exceptions import ClientError

    from shared.services import tokens

    monkeypatch.setattr(tokens, "utc_now", sandboxes.qbo.clock.now)  # the checks' clock: the sandbox's
    bolt = setup(api, sandboxes, "qbo")
    for _ in range(2):
        receipt(api, bolt)
    after_write(sandboxes.qbo, WRITES["qbo"], lambda: sandboxes.qbo.revoke_realm(DEMO_REALM_ID), monkeypatch)
    deliver(aws)

    def throttled(*args: Any, **kwargs: Any) -> int:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Query")

    def check() -> None:
        """One scheduled tick through the connection check queue."""
        assert Scheduler(aws).fire("TokenRefreshFunction")["queued"] == 1
        Poller(aws).drain()

    with monkeypatch.context() as patch:
        patch.setattr(exports, "resume_waiting", throttled)
        assert connect(api, sandboxes, "qbo").page.status == 200
        check()  # the check's resume fails too: still waiting, still marked
    assert sorted(e["status"] for e in ok(api.call("GET", "/exports"))["items"]) == ["posted", "waiting"]
    sandboxes.qbo.clock.advance(5 * 60)
    check()
    deliver(aws)
    assert [e["status"] for e in ok(api.call("GET", "/exports"))["items"]] == ["posted"] * 2
    assert len(documents(sandboxes, "qbo")) == 2
    resumed = ok(api.call("GET", "/exports"))["items"]
    with monkeypatch.context() as patch:
        patch.setattr(exports, "resume_waiting", throttled)  # not called again: the mark is off
        sandboxes.qbo.clock.advance(5 * 60)
        check()
    assert ok(api.call("GET", "/exports"))["items"] == resumed


# ---- permanent failures ------------------------------------------------------------------------------------
def test_a_lock_date_fails_with_the_reason_and_a_retry_after_unlocking_posts_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, dlq: Callable[[], list[dict[str, Any]]]
) -> None:
    receipt(api, setup(api, sandboxes, "xero"))
    sandboxes.xero.set_lock_dates(AU_TENANT_ID, period_lock_date=date(2026, 11, 30))
    assert deliver(aws) == 1  # a permanent failure is never retried by SQS
    export = the_export(api)
    assert export["status"] == "failed"
    assert "period lock date" in export["last_error"]
    (dead,) = dlq()
    assert "period lock date" in dead["MessageAttributes"]["reason"]["StringValue"]
    assert documents(sandboxes, "xero") == []

    sandboxes.xero.set_lock_dates(AU_TENANT_ID, period_lock_date=date(2026, 6, 30))
    ok(api.call("POST", f"/exports/{export['export_id']}/retry"))
    deliver(aws)
    posted_once(api, sandboxes, "xero")


def test_a_closed_period_in_qbo_fails_with_the_reason(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    receipt(api, setup(api, sandboxes, "qbo"))
    sandboxes.qbo.update_company(DEMO_REALM_ID, closing_date=date(2026, 11, 30))
    deliver(aws)
    export = the_export(api)
    assert export["status"] == "failed" and "closing date" in export["last_error"]
    assert documents(sandboxes, "qbo") == []


def test_a_retry_never_moves_an_export_to_another_provider(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    receipt(api, setup(api, sandboxes, "qbo"))
    sandboxes.qbo.update_company(DEMO_REALM_ID, closing_date=date(2026, 11, 30))
    deliver(aws)
    export = the_export(api)
    assert export["status"] == "failed"
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    refused = api.call("POST", f"/exports/{export['export_id']}/retry")
    assert refused.status == 409, refused.body
    assert (
        "was for QuickBooks Online" in refused.json()["message"]
        and "connected to Xero" in refused.json()["message"]
    )
    assert the_export(api)["status"] == "failed"
    narrations = [j.get("Narration", "") for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")]
    assert not any(export["export_id"] in n for n in narrations)


def test_an_unmapped_item_fails_naming_the_product(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, dlq: Callable[[], list[dict[str, Any]]]
) -> None:
    setup_qbo(api, sandboxes, mode="inventory_adjustments")
    catalog_store.put_products("org-a", [Product(product_id="p-gasket", sku="GK-1", name="Gasket")])
    receipt(api, "p-gasket")
    deliver(aws)
    export = the_export(api)
    assert export["status"] == "failed"
    assert export["last_error"].startswith("unmapped item: GK-1 Gasket has no QuickBooks item")
    assert len(dlq()) == 1 and sandboxes.qbo.list_records(DEMO_REALM_ID, "InventoryAdjustment") == []


def test_an_inactive_account_fails_with_the_providers_reason(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    receipt(api, setup(api, sandboxes, "qbo"))
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Account", "5", {"Active": False})
    deliver(aws)
    export = the_export(api)
    assert export["status"] == "failed" and "made inactive" in export["last_error"]


def test_a_message_that_cannot_be_parsed_is_done_at_once_not_a_batch_item_failure(aws: LocalStack) -> None:
    boto3.client("sqs").send_message(QueueUrl=aws.physical("ExportQueue"), MessageBody='{"kind": "invoice"}')
    (message,) = receive(aws)
    assert invoke(aws, [message]) == set()  # in the DLQ with its reason (see the tests below)
    (dead,) = receive(aws, "ExportDeadLetterQueue")
    assert "organisation_id: Field required" in dead["MessageAttributes"]["reason"]["StringValue"]


@pytest.fixture(autouse=True)
def steady_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(exports, "jitter", lambda low, high: high)
    yield


def test_an_unexpected_error_before_the_write_never_leaves_the_export_posting(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipt(api, setup(api, sandboxes, "qbo"))
    from shared.store import settings as settings_store

    original = settings_store.get_export_settings

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug while reading the settings the posting is built from")

    monkeypatch.setattr(settings_store, "get_export_settings", broken)
    (message,) = receive(aws)
    assert invoke(aws, [message]) == {message["MessageId"]}  # comes back later
    export = the_export(api)
    assert export["status"] == "pending" and "unexpected error occurred (KeyError)" in export["last_error"]

    monkeypatch.setattr(settings_store, "get_export_settings", original)
    assert invoke(aws, [message]) == set()
    posted_once(api, sandboxes, "qbo")


def test_a_stale_posting_export_can_be_retried(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipt(api, setup(api, sandboxes, "qbo"))

    def crash() -> None:
        raise RuntimeError("the worker died after the provider committed")

    after_write(sandboxes.qbo, WRITES["qbo"], crash, monkeypatch)
    (message,) = receive(aws)
    invoke(aws, [message])
    export = the_export(api)
    assert export["status"] == "posting"
    assert api.call("POST", f"/exports/{export['export_id']}/retry").status == 409  # its lease still runs

    later = exports.clock() + timedelta(seconds=exports.LEASE_SECONDS + 1)
    monkeypatch.setattr(exports, "clock", lambda: later)
    assert api.call("POST", f"/exports/{export['export_id']}/retry").status == 200  # the worker is gone
    assert deliver(aws) >= 1
    assert posted_once(api, sandboxes, "qbo")["adopted"]


class LambdaTimeout(BaseException):
    """Lambda stops the function where it stands: no handler of the service's runs."""


def provider_holding_its_writes(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """The Xero sandbox holding every journal write past the function's time limit (Lambda stops the
    function there); what makes it answer again."""
    handle = sandbox.handle

    def hanging(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path == WRITES["xero"]:
            raise LambdaTimeout
        response: httpx.Response = handle(request)
        return response

    monkeypatch.setattr(sandbox, "handle", hanging)
    return lambda: monkeypatch.setattr(sandbox, "handle", handle)


def every_delivery_stopped(aws: LocalStack, monkeypatch: pytest.MonkeyPatch, moment: datetime) -> datetime:
    """Each delivery of the export queue's messages stopped by Lambda, each back after the queue's visibility
    timeout, until SQS moved them to the DLQ by itself (after their fifth receive); the time then."""
    sqs, url = boto3.client("sqs"), aws.physical("ExportQueue")
    while messages := receive(aws):
        with pytest.raises(LambdaTimeout):
            invoke(aws, messages)
        moment += timedelta(seconds=180)  # back after the queue's visibility timeout (template.yaml)
        monkeypatch.setattr(exports, "clock", lambda at=moment: at)
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"], VisibilityTimeout=0
        )
    return moment


def test_an_export_whose_every_delivery_times_out_is_not_lost_when_sqs_dead_letters_its_message(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that holds its connections (a read timeout of 20 s, retried) outlasts the function's 30 s:
    Lambda stops every delivery, so the service never gives up on it itself, and after its fifth receive SQS
    moves the message to the DLQ by itself. The export is not left ``posting`` with nothing to bring it back:
    once the provider answers again, the outbox sweep queues it anew and it posts once."""
    receipt(api, setup(api, sandboxes, "xero"))
    answering = provider_holding_its_writes(sandboxes.xero, monkeypatch)
    moment = every_delivery_stopped(aws, monkeypatch, exports.clock())
    assert receive(aws, "ExportDeadLetterQueue") and the_export(api)["attempts"] == 5

    answering()
    Scheduler(aws).fire("ExportFunction", moment + timedelta(minutes=2))
    assert deliver(aws) == 1
    posted_once(api, sandboxes, "xero")


def test_an_export_whose_every_delivery_times_out_for_good_fails_with_the_reason(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, but the provider never answers in time: the outbox sweep queues the export anew
    ``MAX_ORPHANED`` times, then it ends failed with the reason (its job in the DLQ with it), and nothing
    queues it again; once the provider answers, a person's retry looks for it there first, and posts it."""
    receipt(api, setup(api, sandboxes, "xero"))
    answering = provider_holding_its_writes(sandboxes.xero, monkeypatch)
    moment, sweep = exports.clock(), Scheduler(aws)
    for swept in range(queue.MAX_ORPHANED + 1):
        moment = every_delivery_stopped(aws, monkeypatch, moment) + timedelta(minutes=2)
        assert the_export(api)["status"] == "posting"
        assert sweep.fire("ExportFunction", moment) == {"queued": int(swept < queue.MAX_ORPHANED)}

    export = the_export(api)
    attempts = 5 * (queue.MAX_ORPHANED + 1)
    assert export["status"] == "failed" and export["attempts"] == attempts, export
    assert export["last_error"].startswith(f"gave up after {attempts} attempts, each stopped before it")
    reasons = [
        (m["MessageAttributes"]["reason"]["StringValue"], m["MessageAttributes"]["export_id"]["StringValue"])
        for m in receive(aws, "ExportDeadLetterQueue")
        if "MessageAttributes" in m  # the others: those SQS moved by itself
    ]
    assert reasons == [(export["last_error"], export["export_id"])]
    assert sweep.fire("ExportFunction", moment + timedelta(hours=1)) == {"queued": 0}
    assert receive(aws) == []

    answering()
    ok(api.call("POST", f"/exports/{export['export_id']}/retry"))
    assert deliver(aws) == 1
    posted_once(api, sandboxes, "xero")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not an export job: body: Invalid JSON"),
        (
            '{"organisation_id": "org-a", "kind": "invoice", "record_id": "R-1"}',
            "not an export job: body.kind:",
        ),
        ('{"organisation_id": "org-a"}', "not an export job: body.kind: Field required"),
    ],
)
def test_a_message_that_is_not_an_export_job_goes_to_the_dlq_at_once_with_the_reason(
    aws: LocalStack, body: str, reason: str
) -> None:
    boto3.client("sqs").send_message(QueueUrl=aws.physical("ExportQueue"), MessageBody=body)
    messages = receive(aws)
    assert invoke(aws, messages) == set()  # done on its first receive: not reported to come back

    (dead,) = receive(aws, "ExportDeadLetterQueue")
    assert dead["Body"] == body
    assert dead["MessageAttributes"]["reason"]["StringValue"].startswith(reason)
    assert dead["MessageAttributes"]["source_message_id"]["StringValue"] == messages[0]["MessageId"]


def test_an_unreadable_message_comes_back_when_the_dlq_cannot_take_it(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.services import export_intake

    def dlq_down(*_: Any, **__: Any) -> None:
        raise ConnectionError("the DLQ is unavailable")

    monkeypatch.setattr(export_intake, "dead_letter", dlq_down)
    boto3.client("sqs").send_message(QueueUrl=aws.physical("ExportQueue"), MessageBody="{not json")
    messages = receive(aws)
    assert invoke(aws, messages) == {messages[0]["MessageId"]}  # reported: SQS delivers it again


@pytest.mark.parametrize("page", [None, 1])
def test_a_crash_after_qbo_committed_an_inventory_adjustment_is_found_by_a_documented_query(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, page: int | None
) -> None:
    """The search reads the adjustments created in the export's window (MetaData.CreateTime, filterable) and
    matches the marker in the rows: a real company refuses ``WHERE DocNumber`` on InventoryAdjustment (4001),
    and so does the sandbox. It pages through them with QBO reads' one paging loop (with a page of one
    record, the marked one is on the second page)."""
    if page is not None:
        monkeypatch.setattr(qbo_api, "PAGE", page)
    receipt(api, setup_qbo(api, sandboxes, mode="inventory_adjustments")["bolt"])
    qbo = sandboxes.qbo
    qbo.create_record(  # someone else's adjustment in the same window: never adopted
        DEMO_REALM_ID,
        "InventoryAdjustment",
        {
            "DocNumber": "COUNT-1",
            "PrivateNote": "cycle count",
            "AdjustAccountRef": {"value": "7"},
            "Line": [
                {
                    "DetailType": "ItemAdjustmentLineDetail",
                    "ItemAdjustmentLineDetail": {"ItemRef": {"value": "2"}, "QtyDiff": 1},
                }
            ],
        },
    )

    def crash() -> None:
        raise RuntimeError("the worker died after the provider committed")

    after_write(qbo, f"/v3/company/{DEMO_REALM_ID}/inventoryadjustment", crash, monkeypatch)
    (message,) = receive(aws)
    assert invoke(aws, [message]) == {message["MessageId"]}
    assert the_export(api)["status"] == "posting"

    later = exports.clock() + timedelta(seconds=exports.LEASE_SECONDS + 120)  # SQS redelivers after the lease
    monkeypatch.setattr(exports, "clock", lambda: later)
    searches = qbo.call_count("GET", SEARCHES["qbo"])
    assert invoke(aws, [message]) == set()
    assert qbo.call_count("GET", SEARCHES["qbo"]) - searches == (1 if page is None else 3)
    export = the_export(api)
    assert export["status"] == "posted" and export["adopted"] and export["attempts"] == 2
    marked = [
        r
        for r in qbo.list_records(DEMO_REALM_ID, "InventoryAdjustment")
        if export["export_id"] in r.get("PrivateNote", "")
    ]
    assert [r["Id"] for r in marked] == [export["document_id"]]
