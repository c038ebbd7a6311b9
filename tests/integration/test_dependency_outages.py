"""An AWS dependency that throttles or is down (DynamoDB, KMS, Secrets Manager, SQS) answers 503 with
Retry-After and changes nothing; a DynamoDB transaction conflict is retried as a lost race."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from infra.local.stack import LocalStack
from shared import aws as shared_aws
from shared import vault
from shared.domain.catalog import Product
from shared.services import credentials
from shared.store import catalog as catalog_store
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect

DAY = "2026-11-02T09:00:00-08:00"
LINE = {"product_id": "bolt", "quantity": "10", "unit_cost": "0.10"}


def client_error(code: str, operation: str, status: int = 400, **extra: Any) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}, **extra},
        operation,
    )


@pytest.fixture
def fail_calls() -> Iterator[Callable[[Any, str, Callable[[], Exception], int], list[int]]]:
    """Makes a client's ``operation`` raise the given error for its next ``times`` calls (all when -1)."""
    registered: list[tuple[Any, str, Any]] = []

    def install(client: Any, event: str, error: Callable[[], Exception], times: int = -1) -> list[int]:
        calls = [0]

        def handler(**_: Any) -> None:
            calls[0] += 1
            if times < 0 or calls[0] <= times:
                raise error()

        client.meta.events.register(f"before-call.{event}", handler)
        registered.append((client, event, handler))
        return calls

    yield install
    for client, event, handler in registered:
        client.meta.events.unregister(f"before-call.{event}", handler)


def unavailable(response: Any) -> None:
    assert response.status == 503, response.body
    assert response.headers["retry-after"] == "5"
    answer = response.json()
    assert answer["error"] == "ServiceUnavailable" and "nothing was changed" in answer["message"]


@pytest.mark.parametrize(
    "error",
    [
        lambda: client_error("ThrottlingException", "TransactWriteItems"),
        lambda: client_error("ProvisionedThroughputExceededException", "TransactWriteItems"),
        lambda: client_error("InternalServerError", "TransactWriteItems", 500),
        lambda: client_error(
            "TransactionCanceledException",
            "TransactWriteItems",
            CancellationReasons=[{"Code": "ThrottlingError"}, {"Code": "None"}],
        ),
        lambda: EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
)
def test_dynamodb_throttled_or_down_answers_503_and_records_nothing(
    api: Api, aws: LocalStack, fail_calls: Any, error: Callable[[], Exception]
) -> None:
    catalog_store.put_products("org-a", [Product(product_id="bolt", sku="BOLT", name="Bolt")])
    fail_calls(shared_aws.table().meta.client, "dynamodb.TransactWriteItems", error)
    unavailable(api.call("POST", "/receipts", json_body={"received_at": DAY, "lines": [LINE]}))
    assert api.call("GET", "/receipts").json() == [] and api.call("GET", "/exports").json() == []


def test_dynamodb_reads_throttled_answer_503(api: Api, aws: LocalStack, fail_calls: Any) -> None:
    fail_calls(
        shared_aws.table().meta.client, "dynamodb.Query", lambda: client_error("ThrottlingException", "Query")
    )
    unavailable(api.call("GET", "/products"))


def test_a_transaction_conflict_is_retried_like_a_lost_race(
    api: Api, aws: LocalStack, fail_calls: Any
) -> None:
    catalog_store.put_products("org-a", [Product(product_id="bolt", sku="BOLT", name="Bolt")])
    conflict = client_error(
        "TransactionCanceledException",
        "TransactWriteItems",
        CancellationReasons=[{"Code": "TransactionConflict"}, {"Code": "None"}],
    )
    canceled = shared_aws.table().meta.client.exceptions.TransactionCanceledException
    calls = fail_calls(
        shared_aws.table().meta.client,
        "dynamodb.TransactWriteItems",
        lambda: canceled(conflict.response, "TransactWriteItems"),
        2,
    )
    response = api.call("POST", "/receipts", json_body={"received_at": DAY, "lines": [LINE]})
    assert response.status == 201, response.body
    assert calls[0] == 3  # two conflicts, then the write that committed
    assert len(api.call("GET", "/receipts").json()) == 1


def test_secrets_manager_throttled_answers_503_and_starts_no_connect(
    api: Api, aws: LocalStack, fail_calls: Any
) -> None:
    credentials._provider_secret.cache_clear()
    credentials.state_signing_key.cache_clear()
    secrets = shared_aws.client("secretsmanager")
    fail_calls(
        secrets,
        "secrets-manager.GetSecretValue",
        lambda: client_error("ThrottlingException", "GetSecretValue"),
    )
    response = api.call("POST", "/integrations/qbo/connect", json_body={})
    unavailable(response)
    assert not response.cookies
    assert api.call("GET", "/integrations").json()[0]["status"] == "not_connected"


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "KMSInternalException", "DependencyTimeoutException"]
)
def test_kms_throttled_or_down_answers_503_and_syncs_nothing(
    api: Api, sandboxes: Sandboxes, fail_calls: Any, code: str
) -> None:
    connect(api, sandboxes, "qbo")
    vault._opened.cache_clear()  # a cold function: the stored tokens must be opened through KMS
    fail_calls(shared_aws.client("kms"), "kms.Decrypt", lambda: client_error(code, "Decrypt"))
    unavailable(api.call("POST", "/integrations/qbo/sync/items"))
    assert api.call("GET", "/integrations/qbo/items").json() == []


def test_sqs_throttled_answers_503(api: Api, aws: LocalStack, fail_calls: Any) -> None:
    from shared.services import exports

    sqs = shared_aws.client("sqs")
    fail_calls(sqs, "sqs.SendMessage", lambda: client_error("RequestThrottled", "SendMessage"))
    fail_calls(
        sqs, "sqs.GetQueueAttributes", lambda: client_error("ServiceUnavailable", "GetQueueAttributes", 503)
    )
    assert shared_aws.is_outage(client_error("RequestThrottled", "SendMessage"))
    with pytest.raises(ClientError) as raised:
        exports.enqueue(exports.ExportJob(organisation_id="org-a", kind="receipt", record_id="R-1"))
    assert shared_aws.is_outage(raised.value)


def test_pull_now_while_sqs_is_down_answers_503_and_a_retry_queues_it(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, fail_calls: Any
) -> None:
    connect(api, sandboxes, "qbo")
    tracking = {"enabled": True, "start_date": "2026-08-01"}
    assert api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking).status == 200
    fail_calls(shared_aws.client("sqs"), "sqs.SendMessage", lambda: client_error("RequestThrottled", "x"), 1)
    unavailable(api.call("POST", "/sales/pull"))
    (status,) = api.call("GET", "/sales/status").json()
    assert not status["pulling"] and status["requested_at"] is None  # nothing shown as queued
    assert api.call("POST", "/sales/pull").status == 202  # the retry is not refused as already queued


@pytest.mark.parametrize(
    "error",
    [
        client_error("ConditionalCheckFailedException", "PutItem"),
        client_error("ValidationException", "Query"),
        client_error("AccessDeniedException", "Decrypt"),
        client_error(
            "TransactionCanceledException",
            "TransactWriteItems",
            CancellationReasons=[{"Code": "ConditionalCheckFailed"}, {"Code": "TransactionConflict"}],
        ),
        ValueError("not an AWS error"),
    ],
)
def test_refusals_and_bugs_are_not_taken_for_outages(error: Exception) -> None:
    assert not shared_aws.is_outage(error)
