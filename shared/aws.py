"""Cached boto3 clients, created on first use so tests can start moto before any client exists."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from shared import AWS_MODELS_FOLDER
from shared.config import settings


def botocore_session(data_path: Path) -> Any:
    """A botocore session that reads its data (service models, endpoints, partitions, defaults) from
    ``data_path`` alone when the layer's build wrote it there (``infra.layer_models``), else botocore's own.

    The layer's copy is botocore's own data trimmed to the services the functions call: their models without
    documentation (parsing a model is most of a client's creation) and endpoints.json with only their
    endpoints (botocore's is 1.2 MB, parsed by every session's first client). Without botocore's data folder
    on the search path, no client lists its 400-odd services either."""
    import botocore.loaders
    import botocore.session

    core = botocore.session.get_session()
    if (data_path / "endpoints.json").is_file():
        loader = botocore.loaders.Loader(
            extra_search_paths=[str(data_path)], include_default_search_paths=False
        )
        # botocore's own data, trimmed: endpoints resolve exactly as from the data bundled with botocore (data
        # from elsewhere would make botocore pass its legacy endpoint to the rule sets as a custom endpoint)
        loader.BUILTIN_DATA_PATH = str(data_path)
        core.register_component("data_loader", loader)
    return core


@cache
def _session() -> Any:
    import boto3  # imported on first use, not at module import (tests start moto first)

    core = botocore_session(Path(__file__).resolve().parents[1] / AWS_MODELS_FOLDER)
    return boto3.session.Session(botocore_session=core)


@cache
def client(service: str) -> Any:
    from botocore.config import Config

    return _session().client(service, config=Config(retries={"mode": "standard", "max_attempts": 4}))


class Table:
    """The service's single DynamoDB table, taking and giving plain Python values as boto3's ``Table``
    resource does, through the one cached DynamoDB client (with the resource's value and condition
    transformations registered on it): building boto3's resource model cost every cold start ~30 ms."""

    def __init__(self, dynamodb: Any, name: str) -> None:
        from boto3.dynamodb.transform import TransformationInjector, copy_dynamodb_params

        # as boto3.dynamodb.transform.DynamoDBHighLevelResource registers them on the resource's client
        events, injector = dynamodb.meta.events, TransformationInjector()
        events.register("provide-client-params.dynamodb", copy_dynamodb_params, unique_id="ps-params-copy")
        for hook in (injector.inject_condition_expressions, injector.inject_attribute_value_input):
            events.register("before-parameter-build.dynamodb", hook, unique_id=f"ps-{hook.__name__}")
        events.register(
            "after-call.dynamodb", injector.inject_attribute_value_output, unique_id="ps-attr-value-output"
        )
        self.meta = SimpleNamespace(client=dynamodb)
        self.name = name

    def get_item(self, **kwargs: Any) -> Any:
        return self.meta.client.get_item(TableName=self.name, **kwargs)

    def put_item(self, **kwargs: Any) -> Any:
        return self.meta.client.put_item(TableName=self.name, **kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        return self.meta.client.update_item(TableName=self.name, **kwargs)

    def delete_item(self, **kwargs: Any) -> Any:
        return self.meta.client.delete_item(TableName=self.name, **kwargs)

    def query(self, **kwargs: Any) -> Any:
        return self.meta.client.query(TableName=self.name, **kwargs)

    def batch_writer(self, overwrite_by_pkeys: list[str] | None = None) -> Any:
        from boto3.dynamodb.table import BatchWriter

        return BatchWriter(self.name, self.meta.client, overwrite_by_pkeys=overwrite_by_pkeys)


@cache
def table() -> Table:
    return Table(client("dynamodb"), settings().table_name)


_forgetters: list[Callable[[], None]] = []


def forget_with_clients(forget: Callable[[], None]) -> None:
    """Also run ``forget`` when clients are forgotten: a cache of what one table held."""
    _forgetters.append(forget)


def clear_cached_clients() -> None:
    """Forget clients and settings (tests switch between moto instances and environments)."""
    for forget in _forgetters:
        forget()
    _session.cache_clear()
    client.cache_clear()
    table.cache_clear()
    settings.cache_clear()


# Error codes of AWS answers that mean "busy or down, ask again later", whichever service gave them.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",  # KMS: the request rate quota
        "TransactionInProgressException",
        "SlowDown",
    }
)
UNAVAILABLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "InternalServiceError",  # Secrets Manager
        "InternalServiceErrorException",
        "KMSInternalException",
        "KeyUnavailableException",
        "DependencyTimeoutException",  # KMS, Secrets Manager
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)
# Cancellation reasons of a DynamoDB transaction that say the same (TransactionConflict is retried as a lost
# race by the store that writes the transaction; one that still reaches here is an outage like the others).
BUSY_CANCELLATIONS = frozenset({"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"})
# botocore's exceptions for a connection that failed or timed out (by class name: botocore loads lazily)
CONNECTION_FAILURES = frozenset(
    {"ConnectionError", "HTTPClientError", "ConnectTimeoutError", "ReadTimeoutError"}
)


def is_outage(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from) is an AWS throttle, an AWS 5xx, a timeout or a failed
    connection: the dependency may answer later, and the request changed nothing that a retry would repeat."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_outage(err: BaseException) -> bool:
    if CONNECTION_FAILURES & {cls.__name__ for cls in type(err).__mro__}:
        return True
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return False
    error = response.get("Error") or {}
    code = str(error.get("Code", "")) if isinstance(error, dict) else ""
    if code in THROTTLING_CODES or code in UNAVAILABLE_CODES:
        return True
    if code == "TransactionCanceledException":
        cancelled = response.get("CancellationReasons") or []
        reasons = {str(r.get("Code")) for r in cancelled if isinstance(r, dict)}
        refused = reasons & {"ConditionalCheckFailed", "ValidationError"}
        return bool(reasons & BUSY_CANCELLATIONS) and not refused
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return isinstance(status, int) and status >= 500
