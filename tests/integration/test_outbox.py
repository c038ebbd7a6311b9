"""The outbox: a record is stored with its export in one transaction, so a queue outage answers 201 and only
delays the export; the scheduled sweep queues what was left, and each record is posted exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from shared import aws as shared_aws
from shared.contracts import ExportJob
from shared.services import queue
from shared.store import exports as export_store
from tests.conftest import Api, Sandboxes
from tests.integration.test_dependency_outages import client_error, fail_calls  # noqa: F401 (a fixture)
from tests.integration.test_exports import RECEIVED, ok, record_season, setup_qbo

pytestmark = pytest.mark.usefixtures("no_real_sleep")


def test_a_queue_outage_delays_exports_and_the_sweep_posts_each_once(
    api: Api,
    aws: LocalStack,
    sandboxes: Sandboxes,
    fail_calls: Any,  # noqa: F811
) -> None:
    parts = setup_qbo(api, sandboxes)
    sent = fail_calls(
        shared_aws.client("sqs"),
        "sqs.SendMessage",
        lambda: client_error("ServiceUnavailable", "SendMessage", 503),
        4,
    )
    ids = record_season(api, parts)  # a receipt with its rejection and two builds: 201 each, queue down
    assert sent[0] == 4
    assert Poller(aws).drain() == 0  # nothing reached the queue
    assert {e["status"] for e in ok(api.call("GET", "/exports"))["items"]} == {"pending"}

    sweep = Scheduler(aws)
    assert sweep.fire("ExportFunction", datetime.now(UTC)) == {"queued": 0}  # too young: maybe in flight
    later = datetime.now(UTC) + timedelta(minutes=2)
    assert sweep.fire("ExportFunction", later) == {"queued": 4}
    assert sweep.fire("ExportFunction", later) == {"queued": 0}  # out of the outbox once queued
    Poller(aws).drain()

    exported = {e["record_id"]: e for e in ok(api.call("GET", "/exports"))["items"]}
    assert {exported[r]["status"] for r in ids.values()} == {"posted"}
    documents = [exported[r]["document_id"] for r in ids.values()]
    journals = sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")
    assert sorted(j["Id"] for j in journals if j["Id"] in documents) == sorted(documents)  # one each
    assert len({j["DocNumber"] for j in journals}) == len(journals)  # no marker posted twice


def test_a_retry_during_a_queue_outage_is_kept_in_the_outbox_and_posted_once(
    api: Api,
    aws: LocalStack,
    sandboxes: Sandboxes,
    fail_calls: Any,  # noqa: F811
) -> None:
    """A retry puts the export back in the outbox before it sends the message: a queue outage at that moment
    only delays it, never leaves it pending with no message."""
    from datetime import date

    parts = setup_qbo(api, sandboxes)
    sandboxes.qbo.update_company(DEMO_REALM_ID, closing_date=date(2026, 11, 30))  # the books are closed
    record_season(api, parts)
    Poller(aws).drain()
    failed = [e for e in ok(api.call("GET", "/exports"))["items"] if e["status"] == "failed"]
    assert failed and all("closed" in e["last_error"].lower() for e in failed)
    sandboxes.qbo.update_company(DEMO_REALM_ID, closing_date=None)  # reopened

    export = failed[0]
    fail_calls(
        shared_aws.client("sqs"),
        "sqs.SendMessage",
        lambda: client_error("ServiceUnavailable", "SendMessage", 503),
        1,
    )
    retried = ok(api.call("POST", f"/exports/{export['export_id']}/retry"))
    assert retried["status"] == "pending"
    assert Poller(aws).drain() == 0  # its message never reached the queue
    later = datetime.now(UTC) + timedelta(minutes=2)
    assert Scheduler(aws).fire("ExportFunction", later) == {"queued": 1}  # the sweep found it
    Poller(aws).drain()
    (done,) = [e for e in ok(api.call("GET", "/exports"))["items"] if e["export_id"] == export["export_id"]]
    assert done["status"] == "posted"


def test_an_export_claimed_before_its_request_took_it_out_of_the_outbox_stays_there_for_its_worker(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker may receive an export's message and claim it before the request that sent it takes it out
    of the outbox: that claim keeps it there (until it is settled), so a worker stopped at every delivery
    still has the sweep bring the export back; before, the request took it out, and it stayed posting."""
    parts = setup_qbo(api, sandboxes)
    send = queue.enqueue
    now = datetime.now(UTC) - timedelta(minutes=10)  # its lease, and the queue's visibility, over since

    def received_at_once(job: ExportJob, *, delay_seconds: int = 0) -> None:
        send(job, delay_seconds=delay_seconds)
        export_id = queue.export_id_for(job.organisation_id, job.kind, job.record_id)
        claimed = export_store.claim(  # as the worker does first; Lambda then stops it at every delivery
            job.organisation_id,
            export_id,
            owner="a stopped worker",
            now=int(now.timestamp()),
            lease_s=60,
            at=now.isoformat(),
            orphaned_at=(now + timedelta(seconds=180)).isoformat(),
        )
        assert claimed is not None

    monkeypatch.setattr(queue, "enqueue", received_at_once)
    line = {"product_id": parts["bolt"], "quantity": "10", "unit_cost": "0.50"}
    ok(api.call("POST", "/receipts", json_body={"received_at": RECEIVED, "lines": [line]}), 201)
    monkeypatch.setattr(queue, "enqueue", send)
    sqs, url = shared_aws.client("sqs"), aws.physical("ExportQueue")
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])  # dead-lettered by SQS
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "posting"

    assert Scheduler(aws).fire("ExportFunction", datetime.now(UTC)) == {"queued": 1}
    Poller(aws).drain()
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "posted", export
    journals = sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")
    assert [j["Id"] for j in journals if j["DocNumber"] == export["export_id"]] == [export["document_id"]]
