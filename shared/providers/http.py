"""HTTP plumbing the provider calls share: the httpx client, timeouts, the rate budget (``call``), bounded
retries with jitter, ``Retry-After``, one token refresh on a refused token, and provider responses
mapped to a few domain errors by status and error code (never by matching message strings)."""

from __future__ import annotations

import base64
import json
import random
import re
import ssl
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from shared.errors import (
    AuthExpired,
    PermissionDenied,
    ProviderError,
    ProviderNotConfigured,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    TokenRefused,
)
from shared.providers.base import Session
from shared.providers.limits import ProviderLimits, admit, observe

TIMEOUT = httpx.Timeout(20.0, connect=5.0)
# A token request reaches the provider within pool + connect + write (15 s) of being sent, well inside the
# refresh lease (``tokens.LEASE_SECONDS``): a second refresher's request can never reach Xero before a
# first one's, which Xero would take as a retry of the same single-use refresh token and so drop the
# second's new one (provider facts xero.md 1.2, "Token lifetimes, rotation, grace period")
TOKEN_TIMEOUT = httpx.Timeout(20.0, connect=5.0, write=5.0, pool=5.0)
RETRY_AFTER_DEFAULT = 60.0
MAX_ATTEMPTS = 5  # per request; a refused token's one refresh does not count
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
MAX_INLINE_WAIT = 60.0  # a longer wait is the caller's to schedule (RateLimited carries it)
sleep: Callable[[float], None] = time.sleep  # tests replace these two: retries never sleep for real there
jitter: Callable[[float, float], float] = random.uniform
_TRUSTS_NOTHING = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies hostnames and certificates, trusts no CA


def default_transport() -> httpx.BaseTransport | None:
    """The network; tests put the sandboxes' in-process transport here."""
    return None


class _VerifiedOnFirstUse(httpx.BaseTransport):
    """httpx's transport (TLS verified against certifi's bundle), made at the first https request.

    Making it parses the CA bundle, about 30 ms, which httpx does when a client is made (httpx issue
    #3627); a cold start pays it when it first speaks TLS, as botocore pays its own at its first https
    connection, not when a function merely sets up a provider client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transport: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._transport is None:
                self._transport = httpx.HTTPTransport()
            transport = self._transport
        return transport.handle_request(request)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def new_client() -> httpx.Client:
    transport = default_transport()
    return httpx.Client(
        transport=transport or _VerifiedOnFirstUse(),
        # plain http (the local sandboxes) makes no TLS connection: its transport gets a context that trusts
        # no certificate, so it loads no CA bundle and could never accept an unverified one
        mounts=None if transport else {"http://": httpx.HTTPTransport(verify=_TRUSTS_NOTHING)},
        timeout=TIMEOUT,
        headers={"accept": "application/json", "user-agent": "partsemble-accounting/1.0"},
    )


def basic_auth(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


def send(client: httpx.Client, provider: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request; transport failures become ``ProviderUnavailable`` (the outcome of a write is then
    unknown: callers that write must look for what they posted before trying again). The answer is read
    to at most ``MAX_ANSWER_BYTES``, as decoded: past that it is a ``ProviderError``, read no further."""
    try:
        request = client.build_request(method, url, **kwargs)
        streamed = client.send(request, stream=True)
        try:
            content = _bounded(streamed, provider)
        finally:
            streamed.close()
    except httpx.TimeoutException:
        raise ProviderUnavailable(provider, "the provider did not answer in time") from None
    except httpx.TransportError:
        raise ProviderUnavailable(provider, "the connection to the provider failed") from None
    # the body is decoded already: the headers that described its encoding on the wire no longer apply
    headers = [(k, v) for k, v in streamed.headers.multi_items() if k not in _WIRE_HEADERS]
    return httpx.Response(streamed.status_code, headers=headers, content=content, request=request)


# An answer held whole in a function's memory (512 MB, template.yaml) with its parsed JSON several times its
# size: far past the largest page either provider sends (QBO: 1,000 records; Xero's unpaged Items of a few
# thousand items, xero.md section 4.2), and short of what a broken or hostile answer could make a function
# run out of memory with.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _bounded(resp: httpx.Response, provider: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ProviderError(
                provider, f"the provider's answer is too large (over {MAX_ANSWER_BYTES // 2**20} MB)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


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
        parts = [
            " - ".join(str(e.get(k)) for k in ("Message", "Detail", "message", "detail") if e.get(k))
            + (f" (code {e.get('code')})" if e.get("code") else "")
            for e in errors
        ]
        return "; ".join(p for p in parts if p) or f"HTTP {resp.status_code}"
    messages = [
        v.get("Message")
        for element in body.get("Elements", []) or []
        for v in element.get("ValidationErrors", []) or []
        if isinstance(v, dict)
    ]
    if messages:
        return "; ".join(str(m) for m in messages)
    for key in ("error_description", "Detail", "Message", "error", "message"):
        if body.get(key):
            return str(body[key])
    return f"HTTP {resp.status_code}"


# The token endpoint's other error codes (RFC 6749 section 5.2): invalid_grant and the client's are apart
OAUTH_ERRORS = frozenset({"invalid_request", "unsupported_grant_type", "invalid_scope"})


def raise_for_token_response(resp: httpx.Response, provider: str) -> None:
    """The OAuth token and revocation endpoints' errors."""
    if resp.is_success:
        return
    body = _json(resp)
    error = body.get("error") if isinstance(body, dict) else None
    if error == "invalid_grant":
        raise AuthExpired(
            provider, "the provider no longer accepts this connection (invalid_grant); reconnect"
        )
    if error in ("invalid_client", "unauthorized_client"):
        raise ProviderNotConfigured(f"{provider}: the provider rejected this service's client credentials")
    if resp.status_code == 429 or resp.status_code >= 500:
        raise error_for(resp, provider)
    if error in OAUTH_ERRORS:  # a request the endpoint refused in its own words (RFC 6749 section 5.2)
        raise ProviderRejected(provider, validation_message(resp))
    # No OAuth error code: a CDN's or firewall's page, an empty body. Only invalid_grant proves the consent
    # ended (a revoked, expired or superseded refresh token is HTTP 400 invalid_grant: qbo.md 1.5, RFC 6749
    # section 5.2), so a bare 401/403 is not taken as one: an outage, tried again by the next check
    raise ProviderUnavailable(
        provider, f"the provider's sign-in service answered HTTP {resp.status_code} without an OAuth error"
    )


def _refuses_permission(resp: httpx.Response) -> bool:
    """Xero's 401 for a scope the consent lacks or an endpoint the plan lacks: its problem-details code
    ``AuthorizationUnsuccessful``. A new token cannot help, and the connection still works otherwise."""
    body = _json(resp)
    return (
        resp.status_code == 401
        and isinstance(body, dict)
        and body.get("Detail") == "AuthorizationUnsuccessful"
    )


# QBO's throttling: Fault code 3001 ("ThrottleExceeded"). It has come back as HTTP 403 (and as XML despite
# `Accept: application/json`) as well as the documented 429, so it is recognised by the code whatever the
# status: "Detect throttling by the HTTP status *or* code 3001" (../shared/providers/qbo.md section 2.6).
QBO_THROTTLED = "3001"
_XML_ERROR_CODE = re.compile(r"<Error\b[^>]*\bcode=\"(\d+)\"")


def _qbo_fault_codes(resp: httpx.Response) -> set[str]:
    """The codes of a QBO Fault, JSON (``Fault``/``fault``, ``Error``/``error``; qbo.md section 2.8) or XML
    (``<Error code="...">``; qbo.md section 2.6)."""
    body = _json(resp)
    if isinstance(body, dict):
        fault = body.get("Fault") or body.get("fault")
        errors = (fault.get("Error") or fault.get("error") or []) if isinstance(fault, dict) else []
        return {str(e.get("code")) for e in errors if isinstance(e, dict) and e.get("code")}
    return set(_XML_ERROR_CODE.findall(resp.text))


def error_for(resp: httpx.Response, provider: str) -> ProviderError:
    """The domain error a refused response means."""
    if resp.status_code == 429 or (provider == "qbo" and QBO_THROTTLED in _qbo_fault_codes(resp)):
        return RateLimited(
            provider,
            "the provider's rate limit was reached",
            retry_after=_retry_after(resp) or RETRY_AFTER_DEFAULT,  # Intuit: wait 60 s (qbo.md 2.6)
        )
    if _refuses_permission(resp):
        return PermissionDenied(
            provider,
            "the provider refused this operation: the connection was not granted the permission it needs, or "
            "the company's plan does not include it. Reconnect to grant the permission, or check the plan",
        )
    if resp.status_code == 401:
        return TokenRefused(provider, "the provider refused the access token")
    if resp.status_code >= 500:
        return ProviderUnavailable(provider, f"the provider is unavailable (HTTP {resp.status_code})")
    if resp.status_code == 403:
        return AuthExpired(
            provider, f"the provider refused access to this company: {validation_message(resp)}"
        )
    return ProviderRejected(provider, validation_message(resp))


def raise_for_provider(resp: httpx.Response, provider: str) -> None:
    if not resp.is_success:
        raise error_for(resp, provider)


def _retry_after(resp: httpx.Response) -> float | None:
    value = (resp.headers.get("retry-after") or "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: somewhere in the upper half of the attempt's delay."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return jitter(delay / 2, delay)


def pace(seconds: float) -> None:
    """A wait the rate budget asked for: a seam of its own so tests can tell pacing from retrying."""
    sleep(seconds)


def _wait_for_budget(session: Session, key: str, provider: str, limits: ProviderLimits) -> None:
    waited = 0.0
    while (wait := admit(session.budget, key, limits)) > 0:
        if waited + wait > MAX_INLINE_WAIT:
            raise RateLimited(
                provider,
                "Partsemble is pacing its calls to stay within the provider's limits",
                retry_after=wait,
            )
        pace(wait)
        waited += wait


def call(
    client: httpx.Client,
    session: Session,
    provider: str,
    limits: ProviderLimits,
    method: str,
    url: str,
    *,
    retry_unknown_outcome: bool = True,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One API request for a tenant, within its rate budget. A 429 waits (``Retry-After`` when given)
    and repeats; 5xx, timeouts and dropped connections repeat with backoff only when
    ``retry_unknown_outcome`` (reads, and writes the provider deduplicates): a write whose outcome is
    unknown is the caller's to look for before trying again. A refused token is refreshed once."""
    key = f"{provider}#{session.tenant_id}"
    refreshed = False
    attempt = 0
    while True:
        auth = {"authorization": f"Bearer {session.token(False)}"}  # before taking a slot: it may fail
        _wait_for_budget(session, key, provider, limits)
        wait: float | None = None
        try:
            resp = send(client, provider, method, url, headers={**(headers or {}), **auth}, **kwargs)
        except ProviderUnavailable as err:
            failure: ProviderError = err
        else:
            observe(session.budget, key, limits, resp.headers)
            if resp.is_success:
                return resp
            if resp.status_code == 401 and not refreshed and not _refuses_permission(resp):
                refreshed = True
                session.token(True)
                continue
            failure = error_for(resp, provider)
            if resp.status_code == 403 and isinstance(failure, AuthExpired) and session.refused:
                session.refused(failure.message)  # the connection is gone: every path says so at once
            if isinstance(failure, RateLimited):
                wait = _retry_after(resp)
        finally:
            session.budget.release(key)
        attempt += 1
        if attempt >= MAX_ATTEMPTS or not failure.retryable:
            raise failure
        if isinstance(failure, RateLimited):
            limit = MAX_INLINE_WAIT
            if wait is not None and session.retry_after_limit is not None:  # the provider said how long
                limit = min(limit, session.retry_after_limit)
            wait = backoff(attempt) if wait is None else wait
            if wait > limit:
                raise failure
        elif not retry_unknown_outcome:
            raise failure
        sleep(backoff(attempt) if wait is None else wait)


def decimal_json(resp: httpx.Response, provider: str) -> Any:
    """A successful response's JSON body with every number that has a fraction as a Decimal."""
    try:
        return json.loads(resp.content, parse_float=Decimal)
    except ValueError:
        raise ProviderError(provider, "the provider answered with something that is not JSON") from None


def json_or_error(resp: httpx.Response, provider: str) -> Any:
    raise_for_provider(resp, provider)
    body = _json(resp)
    if body is None:
        raise ProviderError(provider, "the provider answered with something that is not JSON")
    return body
