"""An SQS batch with a partial batch response: each record goes to the worker, and only the records whose
worker raised come back (``ReportBatchItemFailures`` on the event source), the others are done.

This is what Powertools' ``BatchProcessor`` with ``process_partial_response`` does for a standard queue,
without its import: ``aws_lambda_powertools.utilities.batch`` loads asyncio and every event data class,
about 55 ms of each SQS function's cold start (bench_cold_imports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from shared.observability import logger


class ItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    batchItemFailures: list[ItemFailure]


def process_batch(event: dict[str, Any], worker: Callable[[dict[str, Any]], None]) -> PartialBatchResponse:
    """Runs ``worker`` on each record of the SQS event (the raw record: ``messageId``, ``body``, ...); a
    record whose worker raised is reported by its message id, and SQS brings it back after its visibility
    timeout (then to the queue's DLQ). A batch that fails whole is reported as such, not raised."""
    failures: list[ItemFailure] = []
    for record in event["Records"]:
        try:
            worker(record)
        except Exception:  # reported for SQS to bring back; the worker logged what it had to
            logger.debug("record not done; it comes back", exc_info=True)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
