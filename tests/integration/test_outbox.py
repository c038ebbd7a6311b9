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
from tests.conftest import Api, Sandboxes
from tests.integration.test_dependency_outages import client_error, fail_calls  # noqa: F401 (a fixture)
from tests.integration.test_exports import ok, record_season, setup_qbo

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
