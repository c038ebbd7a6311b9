"""Token refresh and connection checks, fanned out.

Every 5 minutes the schedule's event only enumerates the connections due (from the sharded connections
index) and queues one message each on ConnectionCheckQueue; the same function, on that queue's event source
(at most its ``MaximumConcurrency`` at once), checks one connection per record: refresh tokens close to
expiry, keep idle refresh tokens alive, notice dead connections. A record that fails unexpectedly is
reported and comes back after its visibility timeout (then the DLQ); a provider failure is simply tried
again at the next tick.
"""

from __future__ import annotations

import shared.coldstart  # first: collection pauses while the imports below run

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.batch import PartialBatchResponse
from shared.contracts import ConnectionJob
from shared.fanned_out import handle
from shared.observability import logger, metrics
from shared.services import tokens


def check_record(record: dict[str, Any]) -> None:
    logger.set_correlation_id(record["messageId"])
    report = tokens.check_one(ConnectionJob.model_validate_json(record["body"]))
    metrics.add_metric(name="TokensRefreshed", unit=MetricUnit.Count, value=report.refreshed)
    metrics.add_metric(name="ConnectionsExpired", unit=MetricUnit.Count, value=report.expired)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialBatchResponse | dict[str, Any]:
    return handle(
        event,
        worker=check_record,
        scheduled_pass=tokens.enqueue_due,
        queued_metric="ConnectionChecksQueued",
        done="connection checks queued",
    )


shared.coldstart.loaded()  # what the imports and this module made is frozen; collection resumes
