"""The export queue's messages as the worker reads them. A message that is not an export job (broken JSON,
missing or unknown fields) can never succeed: it goes to the DLQ at once with the reason as a message
attribute, instead of coming back until its receives run out and arriving there with no reason."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shared.aws import client
from shared.config import settings
from shared.contracts import ExportRecord
from shared.observability import logger
from shared.services.exports import _redrive

MAX_REASON = 1000  # characters of the reason attribute


def _reason(err: ValidationError) -> str:
    problems = []
    for error in err.errors(include_url=False):
        where = ".".join(str(p) for p in error.get("loc", ())) or "message"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return f"not an export job: {'; '.join(problems)}"[:MAX_REASON]


def read(raw: dict[str, Any]) -> ExportRecord | None:
    """The record as an export job; None when it is not one (it is then in the DLQ with the reason)."""
    try:
        return ExportRecord.model_validate(raw)
    except ValidationError as err:
        reason = _reason(err)
    message_id = str(raw.get("messageId") or "")
    logger.warning("export message is not an export job; dead-lettered", extra={"reason": reason})
    dead_letter_unreadable(str(raw.get("body") or ""), message_id, reason)
    return None


def dead_letter_unreadable(body: str, message_id: str, reason: str) -> None:
    """Sends the message as it came to the export queue's DLQ (from its redrive policy), with the reason."""
    dlq_url, _ = _redrive(settings().export_queue_url)
    attributes = {"reason": {"DataType": "String", "StringValue": reason[:MAX_REASON] or "unreadable"}}
    if message_id:
        attributes["source_message_id"] = {"DataType": "String", "StringValue": message_id}
    client("sqs").send_message(QueueUrl=dlq_url, MessageBody=body or "(empty)", MessageAttributes=attributes)
