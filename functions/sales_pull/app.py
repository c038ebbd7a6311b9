"""Scheduled: pull changed sales documents of every connection with sales tracking on, then queue the cost
of goods sold of each business day that has ended and any true-up the pulled changes call for; once a day,
reconcile the books with the provider's trial balance."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.contracts import ScheduledEvent
from shared.observability import logger, metrics
from shared.services import books, reconciliation, sales


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = ScheduledEvent.model_validate(event).time
    report = sales.pull_due(now=now)
    queued = books.close_days(now=now)
    unbalanced = reconciliation.daily_check(now=now)
    metrics.add_metric(name="BooksOutOfBalance", unit=MetricUnit.Count, value=unbalanced)
    metrics.add_metric(name="BooksExportsQueued", unit=MetricUnit.Count, value=queued)
    metrics.add_metric(name="SalesDocumentsStored", unit=MetricUnit.Count, value=report.stored)
    metrics.add_metric(name="SalesPullsFailed", unit=MetricUnit.Count, value=report.failed)
    logger.info("scheduled sales pull done", extra={**report.model_dump(), "books_exports_queued": queued})
    return report.model_dump(mode="json")
