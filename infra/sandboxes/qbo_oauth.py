"""Intuit OAuth 2.0 of the QBO sandbox: sign-in and consent pages, codes, token rotation and revocation."""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.sandboxes.common import (
    Clock,
    OAuthApp,
    bearer_token,
    form_body,
    html_response,
    json_body,
    json_response,
    new_token,
    redirect,
)
from infra.sandboxes.qbo_books import Company

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
CODE_LIFETIME = timedelta(minutes=5)
LOGIN_LIFETIME = timedelta(minutes=10)
ACCESS_SECONDS = 3600
REFRESH_IDLE_SECONDS = 8_640_000  # 100 days, extended by every use
HARD_LIFETIME = timedelta(days=5 * 365 + 1)  # five years from the original authorization
ID_TOKEN_SECONDS = 3600  # the sandbox's choice: Intuit publishes no lifetime for its ID tokens (UNSURE)


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    """The key every QBO sandbox of this process signs ID tokens with, as Intuit signs all of its with the
    keys of one jwks_uri; made on first use, once (a 2048-bit key takes a tenth of a second or more)."""
    return rsa.generate_private_key(65537, 2048)


@dataclass
class User:
    username: str
    password: str
    realm_ids: list[str]


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    realm_id: str
    username: str
    expires_at: datetime
    code_challenge: str | None
    scopes: tuple[str, ...] = ()
    used: bool = False


@dataclass
class Grant:
    """One app's connection to one company: every token issued for it dies with it."""

    client_id: str
    realm_id: str
    username: str
    authorized_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    scopes: tuple[str, ...] = ()
    revoked: bool = False
    access_tokens: dict[str, datetime] = field(default_factory=dict)

    @property
    def hard_expires_at(self) -> datetime:
        return self.authorized_at + HARD_LIFETIME


class QboOAuth:
    """Mixed into ``QboSandbox``: users sign in and pick a company; each grant's tokens die with it."""

    companies: dict[str, Company]
    apps: dict[str, OAuthApp]
    clock: Clock
    base_url: str
    lock: threading.RLock
    authenticate_client: Callable[[httpx.Request], OAuthApp | None]

    @staticmethod
    def _key_id() -> str:
        numbers = _signing_key().public_key().public_numbers()
        return hashlib.sha256(f"{numbers.n}:{numbers.e}".encode()).hexdigest()[:16]

    def _clear_identity(self) -> None:
        self.users: dict[str, User] = {}
        self.codes: dict[str, AuthCode] = {}
        self.logins: dict[str, tuple[str, datetime]] = {}
        self.grants: list[Grant] = []
        self.refresh_index: dict[str, Grant] = {}
        self.access_index: dict[str, Grant] = {}

    def oauth_endpoints(self) -> list[tuple[str, str, Callable[..., httpx.Response]]]:
        return [
            ("GET", "/connect/oauth2", self._authorize_page),
            ("POST", "/connect/oauth2", self._authorize_submit),
            ("POST", "/oauth2/v1/tokens/bearer", self._token),
            ("POST", "/v2/oauth2/tokens/revoke", self._revoke),
            ("GET", "/v1/openid_connect/userinfo", self._userinfo),
            ("GET", r"/\.well-known/openid[_-](?:sandbox[_-])?configuration/?", self._discovery),
            ("GET", "/op/v1/jwks", self._jwks),
        ]

    def _jwks(self, request: httpx.Request) -> httpx.Response:
        """The discovery document's ``jwks_uri``: the public key an ID token's ``kid`` names, as intuit-oauth
        reads it (``intuitlib.utils.get_jwk``: ``jwt.PyJWKSet.from_dict(response.json())[kid]``)."""
        key = jwt.algorithms.RSAAlgorithm.to_jwk(_signing_key().public_key(), as_dict=True)
        key.pop("key_ops", None)  # RFC 7517 section 4.3: "use" and "key_ops" should not be used together
        return json_response(200, {"keys": [{**key, "kid": self._key_id(), "use": "sig", "alg": "RS256"}]})

    def _id_token(self, grant: Grant, now: datetime) -> str:
        """The OpenID Connect ID token of a consent that included ``openid``: Intuit's "Add OpenID Connect to
        OAuth 2.0" page (developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/
        openid-connect) has the app get it with the tokens and validate it; its claims are those the discovery
        document lists (aud, exp, iat, iss, realmid, sub), signed RS256 with a key of ``jwks_uri``, and
        ``aud`` a list whose first entry is the client id, as intuit-oauth validates it
        (``intuitlib.utils.validate_id_token``)."""
        issued = int(now.timestamp())
        claims = {
            "iss": f"{self.base_url.rstrip('/')}/op/v1",
            "aud": [grant.client_id],
            "sub": self._subject(grant.username),
            "realmid": grant.realm_id,
            "iat": issued,
            "exp": issued + ID_TOKEN_SECONDS,
        }
        return jwt.encode(claims, _signing_key(), algorithm="RS256", headers={"kid": self._key_id()})

    @staticmethod
    def _subject(username: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"intuit-sandbox:{username}"))

    def _discovery(self, request: httpx.Request) -> httpx.Response:
        base = self.base_url.rstrip("/")
        return json_response(
            200,
            {
                "issuer": f"{base}/op/v1",
                "authorization_endpoint": f"{base}/connect/oauth2",
                "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
                "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
                "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
                "jwks_uri": f"{base}/op/v1/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "address", "phone"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
            },
        )

    def _check_authorize(self, params: dict[str, str]) -> httpx.Response | None:
        """An error page for a bad client or redirect URI; an error redirect for other bad params."""
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            return self._oauth_page("Error", "<p>invalid_client: this app is not registered.</p>", 400)
        if params.get("redirect_uri") not in app.redirect_uris:
            return self._oauth_page(
                "Error",
                "<p>invalid_request: the redirect_uri does not match a redirect URI "
                "registered for this app.</p>",
                400,
            )
        error = None
        if params.get("response_type") != "code":
            error = "unsupported_response_type"
        elif ACCOUNTING_SCOPE not in params.get("scope", "").split():
            error = "invalid_scope"
        elif params.get("code_challenge") and params.get("code_challenge_method", "plain") != "S256":
            error = "invalid_request"
        return self._back_to_app(params, {"error": error}) if error else None

    def _back_to_app(self, params: dict[str, str], result: dict[str, str]) -> httpx.Response:
        if params.get("state"):
            result = {**result, "state": params["state"]}
        uri = params["redirect_uri"]
        return redirect(f"{uri}{'&' if '?' in uri else '?'}{urlencode(result)}")

    @staticmethod
    def _oauth_page(title: str, body: str, status: int = 200) -> httpx.Response:
        return html_response(
            status,
            f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>",
        )

    @staticmethod
    def _hidden(params: dict[str, str]) -> str:
        keys = (
            "client_id",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
        )
        return "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(params[k])}">' for k in keys if k in params
        )

    def _sign_in_page(self, params: dict[str, str], message: str = "") -> httpx.Response:
        note = f'<p class="error">{html.escape(message)}</p>' if message else ""
        return self._oauth_page(
            "Sign in to QuickBooks (sandbox)",
            f"""{note}
<form method="post" action="/connect/oauth2">{self._hidden(params)}
<label>Email or user ID <input type="text" name="username"></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Sign in</button></form>""",
        )

    def _consent_page(self, params: dict[str, str], user: User, ticket: str) -> httpx.Response:
        app = params["client_id"]
        choices = "".join(
            f'<label><input type="radio" name="realm_id" value="{html.escape(r)}"'
            f"{' checked' if i == 0 else ''}>{html.escape(self.companies[r].name)}</label><br>"
            for i, r in enumerate(user.realm_ids)
            if r in self.companies
        )
        return self._oauth_page(
            "Connect your QuickBooks company",
            f"""
<p>{html.escape(app)} wants to connect to one of your companies.</p>
<form method="post" action="/connect/oauth2">{self._hidden(params)}
<input type="hidden" name="login" value="{ticket}">{choices}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form>""",
        )

    def _authorize_page(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        return self._check_authorize(params) or self._sign_in_page(params)

    def _signed_in(self, form: dict[str, str]) -> User | None:
        """The user behind a consent ticket, or behind username + password in the same form."""
        username, expires = self.logins.get(form.get("login", ""), ("", self.clock.now()))
        if username and expires > self.clock.now():
            return self.users.get(username)
        user = self.users.get(form.get("username", ""))
        if user and secrets.compare_digest(user.password.encode(), form.get("password", "").encode()):
            return user
        return None

    def _authorize_submit(self, request: httpx.Request) -> httpx.Response:
        form = form_body(request)
        problem = self._check_authorize(form)
        if problem:
            return problem
        decision = form.get("decision")
        if decision == "deny":
            return self._back_to_app(form, {"error": "access_denied"})
        user = self._signed_in(form)
        if user is None:
            return self._sign_in_page(form, "Invalid username or password.")
        if decision != "allow":
            ticket = new_token("login")
            self.logins[ticket] = (user.username, self.clock.now() + LOGIN_LIFETIME)
            return self._consent_page(form, user, ticket)
        realm = form.get("realm_id", "")
        if realm not in user.realm_ids or realm not in self.companies:
            return self._consent_page(form, user, form.get("login", ""))
        code = new_token("AB11")
        self.codes[code] = AuthCode(
            form["client_id"],
            form["redirect_uri"],
            realm,
            user.username,
            self.clock.now() + CODE_LIFETIME,
            form.get("code_challenge") or None,
            tuple(form.get("scope", "").split()),
        )
        return self._back_to_app(form, {"code": code, "realmId": realm})

    def _token(self, request: httpx.Request) -> httpx.Response:
        app = self.authenticate_client(request)
        if app is None:
            return json_response(401, {"error": "invalid_client"})
        form = form_body(request)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = self._redeem_code(app.client_id, form)
        elif grant_type == "refresh_token":
            grant = self._rotate(app.client_id, form.get("refresh_token", ""))
        else:
            return json_response(400, {"error": "unsupported_grant_type"})
        if grant is None:
            return json_response(400, {"error": "invalid_grant", "error_description": "Token invalid"})
        access = new_token("eyJlbmMi")
        now = self.clock.now()
        grant.access_tokens[access] = now + timedelta(seconds=ACCESS_SECONDS)
        self.access_index[access] = grant
        # Lifetimes in whole seconds from the moment of issue: a token just rolled forward reports its full
        # 100 days (8640000), not a second less for the microseconds a real-time clock moved meanwhile.
        body: dict[str, Any] = {
            "token_type": "bearer",
            "access_token": access,
            "expires_in": ACCESS_SECONDS,
            "refresh_token": grant.refresh_token,
            "x_refresh_token_expires_in": round((grant.refresh_expires_at - now).total_seconds()),
        }
        if grant_type == "authorization_code" and "openid" in grant.scopes:
            # on the code exchange only: the sandbox's choice, Intuit does not say whether a refresh answers
            # one again (OpenID Connect Core 12.2 lets it); intuit-oauth keeps the one it has either way
            body["id_token"] = self._id_token(grant, now)
        if request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true":
            body["x_refresh_token_hard_expires_in"] = round((grant.hard_expires_at - now).total_seconds())
        return json_response(200, body)

    def _redeem_code(self, client_id: str, form: dict[str, str]) -> Grant | None:
        code = self.codes.get(form.get("code", ""))
        if (
            code is None
            or code.used
            or code.expires_at <= self.clock.now()
            or code.client_id != client_id
            or code.redirect_uri != form.get("redirect_uri")
        ):
            return None
        code.used = True
        if code.code_challenge:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.code_challenge:
                return None
        grant = Grant(
            client_id,
            code.realm_id,
            code.username,
            self.clock.now(),
            new_token("RT1"),
            self.clock.now(),
            code.scopes,
        )
        self.grants.append(grant)
        self._extend(grant)
        return grant

    def _rotate(self, client_id: str, refresh_token: str) -> Grant | None:
        grant = self.refresh_index.get(refresh_token)
        if grant is None or grant.client_id != client_id or grant.revoked:
            return None
        if min(grant.refresh_expires_at, grant.hard_expires_at) <= self.clock.now():
            return None
        # Designed for immediate invalidation (notes §1.5): the old value is forgotten the moment it is used.
        del self.refresh_index[refresh_token]
        grant.refresh_token = new_token("RT1")
        self._extend(grant)
        return grant

    def _extend(self, grant: Grant) -> None:
        grant.refresh_expires_at = min(
            self.clock.now() + timedelta(seconds=REFRESH_IDLE_SECONDS), grant.hard_expires_at
        )
        self.refresh_index[grant.refresh_token] = grant

    def _revoke(self, request: httpx.Request) -> httpx.Response:
        app = self.authenticate_client(request)
        if app is None:
            return json_response(401, {"error": "invalid_client"})
        try:
            token = str((json_body(request) or {})["token"])
        except (KeyError, TypeError, ValueError):
            return json_response(400, {"error": "invalid_request"})
        grant = self.refresh_index.get(token) or self.access_index.get(token)
        if grant is not None and grant.client_id == app.client_id:
            self._end_grant(grant)
        return httpx.Response(200)

    def _userinfo(self, request: httpx.Request) -> httpx.Response:
        """The discovery document's userinfo_endpoint, for an access token granted the ``openid`` scope: its
        keys as Intuit answers them, ``sub``, ``email``, ``emailVerified`` (a raw answer quoted in
        ruckus/quickbooks-ruby#433; givenName and familyName too, which the sandbox's users lack). A token
        unknown, expired or revoked is a 401, one without ``openid`` a 403 ``insufficient_scope`` (RFC 6750
        section 3.1, as OpenID Connect Core 5.3.3 points to; UNSURE that Intuit answers these two so)."""
        token = bearer_token(request) or ""
        grant = self.access_index.get(token)
        if grant is None or grant.revoked or grant.access_tokens[token] <= self.clock.now():
            return json_response(401, {"error": "invalid_token"})
        if "openid" not in grant.scopes:
            return json_response(403, {"error": "insufficient_scope"})
        info: dict[str, Any] = {"sub": self._subject(grant.username)}
        if "email" in grant.scopes:
            info.update(email=grant.username, emailVerified=True)
        return json_response(200, info)

    def _end_grant(self, grant: Grant) -> None:
        grant.revoked = True
        self.refresh_index.pop(grant.refresh_token, None)
        for token in grant.access_tokens:
            self.access_index.pop(token, None)

    def revoke_realm(self, realm_id: str) -> int:
        """The user disconnects the app inside QBO: every grant to this company dies."""
        with self.lock:
            live = [g for g in self.grants if g.realm_id == realm_id and not g.revoked]
            for grant in live:
                self._end_grant(grant)
            return len(live)
