"""Scheduled: refresh tokens close to expiry, keep idle ones alive, notice dead connections."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import logger, metrics
from shared.services import tokens


@metrics.log_metrics
@logger.inject_lambda_context
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    report = tokens.refresh_due()
    metrics.add_metric(name="TokensRefreshed", unit=MetricUnit.Count, value=report.refreshed)
    metrics.add_metric(name="ConnectionsExpired", unit=MetricUnit.Count, value=report.expired)
    logger.info("scheduled refresh done", extra=report.model_dump())
    return report.model_dump(mode="json")
