"""Behaviour of the Xero sandbox, driven through httpx as a real client would."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from infra.sandboxes.common import serve
from infra.sandboxes.xero import XeroSandbox
from infra.sandboxes.xero_admin import AdminError
from infra.sandboxes.xero_books import build
from infra.sandboxes.xero_demo import (
    AU_TENANT_ID,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_REDIRECT_URI,
    DEMO_USERNAME,
    NZ_TENANT_ID,
    demo_id,
)

BASE = "http://xero.sandbox"
SCOPE = (
    "offline_access accounting.settings.read accounting.invoices accounting.manualjournals "
    "accounting.contacts"
)
API = "/api.xro/2.0"


@pytest.fixture
def sandbox() -> XeroSandbox:
    return XeroSandbox(seed=True)


@pytest.fixture
def client(sandbox: XeroSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(transport=sandbox.transport(), base_url=BASE) as c:
        yield c


def authorize_url(**overrides: str) -> str:
    params = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": DEMO_REDIRECT_URI,
        "scope": SCOPE,
        "state": "st-123",
        **overrides,
    }
    return "/identity/connect/authorize?" + urlencode(params)


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern} not in page"
    return match.group(1)


def consent(
    client: httpx.Client, tenants: list[str], action: str = "allow", **overrides: str
) -> httpx.Response:
    """Walks the HTML form: login page, login POST, organisation picker, Allow/Deny."""
    page = client.get(authorize_url(**overrides))
    assert page.status_code == 200 and 'name="password"' in page.text
    action_url = found(r'<form method="post" action="([^"]+)"', page.text).replace("&amp;", "&")
    picker = client.post(
        action_url, data={"step": "login", "username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    )
    assert picker.status_code == 200 and "Partsemble Demo (NZ)" in picker.text
    session = found(r'name="session" value="([^"]+)"', picker.text)
    body = urlencode(
        [("step", "consent"), ("session", session), ("action", action)] + [("tenant_id", t) for t in tenants]
    )
    return client.post(
        action_url, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )


def callback_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(DEMO_REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token_request(client: httpx.Client, secret: str = DEMO_CLIENT_SECRET, **form: str) -> httpx.Response:
    return client.post("/connect/token", data=form, auth=(DEMO_CLIENT_ID, secret))


def connect(client: httpx.Client, tenants: list[str] | None = None, **overrides: str) -> dict[str, Any]:
    code = callback_params(consent(client, tenants or [AU_TENANT_ID, NZ_TENANT_ID], **overrides))["code"]
    response = token_request(
        client, grant_type="authorization_code", code=code, redirect_uri=DEMO_REDIRECT_URI
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def api(tokens: dict[str, Any], tenant: str | None = AU_TENANT_ID, **extra: str) -> dict[str, str]:
    headers = {"authorization": f"Bearer {tokens['access_token']}", "accept": "application/json", **extra}
    if tenant:
        headers["xero-tenant-id"] = tenant
    return headers


def claims(tokens: dict[str, Any]) -> dict[str, Any]:
    return jwt.decode(tokens["access_token"], options={"verify_signature": False})


def journal(narration: str = "COGS batch 1", amount: str = "125.50", **fields: Any) -> dict[str, Any]:
    return {
        "Narration": narration,
        "Date": "2026-10-15",
        "LineAmountTypes": "NoTax",
        "JournalLines": [
            {"AccountCode": "310", "LineAmount": float(amount), "Description": "COGS"},
            {"AccountCode": "630", "LineAmount": -float(amount), "Description": "Inventory"},
        ],
        **fields,
    }


# ---- OAuth and connections ---------------------------------------------------------------------------


def test_consent_with_two_orgs_yields_one_token_set_and_exactly_those_connections(
    client: httpx.Client,
) -> None:
    tokens = connect(client)
    assert tokens["expires_in"] == 1800 and tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    token_claims = claims(tokens)
    for name in (
        "nbf",
        "exp",
        "iss",
        "aud",
        "client_id",
        "sub",
        "auth_time",
        "xero_userid",
        "global_session_id",
        "jti",
        "authentication_event_id",
        "scope",
    ):
        assert name in token_claims
    assert token_claims["exp"] - token_claims["nbf"] == 1800
    event = token_claims["authentication_event_id"]
    rows = client.get("/connections", params={"authEventId": event}, headers=api(tokens, None)).json()
    assert sorted(r["tenantId"] for r in rows) == sorted([AU_TENANT_ID, NZ_TENANT_ID])
    assert {r["tenantType"] for r in rows} == {"ORGANISATION"} and {r["authEventId"] for r in rows} == {event}
    assert {r["tenantName"] for r in rows} == {"Partsemble Demo (AU)", "Partsemble Demo (NZ)"}
    for tenant in (AU_TENANT_ID, NZ_TENANT_ID):
        assert client.get(f"{API}/Organisation", headers=api(tokens, tenant)).status_code == 200


def test_a_second_consent_reconnects_the_same_org_and_filters_by_its_auth_event(
    client: httpx.Client, sandbox: XeroSandbox
) -> None:
    first = connect(client, [AU_TENANT_ID])
    before = client.get("/connections", headers=api(first, None)).json()
    assert [r["tenantId"] for r in before] == [AU_TENANT_ID]
    sandbox.clock.advance(3600)
    second = connect(client, [AU_TENANT_ID])
    event = claims(second)["authentication_event_id"]
    after = client.get("/connections", params={"authEventId": event}, headers=api(second, None)).json()
    assert [r["tenantId"] for r in after] == [AU_TENANT_ID]
    assert after[0]["id"] == before[0]["id"] and after[0]["createdDateUtc"] == before[0]["createdDateUtc"]
    assert after[0]["updatedDateUtc"] > before[0]["updatedDateUtc"]
    stale = client.get(
        "/connections",
        params={"authEventId": claims(first)["authentication_event_id"]},
        headers=api(second, None),
    )
    assert stale.json() == []


def test_deny_redirects_with_access_denied_and_state(client: httpx.Client) -> None:
    params = callback_params(consent(client, [AU_TENANT_ID], action="deny"))
    assert params == {"error": "access_denied", "state": "st-123"}


def test_redirect_uri_mismatch_shows_an_error_page_without_redirecting(client: httpx.Client) -> None:
    response = client.get(authorize_url(redirect_uri="http://127.0.0.1:3000/oauth/xero/callback/"))
    assert response.status_code == 400 and "location" not in response.headers
    assert "redirect_uri" in response.text


def test_unknown_scope_is_sent_back_as_invalid_scope(client: httpx.Client) -> None:
    params = callback_params(client.get(authorize_url(scope="offline_access accounting.balancesheets.read")))
    assert params["error"] == "invalid_scope" and params["state"] == "st-123"


@pytest.mark.parametrize("password", ["no", "d\u00e9mo"])  # beyond ASCII: a wrong password, not a crash
def test_wrong_password_shows_the_login_form_again(client: httpx.Client, password: str) -> None:
    response = client.post(
        authorize_url(), data={"step": "login", "username": DEMO_USERNAME, "password": password}
    )
    assert (
        response.status_code == 200 and "incorrect" in response.text and 'name="session"' not in response.text
    )


def test_bad_client_secret_is_invalid_client(client: httpx.Client) -> None:
    code = callback_params(consent(client, [AU_TENANT_ID]))["code"]
    for secret in ("wrong", "wr\u00f6ng"):  # compared as bytes: text beyond ASCII is wrong, not a crash
        response = token_request(
            client, secret, grant_type="authorization_code", code=code, redirect_uri=DEMO_REDIRECT_URI
        )
        assert response.status_code == 401 and response.json() == {"error": "invalid_client"}


def test_codes_are_single_use(client: httpx.Client) -> None:
    code = callback_params(consent(client, [AU_TENANT_ID]))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT_URI}
    assert token_request(client, **form).status_code == 200
    again = token_request(client, **form)
    assert again.status_code == 400 and again.json() == {"error": "invalid_grant"}


def test_codes_expire_after_five_minutes(client: httpx.Client, sandbox: XeroSandbox) -> None:
    code = callback_params(consent(client, [AU_TENANT_ID]))["code"]
    sandbox.clock.advance(301)
    response = token_request(
        client, grant_type="authorization_code", code=code, redirect_uri=DEMO_REDIRECT_URI
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_pkce_verifier_is_checked_at_exchange(client: httpx.Client) -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    form = {"grant_type": "authorization_code", "redirect_uri": DEMO_REDIRECT_URI}
    bad = callback_params(consent(client, [AU_TENANT_ID], **pkce))["code"]
    assert token_request(client, code=bad, code_verifier="x" * 50, **form).status_code == 400
    good = callback_params(consent(client, [AU_TENANT_ID], **pkce))["code"]
    assert token_request(client, code=good, code_verifier=verifier, **form).status_code == 200


def test_without_offline_access_there_is_no_refresh_token(client: httpx.Client) -> None:
    tokens = connect(client, [AU_TENANT_ID], scope="accounting.settings.read")
    assert "refresh_token" not in tokens and tokens["access_token"]


def refresh(client: httpx.Client, token: str) -> httpx.Response:
    return token_request(client, grant_type="refresh_token", refresh_token=token)


def test_refresh_rotates_and_the_previous_token_has_a_30_minute_grace(
    client: httpx.Client, sandbox: XeroSandbox
) -> None:
    first = connect(client)["refresh_token"]
    lost = refresh(client, first).json()["refresh_token"]
    assert lost != first
    sandbox.clock.advance(29 * 60)
    retried = refresh(client, first)  # the first response was "lost": retry with the previous token
    assert retried.status_code == 200
    current = retried.json()["refresh_token"]
    assert current not in (first, lost)
    assert refresh(client, lost).json() == {"error": "invalid_grant"}  # the lost token was replaced
    nxt = refresh(client, current)
    assert nxt.status_code == 200
    assert client.get(f"{API}/Organisation", headers=api(nxt.json())).status_code == 200


def test_the_previous_refresh_token_is_dead_after_the_grace_window(
    client: httpx.Client, sandbox: XeroSandbox
) -> None:
    first = connect(client)["refresh_token"]
    second = refresh(client, first).json()["refresh_token"]
    sandbox.clock.advance(30 * 60 + 1)
    assert refresh(client, first).json() == {"error": "invalid_grant"}
    assert refresh(client, second).status_code == 200


def test_only_the_immediately_previous_token_is_retryable(client: httpx.Client) -> None:
    first = connect(client)["refresh_token"]
    second = refresh(client, first).json()["refresh_token"]
    refresh(client, second)
    assert refresh(client, first).status_code == 400


def test_unused_refresh_tokens_expire_after_60_days(client: httpx.Client, sandbox: XeroSandbox) -> None:
    tokens = connect(client)
    sandbox.clock.advance(59 * 86_400)
    kept = refresh(client, tokens["refresh_token"]).json()["refresh_token"]
    sandbox.clock.advance(60 * 86_400 + 1)
    assert refresh(client, kept).json() == {"error": "invalid_grant"}


def test_revocation_kills_the_grant_and_its_connections(client: httpx.Client) -> None:
    tokens = connect(client)
    response = client.post(
        "/connect/revocation",
        data={"token": tokens["refresh_token"]},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    assert response.status_code == 200
    assert refresh(client, tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    assert client.get("/connections", headers=api(tokens, None)).json() == []
    assert client.get(f"{API}/Organisation", headers=api(tokens)).status_code == 403


def test_delete_connection_uses_the_connection_id(client: httpx.Client) -> None:
    tokens = connect(client)
    rows = client.get("/connections", headers=api(tokens, None)).json()
    au = next(r for r in rows if r["tenantId"] == AU_TENANT_ID)
    by_tenant = client.delete(f"/connections/{AU_TENANT_ID}", headers=api(tokens, None))
    assert by_tenant.status_code == 403 and by_tenant.json()["Detail"] == "AuthenticationUnsuccessful"
    assert client.delete(f"/connections/{au['id']}", headers=api(tokens, None)).status_code == 204
    assert [r["tenantId"] for r in client.get("/connections", headers=api(tokens, None)).json()] == [
        NZ_TENANT_ID
    ]
    assert client.get(f"{API}/Organisation", headers=api(tokens, AU_TENANT_ID)).status_code == 403
    assert client.delete(f"/connections/{au['id']}", headers=api(tokens, None)).status_code == 404
    assert refresh(client, tokens["refresh_token"]).status_code == 200  # NZ is still connected


def test_user_disconnecting_the_app_in_xero_revokes_refresh(client: httpx.Client) -> None:
    tokens = connect(client)
    assert client.post("/_admin/grants/revoke", json={"username": DEMO_USERNAME}).json() == {
        "revoked_grants": 1
    }
    assert refresh(client, tokens["refresh_token"]).json() == {"error": "invalid_grant"}


def test_disconnecting_an_org_removes_its_connection(client: httpx.Client) -> None:
    tokens = connect(client)
    assert client.post(f"/_admin/organisations/{NZ_TENANT_ID}/disconnect").json() == {
        "removed_connections": 1
    }
    assert client.get(f"{API}/Organisation", headers=api(tokens, NZ_TENANT_ID)).status_code == 403
    assert client.get(f"{API}/Organisation", headers=api(tokens, AU_TENANT_ID)).status_code == 200


def test_access_tokens_expire_after_30_minutes(client: httpx.Client, sandbox: XeroSandbox) -> None:
    tokens = connect(client)
    sandbox.clock.advance(1800)
    response = client.get(f"{API}/Organisation", headers=api(tokens))
    assert response.status_code == 401
    body = response.json()
    assert body["Title"] == "Unauthorized" and body["Status"] == 401 and body["Type"] is None
    assert body["Detail"].startswith("TokenExpired: token expired at ") and body["Extensions"] == {}


def test_missing_or_foreign_tenant_is_forbidden(client: httpx.Client, sandbox: XeroSandbox) -> None:
    tokens = connect(client, [AU_TENANT_ID])
    other = sandbox.add_organisation("Someone Else Ltd").tenant_id
    for tenant in (None, NZ_TENANT_ID, other):
        response = client.get(f"{API}/Organisation", headers=api(tokens, tenant))
        assert response.status_code == 403
        assert (
            response.json()["Title"] == "Forbidden"
            and response.json()["Detail"] == "AuthenticationUnsuccessful"
        )


def test_tokens_are_rs256_signed_by_a_key_of_the_discovery_documents_jwks_uri(client: httpx.Client) -> None:
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["issuer"] == "https://identity.xero.com"
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = jwt.PyJWKSet.from_dict(client.get(urlsplit(discovery["jwks_uri"]).path).json())
    tokens = connect(client, scope=f"{SCOPE} openid email", nonce="n-0S6_WzA2Mj")
    unexpired = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}  # the sandbox's clock
    for token, audience in (
        (tokens["access_token"], "https://identity.xero.com/resources"),
        (tokens["id_token"], DEMO_CLIENT_ID),
    ):
        key = keys[jwt.get_unverified_header(token)["kid"]].key
        verified = jwt.decode(
            token, key, algorithms=["RS256"], audience=audience, issuer=discovery["issuer"], options=unexpired
        )
        assert verified["sub"] and verified["auth_time"]
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert id_claims["nonce"] == "n-0S6_WzA2Mj" and id_claims["email"] == DEMO_USERNAME


def test_a_token_signed_by_another_sandbox_is_refused(client: httpx.Client) -> None:
    other = XeroSandbox(seed=True)
    with httpx.Client(transport=other.transport(), base_url=BASE) as elsewhere:
        foreign = connect(elsewhere)
    refused = client.get("/connections", headers={"authorization": f"Bearer {foreign['access_token']}"})
    assert refused.status_code == 401 and refused.json()["Detail"] == "AuthenticationUnsuccessful"


# ---- accounting reads --------------------------------------------------------------------------------


@pytest.fixture
def tokens(client: httpx.Client) -> dict[str, Any]:
    return connect(client)


def test_organisation_shows_lock_dates_and_currency(client: httpx.Client, tokens: dict[str, Any]) -> None:
    body = client.get(f"{API}/Organisation", headers=api(tokens)).json()
    assert body["Status"] == "OK" and re.fullmatch(r"/Date\(\d+\)/", body["DateTimeUTC"])
    org = body["Organisations"][0]
    assert (
        org["Name"] == "Partsemble Demo (AU)" and org["BaseCurrency"] == "AUD" and org["CountryCode"] == "AU"
    )
    assert org["PeriodLockDate"] == "/Date(1782777600000+0000)/"  # 2026-06-30


def test_an_organisation_moves_to_another_of_xeros_time_zones_only(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    sandbox.set_timezone(AU_TENANT_ID, "CENTRALSTANDARDTIME(MEXICO)")
    org = client.get(f"{API}/Organisation", headers=api(tokens)).json()["Organisations"][0]
    assert org["Timezone"] == "CENTRALSTANDARDTIME(MEXICO)"
    with pytest.raises(AdminError):  # the display name is no value of the spec's TimeZone enum
        sandbox.set_timezone(AU_TENANT_ID, "Central Standard Time (Mexico)")


def test_accounts_where_filter(client: httpx.Client, tokens: dict[str, Any]) -> None:
    where = 'Status=="ACTIVE" AND Type=="BANK"'
    rows = client.get(f"{API}/Accounts", params={"where": where}, headers=api(tokens)).json()["Accounts"]
    assert [r["Code"] for r in rows] == ["090"]
    archived = client.get(
        f"{API}/Accounts", params={"where": 'Status=="ARCHIVED"'}, headers=api(tokens)
    ).json()
    assert [r["Code"] for r in archived["Accounts"]] == ["639"]
    bad = client.get(f"{API}/Accounts", params={"where": 'Status=="ACTIVE" AND'}, headers=api(tokens))
    assert bad.status_code == 400


def test_an_account_is_created_updated_and_deleted_as_the_spec_describes(
    client: httpx.Client, sandbox: XeroSandbox
) -> None:
    """xero-python's create_account (PUT /Accounts, one Account), update_account (POST /Accounts/{id}) and
    delete_account (DELETE, the account answered with Status DELETED); a system account or one in use is
    not deleted, nor archived; a duplicate name is Xero's "Please enter a unique Name."."""
    tokens = connect(client, scope="offline_access accounting.settings accounting.manualjournals")
    new = {"Code": "635", "Name": "Consigned Stock", "Type": "CURRENT"}
    created = client.put(f"{API}/Accounts", json=new, headers=api(tokens))
    assert created.status_code == 200, created.text
    account = created.json()["Accounts"][0]
    assert (account["Status"], account["Class"]) == ("ACTIVE", "ASSET")
    duplicate = client.put(f"{API}/Accounts", json={**new, "Code": "636"}, headers=api(tokens))
    assert duplicate.json()["Elements"][0]["ValidationErrors"] == [{"Message": "Please enter a unique Name."}]
    two = client.put(
        f"{API}/Accounts",
        json={"Accounts": [{**new, "Code": "7"}, {**new, "Code": "8"}]},
        headers=api(tokens),
    )
    assert two.status_code == 400
    assert client.post(f"{API}/Accounts", json=new, headers=api(tokens)).status_code == 405
    bank = client.put(
        f"{API}/Accounts", json={"Code": "091", "Name": "Cheque", "Type": "BANK"}, headers=api(tokens)
    )
    assert bank.status_code == 400
    url = f"{API}/Accounts/{account['AccountID']}"
    archived = client.post(url, json={"Accounts": [{"Status": "ARCHIVED"}]}, headers=api(tokens))
    assert archived.json()["Accounts"][0]["Status"] == "ARCHIVED"
    receivable = demo_id(AU_TENANT_ID, "account", "610")
    system = client.post(
        f"{API}/Accounts/{receivable}", json={"Accounts": [{"Status": "ARCHIVED"}]}, headers=api(tokens)
    )
    assert system.status_code == 400
    assert client.delete(f"{API}/Accounts/{receivable}", headers=api(tokens)).status_code == 400
    used = demo_id(AU_TENANT_ID, "account", "310")  # on items and journals
    assert client.delete(f"{API}/Accounts/{used}", headers=api(tokens)).status_code == 400
    deleted = client.delete(url, headers=api(tokens))
    assert deleted.status_code == 200 and deleted.json()["Accounts"][0]["Status"] == "DELETED"
    codes = [a["Code"] for a in client.get(f"{API}/Accounts", headers=api(tokens)).json()["Accounts"]]
    assert "635" not in codes and "610" in codes


def test_a_where_on_a_field_the_type_lacks_is_refused_not_answered_empty(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    """As Xero refuses it (pyxero#272, Xero-Net#251); field names match in any case, nested ones unchecked."""
    typo = client.get(f"{API}/Invoices", params={"where": 'Staus=="PAID"'}, headers=api(tokens))
    assert typo.status_code == 400
    assert typo.json() == {
        "ErrorNumber": 16,
        "Type": "QueryParseException",
        "Message": "No property or field 'Staus' exists in type 'Invoice'",
    }
    lower = client.get(f"{API}/Accounts", params={"where": 'type=="BANK"'}, headers=api(tokens))
    assert [r["Code"] for r in lower.json()["Accounts"]] == ["090"]


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ("UpdatedDateUTC SIDEWAYS", "cannot parse order clause 'UpdatedDateUTC SIDEWAYS'"),
        ("Date DESC, Staus", "No property or field 'Staus' exists in type 'Invoice'"),
        ("", None),
        ("updateddateutc asc, Contact.Name DESC", None),
    ],
)
def test_an_order_on_a_field_the_type_lacks_or_in_no_direction_is_refused(
    client: httpx.Client, tokens: dict[str, Any], order: str, message: str | None
) -> None:
    """An ``order`` is a field, then ASC or DESC or nothing; a field the type lacks is refused as a where on
    it is (UNSURE: inferred from the expression parser Xero's refusals come from, see check_order)."""
    response = client.get(f"{API}/Invoices", params={"order": order, "page": 1}, headers=api(tokens))
    if message is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400
    assert response.json() == {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}


def test_items_show_tracking_and_honour_if_modified_since(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    items = client.get(f"{API}/Items", headers=api(tokens)).json()["Items"]
    assert len(items) == 8 and [i["Code"] for i in items if i["IsTrackedAsInventory"]] == ["KIT-STARTER"]
    sandbox.clock.advance(60)
    mark = sandbox.clock.now().isoformat()
    sandbox.clock.advance(60)
    sandbox.edit_record(
        AU_TENANT_ID, "Items", demo_id(AU_TENANT_ID, "item", "BOLT-M8"), {"Name": "Bolt M8 x 45"}
    )
    changed = client.get(f"{API}/Items", headers=api(tokens, **{"If-Modified-Since": mark})).json()["Items"]
    assert [(i["Code"], i["Name"]) for i in changed] == [("BOLT-M8", "Bolt M8 x 45")]


def test_contacts_page_with_page_size_and_if_modified_since(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    for n in range(245):
        sandbox.add_record(AU_TENANT_ID, "Contacts", {"Name": f"Customer {n:03d}"})
    first = client.get(f"{API}/Contacts", params={"page": 1}, headers=api(tokens)).json()
    assert len(first["Contacts"]) == 100 and first["pagination"] == {
        "page": 1,
        "pageSize": 100,
        "pageCount": 3,
        "itemCount": 250,
    }
    third = client.get(f"{API}/Contacts", params={"page": 3, "pageSize": 100}, headers=api(tokens)).json()
    assert len(third["Contacts"]) == 50
    big = client.get(f"{API}/Contacts", params={"page": 1, "pageSize": 5000}, headers=api(tokens)).json()
    assert big["pagination"]["pageSize"] == 1000 and len(big["Contacts"]) == 250
    sandbox.clock.advance(120)
    mark = sandbox.clock.now().isoformat()
    sandbox.add_record(AU_TENANT_ID, "Contacts", {"Name": "Late Customer"})
    recent = client.get(
        f"{API}/Contacts", params={"page": 1}, headers=api(tokens, **{"If-Modified-Since": mark})
    ).json()
    assert [c["Name"] for c in recent["Contacts"]] == ["Late Customer"]
    suppliers = client.get(
        f"{API}/Contacts", params={"where": "IsSupplier==true"}, headers=api(tokens)
    ).json()
    assert sorted(c["Name"] for c in suppliers["Contacts"]) == ["Acme Metals Ltd", "Bolt Supplies Pty Ltd"]
    archived = client.get(
        f"{API}/Contacts",
        params={"where": 'ContactStatus=="ARCHIVED"', "includeArchived": "true"},
        headers=api(tokens),
    ).json()
    assert [c["Name"] for c in archived["Contacts"]] == ["Old Customer Co"]


def test_search_term_finds_contacts_and_invoices_by_the_fields_the_spec_names(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    """xero-python's search_term: on Contacts, Name, FirstName, LastName, ContactNumber and EmailAddress; on
    Invoices, InvoiceNumber and Reference (spec). It is not ignored: before, every contact was answered."""

    def names(collection: str, term: str, field: str) -> list[str]:
        body = client.get(f"{API}/{collection}", params={"searchTerm": term}, headers=api(tokens)).json()
        return [r[field] for r in body[collection]]

    assert names("Contacts", "ACME", "Name") == ["Acme Metals Ltd"]
    assert sorted(names("Contacts", "sup-000", "Name")) == ["Acme Metals Ltd", "Bolt Supplies Pty Ltd"]
    assert names("Contacts", "no such contact", "Name") == []
    assert names("Invoices", "inv-0002", "InvoiceNumber") == ["INV-0002"]


def test_invoices_filters_paging_and_line_items(client: httpx.Client, tokens: dict[str, Any]) -> None:
    def get(**params: Any) -> dict[str, Any]:
        response = client.get(f"{API}/Invoices", params=params, headers=api(tokens))
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    bills = get(where='Type=="ACCPAY"')["Invoices"]
    assert sorted(i["InvoiceNumber"] for i in bills) == ["AM-20931", "BOLT-7781"]
    assert all(i["LineItems"] == [] for i in bills)  # no ?page=: summaries without lines
    harbour = demo_id(AU_TENANT_ID, "contact", "harbour")
    recent = get(where=f'Date>=DateTime(2026,10,01) AND Contact.ContactID==Guid("{harbour}")')["Invoices"]
    assert [i["InvoiceNumber"] for i in recent] == ["INV-0006"]
    voided = get(Statuses="VOIDED,DELETED")["Invoices"]
    assert sorted(i["Status"] for i in voided) == ["DELETED", "VOIDED"]
    page = get(page=1, pageSize=4, order="Date DESC", where='Type=="ACCREC"')
    assert page["pagination"] == {"page": 1, "pageSize": 4, "pageCount": 2, "itemCount": 7}
    assert [i["InvoiceNumber"] for i in page["Invoices"]] == ["INV-0007", "INV-0006", "INV-0005", "INV-0004"]
    usd = next(i for i in page["Invoices"] if i["InvoiceNumber"] == "INV-0004")
    assert usd["CurrencyCode"] == "USD" and usd["CurrencyRate"] == 0.6512
    assert usd["LineItems"][0]["ItemCode"] == "WIDGET-20" and usd["LineItems"][0]["LineAmount"] == 900.0
    assert usd["UpdatedDateUTCString"] == "2026-11-01T12:00:00"
    one = client.get(f"{API}/Invoices/{usd['InvoiceID']}", headers=api(tokens)).json()["Invoices"]
    assert one[0]["InvoiceNumber"] == "INV-0004" and len(one[0]["LineItems"]) == 2
    assert client.get(f"{API}/Invoices/{demo_id('nope')}", headers=api(tokens)).status_code == 404


def test_voiding_in_xero_shows_up_through_if_modified_since(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    draft = seed_document(sandbox, "CreditNotes", "5.00", Status="DRAFT", CreditNoteNumber="CN-DRAFT")
    sandbox.clock.advance(600)
    mark = sandbox.clock.now().isoformat()
    invoice = demo_id(AU_TENANT_ID, "invoice", "INV-0002")
    voided = client.post(f"/_admin/organisations/{AU_TENANT_ID}/Invoices/{invoice}/void")
    assert voided.status_code == 200 and voided.json()["Status"] == "VOIDED"
    sandbox.delete_record(AU_TENANT_ID, "CreditNotes", draft)
    headers = api(tokens, **{"If-Modified-Since": mark})
    changed = client.get(f"{API}/Invoices", params={"page": 1}, headers=headers).json()["Invoices"]
    assert [(i["InvoiceNumber"], i["Status"], i["AmountDue"]) for i in changed] == [
        ("INV-0002", "VOIDED", 0.0)
    ]
    notes = client.get(f"{API}/CreditNotes", params={"page": 1}, headers=headers).json()["CreditNotes"]
    assert [(n["CreditNoteNumber"], n["Status"]) for n in notes] == [("CN-DRAFT", "DELETED")]


@pytest.mark.parametrize("collection", ["Invoices", "CreditNotes"])
@pytest.mark.parametrize(
    ("status", "moves"),
    [
        ("DRAFT", [("VOIDED", False), ("DELETED", True), ("AUTHORISED", False)]),
        ("SUBMITTED", [("VOIDED", False), ("DELETED", True)]),
        ("AUTHORISED", [("DELETED", False), ("VOIDED", True), ("AUTHORISED", False)]),
        ("PAID", [("DELETED", False), ("VOIDED", False)]),
    ],
)
def test_documents_are_deleted_as_drafts_and_voided_once_approved_as_in_xero(
    client: httpx.Client, sandbox: XeroSandbox, collection: str, status: str, moves: list[tuple[str, bool]]
) -> None:
    """Xero's Invoices page, "Deleting and voiding invoices": a DRAFT or SUBMITTED document is deleted, an
    AUTHORISED one cannot be but is voided, a paid one neither (its payment is removed first); neither a
    deleted nor a voided one changes again. A person's move Xero refuses is refused with Xero's words, over
    HTTP too, and the document is left as it was."""
    document = seed_document(sandbox, collection, "40.00", Status=status)
    name = "Invoice" if collection == "Invoices" else "Credit Note"
    url = f"/_admin/organisations/{AU_TENANT_ID}/{collection}/{document}"
    now = status
    for wanted, allowed in moves:
        verb = {"DELETED": "delete", "VOIDED": "void"}.get(wanted)
        answer = client.post(f"{url}/{verb}") if verb else client.post(f"{url}/edit", json={"Status": wanted})
        if allowed:
            assert answer.status_code == 200 and answer.json()["Status"] == wanted, (wanted, answer.text)
            now = wanted
        else:
            assert answer.status_code == 400, (wanted, answer.text)
            assert f"{name} not of valid status for modification" in answer.text, answer.text
        (stored,) = [r for r in sandbox.list_records(AU_TENANT_ID, collection) if document in r.values()]
        assert stored["Status"] == now, (wanted, stored["Status"])
    if collection == "Invoices":  # an approved, partly paid invoice: its payment is removed first
        paid = seed_document(sandbox, collection, "40.00", AmountPaid="10.00")
        with pytest.raises(AdminError, match="Invoice not of valid status for modification"):
            sandbox.void_record(AU_TENANT_ID, collection, paid)


# ---- manual journals -------------------------------------------------------------------------------


def put_journals(
    client: httpx.Client,
    tokens: dict[str, Any],
    *journals: dict[str, Any],
    summarize: bool = True,
    key: str | None = None,
) -> httpx.Response:
    params = {} if summarize else {"summarizeErrors": "false"}
    headers = api(tokens) if key is None else api(tokens, **{"Idempotency-Key": key})
    return client.put(
        f"{API}/ManualJournals", params=params, json={"ManualJournals": list(journals)}, headers=headers
    )


def test_a_balanced_journal_is_created_as_draft_and_can_be_read_back(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    response = put_journals(client, tokens, journal(Url="https://app.example/batches/1", Unknown="ignored"))
    assert response.status_code == 200, response.text
    created = response.json()["ManualJournals"][0]
    assert created["Status"] == "DRAFT" and created["Url"] == "https://app.example/batches/1"
    assert "Unknown" not in created
    assert [line["LineAmount"] for line in created["JournalLines"]] == [125.5, -125.5]
    posted = put_journals(client, tokens, journal("Posted one", Status="POSTED")).json()["ManualJournals"][0]
    assert posted["Status"] == "POSTED"
    one = client.get(f"{API}/ManualJournals/{created['ManualJournalID']}", headers=api(tokens)).json()
    assert one["ManualJournals"][0]["Narration"] == "COGS batch 1"
    found = client.get(
        f"{API}/ManualJournals",
        params={"where": 'Narration.Contains("batch")', "page": 1},
        headers=api(tokens),
    ).json()
    assert [j["ManualJournalID"] for j in found["ManualJournals"]] == [created["ManualJournalID"]]
    exact = client.get(
        f"{API}/ManualJournals", params={"where": 'Narration=="Posted one"'}, headers=api(tokens)
    )
    assert [j["Status"] for j in exact.json()["ManualJournals"]] == ["POSTED"]


def test_an_unbalanced_journal_is_a_validation_exception(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    bad = journal()
    bad["JournalLines"][1]["LineAmount"] = -10
    bad["JournalLines"][0]["LineAmount"] = 100
    response = put_journals(client, tokens, bad)
    assert response.status_code == 400
    body = response.json()
    assert (body["ErrorNumber"], body["Type"], body["Message"]) == (
        10,
        "ValidationException",
        "A validation exception occurred",
    )
    messages = [e["Message"] for e in body["Elements"][0]["ValidationErrors"]]
    assert "The total debits (100.00) must equal total credits (-10.00)" in messages
    assert client.get(f"{API}/ManualJournals", headers=api(tokens)).json()["ManualJournals"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Narration": ""}, "Narration"),
        ({"JournalLines": [{"AccountCode": "310", "LineAmount": 0}]}, "at least two journal lines"),
        ({"Date": "2026-06-30"}, "period lock date"),
        (
            {
                "JournalLines": [
                    {"AccountCode": "639", "LineAmount": 5},
                    {"AccountCode": "630", "LineAmount": -5},
                ]
            },
            "archived",
        ),
    ],
)
def test_journal_rules(
    client: httpx.Client, tokens: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    response = put_journals(client, tokens, {**journal(), **change})
    assert response.status_code == 400
    assert any(message in e["Message"] for e in response.json()["Elements"][0]["ValidationErrors"])


def test_journal_line_amounts_are_rounded_to_cents_before_they_are_balanced(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    """Xero's Rounding in Xero guide: "All monetary calculations in Xero are to two decimals places"."""
    created = put_journals(client, tokens, journal(amount="100.123"))
    assert created.status_code == 200, created.text
    lines = created.json()["ManualJournals"][0]["JournalLines"]
    assert [line["LineAmount"] for line in lines] == [100.12, -100.12]


@pytest.mark.parametrize(
    ("first", "moves"),
    [
        ("DRAFT", [("POSTED", 200), ("DRAFT", 400), ("DELETED", 400), ("VOIDED", 200), ("POSTED", 400)]),
        ("DRAFT", [("VOIDED", 400), ("DELETED", 200), ("POSTED", 400), ("DRAFT", 400)]),
        ("POSTED", [("ARCHIVED", 400), ("POSTED", 200)]),  # the API's archive: UNSURE, refused
        ("DELETED", []),
        ("VOIDED", []),
    ],
)
def test_manual_journal_statuses_move_as_xero_allows(
    client: httpx.Client, tokens: dict[str, Any], first: str, moves: list[tuple[str, int]]
) -> None:
    """Xero's status codes: DELETED is "A Deleted Draft ManualJournal", VOIDED "A Voided Posted
    ManualJournal"; neither is a status a journal is created with, and neither is left again."""
    created = put_journals(client, tokens, journal(Status=first))
    if first in ("DELETED", "VOIDED"):
        assert created.status_code == 400
        assert created.json()["Elements"][0]["ValidationErrors"] == [
            {"Message": f"The status '{first}' cannot be applied to the document"}
        ]
        return
    journal_id = created.json()["ManualJournals"][0]["ManualJournalID"]
    url = f"{API}/ManualJournals/{journal_id}"
    for status, expected in moves:
        body = {"ManualJournals": [{"Narration": "COGS batch 1", "Status": status}]}
        moved = client.post(url, json=body, headers=api(tokens))
        assert moved.status_code == expected, (status, moved.text)
    final = next(s for s, code in reversed(moves) if code == 200)
    assert client.get(url, headers=api(tokens)).json()["ManualJournals"][0]["Status"] == final


@pytest.mark.parametrize(
    ("code", "system"), [("800", "CREDITORS"), ("610", "DEBTORS"), ("960", "RETAINEDEARNINGS")]
)
def test_journal_lines_on_receivable_payable_or_retained_earnings_system_accounts_are_refused(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox, code: str, system: str
) -> None:
    bad = journal()
    bad["JournalLines"][1]["AccountCode"] = code
    response = put_journals(client, tokens, bad)
    assert response.status_code == 400
    body = response.json()
    assert (body["ErrorNumber"], body["Type"]) == (10, "ValidationException")
    messages = [e["Message"] for e in body["Elements"][0]["ValidationErrors"]]
    assert any(f"({system}) and can't be used in a manual journal" in m for m in messages), messages
    assert client.get(f"{API}/ManualJournals", headers=api(tokens)).json()["ManualJournals"] == []
    accounts = client.get(f"{API}/Accounts", headers=api(tokens)).json()["Accounts"]
    assert {a["Code"]: a["SystemAccount"] for a in accounts}[code] == system
    org = sandbox.organisations[AU_TENANT_ID]
    data = {"Code": "899", "Name": "Payables 2", "Type": "CURRLIAB", "SystemAccount": system}
    made = build(org, "Accounts", data, sandbox.clock.now())  # as an API write: SystemAccount is read-only
    assert not made.errors and made.record["SystemAccount"] == ""


@pytest.mark.parametrize(("code", "kind"), [("090", "a bank account"), ("634", "an inventory account")])
def test_journal_lines_on_bank_or_inventory_accounts_are_refused(
    client: httpx.Client, tokens: dict[str, Any], code: str, kind: str
) -> None:
    """Xero's Manual Journals page: system accounts "and bank accounts" are reserved (a 400 error); Xero
    Central: "Inventory account types are system accounts that you can't journal to or from"."""
    bad = journal(Status="POSTED")
    bad["JournalLines"][1]["AccountCode"] = code
    response = put_journals(client, tokens, bad)
    assert response.status_code == 400
    messages = [e["Message"] for e in response.json()["Elements"][0]["ValidationErrors"]]
    assert any(f"is {kind} and can't be used in a manual journal" in m for m in messages), messages


@pytest.mark.parametrize(
    ("amount_types", "tax_type", "message"),
    [
        ("NoTax", "GST on Income", "The TaxType code 'GST on Income' is not valid"),
        ("Exclusive", "OUTPUT", "The sandbox does not post tax on manual journals"),
        ("Inclusive", "INPUT", "The sandbox does not post tax on manual journals"),
    ],
)
def test_journal_lines_with_an_unknown_tax_type_or_tax_the_sandbox_cannot_post_are_refused(
    client: httpx.Client, tokens: dict[str, Any], amount_types: str, tax_type: str, message: str
) -> None:
    """An unknown TaxType is refused as Xero refuses it (xero-mcp-server#210). A taxed line in an Exclusive or
    Inclusive journal would carry tax Xero computes and posts to its tax account; the sandbox has none, so it
    refuses rather than accept, untaxed, a journal Xero would find unbalanced."""
    bad = journal(LineAmountTypes=amount_types)
    bad["JournalLines"][0]["TaxType"] = tax_type
    response = put_journals(client, tokens, bad)
    assert response.status_code == 400
    messages = [e["Message"] for e in response.json()["Elements"][0]["ValidationErrors"]]
    assert any(m.startswith(message) for m in messages), messages
    untaxed = journal(LineAmountTypes=amount_types)
    untaxed["JournalLines"][0]["TaxType"] = "NONE"
    assert put_journals(client, tokens, untaxed).status_code == 200


@pytest.mark.parametrize("body", [b"", b"null", b'{"ManualJournals": []}', b"[]"])
def test_a_body_without_elements_is_a_no_data_processed_exception(
    client: httpx.Client, tokens: dict[str, Any], body: bytes
) -> None:
    headers = {**api(tokens), "content-type": "application/json"}
    response = client.put(f"{API}/ManualJournals", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "ErrorNumber": 17,
        "Type": "NoDataProcessedException",
        "Message": "No data has been processed for this endpoint. This endpoint is expecting ManualJournal "
        "data to be specifed in the request body.",
    }


def test_a_body_that_is_not_json_is_a_post_data_invalid_exception(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    headers = {**api(tokens), "content-type": "application/json"}
    response = client.put(f"{API}/ManualJournals", content=b"{not json", headers=headers)
    assert response.status_code == 400
    body = response.json()
    assert (body["ErrorNumber"], body["Type"]) == (14, "PostDataInvalidException")
    assert body["Message"].startswith("JSON request body could not be read")


def test_if_modified_since_is_accurate_to_the_second(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    """Xero's HTTP Requests and Responses page: "Only items created or updated since the specified timestamp
    will be returned (accurate to the second)": a change in the header's second is returned even when the
    header names a later fraction of it."""
    sandbox.clock.advance(10)
    created = put_journals(client, tokens, journal()).json()["ManualJournals"][0]
    stamp = sandbox.clock.now().replace(microsecond=999_000).strftime("%Y-%m-%dT%H:%M:%S.%f")
    found = client.get(f"{API}/ManualJournals", headers=api(tokens, **{"If-Modified-Since": stamp})).json()
    assert [j["ManualJournalID"] for j in found["ManualJournals"]] == [created["ManualJournalID"]]


def test_a_posted_journal_in_a_locked_period_cannot_be_voided(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    posted = put_journals(client, tokens, journal(Status="POSTED")).json()["ManualJournals"][0]
    sandbox.set_lock_dates(AU_TENANT_ID, period_lock_date="2026-10-31")
    url = f"{API}/ManualJournals/{posted['ManualJournalID']}"
    body = {"ManualJournals": [{"Narration": posted["Narration"], "Status": "VOIDED"}]}
    refused = client.post(url, json=body, headers=api(tokens))
    assert refused.status_code == 400
    assert "period lock date" in refused.json()["Elements"][0]["ValidationErrors"][0]["Message"]
    assert client.get(url, headers=api(tokens)).json()["ManualJournals"][0]["Status"] == "POSTED"


def test_end_of_year_lock_date_applies(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    sandbox.set_lock_dates(AU_TENANT_ID, end_of_year_lock_date="2026-10-31")
    errors = put_journals(client, tokens, journal()).json()["Elements"][0]["ValidationErrors"]
    assert "end of year lock date" in errors[0]["Message"]


def test_unknown_account_code_is_removed_with_a_warning(client: httpx.Client, tokens: dict[str, Any]) -> None:
    odd = journal()
    odd["JournalLines"][0]["AccountCode"] = "476"
    body = put_journals(client, tokens, odd, summarize=False).json()
    element = body["ManualJournals"][0]
    # saved with a warning: "A WARNING status indicated that the entity was successfully processed, but there
    # are additional warnings added to the response" (Xero's HTTP Requests and Responses page)
    assert element["StatusAttributeString"] == "WARNING"
    assert element["Warnings"] == [
        {"Message": "Account code '476' has been removed as it does not match a recognised account."}
    ]
    assert "AccountCode" not in element["JournalLines"][0]


def test_summarize_errors_false_reports_each_element(client: httpx.Client, tokens: dict[str, Any]) -> None:
    bad = journal("Broken")
    bad["JournalLines"][0]["LineAmount"] = 1
    response = put_journals(client, tokens, journal("Good"), bad, summarize=False)
    assert response.status_code == 200
    good_el, bad_el = response.json()["ManualJournals"]
    assert good_el["StatusAttributeString"] == "OK" and "ValidationErrors" not in good_el
    assert bad_el["StatusAttributeString"] == "ERROR" and bad_el["ValidationErrors"]
    stored = client.get(f"{API}/ManualJournals", headers=api(tokens)).json()["ManualJournals"]
    assert [j["Narration"] for j in stored] == ["Good"]


@pytest.mark.parametrize(
    "email", ["orders at acme.example", "orders@acme", "jürgen@acme.example", "x" * 250 + "@a.com"]
)
def test_a_contact_email_address_xero_cannot_take_is_refused(
    client: httpx.Client, tokens: dict[str, Any], email: str
) -> None:
    """The spec's Contact.EmailAddress: "(umlauts not supported) (max length  = 255)"; xeroizer#477: a contact
    "will always require a valid email if provided"."""
    body = {"Contacts": [{"Name": "Mail Test Ltd", "EmailAddress": email}]}
    refused = client.put(f"{API}/Contacts", json=body, headers=api(tokens))
    assert refused.status_code == 400
    assert refused.json()["Elements"][0]["ValidationErrors"] == [{"Message": "Email address must be valid."}]
    fine = {"Contacts": [{"Name": "Mail Test Ltd", "EmailAddress": "orders@acme.example"}]}
    assert client.put(f"{API}/Contacts", json=fine, headers=api(tokens)).status_code == 200


def test_contacts_reject_duplicate_active_names(client: httpx.Client, tokens: dict[str, Any]) -> None:
    response = client.put(
        f"{API}/Contacts", json={"Contacts": [{"Name": "Bolt Supplies Pty Ltd"}]}, headers=api(tokens)
    )
    assert response.status_code == 400
    assert response.json()["Elements"][0]["ValidationErrors"] == [
        {
            "Message": (
                "The contact name Bolt Supplies Pty Ltd is already assigned to another contact. "
                "The contact name must be unique across all active contacts."
            )
        }
    ]
    reused = client.put(
        f"{API}/Contacts",
        json={"Contacts": [{"Name": "Old Customer Co", "ContactNumber": "X1"}]},
        headers=api(tokens),
    )
    assert reused.status_code == 200 and reused.json()["Contacts"][0]["IsSupplier"] is False


def test_post_contacts_updates_the_contact_its_name_or_number_matches_and_put_refuses_them(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    """Xero's Contacts page, PUT Contacts: "works very similar to POST Contacts but if an existing contact
    matches your ContactName or ContactNumber then you will receive an error"."""
    acme = demo_id(AU_TENANT_ID, "contact", "metals")
    by_name = client.post(
        f"{API}/Contacts",
        json={"Contacts": [{"Name": "acme metals ltd", "EmailAddress": "ap@metals.example"}]},
        headers=api(tokens),
    )
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["Contacts"][0]["ContactID"] == acme
    by_number = client.post(
        f"{API}/Contacts",
        json={"Contacts": [{"Name": "Acme Metals", "ContactNumber": "SUP-0002"}]},
        headers=api(tokens),
    ).json()["Contacts"][0]
    assert (by_number["ContactID"], by_number["Name"]) == (acme, "Acme Metals")
    assert by_number["EmailAddress"] == "ap@metals.example"  # what is not sent is kept
    taken = client.put(
        f"{API}/Contacts",
        json={"Contacts": [{"Name": "Acme Two", "ContactNumber": "sup-0002"}]},
        headers=api(tokens),
    )
    assert taken.status_code == 400
    assert taken.json()["Elements"][0]["ValidationErrors"] == [
        {"Message": "The contact number sup-0002 is already assigned to another contact."}
    ]
    everyone = client.get(f"{API}/Contacts", params={"includeArchived": "true"}, headers=api(tokens)).json()
    assert len(everyone["Contacts"]) == 6


def test_a_contact_is_read_by_its_contact_number_and_a_first_bill_does_not_change_its_updated_date(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    """Xero's Contacts page: GET Contacts/{ContactNumber}; "changes to the Balances, IsCustomer or IsSupplier
    values will not trigger a contact to be returned with the Modified-After filter"."""
    kiwi = client.get(f"{API}/Contacts/CUS-0002", headers=api(tokens)).json()["Contacts"][0]
    assert (kiwi["Name"], kiwi["IsSupplier"]) == ("Kiwi Robotics", False)
    sandbox.clock.advance(5)
    since = sandbox.clock.now().strftime("%Y-%m-%dT%H:%M:%S")
    sandbox.clock.advance(5)
    bill = {"Type": "ACCPAY", "Contact": {"ContactID": kiwi["ContactID"]}, "Status": "AUTHORISED"}
    sandbox.add_record(AU_TENANT_ID, "Invoices", bill)
    changed = client.get(f"{API}/Contacts", headers=api(tokens, **{"If-Modified-Since": since})).json()
    assert changed["Contacts"] == []
    assert client.get(f"{API}/Contacts/{kiwi['ContactID']}", headers=api(tokens)).json()["Contacts"][0][
        "IsSupplier"
    ]


def test_summary_only_leaves_out_the_heavy_fields_and_pages(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    """Xero's Invoices and Contacts pages: summaryOnly=true leaves out Payments, HasAttachments, LineItems and
    CISDeduction (invoices) or Addresses, IsSupplier, ... (contacts); pagination is enforced; a where on a
    field it leaves out is refused."""
    invoices = client.get(f"{API}/Invoices", params={"summaryOnly": "true"}, headers=api(tokens)).json()
    assert invoices["pagination"]["page"] == 1
    assert not {"LineItems", "Payments", "HasAttachments"} & set(invoices["Invoices"][0])
    contacts = client.get(
        f"{API}/Contacts", params={"summaryOnly": "true", "pageSize": 2}, headers=api(tokens)
    ).json()
    assert len(contacts["Contacts"]) == 2 and contacts["pagination"]["pageCount"] == 3
    assert not {"Addresses", "IsSupplier", "IsCustomer", "ContactGroups"} & set(contacts["Contacts"][0])
    refused = client.get(
        f"{API}/Contacts", params={"summaryOnly": "true", "where": "IsSupplier==true"}, headers=api(tokens)
    )
    assert refused.status_code == 400 and refused.json()["Type"] == "QueryParseException"


def test_a_single_equals_sign_compares_as_in_xeros_own_filter_examples(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    """Xero's pages write their optimised filters with one "=": where=Status="AUTHORISED",
    where=Contact.ContactID=guid("..."), where=Narration="narrationtext"."""
    contact = demo_id(AU_TENANT_ID, "contact", "kiwi")
    where = f'Status="AUTHORISED" AND Contact.ContactID=guid("{contact}")'
    found = client.get(f"{API}/Invoices", params={"where": where}, headers=api(tokens))
    assert found.status_code == 200, found.text
    assert [i["InvoiceNumber"] for i in found.json()["Invoices"]] == ["INV-0002"]
    lowered = 'Name.ToLower()="acme metals ltd" OR EmailAddress.ToUpper().StartsWith("ACCOUNTS@METALS")'
    contacts = client.get(f"{API}/Contacts", params={"where": lowered}, headers=api(tokens))
    assert [c["Name"] for c in contacts.json()["Contacts"]] == ["Acme Metals Ltd"]


def test_items_can_be_created_and_updated_by_code(client: httpx.Client, tokens: dict[str, Any]) -> None:
    item = {"Code": "GEAR-5", "Name": "Gear 5", "PurchaseDetails": {"UnitPrice": 1.5, "AccountCode": "630"}}
    created = client.put(f"{API}/Items", json={"Items": [item]}, headers=api(tokens)).json()["Items"][0]
    updated = client.post(f"{API}/Items", json={"Items": [{**item, "Name": "Gear 5mm"}]}, headers=api(tokens))
    assert updated.json()["Items"][0]["ItemID"] == created["ItemID"]
    long_code = client.put(f"{API}/Items", json={"Items": [{"Code": "X" * 31}]}, headers=api(tokens))
    assert long_code.status_code == 400


@pytest.mark.parametrize("key", ["Description", "PurchaseDescription"])
def test_an_item_description_over_4000_characters_is_refused(
    client: httpx.Client, tokens: dict[str, Any], key: str
) -> None:
    """The spec's Item schema: Description and PurchaseDescription "(max length = 4000)"."""
    longest = client.put(
        f"{API}/Items", json={"Items": [{"Code": "PIN-1", key: "d" * 4000}]}, headers=api(tokens)
    )
    assert longest.status_code == 200, longest.text
    over = client.put(
        f"{API}/Items", json={"Items": [{"Code": "PIN-2", key: "d" * 4001}]}, headers=api(tokens)
    )
    assert over.status_code == 400
    assert over.json()["Elements"][0]["ValidationErrors"] == [
        {"Message": f"The Item {key} must be 4000 characters or less."}
    ]
    assert client.get(f"{API}/Items/PIN-2", headers=api(tokens)).status_code == 404


def test_put_items_refuses_a_code_already_taken(client: httpx.Client, tokens: dict[str, Any]) -> None:
    """PUT creates only (xero-python's create_items); a taken Code is not updated but refused."""
    taken = {"Items": [{"Code": "BOLT-M8", "Name": "Bolt again"}]}
    refused = client.put(f"{API}/Items", json=taken, headers=api(tokens))
    assert refused.status_code == 400 and refused.json()["Type"] == "ValidationException"
    element = refused.json()["Elements"][0]
    assert element["ValidationErrors"] == [{"Message": "Price List Item with Code 'BOLT-M8' already exists"}]
    mixed = {"Items": [{"Code": "bolt-m8", "Name": "x"}, {"Code": "GEAR-9", "Name": "Gear 9"}]}
    each = client.put(f"{API}/Items", params={"summarizeErrors": "false"}, json=mixed, headers=api(tokens))
    assert [i["StatusAttributeString"] for i in each.json()["Items"]] == ["ERROR", "OK"]
    bolt = client.get(f"{API}/Items/BOLT-M8", headers=api(tokens)).json()["Items"][0]
    assert bolt["Name"] == "Bolt M8 x 40"


def test_an_item_is_read_by_its_code_in_place_of_its_id(client: httpx.Client, tokens: dict[str, Any]) -> None:
    """xero-python's get_item(tenant, "WIDGET-10") sends GET /Items/WIDGET-10."""
    by_code = client.get(f"{API}/Items/WIDGET-10", headers=api(tokens))
    assert by_code.status_code == 200, by_code.text
    item = by_code.json()["Items"][0]
    assert item["Code"] == "WIDGET-10"
    by_id = client.get(f"{API}/Items/{item['ItemID']}", headers=api(tokens)).json()["Items"][0]
    assert by_id == item
    assert client.get(f"{API}/Items/NO-SUCH-CODE", headers=api(tokens)).status_code == 404


def test_unit_prices_keep_four_places_only_when_unitdp_4_is_asked(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    """Spec parameter unitdp: "You can opt in to use four decimal places for unit amounts"; without it
    Xero rounds them to 2 places, on the way in and on the way out (xero-python's unitdp=4)."""
    item = {"Code": "SHIM-4", "Name": "Shim", "PurchaseDetails": {"UnitPrice": 1.2345, "AccountCode": "630"}}
    four = client.put(f"{API}/Items", params={"unitdp": 4}, json={"Items": [item]}, headers=api(tokens))
    assert four.json()["Items"][0]["PurchaseDetails"]["UnitPrice"] == 1.2345
    two = client.get(f"{API}/Items/SHIM-4", headers=api(tokens)).json()["Items"][0]
    assert two["PurchaseDetails"]["UnitPrice"] == 1.23
    kept = client.get(f"{API}/Items", params={"unitdp": "4", "where": 'Code=="SHIM-4"'}, headers=api(tokens))
    assert kept.json()["Items"][0]["PurchaseDetails"]["UnitPrice"] == 1.2345
    renamed = client.post(
        f"{API}/Items", json={"Items": [{"Code": "SHIM-4", "Name": "Shim 4"}]}, headers=api(tokens)
    )
    assert renamed.json()["Items"][0]["PurchaseDetails"]["UnitPrice"] == 1.23
    unsent = client.get(f"{API}/Items/SHIM-4", params={"unitdp": 4}, headers=api(tokens)).json()["Items"][0]
    assert unsent["PurchaseDetails"]["UnitPrice"] == 1.2345  # a price not sent again keeps its places
    rounded = client.put(
        f"{API}/Items", json={"Items": [{**item, "Code": "SHIM-2"}]}, headers=api(tokens)
    ).json()["Items"][0]
    stored = client.get(f"{API}/Items/SHIM-2", params={"unitdp": 4}, headers=api(tokens)).json()["Items"][0]
    assert rounded["PurchaseDetails"]["UnitPrice"] == stored["PurchaseDetails"]["UnitPrice"] == 1.23


def test_invoice_unit_amounts_are_rounded_to_two_places_without_unitdp(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    contact = demo_id(AU_TENANT_ID, "contact", "harbour")
    sandbox.add_record(
        AU_TENANT_ID,
        "Invoices",
        {
            "Type": "ACCREC",
            "InvoiceNumber": "INV-4DP",
            "Contact": {"ContactID": contact},
            "Status": "AUTHORISED",
            "LineAmountTypes": "NoTax",
            "LineItems": [{"Description": "Shims", "Quantity": 1000, "UnitAmount": "0.1234"}],
        },
    )
    params = {"page": 1, "InvoiceNumbers": "INV-4DP"}
    two = client.get(f"{API}/Invoices", params=params, headers=api(tokens)).json()["Invoices"][0]
    four = client.get(f"{API}/Invoices", params={**params, "unitdp": 4}, headers=api(tokens)).json()
    assert two["LineItems"][0]["UnitAmount"] == 0.12 and two["LineItems"][0]["LineAmount"] == 123.4
    assert four["Invoices"][0]["LineItems"][0]["UnitAmount"] == 0.1234


def test_an_item_is_deleted_by_its_id_but_not_when_tracked_and_used(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    """xero-python's delete_item: DELETE /Items/{ItemID} answers 204 (spec deleteItem); a tracked item an
    invoice has used is refused (KIT-STARTER is on INV-0004), one never used is deleted."""
    items = {i["Code"]: i for i in client.get(f"{API}/Items", headers=api(tokens)).json()["Items"]}
    gone = client.delete(f"{API}/Items/{items['RESIN-1L']['ItemID']}", headers=api(tokens))
    assert gone.status_code == 204 and gone.content == b""
    assert client.get(f"{API}/Items/RESIN-1L", headers=api(tokens)).status_code == 404
    assert client.delete(f"{API}/Items/{items['RESIN-1L']['ItemID']}", headers=api(tokens)).status_code == 404
    tracked = client.delete(f"{API}/Items/{items['KIT-STARTER']['ItemID']}", headers=api(tokens))
    assert tracked.status_code == 400 and tracked.json()["Type"] == "ValidationException"
    assert client.get(f"{API}/Items/KIT-STARTER", headers=api(tokens)).status_code == 200
    unused = {"Code": "KIT-2", "Name": "Kit 2", "InventoryAssetAccountCode": "634"}
    unused["PurchaseDetails"] = {"UnitPrice": 1, "COGSAccountCode": "310"}
    made = client.put(f"{API}/Items", json={"Items": [unused]}, headers=api(tokens)).json()["Items"][0]
    assert made["IsTrackedAsInventory"] is True
    assert client.delete(f"{API}/Items/{made['ItemID']}", headers=api(tokens)).status_code == 204


# ---- idempotency, rate limits, faults ------------------------------------------------------------------


def test_idempotency_key_replays_the_first_response(client: httpx.Client, tokens: dict[str, Any]) -> None:
    first = put_journals(client, tokens, journal(), key="batch-1")
    again = put_journals(client, tokens, journal(), key="batch-1")
    assert again.status_code == 200 and again.json() == first.json()
    assert len(client.get(f"{API}/ManualJournals", headers=api(tokens)).json()["ManualJournals"]) == 1
    other = put_journals(client, tokens, journal("Other"), key="batch-1")
    assert other.status_code == 400 and other.json()["Detail"] == (
        "Idempotency Key: batch-1 is used with a different request."
    )
    assert put_journals(client, tokens, journal(), key="k" * 129).status_code == 400


def test_idempotency_keys_expire_after_six_minutes(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    put_journals(client, tokens, journal(), key="batch-2")
    sandbox.clock.advance(5 * 60)
    put_journals(client, tokens, journal(), key="batch-2")
    assert len(client.get(f"{API}/ManualJournals", headers=api(tokens)).json()["ManualJournals"]) == 1
    sandbox.clock.advance(61)
    put_journals(client, tokens, journal(), key="batch-2")
    assert len(client.get(f"{API}/ManualJournals", headers=api(tokens)).json()["ManualJournals"]) == 2


def test_errors_are_cached_against_the_idempotency_key(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    sandbox.inject("500", method="PUT", path_prefix=f"{API}/ManualJournals")
    first = put_journals(client, tokens, journal(), key="batch-3")
    again = put_journals(client, tokens, journal(), key="batch-3")
    assert first.status_code == again.status_code == 500
    assert put_journals(client, tokens, journal(), key="batch-3b").status_code == 200


def test_lost_response_still_commits_the_journal(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    sandbox.inject("lost_response", method="PUT", path_prefix=f"{API}/ManualJournals")
    with pytest.raises(httpx.ReadTimeout):
        put_journals(client, tokens, journal("Lost one"))
    found = client.get(
        f"{API}/ManualJournals", params={"where": 'Narration=="Lost one"'}, headers=api(tokens)
    )
    assert len(found.json()["ManualJournals"]) == 1


def test_minute_limit_answers_429_with_retry_after_then_resets(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    sandbox.clock.set(sandbox.clock.now().replace(second=0))
    remaining = [
        client.get(f"{API}/Organisation", headers=api(tokens)).headers["X-MinLimit-Remaining"]
        for _ in range(60)
    ]
    assert remaining[0] == "59" and remaining[-1] == "0"
    limited = client.get(f"{API}/Organisation", headers=api(tokens))
    assert limited.status_code == 429 and limited.headers["X-Rate-Limit-Problem"] == "minute"
    assert limited.headers["Retry-After"] == "60" and limited.headers["X-DayLimit-Remaining"] == "4939"
    assert client.get(f"{API}/Organisation", headers=api(tokens, NZ_TENANT_ID)).status_code == 200
    sandbox.clock.advance(60)
    ok = client.get(f"{API}/Organisation", headers=api(tokens))
    assert ok.status_code == 200 and ok.headers["X-MinLimit-Remaining"] == "59"
    assert ok.headers["X-AppMinLimit-Remaining"] == "9999"


def test_day_and_app_minute_limits() -> None:
    sandbox = XeroSandbox(seed=True, day_limit=3, app_minute_limit=6)
    with httpx.Client(transport=sandbox.transport(), base_url=BASE) as client:
        tokens = connect(client)
        codes = [client.get(f"{API}/Organisation", headers=api(tokens)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        day = client.get(f"{API}/Organisation", headers=api(tokens))
        assert day.headers["X-Rate-Limit-Problem"] == "day" and int(day.headers["Retry-After"]) > 0
        assert client.get(f"{API}/Organisation", headers=api(tokens, NZ_TENANT_ID)).status_code == 200
        app = client.get(f"{API}/Organisation", headers=api(tokens, NZ_TENANT_ID))
        assert app.status_code == 429 and app.headers["X-Rate-Limit-Problem"] == "appminute"


def test_more_than_five_calls_in_flight_are_refused() -> None:
    sandbox = XeroSandbox(seed=True, latency_seconds=0.3)
    with httpx.Client(transport=sandbox.transport(), base_url=BASE) as client:
        tokens = connect(client)
        results: list[httpx.Response] = []
        barrier = threading.Barrier(8)

        def call() -> None:
            barrier.wait()
            results.append(client.get(f"{API}/Organisation", headers=api(tokens)))

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    refused = [r for r in results if r.status_code == 429]
    assert len(refused) == 3 and {r.headers["X-Rate-Limit-Problem"] for r in refused} == {"concurrent"}


def test_injected_faults_look_like_xero(client: httpx.Client, tokens: dict[str, Any]) -> None:
    for kind in ("429", "503"):
        client.get("/_admin/calls")
        client.post("/_admin/faults", json={"kind": kind, "path_prefix": f"{API}/Invoices"})
    limited = client.get(f"{API}/Invoices", headers=api(tokens))
    assert limited.status_code == 429 and limited.headers["X-Rate-Limit-Problem"] == "minute"
    offline = client.get(f"{API}/Invoices", headers=api(tokens))
    assert offline.status_code == 503 and offline.headers["content-type"].startswith("text/plain")
    unknown = client.get(f"{API}/Nothing", headers=api(tokens))
    assert unknown.status_code == 404 and "cannot be found" in unknown.text
    assert client.delete(f"{API}/Invoices", headers=api(tokens)).status_code == 405


# ---- admin, reset, loopback ---------------------------------------------------------------------------


def test_admin_routes_seed_a_fresh_sandbox() -> None:
    sandbox = XeroSandbox()
    with httpx.Client(transport=sandbox.transport(), base_url=BASE) as client:
        org = client.post(
            "/_admin/organisations",
            json={
                "name": "Gearworks",
                "base_currency": "NZD",
                "country": "NZ",
                "period_lock_date": "2026-03-31",
            },
        ).json()
        tenant = org["tenant_id"]
        assert (
            client.post(
                "/_admin/users", json={"username": "u@x.test", "password": "pw", "tenant_ids": [tenant]}
            ).status_code
            == 201
        )
        account = client.post(
            f"/_admin/organisations/{tenant}/Accounts",
            json={"Code": "310", "Name": "COGS", "Type": "DIRECTCOSTS"},
        )
        assert account.status_code == 201 and account.json()["Class"] == "EXPENSE"
        bad = client.post(
            f"/_admin/organisations/{tenant}/Accounts", json={"Code": "310", "Name": "x", "Type": "BANK"}
        )
        assert bad.status_code == 400 and "unique Code" in bad.json()["error"]
        contact = client.post(f"/_admin/organisations/{tenant}/Contacts", json={"Name": "Buyer"}).json()
        invoice = client.post(
            f"/_admin/organisations/{tenant}/Invoices",
            json={
                "Type": "ACCREC",
                "Contact": {"ContactID": contact["ContactID"]},
                "Status": "AUTHORISED",
                "Date": "2026-10-01",
                "LineItems": [{"Description": "Gear", "Quantity": 2, "UnitAmount": 10}],
            },
        ).json()
        assert (invoice["InvoiceNumber"], invoice["SubTotal"], invoice["TotalTax"]) == ("INV-0001", 20.0, 3.0)
        edited = client.post(
            f"/_admin/organisations/{tenant}/Invoices/{invoice['InvoiceID']}/edit", json={"Reference": "PO-9"}
        ).json()
        assert edited["Reference"] == "PO-9" and edited["Total"] == 23.0
        listed = client.get(f"/_admin/organisations/{tenant}/Contacts").json()
        assert [c["IsCustomer"] for c in listed] == [True]
        locks = client.post(
            f"/_admin/organisations/{tenant}/lock-dates", json={"period_lock_date": "2026-09-30"}
        )
        assert locks.json()["PeriodLockDate"] == "/Date(1790726400000+0000)/"


def test_reset_reseeds_the_demo(sandbox: XeroSandbox) -> None:
    sandbox.add_record(AU_TENANT_ID, "Contacts", {"Name": "Temporary"})
    sandbox.reset()
    names = [c["Name"] for c in sandbox.list_records(AU_TENANT_ID, "Contacts")]
    assert "Temporary" not in names and "Harbour Fabrication" in names
    assert DEMO_CLIENT_ID in sandbox.apps


def test_loopback_server_serves_the_same_sandbox(sandbox: XeroSandbox) -> None:
    server = serve(sandbox)
    try:
        with httpx.Client(base_url=sandbox.base_url) as client:
            tokens = connect(client, [NZ_TENANT_ID])
            org = client.get(f"{API}/Organisation", headers=api(tokens, NZ_TENANT_ID)).json()[
                "Organisations"
            ][0]
            assert org["BaseCurrency"] == "NZD"
    finally:
        server.shutdown()


def test_line_discounts_and_tax_inclusive_amounts_are_computed_as_xero_does(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    harbour = {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")}

    def seed(collection: str, **fields: Any) -> httpx.Response:
        body = {"Contact": harbour, "Status": "AUTHORISED", "Date": "2026-10-05", **fields}
        return client.post(f"/_admin/organisations/{AU_TENANT_ID}/{collection}", json=body)

    seeded = seed(
        "Invoices",
        Type="ACCREC",
        InvoiceNumber="INV-D1",
        LineAmountTypes="Inclusive",
        LineItems=[
            {"ItemCode": "WIDGET-10", "Quantity": 10, "UnitAmount": "11.00", "DiscountRate": "10"},
            {"ItemCode": "BOLT-M8", "Quantity": 4, "UnitAmount": "5.50", "DiscountAmount": "2.00"},
        ],
    )
    assert seeded.status_code == 201, seeded.text
    invoice = client.get(f"{API}/Invoices/{seeded.json()['InvoiceID']}", headers=api(tokens)).json()
    widget, bolt = invoice["Invoices"][0]["LineItems"]
    # 10 x 11.00 x 90 % = 99.00 incl. GST of 99.00 / 11 = 9.00; 4 x 5.50 - 2.00 = 20.00 incl. 1.82 GST
    assert (widget["LineAmount"], widget["TaxAmount"], widget["DiscountRate"]) == (99.0, 9.0, 10.0)
    assert (bolt["LineAmount"], bolt["TaxAmount"], bolt["DiscountAmount"]) == (20.0, 1.82, 2.0)
    assert invoice["Invoices"][0]["IsDiscounted"] is True
    assert (invoice["Invoices"][0]["SubTotal"], invoice["Invoices"][0]["Total"]) == (108.18, 119.0)
    # the spec: discounts only on ACCREC invoices, never on credit notes
    refused = seed(
        "CreditNotes",
        Type="ACCRECCREDIT",
        LineItems=[{"ItemCode": "WIDGET-10", "Quantity": 1, "UnitAmount": "11.00", "DiscountRate": "10"}],
    )
    assert refused.status_code == 400 and "only supported on ACCREC invoices" in refused.text


def test_a_discount_amount_beyond_the_line_amount_is_a_validation_error(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    """Spec LineItem.LineAmount: "LineAmount = (Quantity * UnitAmount) - DiscountAmount"; a discount beyond
    Quantity x UnitAmount is refused with Xero's validation error, and nothing is stored."""
    before = client.get(f"{API}/Invoices", headers=api(tokens)).json()["Invoices"]
    line = {"Description": "Bolts", "Quantity": 4, "UnitAmount": "5.50", "AccountCode": "200"}
    invoice = {"Type": "ACCREC", "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")},
               "Status": "AUTHORISED", "Date": "2026-10-05"}  # fmt: skip
    path = f"/_admin/organisations/{AU_TENANT_ID}/Invoices"
    refused = client.post(path, json={**invoice, "LineItems": [{**line, "DiscountAmount": "22.01"}]})
    assert refused.status_code == 400 and "between zero and the line's amount" in refused.text, refused.text
    assert client.get(f"{API}/Invoices", headers=api(tokens)).json()["Invoices"] == before
    whole = client.post(path, json={**invoice, "LineItems": [{**line, "DiscountAmount": "22.00"}]})
    assert whole.status_code == 201, whole.text  # the whole line given away: allowed
    read = client.get(f"{API}/Invoices/{whole.json()['InvoiceID']}", headers=api(tokens)).json()
    assert read["Invoices"][0]["LineItems"][0]["LineAmount"] == 0


# ---- reports ----------------------------------------------------------------------------------------


def report_rows(report: dict[str, Any]) -> dict[str, list[str]]:
    """AccountID -> the row's cell values (after the name), read from every Section."""
    found: dict[str, list[str]] = {}
    for section in report["Rows"]:
        for row in section.get("Rows", []):
            if row["RowType"] == "Row":
                cells = row["Cells"]
                ids = {a["Value"] for c in cells for a in c["Attributes"] if a["Id"] == "account"}
                assert len(ids) == 1  # every cell names the same account
                found[ids.pop()] = [c["Value"] for c in cells[1:]]
    return found


def test_trial_balance_reports_posted_journals_up_to_the_date(client: httpx.Client) -> None:
    tokens = connect(client, scope=f"{SCOPE} accounting.reports.trialbalance.read")
    created = put_journals(
        client,
        tokens,
        journal("September", "30.00", Status="POSTED", Date="2026-09-10"),
        journal("October", "125.50", Status="POSTED"),  # 2026-10-15
        journal("November", "7.00", Status="POSTED", Date="2026-11-02"),
        journal("Draft", "99.00"),
    )
    assert created.status_code == 200, created.text

    response = client.get(f"{API}/Reports/TrialBalance", params={"date": "2026-10-31"}, headers=api(tokens))

    assert response.status_code == 200, response.text
    report = response.json()["Reports"][0]
    assert report["ReportType"] == "TrialBalance" and report["ReportDate"] == "31 October 2026"
    assert report["ReportTitles"] == ["Trial Balance", "Partsemble Demo (AU)", "As at 31 October 2026"]
    header, *sections, total = report["Rows"]
    assert [c["Value"] for c in header["Cells"]] == ["Account", "Debit", "Credit", "YTD Debit", "YTD Credit"]
    # the seeded sales are in the books too (Revenue, receivables, GST)
    assert [s["Title"] for s in sections] == ["Revenue", "Expenses", "Assets", "Liabilities"]
    cogs = demo_id(AU_TENANT_ID, "account", "310")
    by_account = report_rows(report)
    # Debit / Credit: October's movement; YTD: the balance at the date (the draft and November left out)
    assert by_account[cogs] == ["125.50", "", "155.50", ""]
    assert sections[1]["Rows"][0]["Cells"][0]["Value"] == "Cost of Goods Sold (310)"
    assert total["Title"] == "" and total["Rows"][0]["RowType"] == "SummaryRow"
    _, debit, credit, ytd_debit, ytd_credit = [c["Value"] for c in total["Rows"][0]["Cells"]]
    assert (debit, ytd_debit) == (credit, ytd_credit)  # the books balance

    november = client.get(f"{API}/Reports/TrialBalance", params={"date": "2026-11-30"}, headers=api(tokens))
    assert report_rows(november.json()["Reports"][0])[cogs] == ["7.00", "", "162.50", ""]


def test_a_journal_a_person_archives_stays_in_the_trial_balance(
    client: httpx.Client, sandbox: XeroSandbox
) -> None:
    """Xero Central: posted journals "that you don't need to see" are archived on the Posted tab, and only
    voided ones are reversed from the general ledger; a draft is deleted, never archived."""
    tokens = connect(client, scope=f"{SCOPE} accounting.reports.trialbalance.read")
    created = put_journals(client, tokens, journal(Status="POSTED"), journal("Draft", "99.00"))
    posted, draft = (j["ManualJournalID"] for j in created.json()["ManualJournals"])
    before = client.get(f"{API}/Reports/TrialBalance", params={"date": "2026-10-31"}, headers=api(tokens))

    archived = sandbox.edit_record(AU_TENANT_ID, "ManualJournals", posted, {"Status": "ARCHIVED"})

    assert archived["Status"] == "ARCHIVED"
    after = client.get(f"{API}/Reports/TrialBalance", params={"date": "2026-10-31"}, headers=api(tokens))
    assert report_rows(after.json()["Reports"][0]) == report_rows(before.json()["Reports"][0]) != {}
    with pytest.raises(AdminError, match="cannot be applied"):
        sandbox.edit_record(AU_TENANT_ID, "ManualJournals", draft, {"Status": "ARCHIVED"})


def test_trial_balance_needs_a_reports_scope(client: httpx.Client, tokens: dict[str, Any]) -> None:
    response = client.get(f"{API}/Reports/TrialBalance", params={"date": "2026-10-31"}, headers=api(tokens))
    assert response.status_code == 401 and response.json()["Detail"] == "AuthorizationUnsuccessful"


# ---- the general ledger: Journals, Balance Sheet, Profit and Loss ---------------------------------------

LEDGER_SCOPE = f"{SCOPE} accounting.journals.read accounting.reports.read"


def sale(client: httpx.Client, tokens: dict[str, Any], amount: str = "18.00") -> dict[str, Any]:
    """An approved sale to Harbour Fabrication on 2026-10-20, tax exclusive at Australia's 10 % GST."""
    invoice = {
        "Type": "ACCREC",
        "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")},
        "Date": "2026-10-20",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [{"Description": "Widget", "Quantity": 1, "UnitAmount": amount, "AccountCode": "200"}],
    }
    response = client.put(f"{API}/Invoices", json={"Invoices": [invoice]}, headers=api(tokens))
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()["Invoices"][0]
    return created


def journals_after(client: httpx.Client, tokens: dict[str, Any], offset: int) -> list[dict[str, Any]]:
    response = client.get(f"{API}/Journals", params={"offset": offset}, headers=api(tokens))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["Journals"]
    return found


def last_number(client: httpx.Client, tokens: dict[str, Any]) -> int:
    return max((j["JournalNumber"] for j in journals_after(client, tokens, 0)), default=0)


def lines_by_code(journal: dict[str, Any]) -> dict[str, tuple[float, float, float]]:
    return {
        line["AccountCode"] or line["AccountName"]: (
            line["NetAmount"],
            line["TaxAmount"],
            line["GrossAmount"],
        )
        for line in journal["JournalLines"]
    }


def test_journals_show_posted_manual_journals_and_sales_in_order(client: httpx.Client) -> None:
    """Xero's Journals: every posted journal of the general ledger, oldest first, numbered, with its source;
    a draft is not posted. A sale posts its net to the line's account, the tax to GST and the total to
    Accounts Receivable (the shape of the spec's getJournals example)."""
    tokens = connect(client, scope=LEDGER_SCOPE)
    before = last_number(client, tokens)
    created = put_journals(client, tokens, journal(Status="POSTED"), journal("Draft", "99.00"))
    posted = created.json()["ManualJournals"][0]["ManualJournalID"]
    invoice = sale(client, tokens)

    manual, sold = journals_after(client, tokens, before)

    assert [manual["JournalNumber"], sold["JournalNumber"]] == [before + 1, before + 2]
    assert (manual["SourceType"], manual["SourceID"], manual["Reference"]) == (
        "MANJOURNAL",
        posted,
        "COGS batch 1",
    )
    assert manual["JournalDate"] == "/Date(1792022400000+0000)/"  # 2026-10-15
    assert lines_by_code(manual) == {"310": (125.5, 0.0, 125.5), "630": (-125.5, 0.0, -125.5)}
    assert (sold["SourceType"], sold["SourceID"]) == ("ACCREC", invoice["InvoiceID"])
    assert lines_by_code(sold) == {
        "610": (19.8, 0.0, 19.8),
        "200": (-18.0, -1.8, -19.8),
        "GST": (-1.8, 0.0, -1.8),
    }
    sales_line = next(line for line in sold["JournalLines"] if line["AccountCode"] == "200")
    assert (sales_line["AccountType"], sales_line["AccountName"], sales_line["TaxType"]) == (
        "REVENUE",
        "Sales",
        "OUTPUT",
    )
    assert sales_line["AccountID"] == demo_id(AU_TENANT_ID, "account", "200")
    one = client.get(f"{API}/Journals/{sold['JournalNumber']}", headers=api(tokens)).json()["Journals"]
    # "SourceID ... not returned when calling an individual journal by JournalID or JournalNumber"
    assert [j["JournalID"] for j in one] == [sold["JournalID"]] and "SourceID" not in one[0]
    by_id = client.get(f"{API}/Journals/{sold['JournalID']}", headers=api(tokens))
    assert by_id.json()["Journals"][0]["JournalNumber"] == sold["JournalNumber"]
    assert client.get(f"{API}/Journals/999999", headers=api(tokens)).status_code == 404


def test_a_voided_sale_or_journal_adds_a_reversing_journal(client: httpx.Client) -> None:
    tokens = connect(client, scope=LEDGER_SCOPE)
    invoice = sale(client, tokens)
    posted = put_journals(client, tokens, journal(Status="POSTED")).json()["ManualJournals"][0]
    before = last_number(client, tokens)
    trial = client.get(f"{API}/Reports/TrialBalance", params={"date": "2026-10-31"}, headers=api(tokens))

    voided = client.post(
        f"{API}/Invoices/{invoice['InvoiceID']}",
        json={"Invoices": [{"Status": "VOIDED"}]},
        headers=api(tokens),
    )
    assert voided.status_code == 200, voided.text
    unposted = client.post(
        f"{API}/ManualJournals/{posted['ManualJournalID']}",
        json={"ManualJournals": [{**journal(), "Status": "VOIDED"}]},
        headers=api(tokens),
    )
    assert unposted.status_code == 200, unposted.text

    reversal, unjournal = journals_after(client, tokens, before)
    original = next(j for j in journals_after(client, tokens, 0) if j["SourceID"] == invoice["InvoiceID"])
    assert reversal["SourceID"] == invoice["InvoiceID"] and reversal["JournalDate"] == original["JournalDate"]
    assert lines_by_code(reversal) == {k: (-n, -t, -g) for k, (n, t, g) in lines_by_code(original).items()}
    assert unjournal["SourceID"] == posted["ManualJournalID"]
    assert lines_by_code(unjournal) == {"310": (-125.5, 0.0, -125.5), "630": (125.5, 0.0, 125.5)}
    after = client.get(f"{API}/Reports/TrialBalance", params={"date": "2026-10-31"}, headers=api(tokens))
    sales, cogs = demo_id(AU_TENANT_ID, "account", "200"), demo_id(AU_TENANT_ID, "account", "310")
    was, now = report_rows(trial.json()["Reports"][0]), report_rows(after.json()["Reports"][0])
    assert Decimal(was[sales][3]) - Decimal(now[sales][3]) == Decimal("18.00")  # YTD credit
    assert was[cogs][2] == "125.50" and cogs not in now  # no balance left: no row


def test_journals_page_by_offset_and_modified_since_and_need_their_scope(
    client: httpx.Client, sandbox: XeroSandbox
) -> None:
    tokens = connect(client, scope=LEDGER_SCOPE)
    for n in range(105):
        sandbox.clock.advance(1)
        put_journals(client, tokens, journal(f"Batch {n}", Status="POSTED"))
    first = journals_after(client, tokens, 0)
    assert len(first) == 100  # "A maximum of 100 journals will be returned in any response"
    numbers = [j["JournalNumber"] for j in first]
    assert numbers == sorted(numbers) and numbers[0] == 1
    rest = journals_after(client, tokens, numbers[-1])
    assert rest and rest[0]["JournalNumber"] == numbers[-1] + 1 and rest[-1]["Reference"] == "Batch 104"
    latest = rest[-1]["CreatedDateUTC"]
    since = client.get(
        f"{API}/Journals",
        headers=api(tokens, **{"If-Modified-Since": sandbox.clock.now().strftime("%Y-%m-%dT%H:%M:%S")}),
    ).json()["Journals"]
    assert [j["CreatedDateUTC"] for j in since] == [latest]
    cash = client.get(f"{API}/Journals", params={"paymentsOnly": "true"}, headers=api(tokens))
    assert {j["SourceType"] for j in cash.json()["Journals"]} == {"MANJOURNAL"}  # sales are not cash
    bad = client.get(f"{API}/Journals", params={"offset": "ten"}, headers=api(tokens))
    assert bad.status_code == 400 and bad.json()["Type"] == "QueryParseException"
    other = connect(client)  # no accounting.journals.read
    refused = client.get(f"{API}/Journals", headers=api(other))
    assert refused.status_code == 401 and refused.json()["Detail"] == "AuthorizationUnsuccessful"


def sections(report: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Section title (or the first row's name, for an untitled one) -> row name -> its figures."""
    found: dict[str, dict[str, list[str]]] = {}
    for section in report["Rows"][1:]:
        rows = section.get("Rows", [])
        title = section["Title"] or (rows[0]["Cells"][0]["Value"] if rows else "")
        found[title] = {r["Cells"][0]["Value"]: [c["Value"] for c in r["Cells"][1:]] for r in rows}
    return found


def test_balance_sheet_ties_to_the_trial_balance(client: httpx.Client) -> None:
    """Xero's Balance Sheet from the same ledger: each balance-sheet account at its Trial Balance YTD
    balance (assets debit, liabilities and equity credit), the year's profit as Current Year Earnings,
    assets less liabilities equal to equity; the same date a year before as the second column."""
    tokens = connect(client, scope=LEDGER_SCOPE)
    put_journals(client, tokens, journal(Status="POSTED"))
    sale(client, tokens)
    params = {"date": "2026-10-31"}
    trial = client.get(f"{API}/Reports/TrialBalance", params=params, headers=api(tokens)).json()["Reports"][0]

    response = client.get(f"{API}/Reports/BalanceSheet", params=params, headers=api(tokens))

    assert response.status_code == 200, response.text
    report = response.json()["Reports"][0]
    assert report["ReportType"] == "BalanceSheet" and report["ReportTitles"] == [
        "Balance Sheet",
        "Partsemble Demo (AU)",
        "As at 31 October 2026",
    ]
    assert [c["Value"] for c in report["Rows"][0]["Cells"]] == ["", "31 Oct 2026", "31 Oct 2025"]
    found = sections(report)
    assert found["Assets"] == {} and found["Liabilities"] == {}
    ytd = report_rows(trial)
    receivable, inventory = demo_id(AU_TENANT_ID, "account", "610"), demo_id(AU_TENANT_ID, "account", "630")
    payable = demo_id(AU_TENANT_ID, "account", "800")
    current = found["Current Assets"]

    def debit_balance(account: str) -> Decimal:  # the YTD debit less the YTD credit
        return Decimal(ytd[account][2] or 0) - Decimal(ytd[account][3] or 0)

    assert Decimal(current["Accounts Receivable"][0]) == debit_balance(receivable)
    assert Decimal(current["Inventory Asset"][0]) == debit_balance(inventory)  # the journal's credit
    assert Decimal(found["Current Liabilities"]["Accounts Payable"][0]) == -debit_balance(payable)
    assert current["Accounts Receivable"][1] == "0.00"  # nothing was posted a year before
    total_assets = Decimal(found["Total Assets"]["Total Assets"][0])
    total_liabilities = Decimal(found["Total Liabilities"]["Total Liabilities"][0])
    net = Decimal(found["Net Assets"]["Net Assets"][0])
    assert net == total_assets - total_liabilities == Decimal(found["Equity"]["Total Equity"][0])
    # the financial year's profit (Australia's starts on 1 July): its sales less its cost of goods sold and
    # the purchases its bills expensed
    earnings = Decimal(found["Equity"]["Current Year Earnings"][0])
    sales, cogs, purchases = (demo_id(AU_TENANT_ID, "account", code) for code in ("200", "310", "300"))
    assert earnings == -debit_balance(sales) - debit_balance(cogs) - debit_balance(purchases)


def test_balance_sheet_compares_periods_and_refuses_what_xero_refuses(client: httpx.Client) -> None:
    tokens = connect(client, scope=LEDGER_SCOPE)
    put_journals(client, tokens, journal(Status="POSTED"))  # 2026-10-15
    params = {"date": "2026-10-31", "periods": "2", "timeframe": "MONTH"}
    report = client.get(f"{API}/Reports/BalanceSheet", params=params, headers=api(tokens)).json()["Reports"][
        0
    ]
    assert [c["Value"] for c in report["Rows"][0]["Cells"]] == [
        "",
        "31 Oct 2026",
        "30 Sep 2026",
        "31 Aug 2026",
    ]
    # each earlier column is the balance sheet at its own date
    for column, day in ((1, "2026-09-30"), (2, "2026-08-31")):
        alone = client.get(f"{API}/Reports/BalanceSheet", params={"date": day}, headers=api(tokens))
        expected = {
            t: {n: v[0] for n, v in rows.items()} for t, rows in sections(alone.json()["Reports"][0]).items()
        }
        got = {t: {n: v[column] for n, v in rows.items()} for t, rows in sections(report).items()}
        assert {t: {n: v for n, v in rows.items() if v != "0.00"} for t, rows in got.items()} == {
            t: {n: v for n, v in rows.items() if v != "0.00"} for t, rows in expected.items()
        }
    for bad in ({"date": "31/10/2026"}, {"periods": "13"}, {"timeframe": "WEEK"}):
        refused = client.get(f"{API}/Reports/BalanceSheet", params=bad, headers=api(tokens))
        assert refused.status_code == 400 and refused.json()["Type"] == "QueryParseException", bad
    unscoped = client.get(f"{API}/Reports/BalanceSheet", headers=api(connect(client)))
    assert unscoped.status_code == 401
    granular = connect(client, scope=f"{SCOPE} accounting.reports.balancesheet.read")
    assert client.get(f"{API}/Reports/BalanceSheet", headers=api(granular)).status_code == 200


def test_profit_and_loss_reports_income_and_costs_of_the_period(client: httpx.Client) -> None:
    tokens = connect(client, scope=LEDGER_SCOPE)
    put_journals(client, tokens, journal(Status="POSTED"))  # COGS 125.50 on 2026-10-15
    sale(client, tokens, "1000.00")  # 2026-10-20
    params = {"fromDate": "2026-10-01", "toDate": "2026-10-31", "periods": "1", "timeframe": "MONTH"}
    october = client.get(
        f"{API}/Reports/ProfitAndLoss",
        params={"fromDate": "2026-10-01", "toDate": "2026-10-31"},
        headers=api(tokens),
    )
    assert october.status_code == 200, october.text

    response = client.get(f"{API}/Reports/ProfitAndLoss", params=params, headers=api(tokens))

    assert response.status_code == 200, response.text
    report = response.json()["Reports"][0]
    assert report["ReportType"] == "ProfitAndLoss" and report["ReportTitles"] == [
        "Profit & Loss",
        "Partsemble Demo (AU)",
        "1 October 2026 to 31 October 2026",
    ]
    assert [c["Value"] for c in report["Rows"][0]["Cells"]] == ["", "31 Oct 26", "30 Sep 26"]
    found = sections(report)
    trial = client.get(f"{API}/Reports/TrialBalance", params={"date": "2026-10-31"}, headers=api(tokens))
    month = report_rows(trial.json()["Reports"][0])  # its Debit / Credit: October's movement
    sales = demo_id(AU_TENANT_ID, "account", "200")
    assert (
        found["Income"]["Sales"][0] == month[sales][1]
        and found["Income"]["Total Income"][0] == month[sales][1]
    )
    assert found["Less Cost of Sales"]["Cost of Goods Sold"] == ["125.50", "0.00"]
    purchases = Decimal(month[demo_id(AU_TENANT_ID, "account", "300")][0])  # the demo's October bill
    assert Decimal(found["Less Cost of Sales"]["Purchases"][0]) == purchases
    net = Decimal(month[sales][1]) - Decimal("125.50") - purchases
    assert found["Gross Profit"]["Gross Profit"][0] == found["NET PROFIT"]["NET PROFIT"][0] == f"{net:.2f}"
    assert sections(october.json()["Reports"][0])["NET PROFIT"]["NET PROFIT"] == [f"{net:.2f}"]
    refused = client.get(
        f"{API}/Reports/ProfitAndLoss",
        params={"fromDate": "2026-11-01", "toDate": "2026-10-01"},
        headers=api(tokens),
    )
    assert refused.status_code == 400 and refused.json()["Type"] == "QueryParseException"


# ---- credit note allocations -------------------------------------------------------------------------

OVER_AMOUNT = "Credit Note cannot be allocated as amount is greater than amount outstanding"
PAID_OFF = "The invoice you are trying to allocate to has already been paid off"


def seed_document(sandbox: XeroSandbox, collection: str, amount: str, **fields: Any) -> str:
    """An AUTHORISED, untaxed sale (or customer credit) for Kiwi Robotics of ``amount``; its id."""
    kind = "ACCREC" if collection == "Invoices" else "ACCRECCREDIT"
    contact = fields.pop("contact", "kiwi")
    record = sandbox.add_record(
        AU_TENANT_ID,
        collection,
        {
            "Type": kind,
            "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", contact)},
            "Date": "2026-11-01",
            "Status": "AUTHORISED",
            "LineAmountTypes": "NoTax",
            "LineItems": [{"Description": "Panel", "Quantity": 1, "UnitAmount": amount}],
            **fields,
        },
    )
    return str(record["InvoiceID" if collection == "Invoices" else "CreditNoteID"])


def allocate(
    client: httpx.Client,
    tokens: dict[str, Any],
    note: str,
    *allocations: tuple[str, Any],
    day: str = "2026-11-05",
    **params: str,
) -> httpx.Response:
    body = {"Allocations": [{"Invoice": {"InvoiceID": i}, "Amount": a, "Date": day} for i, a in allocations]}
    return client.put(f"{API}/CreditNotes/{note}/Allocations", json=body, params=params, headers=api(tokens))


def read_one(client: httpx.Client, tokens: dict[str, Any], collection: str, key: str) -> dict[str, Any]:
    response = client.get(f"{API}/{collection}/{key}", headers=api(tokens))
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()[collection][0]
    return record


def test_an_allocation_shows_on_the_credit_note_and_the_invoice_and_both_read_as_modified(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    note = seed_document(sandbox, "CreditNotes", "30.00")
    invoice = seed_document(sandbox, "Invoices", "50.00")
    sandbox.clock.advance(60)
    mark = sandbox.clock.now().isoformat()
    response = allocate(client, tokens, note, (invoice, 20))
    assert response.status_code == 200, response.text
    made = response.json()["Allocations"]
    assert [(a["Amount"], a["Invoice"]["InvoiceID"], a["CreditNote"]["CreditNoteID"]) for a in made] == [
        (20.0, invoice, note)
    ]
    credit = read_one(client, tokens, "CreditNotes", note)
    assert (credit["Status"], credit["Total"], credit["RemainingCredit"]) == ("AUTHORISED", 30.0, 10.0)
    [stored] = credit["Allocations"]
    assert stored["AllocationID"] == made[0]["AllocationID"]
    assert (stored["Amount"], stored["Date"]) == (20.0, "/Date(1793836800000+0000)/")  # 2026-11-05
    assert stored["Invoice"]["InvoiceID"] == invoice and stored["Invoice"]["InvoiceNumber"].startswith("INV-")
    sale = read_one(client, tokens, "Invoices", invoice)
    assert (sale["Status"], sale["AmountDue"], sale["AmountCredited"]) == ("AUTHORISED", 30.0, 20.0)
    assert [(c["CreditNoteID"], c["AppliedAmount"]) for c in sale["CreditNotes"]] == [(note, 20.0)]
    headers = api(tokens, **{"If-Modified-Since": mark})
    notes = client.get(f"{API}/CreditNotes", headers=headers).json()["CreditNotes"]
    invoices = client.get(f"{API}/Invoices", headers=headers).json()["Invoices"]
    assert [n["CreditNoteID"] for n in notes] == [note] and notes[0]["Allocations"] == [stored]
    assert [i["InvoiceID"] for i in invoices] == [invoice]


def test_a_partial_then_a_full_allocation_leaves_both_documents_paid(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    note = seed_document(sandbox, "CreditNotes", "50.00")
    invoice = seed_document(sandbox, "Invoices", "50.00")
    assert allocate(client, tokens, note, (invoice, "20.00")).status_code == 200
    assert read_one(client, tokens, "CreditNotes", note)["Status"] == "AUTHORISED"
    assert allocate(client, tokens, note, (invoice, 30)).status_code == 200
    credit = read_one(client, tokens, "CreditNotes", note)
    sale = read_one(client, tokens, "Invoices", invoice)
    assert (credit["Status"], credit["RemainingCredit"]) == ("PAID", 0.0)
    assert [a["Amount"] for a in credit["Allocations"]] == [20.0, 30.0]
    assert (sale["Status"], sale["AmountDue"], sale["AmountCredited"], sale["AmountPaid"]) == (
        "PAID",
        0.0,
        50.0,
        0.0,
    )
    assert [c["AppliedAmount"] for c in sale["CreditNotes"]] == [20.0, 30.0]
    again = allocate(client, tokens, note, (invoice, 1))
    assert again.status_code == 400
    assert [e["Message"] for e in again.json()["Elements"][0]["ValidationErrors"]] == [PAID_OFF, OVER_AMOUNT]


def test_a_credit_note_used_up_is_paid_while_the_invoice_still_owes(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    note = seed_document(sandbox, "CreditNotes", "30.00")
    invoice = seed_document(sandbox, "Invoices", "50.00")
    assert allocate(client, tokens, note, (invoice, 30)).status_code == 200
    assert read_one(client, tokens, "CreditNotes", note)["Status"] == "PAID"
    sale = read_one(client, tokens, "Invoices", invoice)
    assert (sale["Status"], sale["AmountDue"]) == ("AUTHORISED", 20.0)


@pytest.mark.parametrize(
    ("note_fields", "invoice_fields", "amount", "message"),
    [
        ({}, {}, "30.01", OVER_AMOUNT),  # more than the note's remaining credit
        ({"LineItems": [{"Description": "x", "UnitAmount": "80"}]}, {}, "50.01", OVER_AMOUNT),  # than due
        ({"Status": "DRAFT"}, {}, 10, "A credit note with status DRAFT cannot be allocated"),
        ({"Status": "VOIDED"}, {}, 10, "A credit note with status VOIDED cannot be allocated"),
        ({}, {"Status": "DRAFT"}, 10, "An invoice with status DRAFT cannot have a credit note allocated"),
        ({}, {"Status": "PAID"}, 10, PAID_OFF),
        ({}, {"contact": "harbour"}, 10, "must be for the same contact"),
        ({}, {"CurrencyCode": "USD", "CurrencyRate": "0.6512"}, 10, "must be in the same currency"),
        ({"Type": "ACCPAYCREDIT"}, {}, 10, "Credit Note cannot be allocated to an incorrect invoice type"),
        ({}, {}, 0, "The Amount must be greater than zero."),
    ],
)
def test_allocations_xero_refuses_change_neither_document(
    client: httpx.Client,
    tokens: dict[str, Any],
    sandbox: XeroSandbox,
    note_fields: dict[str, Any],
    invoice_fields: dict[str, Any],
    amount: Any,
    message: str,
) -> None:
    note = seed_document(sandbox, "CreditNotes", "30.00", **note_fields)
    invoice = seed_document(sandbox, "Invoices", "50.00", **invoice_fields)
    before = (read_one(client, tokens, "CreditNotes", note), read_one(client, tokens, "Invoices", invoice))
    response = allocate(client, tokens, note, (invoice, amount))
    assert response.status_code == 400
    body = response.json()
    assert (body["ErrorNumber"], body["Type"]) == (10, "ValidationException")
    [element] = body["Elements"]
    assert element["Invoice"]["InvoiceID"] == invoice and "AllocationID" not in element
    assert any(message in e["Message"] for e in element["ValidationErrors"]), element["ValidationErrors"]
    after = (read_one(client, tokens, "CreditNotes", note), read_one(client, tokens, "Invoices", invoice))
    assert after == before


def test_an_unknown_invoice_or_credit_note_is_refused(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    note = seed_document(sandbox, "CreditNotes", "30.00")
    unknown = allocate(client, tokens, note, (demo_id("nope"), 10))
    assert unknown.status_code == 400
    messages = [e["Message"] for e in unknown.json()["Elements"][0]["ValidationErrors"]]
    assert messages == ["The invoice could not be found."]
    invoice = seed_document(sandbox, "Invoices", "50.00")
    assert allocate(client, tokens, demo_id("nope"), (invoice, 10)).status_code == 404
    empty = client.put(f"{API}/CreditNotes/{note}/Allocations", json={"Allocations": []}, headers=api(tokens))
    assert empty.status_code == 400 and empty.json()["Type"] == "NoDataProcessedException"
    no_date = client.put(
        f"{API}/CreditNotes/{note}/Allocations",
        json={"Allocations": [{"Invoice": {"InvoiceID": invoice}, "Amount": 5}]},
        headers=api(tokens),
    )
    assert no_date.status_code == 400
    assert read_one(client, tokens, "CreditNotes", note)["Allocations"] == []


def test_elements_of_one_request_share_the_credit_and_summarize_errors_false_keeps_the_good_ones(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    note = seed_document(sandbox, "CreditNotes", "30.00")
    first, second = (seed_document(sandbox, "Invoices", "50.00") for _ in range(2))
    both = allocate(client, tokens, note, (first, 20), (second, 20))  # 40 of 30: the second is refused
    assert both.status_code == 400 and read_one(client, tokens, "CreditNotes", note)["Allocations"] == []
    mixed = allocate(client, tokens, note, (first, 20), (second, 20), summarizeErrors="false")
    assert mixed.status_code == 200
    assert [a["StatusAttributeString"] for a in mixed.json()["Allocations"]] == ["OK", "ERROR"]
    assert read_one(client, tokens, "CreditNotes", note)["RemainingCredit"] == 10.0
    assert read_one(client, tokens, "Invoices", second)["AmountDue"] == 50.0


def test_admin_allocations_follow_the_api_rules_and_are_never_dropped(
    client: httpx.Client, tokens: dict[str, Any], sandbox: XeroSandbox
) -> None:
    invoice = seed_document(sandbox, "Invoices", "50.00")
    note = seed_document(
        sandbox,
        "CreditNotes",
        "30.00",
        Allocations=[{"Invoice": {"InvoiceID": invoice}, "Amount": "12.50", "Date": "2026-11-02"}],
    )
    assert read_one(client, tokens, "Invoices", invoice)["AmountDue"] == 37.5
    assert read_one(client, tokens, "CreditNotes", note)["RemainingCredit"] == 17.5
    with pytest.raises(AdminError, match="greater than amount outstanding"):
        seed_document(
            sandbox,
            "CreditNotes",
            "30.00",
            CreditNoteNumber="CN-REFUSED",
            Allocations=[{"Invoice": {"InvoiceID": invoice}, "Amount": "31", "Date": "2026-11-02"}],
        )
    numbers = [n["CreditNoteNumber"] for n in sandbox.list_records(AU_TENANT_ID, "CreditNotes")]
    assert "CN-REFUSED" not in numbers
    # a record read back from the admin API and sent again keeps its allocations
    listed = next(n for n in sandbox.list_records(AU_TENANT_ID, "CreditNotes") if n["CreditNoteID"] == note)
    sandbox.edit_record(AU_TENANT_ID, "CreditNotes", note, {**listed, "Reference": "re-sent"})
    edited = read_one(client, tokens, "CreditNotes", note)
    assert (edited["Reference"], edited["RemainingCredit"], len(edited["Allocations"])) == (
        "re-sent",
        17.5,
        1,
    )
    sandbox.edit_record(AU_TENANT_ID, "Invoices", invoice, {"Reference": "PO-1"})
    assert read_one(client, tokens, "Invoices", invoice)["AmountDue"] == 37.5
    with pytest.raises(AdminError, match="cannot remove allocations"):
        sandbox.edit_record(AU_TENANT_ID, "CreditNotes", note, {"Allocations": []})
    more = [*listed["Allocations"], {"Invoice": {"InvoiceID": invoice}, "Amount": 7.5, "Date": "2026-11-03"}]
    sandbox.edit_record(AU_TENANT_ID, "CreditNotes", note, {"Allocations": more})
    assert read_one(client, tokens, "Invoices", invoice)["AmountCredited"] == 20.0
    other = seed_document(sandbox, "CreditNotes", "5.00")
    with pytest.raises(AdminError, match="CreditNotes come from allocating"):
        sandbox.edit_record(AU_TENANT_ID, "Invoices", invoice, {"CreditNotes": [{"CreditNoteID": other}]})
    # the documents an allocation joins cannot change under it, as in Xero
    for collection, key in (("Invoices", invoice), ("CreditNotes", note)):
        with pytest.raises(AdminError, match="has a payment or credit note allocated to it"):
            sandbox.void_record(AU_TENANT_ID, collection, key)
    lines = [{"Description": "Panel", "Quantity": 2, "UnitAmount": "50.00"}]
    with pytest.raises(AdminError, match="has a payment or credit note allocated to it"):
        sandbox.edit_record(AU_TENANT_ID, "Invoices", invoice, {"LineItems": lines})
