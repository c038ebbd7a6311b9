"""SQS export worker: each message names one receipt, build or rejection to post to the connected provider.

Partial batch failures: only the records that should come back are reported. A record that can't be
parsed is reported (SQS redrives it to the DLQ after its receives run out). A permanent failure is settled
by the service (``failed`` with the reason, and the message sent to the DLQ with the reason as a message
attribute), so the record counts as done here and is never retried. A retriable one (429, 5xx, timeout,
another worker mid-post) is reported after its visibility is set to the backoff the service chose.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.contracts import ExportRecord
from shared.observability import logger
from shared.services import exports

# retries are expected here, not errors: a batch whose every record should come back is reported as such
# ExportRecord is our own SQS record model (see shared.contracts), which Powertools' annotation does not name
processor = BatchProcessor(
    event_type=EventType.SQS,
    model=ExportRecord,  # type: ignore[arg-type]
    raise_on_entire_batch_failure=False,
)


def export_record(record: ExportRecord) -> None:
    logger.set_correlation_id(record.messageId)  # every line about this message carries its id
    try:
        exports.export_one(record.body, receive_count=record.attributes.ApproximateReceiveCount)
    except exports.RetryLater as later:
        exports.defer(record.receiptHandle, later.delay)
        raise


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=export_record, processor=processor, context=context
    )
