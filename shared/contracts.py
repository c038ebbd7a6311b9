"""Wire shapes of the queue and the schedules (the export message, a schedule's event) and a provider's
posted document. The API's request bodies are in ``shared.bodies``, so the workers' cold starts skip them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, Json

from shared.model import Model

ExportKind = Literal["receipt", "build", "rejection", "cogs", "trueup"]  # cogs: a business day; trueup: books


class ExportJob(Model):
    model_config = ConfigDict(frozen=True, extra="forbid")
    organisation_id: str = Field(min_length=1)
    kind: ExportKind
    record_id: str = Field(min_length=1)  # the message names the record; the numbers stay in DynamoDB


class ConnectionJob(Model):
    """One connection for a worker: its token check (ConnectionCheckQueue) or its sales pull (SalesPullQueue).
    ``reason`` says who queued it: the schedule, "pull now", or the pull's previous part."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    organisation_id: str = Field(min_length=1)
    provider: Literal["qbo", "xero"]
    reason: Literal["schedule", "pull_now", "continue"] = "schedule"


class SqsAttributes(Model):
    ApproximateReceiveCount: int


class ExportRecord(Model):
    """The fields of an SQS record the export worker reads. (Powertools' SqsRecordModel would do, but
    importing it imports every parser model: about 65 ms of each cold start.)"""

    messageId: str
    receiptHandle: str
    body: Json[ExportJob]
    attributes: SqsAttributes


class ScheduledEvent(Model):
    """An EventBridge schedule's event; the handlers need only its time (the same reason as above)."""

    time: AwareDatetime


class PostedDocument(Model):
    """A document in the provider that carries an export's marker (posted now, or found by the marker)."""

    model_config = ConfigDict(frozen=True)
    document_id: str
    document_type: str  # JournalEntry, InventoryAdjustment, ManualJournal
    link: str


def json_bytes(value: Any) -> bytes:
    """JSON with every Decimal written as a number digit for digit (``json.dumps`` would need a float)."""
    if isinstance(value, Decimal):
        return format(value, "f").encode()
    if isinstance(value, dict):
        return (
            b"{"
            + b",".join(json.dumps(str(k)).encode() + b":" + json_bytes(v) for k, v in value.items())
            + b"}"
        )
    if isinstance(value, list | tuple):
        return b"[" + b",".join(json_bytes(v) for v in value) + b"]"
    return json.dumps(value).encode()
