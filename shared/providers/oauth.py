"""OAuth 2.0 code flow steps both providers share (RFC 6749 + PKCE), with their token lifetimes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from shared.providers.base import ClientCredentials, TokenSet
from shared.providers.http import basic_auth, raise_for_token_response, send


def authorize_url(base: str, credentials: ClientCredentials, *, scope: str, state: str, redirect_uri: str,
                  code_challenge: str | None) -> str:
    params = {"client_id": credentials.client_id, "response_type": "code", "scope": scope,
              "redirect_uri": redirect_uri, "state": state}
    if code_challenge:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    return f"{base}?{urlencode(params)}"


def token_request(client: httpx.Client, provider: str, url: str, credentials: ClientCredentials,
                  form: dict[str, str], headers: dict[str, str] | None = None) -> dict[str, Any]:
    resp = send(client, provider, "POST", url, data=form, headers={
        "authorization": basic_auth(credentials.client_id, credentials.client_secret), **(headers or {})})
    raise_for_token_response(resp, provider)
    body: dict[str, Any] = resp.json()
    return body


def token_set(body: dict[str, Any], now: datetime, *, previous_refresh: str | None = None) -> TokenSet:
    """Tokens from a token response; a response without a new refresh token keeps the previous one."""
    def after(field: str) -> datetime | None:
        return now + timedelta(seconds=int(body[field])) if body.get(field) else None

    return TokenSet(
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token") or previous_refresh or "",
        access_expires_at=now + timedelta(seconds=int(body.get("expires_in", 0))),
        refresh_expires_at=after("x_refresh_token_expires_in"),
        hard_expires_at=after("x_refresh_token_hard_expires_in"),
    )
