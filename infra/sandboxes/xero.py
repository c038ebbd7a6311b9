"""The Xero sandbox: identity, /connections and the Accounting API on one base URL, with admin controls.

Refresh-token rotation: a grant has one *current* refresh token and remembers the *previous* one. Using
the current token rotates it (it becomes the previous one). Re-using the previous token within 30 minutes
of its first use (the response was lost) returns a fresh token set and **invalidates the token issued by
that first use**, so exactly one chain stays alive; the grace window is not extended by the retry. Any
older token, the previous one after 30 minutes, or a current token unused for 60 days is
``invalid_grant``. Access tokens already issued stay valid until they expire.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx

from infra.sandboxes.common import (
    FixedWindow,
    InFlight,
    Sandbox,
    bearer_token,
    form_body,
    html_response,
    json_response,
    redirect,
)
from infra.sandboxes.xero_admin import COLLECTION_PATTERN, XeroAdmin
from infra.sandboxes.xero_allocations import apply_allocation, check_allocations, response_element
from infra.sandboxes.xero_books import (
    CENT,
    ID_FIELDS,
    LINE_FIELDS,
    PAGED,
    SUMMARY_LEAVES_OUT,
    ListQuery,
    Organisation,
    Outcome,
    Record,
    after_store,
    build,
    render,
    select,
    unit_places,
    wire_default,
)
from infra.sandboxes.xero_demo import seed_demo
from infra.sandboxes.xero_journals import JournalsError, find_journal, select_journals
from infra.sandboxes.xero_journals import to_wire as journal_wire
from infra.sandboxes.xero_oauth import (
    ISSUER,
    KNOWN_SCOPES,
    Identity,
    InvalidGrant,
    User,
    connection_time,
    consent_page,
    error_page,
    login_page,
)
from infra.sandboxes.xero_reports import Report, ReportError, trial_balance
from infra.sandboxes.xero_statements import balance_sheet, profit_and_loss
from infra.sandboxes.xero_where import WhereError, check_order, parse_where

API = "/api.xro/2.0"
API_PATTERN = r"/api\.xro/2\.0"
# Invoices and credit notes are written by other apps (an invoicing app, an official client), never by the
# service: Xero's PUT/POST /Invoices and /CreditNotes (spec createInvoices, updateOrCreateInvoices,
# updateInvoice, and the credit notes' three alike; ../shared/providers/xero.md sections 4.5-4.6)
WRITABLE = frozenset({"Accounts", "Items", "Contacts", "ManualJournals", "Invoices", "CreditNotes"})
IDEMPOTENCY_WINDOW = timedelta(minutes=6)
# The scopes that reach each endpoint, granular first, then the broad one being retired (../providers/xero.md
# §1.4). A ".read" scope reaches reads only; a write needs the scope itself.
SCOPES_FOR = {
    "Organisation": ("accounting.settings",),
    "Accounts": ("accounting.settings",),
    "Items": ("accounting.settings", "accounting.invoices"),
    "Contacts": ("accounting.contacts",),
    "ManualJournals": ("accounting.manualjournals", "accounting.transactions"),
    "Invoices": ("accounting.invoices", "accounting.transactions"),
    "CreditNotes": ("accounting.invoices", "accounting.transactions"),
    # the general ledger's journals: only accounting.journals.read exists (the spec's getJournals security;
    # notes §1.4, "accounting.journals.read (the GL /Journals endpoint, *not* ManualJournals)")
    "Journals": ("accounting.journals",),
}
# Reports: the broad accounting.reports.read, or the one granular scope of each report (notes §1.4:
# accounting.reports.trialbalance.read, .balancesheet.read, ...; the spec's security lists the broad one).
REPORT_SCOPES = {
    "TrialBalance": "accounting.reports.trialbalance.read",
    "BalanceSheet": "accounting.reports.balancesheet.read",
    "ProfitAndLoss": "accounting.reports.profitandloss.read",
}
ZERO_ID = "00000000-0000-0000-0000-000000000000"
VALIDATION_EXCEPTION = {
    "ErrorNumber": 10,
    "Type": "ValidationException",
    "Message": "A validation exception occurred",
}
XERO_500_DETAIL = (
    "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current "
    "service status. Contact the API support team at api@xero.com for more assistance."
)


@dataclass
class _Remembered:
    fingerprint: str
    expires: datetime
    status: int
    headers: list[tuple[str, str]]
    content: bytes

    def replay(self) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers, content=self.content)


def xero_json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body, default=wire_default).encode(),
        headers={"content-type": "application/json; charset=utf-8", **(headers or {})},
    )


def problem(status: int, title: str, detail: str) -> httpx.Response:
    """The problem-details body Xero's gateway sends for 401/403 (and other non-validation errors)."""
    body: dict[str, Any] = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    return xero_json(status, body)


def _scope_allows(granted: list[str], request: httpx.Request) -> bool:
    parts = request.url.path.split("/")
    if len(parts) > 4 and parts[3].lower() == "reports":
        report = next((r for r in REPORT_SCOPES if r.lower() == parts[4].lower()), None)
        return "accounting.reports.read" in granted or (
            report is not None and REPORT_SCOPES[report] in granted
        )
    collection = next((c for c in SCOPES_FOR if len(parts) > 3 and c.lower() == parts[3].lower()), None)
    if collection is None:
        return True  # the sandbox refuses unknown endpoints elsewhere
    reading = request.method == "GET"
    return any(
        scope in granted or (reading and f"{scope}.read" in granted) for scope in SCOPES_FOR[collection]
    )


def _modified_since(header: str | None) -> datetime | None:
    """The If-Modified-Since instant, to the second: "Only items created or updated since the specified
    timestamp will be returned (accurate to the second)" (Xero's HTTP Requests and Responses page)."""
    if not header:
        return None
    try:
        when = datetime.fromisoformat(header.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).replace(microsecond=0)


@dataclass
class XeroSandbox(Sandbox, XeroAdmin):
    """Answers Xero's identity, connections and accounting paths; see the module docstring for tokens."""

    name: str = "xero"
    seed: bool = False
    minute_limit: int = 60
    day_limit: int = 5000
    concurrent_limit: int = 5
    app_minute_limit: int = 10_000
    latency_seconds: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.organisations: dict[str, Organisation] = {}
        self.identity = Identity(now=self.clock.now)
        self._idempotency: dict[tuple[str, str], _Remembered] = {}
        self._new_windows()
        self._in_flight = InFlight(self.concurrent_limit)
        self._register_identity()
        self._register_accounting()
        for method, pattern, handler in self.admin_endpoints():
            self.route(method, pattern)(handler)
        if self.seed:
            seed_demo(self)

    def _new_windows(self) -> None:
        self._minute = FixedWindow(self.minute_limit, 60)
        self._day = FixedWindow(self.day_limit, 86_400)
        self._app_minute = FixedWindow(self.app_minute_limit, 60)

    def reset(self) -> None:
        """Forgets orgs, users, grants, connections, idempotency keys and rate windows; keeps apps."""
        with self.lock:
            super().reset()
            self.identity.clear()
            self.organisations.clear()
            self._idempotency.clear()
            self._new_windows()
            if self.seed:
                seed_demo(self)

    # ---- provider-shaped errors ---------------------------------------------------------------------
    def error_response(self, status: int, message: str) -> httpx.Response:
        if status == 405:
            method = message.split(" ", 1)[0]
            return xero_json(
                405, {"Message": f"The requested resource does not support http method '{method}'."}
            )
        if status == 404:
            return httpx.Response(
                404,
                text="The resource you're looking for cannot be found",
                headers={"content-type": "text/plain; charset=utf-8"},
            )
        return problem(status, "Error", message)

    def fault_response(self, kind: str, request: httpx.Request) -> httpx.Response:
        if kind == "429":
            retry = str(self._minute.retry_after(self.clock.now()))
            return httpx.Response(429, headers={"X-Rate-Limit-Problem": "minute", "Retry-After": retry})
        if kind == "503":
            return httpx.Response(
                503,
                text="Service Unavailable: the Xero API is currently offline. Try again later.",
                headers={"content-type": "text/plain; charset=utf-8"},
            )
        response = problem(500, "An error occurred", XERO_500_DETAIL)
        with self.lock:  # Xero caches internal errors against the Idempotency-Key too
            claims, _ = self.identity.verify(bearer_token(request) or "")
            key = request.headers.get("idempotency-key")
            if claims and key and request.method in ("POST", "PUT", "PATCH") and len(key) <= 128:
                remembered = self._idempotency.get((claims["client_id"], key))
                if remembered is None or remembered.expires <= self.clock.now():
                    self._remember(claims["client_id"], key, self._fingerprint(request), response)
        return response

    # ---- request pipeline -------------------------------------------------------------------------
    def serve_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.lower()
        if path.startswith(API.lower() + "/"):
            return self._serve_accounting(request)
        if path.startswith("/connections"):
            with self.lock:
                claims, refused = self._bearer(request)
                if claims is None:
                    return refused
                request.extensions["xero_claims"] = claims
                return self._dispatch(self.routes, request)
        return super().serve_request(request)

    def _bearer(self, request: httpx.Request) -> tuple[dict[str, Any] | None, httpx.Response]:
        claims, detail = self.identity.verify(bearer_token(request) or "")
        return claims, problem(401, "Unauthorized", detail)

    def _serve_accounting(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            claims, refused = self._bearer(request)
            if claims is None:
                return refused
            client_id = claims["client_id"]
            tenant = request.headers.get("xero-tenant-id", "").strip().lower()
            reachable = {
                c.tenant_id for c in self.identity.active_connections(client_id, claims["xero_userid"])
            }
            if tenant not in reachable or tenant not in self.organisations:
                return problem(403, "Forbidden", "AuthenticationUnsuccessful")
            if not _scope_allows(claims.get("scope", []), request):  # a scope the consent did not grant
                return problem(401, "Unauthorized", "AuthorizationUnsuccessful")
            over, headers = self._count_call(client_id, tenant)
            if over is not None:
                return over
            org = self.organisations[tenant]
        with self._in_flight.enter(f"{client_id}|{tenant}") as allowed:
            if not allowed:
                return httpx.Response(429, headers={**headers, "X-Rate-Limit-Problem": "concurrent"})
            if self.latency_seconds:
                time.sleep(self.latency_seconds)  # real time, outside the lock: makes concurrency observable
            with self.lock:
                request.extensions["xero_claims"] = claims
                request.extensions["xero_org"] = org
                response = self._idempotent(request, client_id)
        response.headers.update(headers)
        return response

    def _count_call(self, client_id: str, tenant: str) -> tuple[httpx.Response | None, dict[str, str]]:
        now = self.clock.now()
        key = f"{client_id}|{tenant}"
        app_ok = self._app_minute.hit(client_id, now)
        day_ok = self._day.hit(key, now)
        minute_ok = self._minute.hit(key, now)
        headers = {
            "X-DayLimit-Remaining": str(self._day.remaining(key, now)),
            "X-MinLimit-Remaining": str(self._minute.remaining(key, now)),
            "X-AppMinLimit-Remaining": str(self._app_minute.remaining(client_id, now)),
        }
        if not app_ok:
            return httpx.Response(429, headers={**headers, "X-Rate-Limit-Problem": "appminute"}), headers
        if not day_ok:
            retry = {"X-Rate-Limit-Problem": "day", "Retry-After": str(self._day.retry_after(now))}
            return httpx.Response(429, headers={**headers, **retry}), headers
        if not minute_ok:
            retry = {"X-Rate-Limit-Problem": "minute", "Retry-After": str(self._minute.retry_after(now))}
            return httpx.Response(429, headers={**headers, **retry}), headers
        return None, headers

    def _fingerprint(self, request: httpx.Request) -> str:
        parts = [
            request.method,
            request.url.raw_path.decode(),
            request.headers.get("xero-tenant-id", "").lower(),
        ]
        return hashlib.sha256("\n".join(parts).encode() + b"\n" + request.content).hexdigest()

    def _remember(self, client_id: str, key: str, fingerprint: str, response: httpx.Response) -> None:
        self._idempotency[(client_id, key)] = _Remembered(
            fingerprint,
            self.clock.now() + IDEMPOTENCY_WINDOW,
            response.status_code,
            list(response.headers.items()),
            response.content,
        )

    def _idempotent(self, request: httpx.Request, client_id: str) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        if key is None or request.method not in ("POST", "PUT", "PATCH"):
            return self._dispatch(self.routes, request)
        if len(key) > 128:
            return problem(400, "Bad Request", "Idempotency Key must be 128 characters or less.")
        fingerprint = self._fingerprint(request)
        remembered = self._idempotency.get((client_id, key))
        if remembered is not None and remembered.expires > self.clock.now():
            if remembered.fingerprint != fingerprint:
                return problem(
                    400, "Bad Request", f"Idempotency Key: {key} is used with a different request."
                )
            return remembered.replay()
        response = self._dispatch(self.routes, request)
        self._remember(client_id, key, fingerprint, response)
        return response

    # ---- identity ---------------------------------------------------------------------------------
    def _register_identity(self) -> None:
        self.route("GET", "/identity/connect/authorize")(self._authorize_page)
        self.route("POST", "/identity/connect/authorize")(self._authorize_submit)
        self.route("POST", "/connect/token")(self._token)
        self.route("POST", "/connect/revocation")(self._revocation)
        self.route("GET", r"/\.well-known/openid-configuration")(self._discovery)
        self.route("GET", r"/\.well-known/openid-configuration/jwks")(self._jwks)
        self.route("GET", "/connections")(self._connections)
        self.route("DELETE", "/connections/(?P<connection_id>[^/]+)")(self._delete_connection)

    def _discovery(self, request: httpx.Request) -> httpx.Response:
        """Xero's OpenID Connect discovery document (https://identity.xero.com/.well-known/openid-configuration,
        read by Xero's xero-node client and by OpenID libraries), its endpoints on this sandbox's base URL in
        place of Xero's two hosts (the spec's securitySchemes: authorizationUrl
        https://login.xero.com/identity/connect/authorize, tokenUrl https://identity.xero.com/connect/token).
        The issuer stays Xero's, as the tokens' ``iss`` is."""
        base = self.base_url.rstrip("/")
        return json_response(
            200,
            {
                "issuer": ISSUER,
                "jwks_uri": f"{base}/.well-known/openid-configuration/jwks",
                "authorization_endpoint": f"{base}/identity/connect/authorize",
                "token_endpoint": f"{base}/connect/token",
                "revocation_endpoint": f"{base}/connect/revocation",
                "scopes_supported": sorted(KNOWN_SCOPES),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            },
        )

    def _jwks(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, self.identity.jwks())

    def _check_authorize(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        """(HTML error shown without redirect, OAuth error sent to the redirect URI)."""
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            return "unauthorized_client: unknown client_id", None
        if params.get("redirect_uri") not in app.redirect_uris:
            return "Invalid redirect_uri: it must exactly match one registered for this app", None
        if params.get("response_type") != "code":
            return None, "unsupported_response_type"
        scopes = params.get("scope", "").split()
        if not scopes or any(s not in KNOWN_SCOPES for s in scopes):
            return None, "invalid_scope"
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return None, "invalid_request"
        return None, None

    def _authorize_page(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        page, oauth_error = self._check_authorize(params)
        if page:
            return html_response(400, error_page(page))
        if oauth_error:
            return redirect(self._callback(params, error=oauth_error))
        return html_response(200, login_page(self._form_action(request)))

    def _authorize_submit(self, request: httpx.Request) -> httpx.Response:
        fields = parse_qs(request.content.decode(), keep_blank_values=True)
        form = {k: v[-1] for k, v in fields.items()}
        action = self._form_action(request)
        if form.get("step") == "consent":
            login = self.identity.session(form.get("session", ""))
            if login is None:
                return html_response(
                    400, error_page("Your login session has expired; start again from the app.")
                )
            if form.get("action") != "allow":
                self.identity.sessions.pop(form["session"], None)
                return redirect(self._callback(login.params, error="access_denied"))
            chosen = [t for t in fields.get("tenant_id", []) if t in login.user.tenant_ids]
            if not chosen:
                return html_response(
                    200,
                    consent_page(
                        action,
                        form["session"],
                        login.params["client_id"],
                        self._org_choices(login.user),
                        "Choose at least one organisation.",
                    ),
                )
            code = self.identity.consent(form["session"], chosen)
            return redirect(self._callback(login.params, code=code, scope=login.params["scope"]))
        params = dict(request.url.params)
        page, oauth_error = self._check_authorize(params)
        if page or oauth_error:
            return html_response(400, error_page(page or oauth_error or ""))
        session_id = self.identity.login(form.get("username", ""), form.get("password", ""), params)
        if session_id is None:
            return html_response(200, login_page(action, "Your email or password is incorrect."))
        user = self.identity.sessions[session_id].user
        return html_response(
            200, consent_page(action, session_id, params["client_id"], self._org_choices(user))
        )

    @staticmethod
    def _form_action(request: httpx.Request) -> str:
        query = request.url.query.decode()
        return "/identity/connect/authorize" + (f"?{query}" if query else "")

    def _org_choices(self, user: User) -> list[tuple[str, str]]:
        return [(t, self.organisations[t].name) for t in user.tenant_ids if t in self.organisations]

    @staticmethod
    def _callback(params: dict[str, str], **values: str) -> str:
        uri = params["redirect_uri"]
        query = urlencode({**values, "state": params.get("state", "")})
        return f"{uri}{'&' if '?' in uri else '?'}{query}"

    def _token(self, request: httpx.Request) -> httpx.Response:
        app = self.authenticate_client(request)
        if app is None:
            return json_response(401, {"error": "invalid_client"})
        form = form_body(request)
        grant_type = form.get("grant_type")
        try:
            if grant_type == "authorization_code":
                body = self.identity.exchange_code(app.client_id, form)
            elif grant_type == "refresh_token":
                body = self.identity.refresh(app.client_id, form.get("refresh_token", ""))
            else:
                return json_response(400, {"error": "unsupported_grant_type"})
        except InvalidGrant:
            return json_response(400, {"error": "invalid_grant"})
        return json_response(200, body, {"cache-control": "no-store"})

    def _revocation(self, request: httpx.Request) -> httpx.Response:
        app = self.authenticate_client(request)
        if app is None:
            return json_response(401, {"error": "invalid_client"})
        self.identity.revoke(app.client_id, form_body(request).get("token", ""))
        return httpx.Response(200)

    def _connections(self, request: httpx.Request) -> httpx.Response:
        claims = request.extensions["xero_claims"]
        event = request.url.params.get("authEventId")
        rows = [
            {
                "id": c.id,
                "authEventId": c.auth_event_id,
                "tenantId": c.tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": self.organisations[c.tenant_id].name,
                "createdDateUtc": connection_time(c.created),
                "updatedDateUtc": connection_time(c.updated),
            }
            for c in self.identity.active_connections(claims["client_id"], claims["xero_userid"])
            if event is None or c.auth_event_id == event.lower()
        ]
        return json_response(200, rows)

    def _delete_connection(self, request: httpx.Request, connection_id: str) -> httpx.Response:
        claims = request.extensions["xero_claims"]
        mine = self.identity.active_connections(claims["client_id"], claims["xero_userid"])
        target = connection_id.lower()
        found = [c for c in mine if c.id == target]
        if found:
            self.identity.disconnect(found)
            return httpx.Response(204)
        if any(target in (c.tenant_id, c.auth_event_id) for c in mine):  # the classic wrong-id mistake
            return problem(403, "Forbidden", "AuthenticationUnsuccessful")
        return self.error_response(404, "no such connection")

    # ---- accounting API ---------------------------------------------------------------------------
    def _register_accounting(self) -> None:
        self.route("GET", f"{API_PATTERN}/Organisation")(self._organisation)
        self.route("GET", f"{API_PATTERN}/Reports/TrialBalance")(self._report(trial_balance))
        self.route("GET", f"{API_PATTERN}/Reports/BalanceSheet")(self._report(balance_sheet))
        self.route("GET", f"{API_PATTERN}/Reports/ProfitAndLoss")(self._report(profit_and_loss))
        self.route("GET", f"{API_PATTERN}/Journals")(self._journals)
        self.route("GET", f"{API_PATTERN}/Journals/(?P<key>[^/]+)")(self._journal)
        self.route("GET", f"{API_PATTERN}/{COLLECTION_PATTERN}")(self._list)
        self.route("PUT", f"{API_PATTERN}/{COLLECTION_PATTERN}")(self._write)
        self.route("POST", f"{API_PATTERN}/{COLLECTION_PATTERN}")(self._write)
        self.route("PUT", f"{API_PATTERN}/CreditNotes/(?P<key>[^/]+)/Allocations")(self._allocate)
        self.route("GET", f"{API_PATTERN}/{COLLECTION_PATTERN}/(?P<key>[^/]+)")(self._get_one)
        self.route("POST", f"{API_PATTERN}/{COLLECTION_PATTERN}/(?P<key>[^/]+)")(self._write)
        self.route("DELETE", f"{API_PATTERN}/Items/(?P<key>[^/]+)")(self._delete_item)
        self.route("DELETE", f"{API_PATTERN}/Accounts/(?P<key>[^/]+)")(self._delete_account)

    def _envelope(
        self, request: httpx.Request, name: str, items: list[Record], pagination: dict[str, int] | None = None
    ) -> httpx.Response:
        now = self.clock.now()
        body: dict[str, Any] = {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": request.extensions["xero_claims"]["client_id"],
            "DateTimeUTC": f"/Date({int(now.timestamp() * 1000)})/",
        }
        if pagination is not None:
            body["pagination"] = pagination
        body[name] = items
        return xero_json(200, body)

    @staticmethod
    def _canonical(collection: str) -> str:
        return next(c for c in ID_FIELDS if c.lower() == collection.lower())

    def _organisation(self, request: httpx.Request) -> httpx.Response:
        return self._envelope(request, "Organisations", [request.extensions["xero_org"].to_wire()])

    def _report(self, make: Report) -> Callable[[httpx.Request], httpx.Response]:
        """The handler of ``GET /Reports/<name>``, answering what ``make`` computes from the ledger."""

        def handler(request: httpx.Request) -> httpx.Response:
            org: Organisation = request.extensions["xero_org"]
            now = self.clock.now()
            try:
                report = make(org, request.url.params, today=now.date(), now=now)
            except ReportError as err:
                # The sandbox's choice: Xero documents no answer for a malformed report parameter; this is
                # the error body it gives other unreadable query parameters.
                return xero_json(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(err)})
            return self._envelope(request, "Reports", [report])

        return handler

    def _journals(self, request: httpx.Request) -> httpx.Response:
        """``GET /Journals`` (the spec's getJournals; xero_journals says what the ledger holds)."""
        org: Organisation = request.extensions["xero_org"]
        since = _modified_since(request.headers.get("if-modified-since"))
        try:
            found = select_journals(org, request.url.params, since)
        except JournalsError as err:  # an offset that is not a number: the answer is UNSURE, as for reports
            return xero_json(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(err)})
        return self._envelope(request, "Journals", [journal_wire(org, j) for j in found])

    def _journal(self, request: httpx.Request, key: str) -> httpx.Response:
        """``GET /Journals/{JournalID}`` or ``/Journals/{JournalNumber}``."""
        org: Organisation = request.extensions["xero_org"]
        found = find_journal(org, key)
        if found is None:
            return self.error_response(404, f"no Journals {key}")
        return self._envelope(request, "Journals", [journal_wire(org, found, with_source=False)])

    def _list(self, request: httpx.Request, collection: str) -> httpx.Response:
        collection = self._canonical(collection)
        org: Organisation = request.extensions["xero_org"]
        params = request.url.params
        try:
            # each list's element type is its name less the plural "s" (Invoices: Invoice)
            where = parse_where(params["where"], collection[:-1]) if params.get("where") else None
            if params.get("order"):
                check_order(params["order"], collection[:-1])
        except WhereError as err:
            return xero_json(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(err)})
        query = ListQuery(
            where=where,
            modified_since=_modified_since(request.headers.get("if-modified-since")),
            order=params.get("order"),
            ids=[i for i in params.get("IDs", "").split(",") if i] or None,
            statuses=[s.upper() for s in params.get("Statuses", "").split(",") if s]
            if collection == "Invoices"
            else None,
            include_archived=params.get("includeArchived", "").lower() == "true",
            search=params.get("searchTerm", "").strip() or None,
        )
        records = select(org, collection, query)
        if collection == "Invoices":
            records = self._invoice_filters(records, params)
        places = unit_places(params.get("unitdp"))
        summary = (
            SUMMARY_LEAVES_OUT.get(collection, ()) if params.get("summaryOnly", "").lower() == "true" else ()
        )
        named = {w.lower() for w in re.findall(r"[A-Za-z_]\w*", params.get("where", ""))}
        if left_out := [f for f in summary if f.lower() in named]:
            # "The summaryOnly parameter works with other filters, but not when filtering on the excluded
            # fields" (Xero's Invoices and Contacts pages); the shape of that refusal is not published: UNSURE
            message = f"summaryOnly cannot be used with a where on {', '.join(left_out)}"
            return xero_json(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})
        if not summary and (collection not in PAGED or "page" not in params):
            # unpaged reads of documents leave out their lines, as Xero does without ?page=
            with_lines = collection not in LINE_FIELDS
            return self._envelope(
                request,
                collection,
                [render(collection, r, with_lines=with_lines, places=places) for r in records],
            )
        try:
            page = max(1, int(params.get("page") or 1))
            size = min(1000, max(1, int(params.get("pageSize") or 100)))
        except ValueError:
            return xero_json(
                400,
                {
                    "ErrorNumber": 16,
                    "Type": "QueryParseException",
                    "Message": "page and pageSize must be whole numbers",
                },
            )
        chunk = records[(page - 1) * size : page * size]
        pagination = {
            "page": page,
            "pageSize": size,
            "pageCount": math.ceil(len(records) / size),
            "itemCount": len(records),
        }
        rendered = [render(collection, r, places=places) for r in chunk]
        rendered = [{k: v for k, v in r.items() if k not in summary} for r in rendered]
        return self._envelope(request, collection, rendered, pagination)

    @staticmethod
    def _invoice_filters(records: list[Record], params: httpx.QueryParams) -> list[Record]:
        numbers = {n for n in params.get("InvoiceNumbers", "").split(",") if n}
        contacts = {c.lower() for c in params.get("ContactIDs", "").split(",") if c}
        return [
            r
            for r in records
            if (not numbers or r.get("InvoiceNumber") in numbers)
            and (not contacts or r["Contact"].get("ContactID", "").lower() in contacts)
        ]

    def _get_one(self, request: httpx.Request, collection: str, key: str) -> httpx.Response:
        collection = self._canonical(collection)
        record = request.extensions["xero_org"].find(collection, key)
        if record is None:
            return self.error_response(404, f"no {collection} {key}")
        places = unit_places(request.url.params.get("unitdp"))
        return self._envelope(request, collection, [render(collection, record, places=places)])

    def _write(self, request: httpx.Request, collection: str, key: str | None = None) -> httpx.Response:
        collection = self._canonical(collection)
        # Accounts: createAccount is PUT /Accounts and updateAccount POST /Accounts/{AccountID}; the spec has
        # no POST /Accounts
        if collection not in WRITABLE or (collection == "Accounts" and request.method == "POST" and not key):
            return self.error_response(405, f"{request.method} {request.url.path}")
        org: Organisation = request.extensions["xero_org"]
        elements = self._elements(request, collection)
        if isinstance(elements, httpx.Response):
            return elements
        if key is not None and elements and isinstance(elements[0], dict):
            elements[0] = {**elements[0], ID_FIELDS[collection]: key}
        if collection == "Accounts" and len(elements) > 1:
            # "Accounts and TaxRates: one per request" (a public research note on Xero's limits page; the
            # spec's createAccount takes one Account): UNSURE whether Xero refuses more or keeps the first
            message = "Only one account can be created or updated per request."
            return self._refused(collection, [e for e in elements if isinstance(e, dict)], message)
        now = self.clock.now()
        places = unit_places(request.url.params.get("unitdp"))
        outcomes: list[Outcome] = []
        for element in elements:
            # PUT creates only: an item whose Code is taken is refused, not updated (the spec's PUT /Items
            # example answers "Price List Item with Code ... already exists"; calcinai/xero-php#528 got it
            # sending ItemID and Code). POST creates or updates, matching the Code (xero.md section 4.2).
            creating_item = request.method == "PUT" and collection == "Items"
            existing = (
                None
                if creating_item
                else self._existing(org, collection, element, upsert=request.method == "POST")
            )
            outcome = build(
                org,
                collection,
                element,
                now,
                existing=existing,
                batch=[o.record for o in outcomes if not o.errors],
                places=places,
            )
            if outcome.errors and existing is None:
                outcome.record[ID_FIELDS[collection]] = ZERO_ID
            outcomes.append(outcome)
        summarize = request.url.params.get("summarizeErrors", "true").lower() != "false"
        if summarize and any(o.errors for o in outcomes):
            failed = [self._element(collection, o, None, places) for o in outcomes if o.errors]
            return xero_json(400, {**VALIDATION_EXCEPTION, "Elements": failed})
        for outcome in outcomes:
            if not outcome.errors:
                org.store(collection, outcome.record)
                after_store(org, collection, outcome.record)
        # summarizeErrors=false: "A status attribute is included for each Invoice can be OK, WARNING or ERROR.
        # ... A WARNING status indicated that the entity was successfully processed, but there are additional
        # warnings added to the response" (Xero's HTTP Requests and Responses page, Creating many resources)
        rendered = [
            self._element(
                collection,
                o,
                None if summarize else "ERROR" if o.errors else "WARNING" if o.warnings else "OK",
                places,
            )
            for o in outcomes
        ]
        return self._envelope(request, collection, rendered)

    @staticmethod
    def _elements(request: httpx.Request, collection: str) -> list[Any] | httpx.Response:
        """The elements a write's body carries (under the collection's name, or bare), or Xero's refusal of a
        body that is not JSON or carries none."""
        try:
            body = json.loads(request.content or b"null", parse_float=Decimal)
        except ValueError as err:
            # Xero's words begin "JSON request body could not be read, Error ..." (ErrorNumber 14,
            # XeroAPI/xero-php-oauth2#205); what follows them is the parser's, UNSURE
            message = f"JSON request body could not be read, Error: {err}"
            return xero_json(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message})
        elements = body.get(collection, body) if isinstance(body, dict) else body
        elements = elements if isinstance(elements, list) else [] if elements is None else [elements]
        if not elements:
            # an empty body or list: ErrorNumber 17 NoDataProcessedException (XeroAPI/xero-php-oauth2#66), in
            # Xero's words as users copied them: "No data has been processed for this endpoint. This endpoint
            # is expecting BankTransaction data to be specifed in the request body."
            message = (
                "No data has been processed for this endpoint. This endpoint is expecting "
                f"{collection[:-1]} data to be specifed in the request body."
            )
            return xero_json(400, {"ErrorNumber": 17, "Type": "NoDataProcessedException", "Message": message})
        return elements

    def _allocate(self, request: httpx.Request, key: str) -> httpx.Response:
        """``PUT /CreditNotes/{CreditNoteID}/Allocations`` (the spec's createCreditNoteAllocation): sets the
        credit note against invoices by the rules of ``xero_allocations``. Allocations are made only here,
        never inline in a credit note's own write (Xero support, quoted in waynerobinson/xeroizer#196: "The
        allocation cannot be applied at the same time the Credit Note is created by the API"). Refusals
        are a ValidationException naming each refused Allocation (xeroizer#320: its Elements are of type
        Allocation); summarizeErrors=false answers each element with its status, as other writes do."""
        org: Organisation = request.extensions["xero_org"]
        note = org.records["CreditNotes"].get(key.lower())
        if note is None:
            return self.error_response(404, f"no CreditNotes {key}")
        elements = self._elements(request, "Allocations")
        if isinstance(elements, httpx.Response):
            return elements
        now = self.clock.now()
        outcomes = check_allocations(org, note, elements)
        summarize = request.url.params.get("summarizeErrors", "true").lower() != "false"
        if summarize and any(o.errors for o in outcomes):
            failed = [response_element(note, o, None) for o in outcomes if o.errors]
            return xero_json(400, {**VALIDATION_EXCEPTION, "Elements": failed})
        for outcome in outcomes:
            if not outcome.errors:
                apply_allocation(org, note, outcome.record, now)
        rendered = [
            response_element(note, o, None if summarize else "ERROR" if o.errors else "OK") for o in outcomes
        ]
        return self._envelope(request, "Allocations", rendered)

    def _refused(self, collection: str, records: list[Record], message: str) -> httpx.Response:
        """Xero's 400 ValidationException naming each record with the one message."""
        failed = [self._element(collection, Outcome(r, [message]), None, CENT) for r in records]
        return xero_json(400, {**VALIDATION_EXCEPTION, "Elements": failed})

    def _delete_item(self, request: httpx.Request, key: str) -> httpx.Response:
        """``DELETE /Items/{ItemID}``: the spec's deleteItem, "Success - return response 204 no content".
        A tracked inventory item a document has used cannot be deleted (Xero's Items page as a public research
        note sums it up: "Tracked items can't be deleted once used"; waynerobinson/xeroizer#475: "items
        associated with inventory tracking CANNOT" be); Xero's message is not published: UNSURE words."""
        org: Organisation = request.extensions["xero_org"]
        item = org.records["Items"].get(key.lower())
        if item is None:
            return self.error_response(404, f"no Items {key}")
        code = str(item["Code"]).lower()
        documents = [*org.records["Invoices"].values(), *org.records["CreditNotes"].values()]
        used = any(
            str(line.get("ItemCode", "")).lower() == code for d in documents for line in d["LineItems"]
        )
        if item["IsTrackedAsInventory"] and used:
            message = (
                f"The item '{item['Code']}' is tracked in inventory, has been used and cannot be deleted."
            )
            return self._refused("Items", [item], message)
        del org.records["Items"][key.lower()]
        return httpx.Response(204)

    def _delete_account(self, request: httpx.Request, key: str) -> httpx.Response:
        """``DELETE /Accounts/{AccountID}``: the spec's deleteAccount answers the account with Status DELETED.
        A system account or one something uses is refused (a public research note on Xero's Accounts page:
        "can't delete system or used accounts"; the words are the sandbox's, UNSURE)."""
        org: Organisation = request.extensions["xero_org"]
        account = org.records["Accounts"].get(key.lower())
        if account is None:
            return self.error_response(404, f"no Accounts {key}")
        if account["SystemAccount"] or self._account_used(org, account):
            message = (
                f"The account '{account['Code']}' is a system account or is in use and cannot be deleted."
            )
            return self._refused("Accounts", [account], message)
        del org.records["Accounts"][key.lower()]
        deleted = {**account, "Status": "DELETED", "UpdatedDateUTC": self.clock.now()}
        return self._envelope(request, "Accounts", [render("Accounts", deleted)])

    @staticmethod
    def _account_used(org: Organisation, account: Record) -> bool:
        """Whether a journal line, document line or item names the account (by id or code)."""
        names = {str(account["AccountID"]).lower(), str(account["Code"]).lower()}
        lines = [line for j in org.records["ManualJournals"].values() for line in j["JournalLines"]]
        lines += [
            line
            for d in (*org.records["Invoices"].values(), *org.records["CreditNotes"].values())
            for line in d["LineItems"]
        ]
        items = org.records["Items"].values()
        named = [line.get(f) for line in lines for f in ("AccountID", "AccountCode")]
        named += [i.get("InventoryAssetAccountCode") for i in items]
        named += [
            d.get(f)
            for i in items
            for d in (i["PurchaseDetails"], i["SalesDetails"])
            for f in ("AccountCode", "COGSAccountCode")
        ]
        return any(str(n).lower() in names for n in named if n)

    @staticmethod
    def _existing(org: Organisation, collection: str, element: Any, *, upsert: bool) -> Record | None:
        """The record a write updates: by its id, or on a POST (``upsert``) by the key Xero matches on: an
        item's Code, a contact's ContactNumber or (active) Name. Xero's Contacts page, PUT Contacts: it
        "works very similar to POST Contacts but if an existing contact matches your ContactName or
        ContactNumber then you will receive an error", so a POST matching one updates that contact."""
        if not isinstance(element, dict):
            return None
        ident = element.get(ID_FIELDS[collection])
        if ident:
            return org.records[collection].get(str(ident).lower())
        if not upsert:
            return None
        records = org.records[collection].values()

        def same(record: Record, key: str) -> bool:
            wanted = str(element.get(key) or "").strip().lower()
            return bool(wanted) and str(record.get(key) or "").strip().lower() == wanted

        if collection == "Items":
            return next((i for i in records if same(i, "Code")), None)
        if collection == "Contacts":
            by_number = next((c for c in records if same(c, "ContactNumber")), None)
            active = (c for c in records if c["ContactStatus"] == "ACTIVE" and same(c, "Name"))
            return by_number or next(active, None)
        if collection == "Invoices" and str(element.get("Type") or "ACCREC").upper() == "ACCREC":
            # a POST of a sales invoice whose number is taken updates that invoice (xero.md section 3,
            # freakboy3742/pyxero#328: "POST upserts"); a bill's number is not unique, so never matched
            return next((i for i in records if i["Type"] == "ACCREC" and same(i, "InvoiceNumber")), None)
        return None

    @staticmethod
    def _element(collection: str, outcome: Outcome, status: str | None, places: Decimal) -> Record:
        element = render(collection, outcome.record, places=places)
        if status is not None:
            element["StatusAttributeString"] = status
        if outcome.errors:
            element["ValidationErrors"] = [{"Message": m} for m in outcome.errors]
        if outcome.warnings:
            element["Warnings"] = [{"Message": m} for m in outcome.warnings]
        return element
