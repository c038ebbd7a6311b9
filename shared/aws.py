"""Cached boto3 clients, created on first use so tests can start moto before any client exists."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from shared.config import settings


@cache
def _session() -> Any:
    import boto3  # imported on first use, not at module import (tests start moto first)

    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    from botocore.config import Config

    return _session().client(service, config=Config(retries={"mode": "standard", "max_attempts": 4}))


@cache
def table() -> Any:
    """The service's single DynamoDB table (resource API)."""
    return _session().resource("dynamodb").Table(settings().table_name)


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
