"""QuickBooks Online + Intuit OAuth emulator: authorize form, tokens, accounting API, faults, admin."""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx

from infra.sandboxes.common import (
    FixedWindow,
    InFlight,
    Sandbox,
    form_body,
    html_response,
    json_body,
    json_response,
    new_token,
    redirect,
)
from infra.sandboxes.qbo_demo import seed_demo
from infra.sandboxes.qbo_query import NAME_LISTS, QUERYABLE_ENTITIES, QueryError, execute, parse_query
from infra.sandboxes.qbo_reports import ReportError, cents, trial_balance

DISCOUNT = "DiscountLineDetail"
CENT = Decimal("0.01")
PACIFIC = ZoneInfo("America/Los_Angeles")  # QBO stamps times in Pacific time with an offset
ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
PLANS = ("Simple", "Essentials", "Plus", "Advanced")
SALES_DOCS = ("Invoice", "SalesReceipt", "CreditMemo", "RefundReceipt")
# How a sales document moves a tracked Inventory item's QtyOnHand, per unit on its lines. Intuit, "Managing
# Inventory" (developer.intuit.com/app/developer/qbo/docs/concepts/manage-inventory): "Recording the sale of
# an inventory item decreases the value of Inventory Asset account by the original cost of the item and
# decreases the Quantity on Hand units for that item" (invoices and sales receipts are QBO's sales forms,
# developer.intuit.com/app/developer/qbo/docs/workflows/manage-inventory). A credit memo or refund receipt
# records the customer's return and puts the items back in stock (QuickBooks help "What are credit memos
# for?": "record a return when a customer returns items"). A bundle (Group) line relieves each component
# (Intuit "Item bundles using groups" workflow; ../shared/providers/qbo.md section 3.2). A voided
# document keeps its lines with quantities 0 (Intuit blog 2016-04-06 "Voiding invoice objects"), so it
# moves nothing; a deleted one is gone; an edit moves the difference between the old and the new lines.
STOCK_SIGN = {
    "Invoice": Decimal(-1),
    "SalesReceipt": Decimal(-1),
    "CreditMemo": Decimal(1),
    "RefundReceipt": Decimal(1),
}
CASH_DOCS = ("SalesReceipt", "RefundReceipt")  # paid into / out of DepositToAccountRef, not A/R
TRANSACTIONS = (*SALES_DOCS, "JournalEntry", "InventoryAdjustment")
ENTITY_BY_SEGMENT = {name.lower(): name for name in QUERYABLE_ENTITIES}
ENTITY_SEGMENTS = "|".join(ENTITY_BY_SEGMENT)
API_PREFIX = "/v3/company/"

CODE_LIFETIME = timedelta(minutes=5)
LOGIN_LIFETIME = timedelta(minutes=10)
ACCESS_SECONDS = 3600
REFRESH_IDLE_SECONDS = 8_640_000  # 100 days, extended by every use
HARD_LIFETIME = timedelta(days=5 * 365 + 1)  # five years from the original authorization
CDC_LOOKBACK = timedelta(days=30)
CDC_MAX_OBJECTS = 1000
REQUESTID_MEMORY = timedelta(hours=24)  # the sandbox's choice: Intuit promises no window (notes §2.7)

ISO3 = {"US": "USA", "CA": "CAN", "GB": "GBR", "AU": "AUS"}
CURRENCY_NAMES = {
    "USD": "United States Dollar",
    "EUR": "Euro",
    "GBP": "British Pound Sterling",
    "CAD": "Canadian Dollar",
    "AUD": "Australian Dollar",
}
CLASSIFICATION = {  # AccountType -> Classification
    **dict.fromkeys(
        ("Bank", "Accounts Receivable", "Other Current Asset", "Fixed Asset", "Other Asset"), "Asset"
    ),
    **dict.fromkeys(
        ("Accounts Payable", "Credit Card", "Other Current Liability", "Long Term Liability"), "Liability"
    ),
    **dict.fromkeys(("Income", "Other Income"), "Revenue"),
    **dict.fromkeys(("Cost of Goods Sold", "Expense", "Other Expense"), "Expense"),
    "Equity": "Equity",
}
_COMMON = "Id SyncToken sparse domain MetaData"
_PARTY = (
    "DisplayName CompanyName GivenName MiddleName FamilyName Title Suffix PrintOnCheckName Active "
    "PrimaryEmailAddr PrimaryPhone Mobile Fax WebAddr BillAddr CurrencyRef Balance"
)
WRITABLE_FIELDS = {  # top-level properties QBO accepts on writes; anything else is error 2010
    name: frozenset(f"{_COMMON} {fields}".split())
    for name, fields in {
        "JournalEntry": "TxnDate DocNumber PrivateNote Line Adjustment CurrencyRef ExchangeRate TxnTaxDetail "
        "TotalAmt HomeTotalAmt DepartmentRef TransactionLocationType",
        "InventoryAdjustment": "TxnDate DocNumber PrivateNote Line AdjustAccountRef CustomerRef "
        "DepartmentRef",
        # BillRate and TaxReportingBasis are Vendor properties the official client sends (python-quickbooks
        # 0.9.12 integration tests against an Intuit sandbox; qbo.md section 7)
        "Vendor": f"{_PARTY} AcctNum TaxIdentifier TermRef Vendor1099 BillRate TaxReportingBasis "
        "APAccountRef OtherContactInfo AlternatePhone",
        "Customer": f"{_PARTY} ShipAddr Notes Taxable",
        "Item": "Name Sku Description PurchaseDesc Active Type UnitPrice PurchaseCost IncomeAccountRef "
        "ExpenseAccountRef AssetAccountRef TrackQtyOnHand QtyOnHand InvStartDate ReorderPoint Taxable "
        "SubItem ParentRef ItemGroupDetail FullyQualifiedName",
    }.items()
}


class QboFault(Exception):
    """A request QBO refuses; rendered as a ``Fault`` body."""

    def __init__(
        self, code: str, message: str, detail: str = "", status: int = 400, kind: str = "ValidationFault"
    ) -> None:
        super().__init__(detail or message)
        self.code, self.message, self.detail, self.status, self.kind = code, message, detail, status, kind


class AdminError(ValueError):
    """A bad admin request (bad entity, bad field)."""


class AdminNotFound(AdminError):
    """An admin request naming a company or record that doesn't exist."""


def _business_error(detail: str) -> QboFault:
    return QboFault(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


def _required(name: str) -> QboFault:
    return QboFault(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {name} is missing in the request",
    )


def _inactive(what: str) -> QboFault:
    return QboFault(
        "610",
        "Object Not Found",
        f"Something you're trying to use has been made inactive. Check the fields with accounts, "
        f"customers, items, vendors or employees. ({what})",
    )


def _invalid_reference(entity: str, ref_id: str) -> QboFault:
    return QboFault(
        "2500", "Invalid Reference Id", f"Invalid Reference Id : {entity} element id {ref_id} not found"
    )


# A JournalEntry line on an Accounts Payable account must name a vendor, on Accounts Receivable a
# customer: JournalEntryLineDetail.Entity {"Type": "Vendor"|"Customer", "EntityRef": {"value": id}}
# (Intuit's JournalEntry reference; QBO's Name field). Without it QBO answers 6000 "When you use Accounts
# Payable, you must choose a vendor in the Name field." (../shared/providers/qbo.md section 7: Expensify
# QBO097, a public QBO sandbox test report). The A/R text follows the same pattern (integrators such as
# Link My Books document the customer requirement; UNSURE of QBO's exact A/R wording).
NAME_REQUIRED = {"Accounts Payable": "Vendor", "Accounts Receivable": "Customer"}


def decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _plain(value: Any) -> Any:
    """Admin input as the sandbox stores it: floats as Decimal, dates as ISO text, containers copied."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _wire(value: Any) -> Any:
    """JSON numbers for Decimals at the HTTP boundary (json has no Decimal; the text round-trips exactly)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


@dataclass
class Company:
    realm_id: str
    name: str
    country: str
    plan: str
    inventory_tracking: bool
    closing_date: date | None
    home_currency: str
    created: datetime
    records: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in QUERYABLE_ENTITIES}
    )
    tombstones: list[tuple[str, str, datetime]] = field(default_factory=list)  # entity, id, deleted at
    next_ids: Counter[str] = field(default_factory=Counter)
    request_ids: dict[str, tuple[datetime, int, bytes]] = field(default_factory=dict)
    stock_moves: dict[str, list[tuple[str, Decimal]]] = field(default_factory=dict)  # adjustment -> diffs
    # (entity, sales document id) -> item id -> the QtyOnHand change that document made
    sale_moves: dict[tuple[str, str], dict[str, Decimal]] = field(default_factory=dict)
    openings: dict[str, tuple[date, Decimal]] = field(default_factory=dict)  # item -> starting value

    def summary(self) -> dict[str, Any]:
        return {
            "realm_id": self.realm_id,
            "name": self.name,
            "country": self.country,
            "plan": self.plan,
            "inventory_tracking": self.inventory_tracking,
            "home_currency": self.home_currency,
            "closing_date": self.closing_date.isoformat() if self.closing_date else None,
        }

    def new_id(self, entity: str) -> str:
        self.next_ids[entity] += 1
        return str(self.next_ids[entity])

    def find(self, entity: str, record_id: str) -> dict[str, Any] | None:
        return self.records[entity].get(str(record_id))


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
    revoked: bool = False
    access_tokens: dict[str, datetime] = field(default_factory=dict)

    @property
    def hard_expires_at(self) -> datetime:
        return self.authorized_at + HARD_LIFETIME


@dataclass
class QboSandbox(Sandbox):
    """Speaks QBO's accounting API and Intuit OAuth on one base URL; ``seed=True`` loads the demo data."""

    name: str = "qbo"
    seed: bool = False
    latency_seconds: float = 0.0  # real seconds each API call takes, outside the lock, to observe concurrency

    def __post_init__(self) -> None:
        super().__post_init__()
        self.in_flight = InFlight(10)
        self._clear_data()
        self._register_oauth()
        self._register_api()
        self._register_admin()
        if self.seed:
            seed_demo(self)

    def _clear_data(self) -> None:
        self.companies: dict[str, Company] = {}
        self.users: dict[str, User] = {}
        self.codes: dict[str, AuthCode] = {}
        self.logins: dict[str, tuple[str, datetime]] = {}
        self.grants: list[Grant] = []
        self.refresh_index: dict[str, Grant] = {}
        self.access_index: dict[str, Grant] = {}
        self.per_minute = FixedWindow(500, 60)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._clear_data()
            if self.seed:
                seed_demo(self)

    # ---- time and shapes ------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def stamp(self, when: datetime | None = None) -> str:
        return (when or self.now()).astimezone(PACIFIC).isoformat(timespec="seconds")

    def today(self) -> date:
        return self.now().astimezone(PACIFIC).date()

    def _time(self) -> str:
        return self.now().astimezone(PACIFIC).isoformat(timespec="milliseconds")

    def ok(self, body: dict[str, Any]) -> httpx.Response:
        return json_response(200, _wire({**body, "time": self._time()}))

    def fault(self, err: QboFault) -> httpx.Response:
        error = {"Message": err.message, "Detail": err.detail, "code": err.code, "element": ""}
        return json_response(
            err.status, {"Fault": {"Error": [error], "type": err.kind}, "time": self._time()}
        )

    def error_response(self, status: int, message: str) -> httpx.Response:
        return self.fault(QboFault("500", "Unsupported Operation", message, status))

    def fault_response(self, kind: str, request: httpx.Request) -> httpx.Response:
        tid = {"intuit_tid": str(uuid.uuid4())}
        if not request.url.path.startswith(API_PREFIX):
            error = {"429": "slow_down", "500": "server_error", "503": "temporarily_unavailable"}[kind]
            return json_response(int(kind), {"error": error}, tid)
        if kind == "429":
            response = self._throttled()
        else:
            detail = (
                "System Failure Error: An unexpected error occurred while accessing or saving your data."
                if kind == "500"
                else "Service Unavailable: the service is temporarily unavailable."
            )
            response = self.fault(
                QboFault(
                    "10000",
                    "An application error has occurred while processing your request",
                    detail,
                    int(kind),
                    "SystemFault",
                )
            )
        response.headers.update(tid)
        return response

    def _throttled(self) -> httpx.Response:
        return self.fault(
            QboFault(
                "3001",
                "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                "The request limit was reached.",
                429,
                "SERVICE",
            )
        )

    def _unauthenticated(self, detail: str) -> httpx.Response:
        error = {
            "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "detail": detail,
            "code": "3200",
            "element": None,
        }
        body = {
            "warnings": None,
            "intuitObject": None,
            "fault": {"error": [error], "type": "AUTHENTICATION"},
            "time": int(self.now().timestamp() * 1000),
        }
        return json_response(401, body, {"www-authenticate": 'Bearer realm="Intuit", error="invalid_token"'})

    # ---- entry: rate limits, auth, intuit_tid ---------------------------------------------------
    def serve_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith(API_PREFIX):
            realm = path[len(API_PREFIX) :].split("/", 1)[0]
            with self.lock:
                within_minute = self.per_minute.hit(realm, self.now())
            with self.in_flight.enter(realm) as within_concurrency:
                if not (within_minute and within_concurrency):
                    response = self._throttled()
                else:
                    if self.latency_seconds:
                        time.sleep(self.latency_seconds)
                    with self.lock:
                        response = self._authorize_api(request, realm) or self._dispatch(self.routes, request)
        else:
            with self.lock:
                response = self._dispatch(self.routes, request)
        response.headers["intuit_tid"] = str(uuid.uuid4())
        return response

    def _authorize_api(self, request: httpx.Request, realm: str) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        grant = self.access_index.get(token)
        if grant is None:
            return self._unauthenticated("Token invalid")
        if grant.revoked or grant.access_tokens.get(token, self.now()) <= self.now():
            return self._unauthenticated("Token expired")
        if grant.realm_id != realm or realm not in self.companies:
            return self.fault(
                QboFault(
                    "3100",
                    "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                    "",
                    403,
                    "AuthorizationFault",
                )
            )
        return None

    # ---- OAuth ----------------------------------------------------------------------------------
    def _register_oauth(self) -> None:
        self.route("GET", "/connect/oauth2")(self._authorize_page)
        self.route("POST", "/connect/oauth2")(self._authorize_submit)
        self.route("POST", "/oauth2/v1/tokens/bearer")(self._token)
        self.route("POST", "/v2/oauth2/tokens/revoke")(self._revoke)
        self.route("GET", r"/\.well-known/openid[_-](?:sandbox[_-])?configuration/?")(self._discovery)

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
        username, expires = self.logins.get(form.get("login", ""), ("", self.now()))
        if username and expires > self.now():
            return self.users.get(username)
        user = self.users.get(form.get("username", ""))
        if user and secrets.compare_digest(user.password, form.get("password", "")):
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
            self.logins[ticket] = (user.username, self.now() + LOGIN_LIFETIME)
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
            self.now() + CODE_LIFETIME,
            form.get("code_challenge") or None,
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
        grant.access_tokens[access] = self.now() + timedelta(seconds=ACCESS_SECONDS)
        self.access_index[access] = grant
        body: dict[str, Any] = {
            "token_type": "bearer",
            "access_token": access,
            "expires_in": ACCESS_SECONDS,
            "refresh_token": grant.refresh_token,
            "x_refresh_token_expires_in": int((grant.refresh_expires_at - self.now()).total_seconds()),
        }
        if request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true":
            body["x_refresh_token_hard_expires_in"] = int(
                (grant.hard_expires_at - self.now()).total_seconds()
            )
        return json_response(200, body)

    def _redeem_code(self, client_id: str, form: dict[str, str]) -> Grant | None:
        code = self.codes.get(form.get("code", ""))
        if (
            code is None
            or code.used
            or code.expires_at <= self.now()
            or code.client_id != client_id
            or code.redirect_uri != form.get("redirect_uri")
        ):
            return None
        code.used = True
        if code.code_challenge:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.code_challenge:
                return None
        grant = Grant(client_id, code.realm_id, code.username, self.now(), new_token("RT1"), self.now())
        self.grants.append(grant)
        self._extend(grant)
        return grant

    def _rotate(self, client_id: str, refresh_token: str) -> Grant | None:
        grant = self.refresh_index.get(refresh_token)
        if grant is None or grant.client_id != client_id or grant.revoked:
            return None
        if min(grant.refresh_expires_at, grant.hard_expires_at) <= self.now():
            return None
        # Designed for immediate invalidation (notes §1.5): the old value is forgotten the moment it is used.
        del self.refresh_index[refresh_token]
        grant.refresh_token = new_token("RT1")
        self._extend(grant)
        return grant

    def _extend(self, grant: Grant) -> None:
        grant.refresh_expires_at = min(
            self.now() + timedelta(seconds=REFRESH_IDLE_SECONDS), grant.hard_expires_at
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

    # ---- accounting API -------------------------------------------------------------------------
    def _register_api(self) -> None:
        company = API_PREFIX + r"(?P<realm>[^/]+)"
        self.route("GET", company + r"/companyinfo/(?P<company_id>[^/]+)")(self._company_info)
        self.route("GET", company + "/preferences")(self._preferences)
        self.route("GET", company + "/query")(self._query)
        self.route("POST", company + "/query")(self._query)
        self.route("GET", company + "/cdc")(self._cdc)
        self.route("GET", company + "/reports/TrialBalance")(self._trial_balance)
        self.route("GET", company + rf"/(?P<segment>{ENTITY_SEGMENTS})/(?P<record_id>[^/]+)")(self._read)
        self.route("POST", company + r"/(?P<segment>journalentry|inventoryadjustment|vendor|customer|item)")(
            self._write
        )

    def _company_info(self, request: httpx.Request, realm: str, company_id: str) -> httpx.Response:
        company = self.companies[realm]
        if company_id != realm:
            return self.fault(QboFault("610", "Object Not Found", f"CompanyInfo {company_id} not found"))
        created = self.stamp(company.created)
        return self.ok(
            {
                "CompanyInfo": {
                    "Id": realm,
                    "SyncToken": "0",
                    "domain": "QBO",
                    "sparse": False,
                    "CompanyName": company.name,
                    "LegalName": company.name,
                    "Country": company.country,
                    "CompanyAddr": {"Country": ISO3.get(company.country, company.country)},
                    "FiscalYearStartMonth": "January",
                    "SupportedLanguages": "en",
                    "NameValue": [
                        {"Name": "OfferingSku", "Value": f"QuickBooks Online {company.plan}"},
                        {"Name": "NeoEnabled", "Value": "true"},
                    ],
                    "MetaData": {"CreateTime": created, "LastUpdatedTime": created},
                }
            }
        )

    def _preferences(self, request: httpx.Request, realm: str) -> httpx.Response:
        company = self.companies[realm]
        foreign = any(
            r.get("CurrencyRef", {}).get("value", company.home_currency) != company.home_currency
            for records in company.records.values()
            for r in records.values()
        )
        accounting: dict[str, Any] = {"TrackDepartments": False, "ClassTrackingPerTxn": False}
        if company.closing_date:
            accounting["BookCloseDate"] = company.closing_date.isoformat()
        return self.ok(
            {
                "Preferences": {
                    "Id": "1",
                    "SyncToken": "0",
                    "domain": "QBO",
                    "sparse": False,
                    "AccountingInfoPrefs": accounting,
                    "ProductAndServicesPrefs": {
                        "ForSales": True,
                        "ForPurchase": True,
                        "QuantityWithPriceAndRate": True,
                        "QuantityOnHand": company.inventory_tracking,
                    },
                    "CurrencyPrefs": {
                        "MultiCurrencyEnabled": foreign,
                        "HomeCurrency": {"value": company.home_currency},
                    },
                    "MetaData": {
                        "CreateTime": self.stamp(company.created),
                        "LastUpdatedTime": self.stamp(company.created),
                    },
                }
            }
        )

    def _query(self, request: httpx.Request, realm: str) -> httpx.Response:
        text = request.url.params.get("query", "") if request.method == "GET" else request.content.decode()
        try:
            query = parse_query(text)
        except QueryError as err:
            return self.fault(QboFault(err.code, err.message, err.detail))
        return self.ok(
            {"QueryResponse": execute(query, self.companies[realm].records[query.entity].values())}
        )

    def _cdc(self, request: httpx.Request, realm: str) -> httpx.Response:
        company = self.companies[realm]
        names = [n.strip() for n in request.url.params.get("entities", "").split(",") if n.strip()]
        since_text = request.url.params.get("changedSince", "")
        if not names or not since_text:
            return self.fault(_required("entities" if not names else "changedSince"))
        unknown = [n for n in names if n.lower() not in ENTITY_BY_SEGMENT]
        if unknown:
            return self.fault(QboFault("4001", "Invalid query", f"CDC is not supported for {unknown[0]}"))
        try:
            since = datetime.fromisoformat(since_text)
        except ValueError:
            return self.fault(
                QboFault("2010", "Invalid date/time", f"changedSince {since_text!r} is not a date")
            )
        since = since if since.tzinfo else since.replace(tzinfo=PACIFIC)
        if since < self.now() - CDC_LOOKBACK:
            return self.fault(
                QboFault(
                    "6000",
                    "A business validation error has occurred while processing your request",
                    f"Operation cdc with changedSince date {since_text} which is "
                    "older than fixed days is not supported.",
                )
            )
        budget = CDC_MAX_OBJECTS
        blocks: list[dict[str, Any]] = []
        for name in names:
            entity = ENTITY_BY_SEGMENT[name.lower()]
            changed = [
                r
                for r in company.records[entity].values()
                if datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]) >= since
            ]
            changed += [
                {
                    "domain": "QBO",
                    "status": "Deleted",
                    "Id": rid,
                    "MetaData": {"LastUpdatedTime": self.stamp(at)},
                }
                for kind, rid, at in company.tombstones
                if kind == entity and at >= since
            ]
            changed.sort(key=lambda r: datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]))
            changed = changed[:budget]
            budget -= len(changed)
            blocks.append(
                {entity: changed, "startPosition": 1, "maxResults": len(changed)} if changed else {}
            )
        return self.ok({"CDCResponse": [{"QueryResponse": blocks}]})

    def _trial_balance(self, request: httpx.Request, realm: str) -> httpx.Response:
        """Reports answer with the report itself (its Header carries the time), not an entity envelope."""
        try:
            report = trial_balance(
                self.companies[realm], request.url.params, today=self.today(), time=self._time()
            )
        except ReportError as err:
            # The sandbox's choice of code: Intuit documents no specific one for a bad report parameter.
            return self.fault(QboFault("2010", "Request has invalid or unsupported property", str(err)))
        return json_response(200, report)

    def _read(self, request: httpx.Request, realm: str, segment: str, record_id: str) -> httpx.Response:
        entity = ENTITY_BY_SEGMENT[segment.lower()]
        record = self.companies[realm].find(entity, record_id)
        if record is None:
            return self.fault(
                QboFault(
                    "610",
                    "Object Not Found",
                    f"Object Not Found : Something you're trying to use has been made inactive "
                    f"or deleted. ({entity} {record_id})",
                )
            )
        return self.ok({entity: record})

    def _write(self, request: httpx.Request, realm: str, segment: str) -> httpx.Response:
        company = self.companies[realm]
        entity = ENTITY_BY_SEGMENT[segment.lower()]
        request_id = request.url.params.get("requestid")
        remembered = company.request_ids.get(request_id or "")
        if remembered and remembered[0] > self.now():
            return httpx.Response(
                remembered[1], content=remembered[2], headers={"content-type": "application/json"}
            )
        try:
            body = json.loads(request.content or b"{}", parse_float=Decimal)
            if not isinstance(body, dict):
                raise QboFault(
                    "2010", "Request has invalid or unsupported property", "The body is not an object"
                )
            record = self._apply_write(company, entity, body, request.url.params.get("operation"))
            response = self.ok({entity: record})
        except json.JSONDecodeError:
            response = self.fault(
                QboFault(
                    "2010", "Request has invalid or unsupported property", "Could not parse the request body"
                )
            )
        except QboFault as err:
            response = self.fault(err)
        if request_id:
            company.request_ids[request_id] = (
                self.now() + REQUESTID_MEMORY,
                response.status_code,
                response.content,
            )
        return response

    def _apply_write(
        self, company: Company, entity: str, body: dict[str, Any], operation: str | None
    ) -> dict[str, Any]:
        unknown = sorted(set(body) - WRITABLE_FIELDS[entity])
        if unknown:
            raise QboFault(
                "2010",
                "Request has invalid or unsupported property",
                f'Property Name:Unrecognized field "{unknown[0]}" (class '
                f"com.intuit.schema.finance.v3.{entity}), not marked as ignorable specified is "
                f"unsupported or invalid",
            )
        if operation == "delete":
            if entity not in TRANSACTIONS:
                raise QboFault(
                    "500", "Unsupported Operation", f"Operation delete is not supported for {entity}"
                )
            current = self._current(company, entity, body)
            self.delete_record(company.realm_id, entity, current["Id"])
            return {"status": "Deleted", "domain": "QBO", "Id": current["Id"]}
        if operation:
            raise QboFault("500", "Unsupported Operation", f"Operation {operation} is not supported")
        if entity == "Item" and (
            body.get("Type") == "Group"
            or (body.get("Id") and (company.find("Item", body["Id"]) or {}).get("Type") == "Group")
        ):
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: Bundle (Group) items can't be created or changed through "
                "the API.",
            )
        if "Id" not in body:
            return self._insert(company, entity, self._validate(company, entity, body))
        if entity in ("JournalEntry", "InventoryAdjustment"):
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                f"Business Validation Error: the sandbox supports create and delete of {entity}, not update.",
            )
        current = self._current(company, entity, body)
        merged = {**current, **body} if body.get("sparse") else {**body, "Id": current["Id"]}
        return self._replace(current, self._validate(company, entity, merged))

    def _current(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        current = company.find(entity, str(body.get("Id", "")))
        if current is None:
            raise QboFault("610", "Object Not Found", f"Object Not Found : {entity} {body.get('Id')}")
        if str(body.get("SyncToken")) != current["SyncToken"]:
            raise QboFault(
                "5010",
                "Stale Object Error",
                f"Stale Object Error : You and another user were working on the same thing. "
                f"SyncToken {body.get('SyncToken')} is not current ({current['SyncToken']}).",
            )
        return current

    # ---- validation of API writes ---------------------------------------------------------------
    def _validate(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        if entity == "JournalEntry":
            return self._journal_entry(company, body)
        if entity == "InventoryAdjustment":
            return self._inventory_adjustment(company, body)
        return self.normalize(company, entity, body)

    def _txn_date(self, company: Company, body: dict[str, Any]) -> date:
        try:
            when = date.fromisoformat(str(body["TxnDate"])) if body.get("TxnDate") else self.today()
        except ValueError:
            raise QboFault(
                "2010",
                "Request has invalid or unsupported property",
                f"TxnDate {body['TxnDate']!r} is not a date",
            ) from None
        if company.closing_date and when <= company.closing_date:
            raise QboFault(
                "6210",
                "Account Period Closed",
                f"The account period has closed and the books are closed as of "
                f"{company.closing_date.isoformat()}. Date entered must be after the closing date.",
            )
        return when

    def _active_ref(self, company: Company, entity: str, ref: Any, field_name: str) -> dict[str, Any]:
        ref_id = str(ref.get("value", "")) if isinstance(ref, dict) else ""
        if not ref_id:
            raise _required(field_name)
        record = company.find(entity, ref_id)
        if record is None:
            raise _invalid_reference(f"{entity}s" if entity == "Account" else entity, ref_id)
        if not record.get("Active", True):
            raise _inactive(f"{entity} {ref_id}")
        return record

    def _journal_entry(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        when = self._txn_date(company, body)
        lines = body.get("Line")
        if not isinstance(lines, list) or not lines:
            raise _required("Line")
        totals = {"Debit": Decimal(0), "Credit": Decimal(0)}
        built = []
        for number, raw in enumerate(lines):
            detail = raw.get("JournalEntryLineDetail")
            if raw.get("DetailType") != "JournalEntryLineDetail" or not isinstance(detail, dict):
                raise _required("Line.JournalEntryLineDetail")
            posting = detail.get("PostingType")
            if posting not in totals:
                raise QboFault(
                    "2010",
                    "Request has invalid or unsupported property",
                    f"PostingType {posting!r} must be Debit or Credit",
                )
            amount = decimal(raw.get("Amount", 0))
            if amount <= 0:
                raise _business_error("Journal entry line amounts must be positive.")
            account = self._active_ref(company, "Account", detail.get("AccountRef"), "AccountRef")
            entity = self._line_entity(company, detail.get("Entity"), account)
            totals[posting] += amount
            built.append(
                {
                    **raw,
                    "Id": str(number),
                    "Amount": amount,
                    "JournalEntryLineDetail": {
                        **detail,
                        "AccountRef": {"value": account["Id"], "name": account["Name"]},
                        **({"Entity": entity} if entity else {}),
                    },
                }
            )
        if totals["Debit"] != totals["Credit"]:
            raise _business_error(
                "You can't save an unbalanced journal entry: debits must equal credits "
                f"(debits {totals['Debit']}, credits {totals['Credit']})."
            )
        return {
            **body,
            "TxnDate": when.isoformat(),
            "Line": built,
            "TotalAmt": totals["Debit"],
            "Adjustment": bool(body.get("Adjustment", False)),
            "domain": "QBO",
            "sparse": False,
            "CurrencyRef": body.get("CurrencyRef") or {"value": company.home_currency},
        }

    def _line_entity(self, company: Company, entity: Any, account: dict[str, Any]) -> dict[str, Any] | None:
        """The line's Name (Entity) with the name filled in; refused when the account needs one of a kind
        the line doesn't carry, or when it names no active vendor / customer."""
        wanted = NAME_REQUIRED.get(str(account.get("AccountType")))
        kind = entity.get("Type") if isinstance(entity, dict) else None
        if wanted and kind != wanted:
            ledger, party = account["AccountType"], wanted.lower()
            raise _business_error(f"When you use {ledger}, you must choose a {party} in the Name field.")
        if entity is None:
            return None
        if kind not in ("Vendor", "Customer"):
            raise QboFault(
                "2010",
                "Request has invalid or unsupported property",
                f"Entity Type {kind!r} must be Vendor or Customer",
            )
        record = self._active_ref(company, str(kind), entity.get("EntityRef"), "Entity.EntityRef")
        return {"Type": kind, "EntityRef": {"value": record["Id"], "name": record.get("DisplayName", "")}}

    def _inventory_adjustment(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        if company.country != "US" or company.plan not in ("Plus", "Advanced"):
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: Inventory adjustments need QuickBooks Online Plus or "
                f"Advanced in the US (this company: {company.plan}, {company.country}).",
            )
        if not company.inventory_tracking:
            raise _business_error("Turn on inventory tracking (track quantity on hand) to adjust inventory.")
        when = self._txn_date(company, body)
        account = self._active_ref(company, "Account", body.get("AdjustAccountRef"), "AdjustAccountRef")
        lines = body.get("Line")
        if not isinstance(lines, list) or not lines:
            raise _required("Line")
        built = []
        for number, raw in enumerate(lines, 1):
            detail = raw.get("ItemAdjustmentLineDetail")
            if raw.get("DetailType") != "ItemAdjustmentLineDetail" or not isinstance(detail, dict):
                raise _required("Line.ItemAdjustmentLineDetail")
            item = self._active_ref(company, "Item", detail.get("ItemRef"), "ItemRef")
            if item.get("Type") != "Inventory" or not item.get("TrackQtyOnHand"):
                raise _business_error(
                    f"Item {item['Name']} is not an inventory item that tracks quantity on hand."
                )
            if ("QtyDiff" in detail) == ("NewQty" in detail):
                raise _business_error("Each adjustment line needs exactly one of QtyDiff or NewQty.")
            if item.get("InvStartDate") and when < date.fromisoformat(item["InvStartDate"]):
                raise _business_error(f"The adjustment date is before the start date of item {item['Name']}.")
            quantity = {k: decimal(detail[k]) for k in ("QtyDiff", "NewQty") if k in detail}
            built.append(
                {
                    "Id": str(number),
                    "DetailType": "ItemAdjustmentLineDetail",
                    "ItemAdjustmentLineDetail": {
                        **detail,
                        **quantity,
                        "ItemRef": {"value": item["Id"], "name": item["Name"]},
                    },
                }
            )
        return {
            **body,
            "TxnDate": when.isoformat(),
            "Line": built,
            "domain": "QBO",
            "sparse": False,
            "AdjustAccountRef": {"value": account["Id"], "name": account["Name"]},
            "DocNumber": body.get("DocNumber") or str(company.next_ids["InventoryAdjustment"] + 1),
        }

    def _apply_stock(self, company: Company, adjustment: dict[str, Any]) -> None:
        diffs = []
        for line in adjustment["Line"]:
            detail = line["ItemAdjustmentLineDetail"]
            item = company.records["Item"][detail["ItemRef"]["value"]]
            on_hand = decimal(item.get("QtyOnHand", 0))
            diff = detail["NewQty"] - on_hand if "NewQty" in detail else detail["QtyDiff"]
            diffs.append((item["Id"], diff))
            self._touch(item, {"QtyOnHand": on_hand + diff})
        company.stock_moves[adjustment["Id"]] = diffs

    def _reverse_stock(self, company: Company, adjustment_id: str) -> None:
        for item_id, diff in company.stock_moves.pop(adjustment_id, []):
            item = company.records["Item"][item_id]
            self._touch(item, {"QtyOnHand": decimal(item.get("QtyOnHand", 0)) - diff})

    @staticmethod
    def _item_details(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The SalesItemLineDetail of every line that names an item, bundle components included."""
        for line in document.get("Line", []):
            if line.get("DetailType") == "SalesItemLineDetail":
                yield line["SalesItemLineDetail"]
            elif line.get("DetailType") == "GroupLineDetail":
                for component in line["GroupLineDetail"].get("Line", []):
                    if component.get("DetailType") == "SalesItemLineDetail":
                        yield component["SalesItemLineDetail"]

    def _sale_effect(self, company: Company, entity: str, document: dict[str, Any]) -> dict[str, Decimal]:
        """Item id -> the QtyOnHand change the document makes (STOCK_SIGN); only tracked Inventory items."""
        effect: dict[str, Decimal] = {}
        for detail in self._item_details(document):
            item = company.find("Item", str(detail.get("ItemRef", {}).get("value", "")))
            if item is None or item.get("Type") != "Inventory" or not item.get("TrackQtyOnHand"):
                continue  # services, non-inventory items and untracked items have no quantity
            change = STOCK_SIGN[entity] * decimal(detail.get("Qty", 0))
            effect[item["Id"]] = effect.get(item["Id"], Decimal(0)) + change
        return {item_id: change for item_id, change in effect.items() if change}

    def _restock(self, company: Company, entity: str, document: dict[str, Any]) -> None:
        """Brings the items' QtyOnHand to what ``document`` as it now stands implies: the change from what
        it moved before (nothing for a new document) is applied, and the item's SyncToken and
        LastUpdatedTime move with it as for an inventory adjustment (QtyOnHand is a stored Item property:
        UNSURE whether QBO bumps the item's SyncToken and LastUpdatedTime on a sale, the sandbox does, as it
        does for adjustments). The item is stamped at the document's own LastUpdatedTime (a back-dated
        seeded document moves its items at that time too), never earlier than the item's last change."""
        key = (entity, document["Id"])
        before = company.sale_moves.pop(key, {})
        after = self._sale_effect(company, entity, document)
        stamp = document.get("MetaData", {}).get("LastUpdatedTime") or self.stamp()
        for item_id in sorted(set(before) | set(after), key=int):
            delta = after.get(item_id, Decimal(0)) - before.get(item_id, Decimal(0))
            item = company.find("Item", item_id)
            if not delta or item is None:
                continue
            current = item["MetaData"]["LastUpdatedTime"]
            later = max(current, stamp, key=datetime.fromisoformat)
            self._touch(item, {"QtyOnHand": decimal(item.get("QtyOnHand", 0)) + delta}, later)
        if after:
            company.sale_moves[key] = after

    # ---- records: normalize, insert, replace ----------------------------------------------------
    def normalize(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """A full record from a (possibly partial) body: names on refs, defaults, derived totals."""
        own_id = body.get("Id")
        record = {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "MetaData")}
        record.update({"domain": "QBO", "sparse": False})
        if entity in NAME_LISTS:
            record.setdefault("Active", True)
        if entity == "Item":
            self._normalize_item(company, record, own_id)
        elif entity == "Account":
            if not record.get("Name") or record.get("AccountType") not in CLASSIFICATION:
                raise AdminError("an Account needs Name and a known AccountType")
            record.setdefault("Classification", CLASSIFICATION[record["AccountType"]])
            record.setdefault("FullyQualifiedName", record["Name"])
            record.setdefault("CurrencyRef", {"value": company.home_currency})
            record.setdefault("CurrentBalance", Decimal(0))
            record.setdefault("SubAccount", False)
        elif entity in ("Vendor", "Customer"):
            if not record.get("DisplayName"):
                raise _required("DisplayName")
            self._check_unique(company, ("Vendor", "Customer"), "DisplayName", record["DisplayName"], own_id)
            record.setdefault("CurrencyRef", {"value": company.home_currency})
            record.setdefault("Balance", Decimal(0))
            if entity == "Customer":
                record.setdefault("FullyQualifiedName", record["DisplayName"])
        elif entity in SALES_DOCS:
            self._normalize_sales_doc(company, entity, record)
        return record

    def _check_unique(
        self, company: Company, entities: tuple[str, ...], key: str, value: str, own_id: Any
    ) -> None:
        for entity in entities:
            for record in company.records[entity].values():
                if record.get(key, "").lower() == value.lower() and record["Id"] != str(own_id):
                    raise QboFault(
                        "6240",
                        "Duplicate Name Exists Error",
                        f"The name supplied already exists. : Another {entity} is already using this "
                        f"name. Please use a different name. (Id={record['Id']})",
                    )

    def _ref(self, company: Company, entity: str, ref: Any, name_key: str = "Name") -> dict[str, str]:
        ref_id = str(ref.get("value", "")) if isinstance(ref, dict) else str(ref or "")
        record = company.find(entity, ref_id)
        if record is None:
            raise _invalid_reference(entity, ref_id)
        return {"value": ref_id, "name": record.get(name_key, "")}

    def _normalize_item(self, company: Company, record: dict[str, Any], own_id: Any) -> None:
        name = str(record.get("Name", ""))
        if not name or any(c in name for c in ":\t\n"):
            raise QboFault(
                "2050",
                "String length is either shorter or longer than supported by specification",
                "Name is required and can't contain a colon, tab or newline",
            )
        self._check_unique(company, ("Item",), "Name", name, own_id)
        kind = record.get("Type")
        if kind not in ("Inventory", "NonInventory", "Service", "Group", "Category"):
            raise _required("Type")
        if kind == "Inventory" and not (company.inventory_tracking and company.plan in ("Plus", "Advanced")):
            raise _business_error(
                "Inventory items need QuickBooks Online Plus or Advanced with quantity tracking turned on."
            )
        record.setdefault("FullyQualifiedName", name)
        for key in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef"):
            if key in record:
                record[key] = self._ref(company, "Account", record[key])
        if kind == "Inventory":
            missing = [
                k
                for k in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef", "InvStartDate")
                if k not in record
            ]
            if missing:
                raise _required(missing[0])
            record.setdefault("TrackQtyOnHand", True)
            record["QtyOnHand"] = decimal(record.get("QtyOnHand", 0))
        else:
            record["TrackQtyOnHand"] = False
        if kind == "Group":
            lines = record.get("ItemGroupDetail", {}).get("ItemGroupLine", [])
            record["ItemGroupDetail"] = {
                "ItemGroupLine": [
                    {
                        "ItemRef": {**self._ref(company, "Item", line["ItemRef"]), "type": "Item"},
                        "Qty": decimal(line.get("Qty", 1)),
                    }
                    for line in lines
                ]
            }
            record.setdefault("PrintGroupedItems", False)
        for key in ("UnitPrice", "PurchaseCost"):
            record[key] = decimal(record.get(key, 0))

    def _normalize_sales_doc(self, company: Company, entity: str, record: dict[str, Any]) -> None:
        record["CustomerRef"] = self._ref(company, "Customer", record.get("CustomerRef"), "DisplayName")
        record.setdefault("TxnDate", self.today().isoformat())
        record.setdefault("DocNumber", str(1001 + len(company.records[entity])))
        currency = record.get("CurrencyRef") or {"value": company.home_currency}
        code = currency["value"]
        record["CurrencyRef"] = {"value": code, "name": currency.get("name", CURRENCY_NAMES.get(code, code))}
        self._ledger_refs(company, entity, record)
        lines: list[dict[str, Any]] = []
        discounts = [copy.deepcopy(r) for r in record.get("Line", []) if r.get("DetailType") == DISCOUNT]
        for raw in record.get("Line", []):
            if raw.get("DetailType") in ("SubTotalLineDetail", DISCOUNT):
                continue  # recomputed below
            line = copy.deepcopy(raw)
            if line.get("DetailType") == "SalesItemLineDetail":
                self._sales_line(company, line)
            elif line.get("DetailType") == "GroupLineDetail":
                self._group_line(company, line)
            line["Amount"] = decimal(line.get("Amount", 0))
            lines.append({"Id": str(len(lines) + 1), "LineNum": len(lines) + 1, **line})
        subtotal = sum((line["Amount"] for line in lines), Decimal(0))
        lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        if len(discounts) > 1:
            raise _business_error("A transaction can have only one discount line.")
        off = Decimal(0)
        for discount in discounts:  # after the subtotal, it discounts the subtotal; TotalAmt is after it
            off = self._discount_line(discount, subtotal)
            lines.append(discount)
        total = subtotal - off
        record["Line"] = lines
        record["TotalAmt"] = total
        if "ExchangeRate" in record:
            record["ExchangeRate"] = decimal(record["ExchangeRate"])
            record["HomeTotalAmt"] = (total * record["ExchangeRate"]).quantize(Decimal("0.01"))
        if entity == "Invoice":
            record["Balance"] = total
        elif entity == "CreditMemo":
            record["RemainingCredit"] = total

    def _ledger_refs(self, company: Company, entity: str, record: dict[str, Any]) -> None:
        """The account a sales document's total goes to. Intuit's SalesReceipt reference,
        DepositToAccountRef: the account the payment is deposited to, Undeposited Funds when none is given;
        RefundReceipt reference: DepositToAccountRef (the account the refund is paid from) is required.
        Invoices and credit memos go to Accounts Receivable (ARAccountRef, optional: the company's A/R
        account by default; Intuit Invoice reference)."""
        for key in ("DepositToAccountRef", "ARAccountRef"):
            if record.get(key):
                record[key] = self._ref(company, "Account", record[key])
        if entity == "RefundReceipt" and not record.get("DepositToAccountRef"):
            raise _required("DepositToAccountRef")
        if entity == "SalesReceipt" and not record.get("DepositToAccountRef"):
            undeposited = next(
                (
                    a
                    for a in company.records["Account"].values()
                    if a.get("AccountSubType") == "UndepositedFunds"
                ),
                None,
            )
            if undeposited is not None:  # a company without one: the report shows a bare "Undeposited Funds"
                record["DepositToAccountRef"] = {"value": undeposited["Id"], "name": undeposited["Name"]}

    @staticmethod
    def _discount_line(line: dict[str, Any], subtotal: Decimal) -> Decimal:
        """A ``DiscountLineDetail`` line as QBO keeps it: ``PercentBased`` with ``DiscountPercent`` (its
        ``Amount`` the percentage of the subtotal, rounded to the cent half up) or a flat ``Amount``
        (Intuit Invoice reference, DiscountLineDetail; provider facts qbo.md section 7 "Discounts")."""
        detail = line.setdefault("DiscountLineDetail", {})
        if detail.get("PercentBased"):
            percent = decimal(detail.get("DiscountPercent", 0))
            detail["DiscountPercent"] = percent
            amount = (subtotal * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        else:
            detail["PercentBased"] = False
            amount = decimal(line.get("Amount", 0)).quantize(CENT, rounding=ROUND_HALF_UP)
        if amount < 0 or amount > subtotal:
            raise _business_error("A discount must be between zero and the subtotal it applies to.")
        line["Amount"] = amount
        return amount

    def _sales_line(self, company: Company, line: dict[str, Any]) -> None:
        detail = line["SalesItemLineDetail"]
        item = company.find("Item", str(detail.get("ItemRef", {}).get("value", "")))
        if item is None:
            raise _invalid_reference("Item", str(detail.get("ItemRef")))
        detail["ItemRef"] = {"value": item["Id"], "name": item["Name"]}
        detail["Qty"] = decimal(detail.get("Qty", 1))
        detail["UnitPrice"] = decimal(detail.get("UnitPrice", item.get("UnitPrice", 0)))
        line.setdefault("Amount", (detail["Qty"] * detail["UnitPrice"]).quantize(Decimal("0.01")))

    def _group_line(self, company: Company, line: dict[str, Any]) -> None:
        detail = line["GroupLineDetail"]
        group = company.find("Item", str(detail.get("GroupItemRef", {}).get("value", "")))
        if group is None or group.get("Type") != "Group":
            raise _invalid_reference("Item", str(detail.get("GroupItemRef")))
        detail["GroupItemRef"] = {"value": group["Id"], "name": group["Name"]}
        detail["Quantity"] = decimal(detail.get("Quantity", 1))
        if "Line" not in detail:
            detail["Line"] = [
                {
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {
                        "ItemRef": part["ItemRef"],
                        "Qty": part["Qty"] * detail["Quantity"],
                    },
                }
                for part in group["ItemGroupDetail"]["ItemGroupLine"]
            ]
        for component in detail["Line"]:
            self._sales_line(company, component)
            component["Amount"] = decimal(component["Amount"])
        line.setdefault("Amount", sum((c["Amount"] for c in detail["Line"]), Decimal(0)))

    def _insert(
        self, company: Company, entity: str, record: dict[str, Any], metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        stamp = self.stamp()
        record = {
            "Id": company.new_id(entity),
            "SyncToken": "0",
            **record,
            "MetaData": metadata or {"CreateTime": stamp, "LastUpdatedTime": stamp},
        }
        company.records[entity][record["Id"]] = record
        if entity == "InventoryAdjustment":
            self._apply_stock(company, record)
        if entity in SALES_DOCS:
            self._restock(company, entity, record)
        if entity == "Item" and record.get("Type") == "Inventory" and record.get("InvStartDate"):
            # QBO books an item created with a quantity as its "Inventory Starting Value" on InvStartDate
            value = cents(decimal(record.get("QtyOnHand", 0)) * decimal(record.get("PurchaseCost", 0)))
            company.openings[record["Id"]] = (date.fromisoformat(str(record["InvStartDate"])), value)
        return record

    def _replace(self, current: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        """Swaps a record's content for ``record``, keeping its Id and creation time."""
        fresh = {k: v for k, v in record.items() if k not in ("Id", "SyncToken", "MetaData")}
        for key in set(current) - {"Id", "SyncToken", "MetaData"} - set(fresh):
            del current[key]
        return self._touch(current, fresh)

    def _touch(
        self, record: dict[str, Any], changes: dict[str, Any], stamp: str | None = None
    ) -> dict[str, Any]:
        """Applies changes in place, bumping SyncToken and LastUpdatedTime as QBO does on every change."""
        record.update(changes)
        record["SyncToken"] = str(int(record["SyncToken"]) + 1)
        record["MetaData"] = {**record["MetaData"], "LastUpdatedTime": stamp or self.stamp()}
        return record

    # ---- admin: Python API ----------------------------------------------------------------------
    def company(self, realm_id: str) -> Company:
        try:
            return self.companies[realm_id]
        except KeyError:
            raise AdminNotFound(f"no company with realm id {realm_id}") from None

    @staticmethod
    def entity_name(entity: str) -> str:
        try:
            return ENTITY_BY_SEGMENT[entity.lower()]
        except KeyError:
            raise AdminError(f"unknown entity {entity!r}") from None

    def add_company(
        self,
        name: str,
        *,
        realm_id: str | None = None,
        country: str = "US",
        plan: str = "Plus",
        inventory_tracking: bool = True,
        closing_date: date | None = None,
        home_currency: str = "USD",
    ) -> Company:
        if plan not in PLANS:
            raise AdminError(f"plan must be one of {PLANS}")
        with self.lock:
            realm = realm_id or str(9130350000000000 + len(self.companies) + 101)
            if realm in self.companies:
                raise AdminError(f"realm {realm} already exists")
            company = Company(
                realm, name, country, plan, inventory_tracking, closing_date, home_currency, self.now()
            )
            self.companies[realm] = company
            return company

    def update_company(self, realm_id: str, **settings: Any) -> Company:
        """Changes closing_date, plan, country or inventory_tracking (other keys are refused)."""
        allowed = {"closing_date", "plan", "country", "inventory_tracking", "name"}
        if set(settings) - allowed or settings.get("plan", "Plus") not in PLANS:
            raise AdminError(f"settings must be among {sorted(allowed)} with plan in {PLANS}")
        with self.lock:
            company = self.company(realm_id)
            for key, value in settings.items():
                setattr(company, key, value)
            return company

    def add_user(self, username: str, password: str, realm_ids: list[str]) -> User:
        with self.lock:
            for realm in realm_ids:
                self.company(realm)
            user = User(username, password, list(realm_ids))
            self.users[username] = user
            return user

    def create_record(self, realm_id: str, entity: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Seeds any entity the way QBO's UI would (Groups included); MetaData may be back-dated."""
        name = self.entity_name(entity)
        with self.lock:
            company = self.company(realm_id)
            body = _plain(fields)
            metadata = body.pop("MetaData", None)
            try:
                record = (
                    self._validate(company, name, body)
                    if name in ("JournalEntry", "InventoryAdjustment")
                    else self.normalize(company, name, body)
                )
            except QboFault as err:
                raise AdminError(err.detail) from err
            return self._insert(company, name, record, metadata)

    def get_record(self, realm_id: str, entity: str, record_id: str) -> dict[str, Any]:
        with self.lock:
            record = self.company(realm_id).find(self.entity_name(entity), record_id)
            if record is None:
                raise AdminNotFound(f"no {entity} {record_id} in {realm_id}")
            return record

    def list_records(self, realm_id: str, entity: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.company(realm_id).records[self.entity_name(entity)].values())

    def edit_record(
        self, realm_id: str, entity: str, record_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        name = self.entity_name(entity)
        with self.lock:
            company = self.company(realm_id)
            current = self.get_record(realm_id, name, record_id)
            if name in TRANSACTIONS and name not in SALES_DOCS:
                raise AdminError(f"{name} can be deleted, not edited")
            merged = {**copy.deepcopy(current), **_plain(changes)}
            try:
                record = self._replace(current, self.normalize(company, name, merged))
            except QboFault as err:
                raise AdminError(err.detail) from err
            if name in SALES_DOCS:
                self._restock(company, name, record)  # an edit moves the difference
            return record

    def void_record(self, realm_id: str, entity: str, record_id: str) -> dict[str, Any]:
        """Voids a sales document the way QBO shows it: kept, amounts and quantities 0, note prefixed."""
        name = self.entity_name(entity)
        if name not in SALES_DOCS:
            raise AdminError("only Invoice, SalesReceipt, CreditMemo and RefundReceipt can be voided")
        with self.lock:
            company = self.company(realm_id)
            record = self.get_record(realm_id, name, record_id)
            for line in record["Line"]:
                line["Amount"] = Decimal(0)
                details = [line.get("SalesItemLineDetail")]
                group = line.get("GroupLineDetail")
                if group:
                    group["Quantity"] = Decimal(0)
                    for component in group["Line"]:
                        component["Amount"] = Decimal(0)
                        details.append(component["SalesItemLineDetail"])
                for detail in filter(None, details):
                    detail["Qty"] = Decimal(0)
            note = record.get("PrivateNote", "")
            changes: dict[str, Any] = {
                "TotalAmt": Decimal(0),
                "LinkedTxn": [],
                "PrivateNote": f"Voided - {note}" if note else "Voided",
            }
            for key in ("Balance", "HomeTotalAmt", "RemainingCredit"):
                if key in record:
                    changes[key] = Decimal(0)
            self._touch(record, changes)
            self._restock(company, name, record)  # quantities 0: the stock it moved comes back
            return record

    def delete_record(self, realm_id: str, entity: str, record_id: str) -> None:
        """Deletes a transaction: gone from reads and queries, a Deleted entry in CDC for 30 days."""
        name = self.entity_name(entity)
        if name not in TRANSACTIONS:
            raise AdminError(f"{name} is a name list: make it inactive instead")
        with self.lock:
            company = self.company(realm_id)
            record = self.get_record(realm_id, name, record_id)
            if name == "InventoryAdjustment":
                self._reverse_stock(company, record["Id"])
            if name in SALES_DOCS:
                self._restock(company, name, {"Id": record["Id"], "Line": []})  # deleted: moves no stock
            del company.records[name][record["Id"]]
            company.tombstones.append((name, record["Id"], self.now()))

    # ---- admin: HTTP ----------------------------------------------------------------------------
    def _register_admin(self) -> None:
        company = r"/_admin/companies/(?P<realm>[^/]+)"
        entity = rf"(?P<segment>{ENTITY_SEGMENTS})"
        self.route("POST", "/_admin/companies")(self._admin(self._admin_add_company, 201))
        self.route("GET", "/_admin/companies")(
            self._admin(lambda request: [c.summary() for c in self.companies.values()])
        )
        self.route("POST", "/_admin/users")(self._admin(self._admin_add_user, 201))
        self.route("POST", company + "/revoke")(
            self._admin(
                lambda request, realm: {"revoked_grants": self.revoke_realm(self.company(realm).realm_id)}
            )
        )
        self.route("POST", company + "/settings")(self._admin(self._admin_settings))
        self.route("POST", company + "/" + entity)(
            self._admin(
                lambda request, realm, segment: self.create_record(realm, segment, json_body(request) or {}),
                201,
            )
        )
        self.route("GET", company + "/" + entity)(
            self._admin(lambda request, realm, segment: {"items": self.list_records(realm, segment)})
        )
        self.route("GET", company + "/" + entity + r"/(?P<record_id>[^/]+)")(
            self._admin(lambda request, realm, segment, record_id: self.get_record(realm, segment, record_id))
        )
        self.route("POST", company + "/" + entity + r"/(?P<record_id>[^/]+)/(?P<action>edit|void|delete)")(
            self._admin(self._admin_change)
        )

    def _admin(self, handler: Callable[..., Any], status: int = 200) -> Callable[..., httpx.Response]:
        def run(request: httpx.Request, **groups: str) -> httpx.Response:
            try:
                return json_response(status, _wire(handler(request, **groups)))
            except AdminError as err:
                return json_response(404 if isinstance(err, AdminNotFound) else 400, {"error": str(err)})
            except (KeyError, TypeError, ValueError) as err:
                return json_response(400, {"error": f"bad request: {err}"})

        return run

    @staticmethod
    def _settings(body: dict[str, Any]) -> dict[str, Any]:
        settings = dict(body)
        if settings.get("closing_date"):
            settings["closing_date"] = date.fromisoformat(settings["closing_date"])
        return settings

    def _admin_add_company(self, request: httpx.Request) -> dict[str, Any]:
        body = self._settings(json_body(request) or {})
        name = body.pop("name")
        return self.add_company(name, **body).summary()

    def _admin_settings(self, request: httpx.Request, realm: str) -> dict[str, Any]:
        return self.update_company(realm, **self._settings(json_body(request) or {})).summary()

    def _admin_add_user(self, request: httpx.Request) -> dict[str, Any]:
        body = json_body(request) or {}
        user = self.add_user(body["username"], body["password"], body["realm_ids"])
        return {"username": user.username, "realm_ids": user.realm_ids}

    def _admin_change(
        self, request: httpx.Request, realm: str, segment: str, record_id: str, action: str
    ) -> dict[str, Any]:
        if action == "edit":
            return self.edit_record(realm, segment, record_id, json_body(request) or {})
        if action == "void":
            return self.void_record(realm, segment, record_id)
        self.delete_record(realm, segment, record_id)
        return {"deleted": record_id}
