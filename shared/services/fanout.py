"""The scheduled passes' fan-out: one SQS message per connection due, sent ten to a request.

A pass only enumerates and queues; the workers (the same functions, on their SQS event source, at most
``MaximumConcurrency`` at once) each do one connection. A message queued twice is harmless: the token check
skips a connection checked moments ago, and pulls of one connection never overlap (a lease)."""

from __future__ import annotations

from collections.abc import Iterable

from shared.aws import client
from shared.contracts import ConnectionJob
from shared.model import Model
from shared.observability import logger

SEND_BATCH = 10  # SQS's most entries in one SendMessageBatch
SEND_ATTEMPTS = 3
MAX_DELAY = 900  # SQS's longest message delay


class FanOutReport(Model):
    due: int = 0  # connections the pass found due
    queued: int = 0  # messages SQS took
    failed: int = 0  # messages SQS refused every time (the next pass finds the connection due again)


def send_all(queue_url: str, jobs: Iterable[ConnectionJob]) -> FanOutReport:
    """Queues every job, ten to a request; entries SQS refuses are sent again (twice), then counted failed."""
    report = FanOutReport()
    batch: list[ConnectionJob] = []
    for job in jobs:
        report.due += 1
        batch.append(job)
        if len(batch) == SEND_BATCH:
            _send(queue_url, batch, report)
            batch = []
    if batch:
        _send(queue_url, batch, report)
    return report


def send_one(queue_url: str, job: Model, *, delay: int = 0) -> None:
    """Queues one message, hidden for ``delay`` seconds (0 to SQS's longest delay)."""
    client("sqs").send_message(
        QueueUrl=queue_url, MessageBody=job.model_dump_json(), DelaySeconds=min(max(delay, 0), MAX_DELAY)
    )


def _send(queue_url: str, batch: list[ConnectionJob], report: FanOutReport) -> None:
    pending = {str(i): job for i, job in enumerate(batch)}
    for _ in range(SEND_ATTEMPTS):
        try:
            answer = client("sqs").send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": key, "MessageBody": job.model_dump_json()} for key, job in pending.items()],
            )
        except Exception:  # an outage: try again, then leave these to the next pass
            logger.warning("queueing connection jobs failed", exc_info=True)
            continue
        for entry in answer.get("Successful", []):
            pending.pop(entry["Id"], None)
            report.queued += 1
        if not pending:
            return
    report.failed += len(pending)
    logger.warning("connection jobs not queued; the next pass finds them due", extra={"count": len(pending)})
