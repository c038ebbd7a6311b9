"""The OAuth 2.0 code flow both providers share (RFC 6749 with PKCE, HTTP Basic client auth); each
provider gives its scope, the token-call headers it needs and how its revocation endpoint takes the token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from shared.config import ProviderUrls
from shared.providers.base import ClientCredentials, TokenSet
from shared.providers.http import TOKEN_TIMEOUT, basic_auth, json_or_error, raise_for_token_response, send

# The deployment's OAuth client, read when a token call or the consent page needs it: most calls only use a
# stored access token, and reading the secret would cost a cold start a Secrets Manager client and request.
CredentialsSource = Callable[[], ClientCredentials]


def token_set(body: dict[str, Any], now: datetime, *, previous_refresh: str | None = None) -> TokenSet:
    """Tokens from a token response; a response without a new refresh token keeps the previous one."""

    def after(name: str) -> datetime | None:
        return now + timedelta(seconds=int(body[name])) if body.get(name) else None

    return TokenSet(
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token") or previous_refresh or "",
        access_expires_at=now + timedelta(seconds=int(body.get("expires_in", 0))),
        refresh_expires_at=after("x_refresh_token_expires_in"),
        hard_expires_at=after("x_refresh_token_hard_expires_in"),
    )


@dataclass
class OAuthClient:
    provider: str
    credentials: CredentialsSource
    urls: ProviderUrls
    client: httpx.Client
    scope: str
    token_headers: dict[str, str] = field(default_factory=dict)
    revoke_as: Literal["json", "form"] = "form"

    def _basic(self) -> dict[str, str]:
        credentials = self.credentials()
        return {"authorization": basic_auth(credentials.client_id, credentials.client_secret)}

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str) -> str:
        params = {
            "client_id": self.credentials().client_id,
            "response_type": "code",
            "scope": self.scope,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.urls.authorize}?{urlencode(params)}"

    def _token_call(self, form: dict[str, str]) -> dict[str, Any]:
        resp = send(
            self.client,
            self.provider,
            "POST",
            self.urls.token,
            data=form,
            headers={**self._basic(), **self.token_headers},
            timeout=TOKEN_TIMEOUT,
        )
        raise_for_token_response(resp, self.provider)
        body: dict[str, Any] = json_or_error(resp, self.provider)  # a proxy's HTML page is a provider error
        return body

    def exchange(self, *, code: str, redirect_uri: str, code_verifier: str, now: datetime) -> TokenSet:
        return token_set(
            self._token_call(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": code_verifier,
                }
            ),
            now,
        )

    def refresh(self, refresh_token: str, *, now: datetime) -> TokenSet:
        body = self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return token_set(body, now, previous_refresh=refresh_token)

    def revoke(self, tokens: TokenSet) -> None:
        payload: dict[str, Any] = (
            {"json": {"token": tokens.refresh_token}}
            if self.revoke_as == "json"
            else {"data": {"token": tokens.refresh_token}}
        )
        resp = send(self.client, self.provider, "POST", self.urls.revoke, headers=self._basic(), **payload)
        raise_for_token_response(resp, self.provider)
