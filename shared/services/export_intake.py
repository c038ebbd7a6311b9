"""The export queue's messages as the worker reads them. A message that is not an export job (broken JSON,
missing or unknown fields) can never succeed: it goes to the DLQ at once with the reason as a message
attribute, instead of coming back until its receives run out and arriving there with no reason."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shared.contracts import ExportRecord
from shared.observability import logger
from shared.services.queue import MAX_REASON, dead_letter


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
    dead_letter(str(raw.get("body") or ""), reason or "unreadable", source_message_id=message_id)
    return None
