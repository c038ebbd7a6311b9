"""Token refresh and connection checks, fanned out.

Every 5 minutes the schedule's event only enumerates the connections due (from the sharded connections
index) and queues one message each on ConnectionCheckQueue; the same function, on that queue's event source
(at most its ``MaximumConcurrency`` at once), checks one connection per record: refresh tokens close to
expiry, keep idle refresh tokens alive, notice dead connections. A record that fails unexpectedly is
reported and comes back after its visibility timeout (then the DLQ); a provider failure is simply tried
again at the next tick.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.contracts import ConnectionJob, ScheduledEvent
from shared.observability import logger, metrics
from shared.services import tokens

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def check_record(record: SQSRecord) -> None:
    logger.set_correlation_id(record.message_id)
    report = tokens.check_one(ConnectionJob.model_validate_json(record.body))
    metrics.add_metric(name="TokensRefreshed", unit=MetricUnit.Count, value=report.refreshed)
    metrics.add_metric(name="ConnectionsExpired", unit=MetricUnit.Count, value=report.expired)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(
    event: dict[str, Any], context: LambdaContext
) -> PartialItemFailureResponse | dict[str, Any]:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=check_record, processor=processor, context=context
        )
    ScheduledEvent.model_validate(event)  # a malformed event fails loudly; the pass itself reads the clock
    report = tokens.enqueue_due()
    metrics.add_metric(name="ConnectionChecksQueued", unit=MetricUnit.Count, value=report.queued)
    logger.info("connection checks queued", extra=report.model_dump())
    return report.model_dump(mode="json")
