"""HTTP plumbing every provider call shares: the httpx client, timeouts, and provider responses
mapped to a few domain errors by status (never by matching message strings)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from shared.errors import (
    AuthExpired,
    ProviderError,
    ProviderNotConfigured,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)

TIMEOUT = httpx.Timeout(20.0, connect=5.0)
RETRY_AFTER_DEFAULT = 60.0


def default_transport() -> httpx.BaseTransport | None:
    """The network; tests put the sandboxes' in-process transport here."""
    return None


def new_client() -> httpx.Client:
    return httpx.Client(transport=default_transport(), timeout=TIMEOUT,
                        headers={"accept": "application/json", "user-agent": "partsemble-accounting/1.0"})


def basic_auth(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


def send(client: httpx.Client, provider: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request; transport failures become ``ProviderUnavailable`` (the outcome of a write is then
    unknown: callers that write must look for what they posted before trying again)."""
    try:
        return client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise ProviderUnavailable(provider, "the provider did not answer in time") from None
    except httpx.TransportError:
        raise ProviderUnavailable(provider, "the connection to the provider failed") from None


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def validation_message(resp: httpx.Response) -> str:
    """The provider's own words for a refused request (QBO Fault, Xero ValidationException, OAuth error)."""
    body = _json(resp)
    if not isinstance(body, dict):
        return f"HTTP {resp.status_code}"
    fault = body.get("Fault") or body.get("fault")
    if isinstance(fault, dict):
        errors = fault.get("Error") or fault.get("error") or []
        parts = [" - ".join(str(e.get(k)) for k in ("Message", "Detail", "message", "detail") if e.get(k))
                 + (f" (code {e.get('code')})" if e.get("code") else "") for e in errors]
        return "; ".join(p for p in parts if p) or f"HTTP {resp.status_code}"
    messages = [v.get("Message") for element in body.get("Elements", []) or []
                for v in element.get("ValidationErrors", []) or [] if isinstance(v, dict)]
    if messages:
        return "; ".join(str(m) for m in messages)
    for key in ("error_description", "Detail", "Message", "error", "message"):
        if body.get(key):
            return str(body[key])
    return f"HTTP {resp.status_code}"


def raise_for_token_response(resp: httpx.Response, provider: str) -> None:
    """The OAuth token and revocation endpoints' errors."""
    if resp.is_success:
        return
    error = (_json(resp) or {}).get("error") if isinstance(_json(resp), dict) else None
    if error == "invalid_grant":
        raise AuthExpired(provider, "the provider no longer accepts this connection (invalid_grant); reconnect")
    if error in ("invalid_client", "unauthorized_client"):
        raise ProviderNotConfigured(f"{provider}: the provider rejected this service's client credentials")
    raise_for_provider(resp, provider)


def raise_for_provider(resp: httpx.Response, provider: str) -> None:
    if resp.is_success:
        return
    if resp.status_code == 401:
        raise AuthExpired(provider, "the provider refused the access token")
    if resp.status_code == 429:
        raise RateLimited(provider, "the provider's rate limit was reached",
                          retry_after=float(resp.headers.get("retry-after") or RETRY_AFTER_DEFAULT))
    if resp.status_code >= 500:
        raise ProviderUnavailable(provider, f"the provider is unavailable (HTTP {resp.status_code})")
    if resp.status_code == 403:
        raise AuthExpired(provider, f"the provider refused access to this company: {validation_message(resp)}")
    raise ProviderRejected(provider, validation_message(resp))


def json_or_error(resp: httpx.Response, provider: str) -> Any:
    raise_for_provider(resp, provider)
    body = _json(resp)
    if body is None:
        raise ProviderError(provider, "the provider answered with something that is not JSON")
    return body
