"""Sales pulls, fanned out.

Hourly, the schedule's event queues one message per connection with sales tracking on (SalesPullQueue),
then does the rest of the hourly pass itself: queue the cost of goods sold of each business day that has
ended and any true-up earlier pulls call for, and once a day reconcile the books with the provider's trial
balance. The same function, on that queue's event source, pulls one connection per record ("pull now" queues
the same message); a large first pull stops after a time or page budget, stores its place, and queues its
next part.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.contracts import ConnectionJob, ScheduledEvent
from shared.lazy import lazy_module
from shared.observability import logger, metrics
from shared.services import sales

if TYPE_CHECKING:
    from shared.services import books, reconciliation
else:  # the hourly pass's books work loads only on the schedule's path, not for each pull message
    books, reconciliation = (
        lazy_module("shared.services.books"),
        lazy_module("shared.services.reconciliation"),
    )

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def pull_record(record: SQSRecord) -> None:
    logger.set_correlation_id(record.message_id)
    report = sales.pull_job(ConnectionJob.model_validate_json(record.body), now=datetime.now(UTC))
    metrics.add_metric(name="SalesDocumentsStored", unit=MetricUnit.Count, value=report.stored)
    metrics.add_metric(name="SalesPullsFailed", unit=MetricUnit.Count, value=report.failed)
    logger.info("sales pull done", extra=report.model_dump())


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(
    event: dict[str, Any], context: LambdaContext
) -> PartialItemFailureResponse | dict[str, Any]:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=pull_record, processor=processor, context=context
        )
    now = ScheduledEvent.model_validate(event).time
    report = sales.enqueue_due()
    queued = books.close_days(now=now)
    unbalanced = reconciliation.daily_check(now=now)
    metrics.add_metric(name="BooksOutOfBalance", unit=MetricUnit.Count, value=unbalanced)
    metrics.add_metric(name="BooksExportsQueued", unit=MetricUnit.Count, value=queued)
    metrics.add_metric(name="SalesPullsQueued", unit=MetricUnit.Count, value=report.queued)
    logger.info("scheduled sales pass done", extra={**report.model_dump(), "books_exports_queued": queued})
    return {
        **report.model_dump(mode="json"),
        "books_exports_queued": queued,
        "books_out_of_balance": unbalanced,
    }
