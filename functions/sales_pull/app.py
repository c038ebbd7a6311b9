"""Sales pulls, fanned out.

Hourly, the schedule's event queues one message per connected connection (SalesPullQueue). The same
function, on that queue's event source, handles one connection per record: it pulls the sales when tracking
is on ("pull now" queues the same message; a large first pull stops after a time or page budget, stores its
place, and queues its next part), then, for the hourly message, does that connection's books' hour: queue
the cost of goods sold of each business day that has ended and any true-up earlier pulls call for, and once
a day reconcile the books with the provider's trial balance.
"""

from __future__ import annotations

import shared.coldstart  # first: collection pauses while the imports below run

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.batch import PartialBatchResponse
from shared.contracts import ConnectionJob
from shared.fanned_out import handle
from shared.observability import logger, metrics
from shared.services import sales_pass


def pull_record(record: dict[str, Any]) -> None:
    from shared.services import sales  # the hourly schedule's event only queues: the pull loads on a record

    logger.set_correlation_id(record["messageId"])
    report = sales.pull_job(ConnectionJob.model_validate_json(record["body"]), now=datetime.now(UTC))
    metrics.add_metric(name="SalesDocumentsStored", unit=MetricUnit.Count, value=report.stored)
    metrics.add_metric(name="SalesPullsFailed", unit=MetricUnit.Count, value=report.failed)
    metrics.add_metric(name="BooksExportsQueued", unit=MetricUnit.Count, value=report.books_exports_queued)
    metrics.add_metric(name="BooksOutOfBalance", unit=MetricUnit.Count, value=report.out_of_balance)
    logger.info("sales pull done", extra=report.model_dump())


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialBatchResponse | dict[str, Any]:
    return handle(
        event,
        worker=pull_record,
        scheduled_pass=sales_pass.enqueue_due,
        queued_metric="SalesPullsQueued",
        done="scheduled sales pass done",
    )


shared.coldstart.loaded()  # what the imports and this module made is frozen; collection resumes
