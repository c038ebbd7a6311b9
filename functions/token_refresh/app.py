"""Scheduled: refresh tokens close to expiry, keep idle ones alive, notice dead connections."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.contracts import ScheduledEvent
from shared.observability import logger, metrics
from shared.services import tokens


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ScheduledEvent.model_validate(event)  # a malformed event fails loudly; the pass itself reads the clock
    report = tokens.refresh_due()
    metrics.add_metric(name="TokensRefreshed", unit=MetricUnit.Count, value=report.refreshed)
    metrics.add_metric(name="ConnectionsExpired", unit=MetricUnit.Count, value=report.expired)
    logger.info("scheduled refresh done", extra=report.model_dump())
    return report.model_dump(mode="json")
