"""Feeds SQS event sources to their functions in batches, as Lambda's event source mapping does:
successful records are deleted, reported failures stay for their visibility timeout, and the
queue's redrive policy moves a record to the DLQ after too many receives. One batch of a source runs at a
time, which no ``ScalingConfig.MaximumConcurrency`` is below, so that setting has nothing to change here."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3

from infra.local.context import LocalLambdaContext
from infra.local.stack import REGION, FunctionSpec, LocalStack, SqsSource
from shared.observability import logger


@dataclass
class BatchResult:
    received: int
    failed: int


class Poller:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sources: list[tuple[FunctionSpec, SqsSource]] = [
            (spec, source) for spec in stack.functions.values() for source in spec.sqs
        ]
        self._stop = threading.Event()
        self.sqs = boto3.client("sqs")

    def poll_once(self, wait_seconds: int = 0) -> BatchResult:
        """One receive-invoke-delete round over every event source."""
        total = BatchResult(0, 0)
        for function, source in self.sources:
            result = self._poll(function, source, wait_seconds)
            total = BatchResult(total.received + result.received, total.failed + result.failed)
        return total

    def drain(self, max_rounds: int = 50) -> int:
        """Polls until the queues give nothing more; returns how many records were delivered."""
        delivered = 0
        for _ in range(max_rounds):
            result = self.poll_once()
            if result.received == 0:
                break
            delivered += result.received
        return delivered

    def settle(self, timeout: float = 90.0) -> int:
        """Drains, then waits until no record is in flight either (the background loop may hold some), so
        what a schedule queued has been handled; returns how many records this call delivered."""
        import time

        delivered, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            delivered += self.drain()
            if not any(self._in_flight(source) for _, source in self.sources):
                break
            time.sleep(0.1)
        return delivered

    def _in_flight(self, source: SqsSource) -> bool:
        names = [  # delayed too: a rate-limited export comes back as a new message after Retry-After
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.physical(source.queue_logical_id), AttributeNames=names
        )["Attributes"]
        return any(int(attributes.get(name, 0)) for name in names)

    def _poll(self, function: FunctionSpec, source: SqsSource, wait_seconds: int) -> BatchResult:
        sqs = self.sqs
        url = self.stack.physical(source.queue_logical_id)
        arn = self.stack.physical(source.queue_logical_id, "Arn")
        received = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(source.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return BatchResult(0, 0)
        event = {"Records": [_record(message, arn) for message in received]}
        try:
            response = function.handler()(event, LocalLambdaContext(function.logical_id, function.timeout))
        except Exception:  # the whole batch failed: every record returns after its visibility timeout
            logger.exception("batch failed", extra={"function": function.logical_id})
            return BatchResult(len(received), len(received))
        failed = set()
        if source.report_batch_item_failures and isinstance(response, dict):
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in received if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        return BatchResult(len(received), len(failed))

    def start(self) -> None:
        threading.Thread(target=self._loop, name="sqs-poller", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        idle = False
        while not self._stop.is_set():
            try:
                # long polls only once a round found every queue empty: a busy round goes on at once, as
                # Lambda's pollers (one per source) do, rather than waiting a second on each empty queue
                idle = self.poll_once(wait_seconds=1 if idle else 0).received == 0
            except Exception:
                logger.exception("polling failed")
                self._stop.wait(1)


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
