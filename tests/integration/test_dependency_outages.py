"""An AWS dependency that throttles or is down (DynamoDB, KMS, Secrets Manager, SQS) answers 503 with
Retry-After and changes nothing (the OAuth callback's popup page too, ending a consent it could not store);
a DynamoDB transaction conflict is retried as a lost race."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from infra.local.stack import LocalStack
from infra.sandboxes.consent import walk_consent
from shared import aws as shared_aws
from shared import vault
from shared.domain.catalog import Product
from shared.services import credentials
from shared.store import catalog as catalog_store
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import DEMO_USER, callback, connect, start
from tests.integration.test_connect import status_of

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
    assert api.call("GET", "/receipts").json()["items"] == []
    assert api.call("GET", "/exports").json()["items"] == []


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
    assert len(api.call("GET", "/receipts").json()["items"]) == 1


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
    assert api.call("GET", "/integrations/qbo/items").json()["items"] == []


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


def _consented(api: Api, sandboxes: Sandboxes) -> tuple[dict[str, str], str]:
    """A QBO consent given in the popup: the callback's parameters and the browser's binding cookie."""
    started = start(api, "qbo")
    with sandboxes.client() as browser:
        params = walk_consent(browser, started.authorize_url, username=DEMO_USER[0], password=DEMO_USER[1])
    return params, started.cookie


def _unavailable_page(page: Any) -> None:
    """The popup's page for an outage: 503 with Retry-After, saying to try again, posted to the app."""
    assert page.status == 503, page.body
    assert page.headers["retry-after"] == "5"
    assert page.headers["content-type"].startswith("text/html")
    text = page.body.decode()
    assert "busy or unavailable right now" in text and "try again" in text
    assert '"error": "ServiceUnavailable"' in text and "something went wrong" not in text


def _stored_grants() -> list[dict[str, Any]]:
    from boto3.dynamodb.conditions import Attr

    client = shared_aws.table().meta.client
    return list(
        client.scan(TableName=shared_aws.table().name, FilterExpression=Attr("sk").eq("GRANT"))["Items"]
    )


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "KMSInternalException", "DependencyTimeoutException"]
)
def test_callback_with_kms_throttled_or_down_answers_503_and_ends_the_new_consent(
    api: Api, sandboxes: Sandboxes, fail_calls: Any, code: str
) -> None:
    """The code was exchanged, but the tokens could not be sealed: the popup says to try again shortly, and
    the consent is revoked at the provider rather than left live with nobody holding its tokens."""
    params, cookie = _consented(api, sandboxes)
    fail_calls(shared_aws.client("kms"), "kms.GenerateDataKey", lambda: client_error(code, "GenerateDataKey"))
    _unavailable_page(callback(api, "qbo", params, cookie))
    assert status_of(api, "qbo")["status"] == "not_connected" and _stored_grants() == []
    assert sandboxes.qbo.grants and all(grant.revoked for grant in sandboxes.qbo.grants)


def test_callback_with_the_state_read_throttled_answers_503_and_the_same_callback_then_connects(
    api: Api, sandboxes: Sandboxes, fail_calls: Any
) -> None:
    params, cookie = _consented(api, sandboxes)
    client = shared_aws.table().meta.client
    fail_calls(client, "dynamodb.DeleteItem", lambda: client_error("ThrottlingException", "DeleteItem"), 1)
    _unavailable_page(callback(api, "qbo", params, cookie))
    assert status_of(api, "qbo")["status"] == "not_connected"
    assert callback(api, "qbo", params, cookie).status == 200  # nothing was spent: the state is still good
    assert status_of(api, "qbo")["status"] == "connected"


def test_callback_whose_connection_write_is_throttled_answers_503_and_ends_the_new_consent(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.store import connections as connection_store

    def throttled(*_: Any, **__: Any) -> None:
        raise client_error("ProvisionedThroughputExceededException", "PutItem")

    params, cookie = _consented(api, sandboxes)
    with monkeypatch.context() as patched:
        patched.setattr(connection_store, "put_connection", throttled)
        _unavailable_page(callback(api, "qbo", params, cookie))
    assert status_of(api, "qbo")["status"] == "not_connected"
    assert _stored_grants() == []  # no sealed tokens kept for nothing
    assert sandboxes.qbo.grants and all(grant.revoked for grant in sandboxes.qbo.grants)
    assert connect(api, sandboxes, "qbo").page.status == 200  # once it answers again, connecting works
    assert status_of(api, "qbo")["status"] == "connected"


def test_callback_failing_after_its_connection_was_stored_keeps_the_consent_it_holds(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What fails after the connection row is written (resuming its waiting exports) never revokes the
    consent that connection now holds, and the popup says it is connected (it is)."""
    from shared.services import exports

    def throttled(*_: Any, **__: Any) -> None:
        raise client_error("ThrottlingException", "Query")

    params, cookie = _consented(api, sandboxes)
    with monkeypatch.context() as patched:
        patched.setattr(exports, "resume_waiting", throttled)
        assert callback(api, "qbo", params, cookie).status == 200
    assert status_of(api, "qbo")["status"] == "connected" and len(_stored_grants()) == 1
    assert not any(grant.revoked for grant in sandboxes.qbo.grants)
    assert api.call("POST", "/integrations/qbo/sync/items").status == 200  # the connection works
