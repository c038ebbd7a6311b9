"""Error classes of the service: each knows its HTTP status and whether a retry can help.

Messages are written for the person using Partsemble and never carry tokens, codes or secrets.
Handlers map these to responses in one place, by type.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar, Self


class ServiceError(Exception):
    http_status: ClassVar[HTTPStatus] = HTTPStatus.INTERNAL_SERVER_ERROR
    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return type(self).__name__

    def response_fields(self) -> dict[str, Any]:
        """Fields an API error answer carries beside ``error`` and ``message``, for showing the details."""
        return {}


class BadRequest(ServiceError):
    http_status = HTTPStatus.BAD_REQUEST


class ImportInterrupted(ServiceError):
    """A dependency failed while an apply was writing a product file: some products were written (a
    re-apply of the same file writes the rest and leaves those alone)."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class SyncInterrupted(ServiceError):
    """A dependency failed while an item sync was storing what it read, after part of it was stored: the
    sync's cursor has not moved, so syncing again reads the same changes and stores the rest."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class ImportOutOfTime(ImportInterrupted):
    """The request's time ran out while an apply was writing a product file: it stopped between two chunks,
    so each product is written whole or not at all; ``problem`` says how many rows are done."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"file: {problem}")
        self.problem = problem

    def response_fields(self) -> dict[str, Any]:
        return {"details": [{"field": "file", "problem": self.problem}]}


class InvalidFields(BadRequest):
    """Input refused field by field; ``fields`` says which field and why, for showing next to each."""

    def __init__(self, message: str, fields: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.fields = fields

    def response_fields(self) -> dict[str, Any]:
        return {"details": self.fields}


def query_field(name: str) -> str:
    """How ``details`` names a query parameter: as the API's request validation does (Powertools' error
    location, ``query.<name>``), so a client maps every refusal of a parameter to it the same way."""
    return f"query.{name}"


class Forbidden(ServiceError):
    http_status = HTTPStatus.FORBIDDEN


class NotFound(ServiceError):
    http_status = HTTPStatus.NOT_FOUND


class Conflict(ServiceError):
    http_status = HTTPStatus.CONFLICT


class Busy(ServiceError):
    """Other writers changed the same records at every try (a burst of concurrent exports): nothing was
    written, and a retry in a moment goes through."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class UnknownProvider(NotFound):
    """The path names a provider this service does not integrate with."""


class ProviderNotConfigured(ServiceError):
    """The provider's client credentials are not set up for this deployment."""

    http_status = HTTPStatus.CONFLICT


class InvalidOAuthState(BadRequest):
    """A forged, tampered, expired, replayed or foreign-browser OAuth `state`."""


class OAuthDeclined(BadRequest):
    """The person declined the consent, or the provider sent an error instead of a code."""


class ProviderError(ServiceError):
    """A provider call failed; subclasses say how."""

    http_status = HTTPStatus.BAD_GATEWAY

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class AuthExpired(ProviderError):
    """The provider no longer accepts this connection's tokens; the person must reconnect."""

    http_status = HTTPStatus.CONFLICT

    @classmethod
    def from_stored(cls, provider: str, message: str) -> Self:
        """The error again from the whole message an earlier one was stored with (a connection's
        ``expired_reason``, a grant's ``status_reason``): it names the provider already, said once."""
        err = cls.__new__(cls)
        ServiceError.__init__(err, message)
        err.provider = provider
        return err


class TokenRefused(AuthExpired):
    """The API refused the access token (401), even once refreshed when the caller could: unlike a refresh
    refused (``invalid_grant``), not proof that the consent has ended (``tokens.check_one``)."""


class RateLimited(ProviderError):
    http_status = HTTPStatus.TOO_MANY_REQUESTS
    retryable = True

    def __init__(self, provider: str, message: str, *, retry_after: float) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """5xx, timeouts and dropped connections: the provider may answer later (a dependency outage: 503)."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class RefreshUnavailable(ProviderUnavailable):
    """The provider's token endpoint did not answer a refresh (5xx, timeout, dropped connection): nothing was
    refreshed nor spent, and no call was made without a token. An export waits for the connection's next
    check that refreshes, rather than failing through a long outage of it."""


class ProviderRejected(ProviderError):
    """The provider refused the request with a validation message (its own words)."""

    http_status = HTTPStatus.UNPROCESSABLE_ENTITY


class PermissionDenied(ProviderRejected):
    """The provider accepts the connection but not this operation: the consent lacks a permission, or the
    company's plan lacks the feature. The connection keeps working for everything else."""

    http_status = HTTPStatus.CONFLICT
