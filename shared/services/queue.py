"""The export queue: each export's stable id, sending its message, and the outbox behind it.

An export's row is written with its record (one transaction) and sits in the outbox index until its message
is queued. ``deliver`` queues it and takes it out; when the queue is down it stays, the caller's write still
succeeds, and ``sweep`` (scheduled every minute) queues whatever is left. A message queued twice is harmless:
the worker's claim lets one delivery post and the other finds it settled."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from functools import cache

from shared.aws import client
from shared.config import settings
from shared.contracts import ExportJob
from shared.observability import logger
from shared.services.fanout import send_one
from shared.store import exports as export_store

MAX_REASON = 1000  # characters of a dead letter's reason attribute
SWEEP_AFTER = timedelta(minutes=1)  # younger rows may still be queued by the request that wrote them
# times the sweep queues anew an export whose worker was stopped at every delivery of its message (SQS
# dead-letters a message after its fifth receive): then it fails, with the reason, after 15 attempts
MAX_ORPHANED = 2


def export_id_for(organisation_id: str, kind: str, record_id: str) -> str:
    """The export's id and marker: stable for a record, 19 characters (QBO's DocNumber holds 21)."""
    digest = hashlib.sha256(f"{organisation_id}\n{kind}\n{record_id}".encode()).hexdigest()[:16].upper()
    return f"PS-{digest}"


def enqueue(job: ExportJob, *, delay_seconds: int = 0) -> None:
    send_one(settings().export_queue_url, job, delay=delay_seconds)


def defer(receipt_handle: str, seconds: int) -> None:
    """Keeps a message hidden for its backoff (instead of the queue's whole visibility timeout)."""
    client("sqs").change_message_visibility(
        QueueUrl=settings().export_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
    )


@cache
def redrive(queue_url: str) -> tuple[str, int]:
    """(DLQ url, receives before SQS moves a message there), from the queue's redrive policy."""
    attributes = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
    account, name = str(policy["deadLetterTargetArn"]).split(":")[
        4:6
    ]  # arn:aws:sqs:<region>:<account>:<name>
    return f"{queue_url.rsplit('/', 2)[0]}/{account}/{name}", int(policy["maxReceiveCount"])


def max_receives() -> int:
    """How many times SQS delivers an export message before it would move it to the DLQ by itself."""
    return redrive(settings().export_queue_url)[1]


def dead_letter(body: str, reason: str, **attributes: str) -> None:
    """Sends a message body to the export queue's DLQ with the reason (and other text attributes)."""
    dlq_url, _ = redrive(settings().export_queue_url)
    named = {"reason": reason[:MAX_REASON] or "failed", **attributes}
    client("sqs").send_message(
        QueueUrl=dlq_url,
        MessageBody=body or "(empty)",
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in named.items() if v},
    )


def deliver(job: ExportJob, *, dead_claim: int | None = None) -> bool:
    """Queues the export and takes it out of the outbox; False (logged) when the queue can't be reached.
    ``dead_claim``: the lease of the claim whose worker was stopped (an orphan the sweep found), counted
    (``MAX_ORPHANED``)."""
    export_id = export_id_for(job.organisation_id, job.kind, job.record_id)
    try:
        enqueue(job)
        if dead_claim is None:
            export_store.mark_queued(job.organisation_id, export_id)
        else:
            export_store.mark_orphan_queued(job.organisation_id, export_id, dead_claim)
    except Exception:  # an outage: the outbox keeps it and the sweep queues it later
        logger.warning(
            "export left in the outbox for the sweep", extra={"export_id": export_id}, exc_info=True
        )
        return False
    return True


def sweep(now: datetime) -> int:
    """Queues every export the outbox still holds from before a minute ago; how many. One whose claim was
    never settled (its worker was stopped at every delivery, and SQS dead-lettered its message) is queued
    anew ``MAX_ORPHANED`` times, then fails with the reason: a provider that never answers in time ends
    in a state a person sees, not in a cycle."""
    queued = 0
    for row in export_store.unqueued((now - SWEEP_AFTER).isoformat()):
        job = ExportJob(organisation_id=row.organisation_id, kind=row.kind, record_id=row.record_id)
        if row.status != "posting":
            queued += deliver(job)
        elif row.orphaned < MAX_ORPHANED:
            queued += deliver(job, dead_claim=row.lease_until)
        else:
            _give_up(row, job, now)
    return queued


def _give_up(row: export_store.ExportRow, job: ExportJob, now: datetime) -> None:
    reason = (
        f"gave up after {row.attempts} attempts, each stopped before it finished (the provider held the "
        "connection past the export function's time limit); it may have reached the provider: a retry "
        "looks for it there before it posts"
    )
    try:
        failed = export_store.give_up_orphan(
            row.organisation_id, row.export_id, lease_until=row.lease_until, reason=reason, at=now.isoformat()
        )
        if failed:
            logger.warning("export failed", extra={"export_id": row.export_id, "reason": reason})
            dead_letter(job.model_dump_json(), reason, export_id=row.export_id)
            export_store.mark_dead_lettered(row.organisation_id, row.export_id)
    except Exception:  # an outage: still in the outbox (or failed, its DLQ message not sent: said so)
        logger.warning(
            "orphaned export left for the next sweep", extra={"export_id": row.export_id}, exc_info=True
        )
