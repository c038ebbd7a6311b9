"""The export queue: each export's stable id, sending its message, and the outbox behind it.

An export's row is written with its record (one transaction) and sits in the outbox index until its message
is queued. ``deliver`` queues it and takes it out; when the queue is down it stays, the caller's write still
succeeds, and ``sweep`` (scheduled every minute) queues whatever is left. A message queued twice is harmless:
the worker's claim lets one delivery post and the other finds it settled."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from shared.aws import client
from shared.config import settings
from shared.contracts import ExportJob
from shared.observability import logger
from shared.store import exports as export_store

SWEEP_AFTER = timedelta(minutes=1)  # younger rows may still be queued by the request that wrote them


def export_id_for(organisation_id: str, kind: str, record_id: str) -> str:
    """The export's id and marker: stable for a record, 19 characters (QBO's DocNumber holds 21)."""
    digest = hashlib.sha256(f"{organisation_id}\n{kind}\n{record_id}".encode()).hexdigest()[:16].upper()
    return f"PS-{digest}"


def enqueue(job: ExportJob) -> None:
    client("sqs").send_message(QueueUrl=settings().export_queue_url, MessageBody=job.model_dump_json())


def deliver(job: ExportJob) -> bool:
    """Queues the export and takes it out of the outbox; False (logged) when the queue can't be reached."""
    export_id = export_id_for(job.organisation_id, job.kind, job.record_id)
    try:
        enqueue(job)
        export_store.mark_queued(job.organisation_id, export_id)
    except Exception:  # an outage: the outbox keeps it and the sweep queues it later
        logger.warning(
            "export left in the outbox for the sweep", extra={"export_id": export_id}, exc_info=True
        )
        return False
    return True


def sweep(now: datetime) -> int:
    """Queues every export the outbox still holds from before a minute ago; how many."""
    queued = 0
    for row in export_store.unqueued((now - SWEEP_AFTER).isoformat()):
        job = ExportJob(organisation_id=row.organisation_id, kind=row.kind, record_id=row.record_id)
        queued += deliver(job)
    return queued
