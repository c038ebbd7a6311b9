"""The export queue: each export's stable id, and sending its message."""

from __future__ import annotations

import hashlib

from shared.aws import client
from shared.config import settings
from shared.contracts import ExportJob


def export_id_for(organisation_id: str, kind: str, record_id: str) -> str:
    """The export's id and marker: stable for a record, 19 characters (QBO's DocNumber holds 21)."""
    digest = hashlib.sha256(f"{organisation_id}\n{kind}\n{record_id}".encode()).hexdigest()[:16].upper()
    return f"PS-{digest}"


def enqueue(job: ExportJob) -> None:
    client("sqs").send_message(QueueUrl=settings().export_queue_url, MessageBody=job.model_dump_json())
