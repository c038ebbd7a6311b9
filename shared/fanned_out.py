"""The handler shape of a scheduled pass fanned out over a queue (token checks, sales pulls): the schedule's
event runs the pass, which queues one message per connection; a batch of those messages runs the worker on
each record, and a record that fails comes back alone (partial batch response)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.contracts import ScheduledEvent
from shared.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class PassReport(Protocol):
    """What a pass reports (``shared.services.fanout.FanOutReport``)."""

    queued: int

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


def handle(
    event: dict[str, Any],
    context: LambdaContext,
    *,
    worker: Callable[[SQSRecord], None],
    scheduled_pass: Callable[[], PassReport],
    queued_metric: str,
    done: str,
) -> PartialItemFailureResponse | dict[str, Any]:
    """A batch of records goes to ``worker`` one by one; the schedule's event (anything else is refused, and
    only its shape counts: each worker keeps its own time) runs ``scheduled_pass``, whose queued messages
    are counted as ``queued_metric`` and logged as ``done``."""
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=worker, processor=processor, context=context
        )
    ScheduledEvent.model_validate(event)
    report = scheduled_pass()
    metrics.add_metric(name=queued_metric, unit=MetricUnit.Count, value=report.queued)
    logger.info(done, extra=report.model_dump())
    return report.model_dump(mode="json")
