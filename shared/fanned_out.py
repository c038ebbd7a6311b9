"""The handler shape of a scheduled pass fanned out over a queue (token checks, sales pulls): the schedule's
event runs the pass, which queues one message per connection; a batch of those messages runs the worker on
each record, and a record that fails comes back alone (partial batch response)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from shared.batch import PartialBatchResponse, process_batch
from shared.contracts import ScheduledEvent
from shared.observability import logger, metrics


class PassReport(Protocol):
    """What a pass reports (``shared.services.fanout.FanOutReport``)."""

    queued: int

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


def handle(
    event: dict[str, Any],
    *,
    worker: Callable[[dict[str, Any]], None],
    scheduled_pass: Callable[[], PassReport],
    queued_metric: str,
    done: str,
) -> PartialBatchResponse | dict[str, Any]:
    """A batch of records goes to ``worker`` one by one; the schedule's event (anything else is refused, and
    only its shape counts: each worker keeps its own time) runs ``scheduled_pass``, whose queued messages
    are counted as ``queued_metric`` and logged as ``done``."""
    if "Records" in event:
        return process_batch(event, worker)
    ScheduledEvent.model_validate(event)
    report = scheduled_pass()
    metrics.add_metric(name=queued_metric, unit=MetricUnit.Count, value=report.queued)
    logger.info(done, extra=report.model_dump())
    return report.model_dump(mode="json")
