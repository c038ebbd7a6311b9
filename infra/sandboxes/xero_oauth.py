"""Xero identity in the sandbox: users, consent, codes, grants, rotating refresh tokens, connections."""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://identity.xero.com"
AUDIENCE = "https://identity.xero.com/resources"
ACCESS_TOKEN_SECONDS = 1800
CODE_SECONDS = 300
REFRESH_GRACE = timedelta(minutes=30)
REFRESH_IDLE_EXPIRY = timedelta(days=60)
LOGIN_SESSION = timedelta(minutes=30)
_BROAD_AND_GRANULAR = (
    "settings",
    "contacts",
    "transactions",
    "invoices",
    "payments",
    "banktransactions",
    "manualjournals",
    "attachments",
)
KNOWN_SCOPES = frozenset(
    [
        "offline_access",
        "openid",
        "profile",
        "email",
        "accounting.journals.read",
        "accounting.budgets.read",
        "accounting.reports.read",
    ]
    # the granular report scopes replacing accounting.reports.read (../shared/providers/xero.md §1.4)
    + [
        f"accounting.reports.{name}.read"
        for name in (
            "aged",
            "balancesheet",
            "banksummary",
            "budgetsummary",
            "executivesummary",
            "profitandloss",
            "trialbalance",
            "taxreports",
        )
    ]
    + [f"accounting.{name}{suffix}" for name in _BROAD_AND_GRANULAR for suffix in ("", ".read")]
)


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    """The RSA key every Xero sandbox of this process signs tokens with, made once on first use (a 2048-bit
    key takes a tenth of a second or more); each sandbox names it by a key id of its own."""
    return rsa.generate_private_key(65537, 2048)


class InvalidGrant(Exception):
    """The token endpoint answers 400 {"error": "invalid_grant"}."""


@dataclass
class User:
    username: str
    password: str
    tenant_ids: list[str]
    user_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    subject: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class LoginSession:
    user: User
    params: dict[str, str]
    expires: datetime


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    grant_id: str
    challenge: str | None
    expires: datetime
    used: bool = False


@dataclass
class Grant:
    """One consent: one token set covering the tenants the user connected to the app."""

    grant_id: str
    client_id: str
    user: User
    scope: list[str]
    auth_event_id: str
    auth_time: datetime
    session_id: str
    nonce: str | None = None  # the authentication request's, carried into its ID token
    current: str | None = None  # the refresh token to use next
    previous: str | None = None  # the one exchanged last, retryable within the grace window
    revoked: bool = False


@dataclass
class RefreshToken:
    grant_id: str
    issued: datetime
    used: datetime | None = None


@dataclass
class Connection:
    id: str
    client_id: str
    user_id: str
    tenant_id: str
    auth_event_id: str
    created: datetime
    updated: datetime
    active: bool = True


def connection_time(value: datetime) -> str:
    """The identity API's own date-time format, e.g. 2019-12-07T18:46:19.5165400."""
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}0"


@dataclass
class Identity:
    """All OAuth state of one sandbox. Callers hold the sandbox lock."""

    now: Callable[[], datetime]
    # Xero signs its access and ID tokens RS256, verifiable with the keys of the jwks_uri its discovery
    # document names (https://identity.xero.com/.well-known/openid-configuration/jwks): the keys Xero's own
    # xero-node client (through openid-client) and other apps check an ID or access token against. The
    # sandbox publishes its key under a key id of its own, so a token another sandbox signed is refused here
    # as one Xero never issued.
    key_id: str = field(default_factory=lambda: secrets.token_hex(8))
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, LoginSession] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    connections: dict[tuple[str, str, str], Connection] = field(default_factory=dict)

    def clear(self) -> None:
        for table in (
            self.users,
            self.sessions,
            self.codes,
            self.grants,
            self.refresh_tokens,
            self.connections,
        ):
            table.clear()

    # ---- consent ---------------------------------------------------------------------------------
    def login(self, username: str, password: str, params: dict[str, str]) -> str | None:
        user = self.users.get(username.strip().lower())
        if user is None or not secrets.compare_digest(user.password.encode(), password.encode()):
            return None
        session_id = secrets.token_urlsafe(16)
        self.sessions[session_id] = LoginSession(user, params, self.now() + LOGIN_SESSION)
        return session_id

    def session(self, session_id: str) -> LoginSession | None:
        found = self.sessions.get(session_id)
        return found if found is not None and found.expires > self.now() else None

    def consent(self, session_id: str, tenant_ids: list[str]) -> str:
        """Connects the chosen tenants and returns a one-time authorization code."""
        login = self.sessions.pop(session_id)
        now = self.now()
        params = login.params
        grant = Grant(
            grant_id=str(uuid.uuid4()),
            client_id=params["client_id"],
            user=login.user,
            scope=params["scope"].split(),
            auth_event_id=str(uuid.uuid4()),
            auth_time=now,
            session_id=uuid.uuid4().hex,
            nonce=params.get("nonce") or None,
        )
        self.grants[grant.grant_id] = grant
        for tenant_id in tenant_ids:
            key = (grant.client_id, login.user.user_id, tenant_id)
            existing = self.connections.get(key)
            if existing is None:
                self.connections[key] = Connection(
                    str(uuid.uuid4()),
                    grant.client_id,
                    login.user.user_id,
                    tenant_id,
                    grant.auth_event_id,
                    now,
                    now,
                )
            else:  # reconnecting keeps the connection (and tenant) id, moves updatedDateUtc
                existing.auth_event_id, existing.updated, existing.active = grant.auth_event_id, now, True
        code = secrets.token_urlsafe(32)
        challenge = params.get("code_challenge") or None
        self.codes[code] = AuthCode(
            grant.client_id,
            params["redirect_uri"],
            grant.grant_id,
            challenge,
            now + timedelta(seconds=CODE_SECONDS),
        )
        return code

    # ---- token endpoint --------------------------------------------------------------------------
    def exchange_code(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or code.expires <= self.now() or code.client_id != client_id:
            raise InvalidGrant
        code.used = True  # single use, even when the rest of the exchange fails
        if form.get("redirect_uri") != code.redirect_uri:
            raise InvalidGrant
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            )
            if not verifier or not secrets.compare_digest(digest.encode(), code.challenge.encode()):
                raise InvalidGrant
        grant = self.grants[code.grant_id]
        if grant.revoked:
            raise InvalidGrant
        return self._token_set(grant)

    def refresh(self, client_id: str, token: str) -> dict[str, Any]:
        """Rotation with a grace window for the previous token (see README of the sandbox in xero.py)."""
        record = self.refresh_tokens.get(token)
        now = self.now()
        if record is None:
            raise InvalidGrant
        grant = self.grants[record.grant_id]
        if grant.revoked or grant.client_id != client_id:
            raise InvalidGrant
        if token == grant.current:
            if now - record.issued > REFRESH_IDLE_EXPIRY:
                raise InvalidGrant
            record.used = now
            grant.previous = token
        elif token == grant.previous and record.used is not None and now - record.used <= REFRESH_GRACE:
            # the response to the first use was lost: the token it issued is dropped and replaced
            if grant.current is not None:
                self.refresh_tokens.pop(grant.current, None)
        else:
            raise InvalidGrant
        return self._token_set(grant)

    def revoke(self, client_id: str, token: str) -> None:
        """Revokes the user's authorisation of the app: every token set and every connection."""
        record = self.refresh_tokens.get(token)
        if record is None or self.grants[record.grant_id].client_id != client_id:
            return
        self.revoke_user(self.grants[record.grant_id].user, client_id)

    def revoke_user(self, user: User, client_id: str | None = None) -> int:
        count = 0
        for grant in self.grants.values():
            if grant.user is user and client_id in (None, grant.client_id) and not grant.revoked:
                grant.revoked = True
                count += 1
        for conn in self.connections.values():
            if conn.user_id == user.user_id and client_id in (None, conn.client_id):
                conn.active = False
        return count

    def _token_set(self, grant: Grant) -> dict[str, Any]:
        now = self.now()
        issued = int(now.timestamp())
        claims = {
            "nbf": issued,
            "exp": issued + ACCESS_TOKEN_SECONDS,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "client_id": grant.client_id,
            "sub": grant.user.subject,
            "auth_time": int(grant.auth_time.timestamp()),
            "xero_userid": grant.user.user_id,
            "global_session_id": grant.session_id,
            "jti": uuid.uuid4().hex,
            "authentication_event_id": grant.auth_event_id,
            "scope": grant.scope,
        }
        body: dict[str, Any] = {
            "access_token": self._sign(claims),
            "expires_in": ACCESS_TOKEN_SECONDS,
            "token_type": "Bearer",
            "scope": " ".join(grant.scope),
        }
        if "offline_access" in grant.scope:
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = RefreshToken(grant.grant_id, now)
            grant.current = refresh
            body["refresh_token"] = refresh
        if "openid" in grant.scope:
            id_claims = {  # iat: required in every ID token (OpenID Connect Core 2)
                "nbf": issued,
                "iat": issued,
                "exp": issued + 300,
                "iss": ISSUER,
                "aud": grant.client_id,
                "sub": grant.user.subject,
                "auth_time": claims["auth_time"],
                "xero_userid": grant.user.user_id,
                "global_session_id": grant.session_id,
                "preferred_username": grant.user.username,
                "email": grant.user.username,
            }
            if grant.nonce:  # OpenID Connect Core 3.1.3.7: the nonce of the authentication request, unchanged
                id_claims["nonce"] = grant.nonce
            body["id_token"] = self._sign(id_claims)
        return body

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, _signing_key(), algorithm="RS256", headers={"kid": self.key_id})

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of the discovery document's ``jwks_uri``."""
        key = jwt.algorithms.RSAAlgorithm.to_jwk(_signing_key().public_key(), as_dict=True)
        key.pop("key_ops", None)  # RFC 7517 section 4.3: "use" and "key_ops" should not be used together
        return {"keys": [{**key, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}

    # ---- resource side ---------------------------------------------------------------------------
    def verify(self, token: str) -> tuple[dict[str, Any] | None, str]:
        """Claims of a valid access token, else None and the 401 Detail."""
        try:
            if jwt.get_unverified_header(token).get("kid") != self.key_id:
                return None, "AuthenticationUnsuccessful"
            claims = jwt.decode(
                token,
                _signing_key().public_key(),
                algorithms=["RS256"],
                audience=AUDIENCE,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},  # the sandbox clock
            )
        except jwt.PyJWTError:
            return None, "AuthenticationUnsuccessful"
        expires = datetime.fromtimestamp(claims["exp"], tz=self.now().tzinfo)
        if self.now() >= expires:
            return None, f"TokenExpired: token expired at {expires:%m/%d/%Y %H:%M:%S}"
        return claims, ""

    def active_connections(self, client_id: str, user_id: str) -> list[Connection]:
        return [
            c
            for c in self.connections.values()
            if c.active and c.client_id == client_id and c.user_id == user_id
        ]

    def disconnect(self, connections: list[Connection]) -> None:
        """Removes connections; a user left with none for an app has its grants revoked."""
        for conn in connections:
            conn.active = False
        for client_id, user_id in {(c.client_id, c.user_id) for c in connections}:
            if not self.active_connections(client_id, user_id):
                for grant in self.grants.values():
                    if grant.client_id == client_id and grant.user.user_id == user_id:
                        grant.revoked = True


# ---- the consent pages (plain HTML, no JavaScript) ---------------------------------------------------

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>{body}</body></html>"""


def error_page(message: str) -> str:
    return _PAGE.format(title="Xero sandbox: authorisation error", body=f"<p>{html.escape(message)}</p>")


def login_page(action: str, error: str = "") -> str:
    notice = f'<p class="error">{html.escape(error)}</p>' if error else ""
    body = f"""{notice}<form method="post" action="{html.escape(action)}">
<input type="hidden" name="step" value="login">
<label>Email <input type="text" name="username"></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Log in</button></form>"""
    return _PAGE.format(title="Log in to Xero (sandbox)", body=body)


def consent_page(
    action: str, session_id: str, app_name: str, orgs: list[tuple[str, str]], error: str = ""
) -> str:
    notice = f'<p class="error">{html.escape(error)}</p>' if error else ""
    boxes = "\n".join(
        f'<label><input type="checkbox" name="tenant_id" value="{html.escape(tenant_id)}"> '
        f"{html.escape(name)}</label><br>"
        for tenant_id, name in orgs
    )
    body = f"""{notice}<p>{html.escape(app_name)} wants access to your organisations.</p>
<form method="post" action="{html.escape(action)}">
<input type="hidden" name="step" value="consent">
<input type="hidden" name="session" value="{html.escape(session_id)}">
{boxes}
<button type="submit" name="action" value="allow">Allow access</button>
<button type="submit" name="action" value="deny">Cancel</button></form>"""
    return _PAGE.format(title="Connect to Xero (sandbox)", body=body)
