"""Signed, single-use, short-lived OAuth artefacts bound to the organisation and the browser.

A token is ``<nonce>.<hmac>``: the HMAC (keyed by a deployment secret) covers the nonce, the kind
and the provider, so a forged or edited token is refused before any lookup; the pending row names
the organisation and is deleted on use, so a replay finds nothing; a cookie set on the browser that asked
must come back with the callback, so a forwarded link cannot attach a company to the wrong
organisation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from shared.errors import InvalidOAuthState
from shared.services import credentials
from shared.store import oauth_states

LIFETIME_SECONDS = 600
ANOTHER_BROWSER = (
    "the sign-in was started in another browser; open Settings -> Integrations in this browser "
    "and connect from there"
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(kind: str, nonce: str, provider: str) -> str:
    message = f"{kind}|{nonce}|{provider}".encode()
    return _b64(hmac.new(credentials.state_signing_key(), message, hashlib.sha256).digest())


def browser_hash(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, _b64(hashlib.sha256(verifier.encode()).digest())


def issue(kind: str, organisation_id: str, provider: str, binding: str, now: datetime, **fields: Any) -> str:
    nonce = secrets.token_urlsafe(24)
    signed = (
        f"{nonce}.{_signature(kind, nonce, provider)}"  # first: a secret that can't be read stores nothing
    )
    oauth_states.put_pending(
        kind,
        nonce,
        {
            "organisation_id": organisation_id,
            "provider": provider,
            "browser": browser_hash(binding),
            **fields,
        },
        expires_at=int(now.timestamp()) + LIFETIME_SECONDS,
    )
    return signed


def consume(
    kind: str, token: str | None, provider: str, binding: str | None, now: datetime
) -> dict[str, Any]:
    """The pending item, once; ``InvalidOAuthState`` saying why when anything is off. A callback from
    another browser leaves the item for the browser that asked."""
    nonce, _, signature = (token or "").partition(".")
    if not nonce or not signature:
        raise InvalidOAuthState("the sign-in link is missing its state; start the connection again")
    # as bytes: compare_digest refuses str holding anything but ASCII (a TypeError), and any text can arrive
    if not hmac.compare_digest(signature.encode(), _signature(kind, nonce, provider).encode()):
        raise InvalidOAuthState(
            "the sign-in state is not one this service issued for this provider; start the connection again"
        )
    if not binding:
        raise InvalidOAuthState(ANOTHER_BROWSER)
    taken = oauth_states.take_pending(kind, nonce, browser_hash(binding))
    if taken.refused == "browser":
        raise InvalidOAuthState(ANOTHER_BROWSER)
    if taken.item is None:
        raise InvalidOAuthState(
            "this sign-in was already used or never started here; start the connection again"
        )
    if int(taken.item["expires_at"]) < int(now.timestamp()):
        raise InvalidOAuthState("the sign-in took too long and expired; start the connection again")
    return taken.item
