"""SQS export worker: each message names one receipt, build or rejection to post to the connected provider.

Only the records that should come back are reported as failures: one that is not an export job, or whose
export failed for good, goes to the DLQ with the reason and counts as done; a retriable one (429, 5xx,
timeout, another worker mid-post) is reported once its visibility is set to the service's backoff. A
scheduled event instead sweeps the outbox every minute (exports stored while the queue was unreachable).
"""

from __future__ import annotations

import shared.coldstart  # first: collection pauses while the imports below run

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.batch import PartialBatchResponse, process_batch
from shared.contracts import ScheduledEvent
from shared.observability import logger
from shared.services import export_intake, exports, queue


# Retries are expected here, not errors: a batch whose every record should come back is reported as such.
# Records are read by export_intake, so one that is not an export job can be dead-lettered with its reason
# instead of being reported until SQS gives up on it.
def export_record(record: dict[str, Any]) -> None:
    logger.set_correlation_id(record["messageId"])  # every line about this message carries its id
    message = export_intake.read(record)
    if message is None:
        return  # not an export job: in the DLQ with the reason, done here
    try:
        exports.export_one(message.body, receive_count=message.attributes.ApproximateReceiveCount)
    except exports.RetryLater as later:
        queue.defer(message.receiptHandle, later.delay)
        raise


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialBatchResponse | dict[str, int]:
    if "Records" not in event:  # the outbox sweep's schedule
        return {"queued": queue.sweep(ScheduledEvent.model_validate(event).time)}
    return process_batch(event, export_record)


shared.coldstart.loaded()  # what the imports and this module made is frozen; collection resumes
