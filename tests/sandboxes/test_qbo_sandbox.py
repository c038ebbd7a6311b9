"""The QBO sandbox keeps the provider promises we rely on: OAuth, queries, CDC, writes, limits."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from infra.sandboxes.common import serve
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.qbo_books import AdminError
from infra.sandboxes.qbo_demo import (
    ASSEMBLY_LABOUR,
    BRACKET_20,
    BRACKET_40,
    BRACKET_BUNDLE,
    CORNER_BRACE,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_REALM_ID,
    DEMO_REDIRECT_URI,
    DEMO_USERNAME,
    DISCONTINUED,
    INVENTORY_ITEMS,
    SHELF_KIT,
    SHOP_SUPPLIES,
)

REALM = DEMO_REALM_ID
SCOPE = "com.intuit.quickbooks.accounting"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
DAY = 86400
SHRINKAGE, INACTIVE_ACCOUNT, WASTE, PAYABLE, RECEIVABLE = "3", "8", "7", "4", "13"
COGS, INCOME, FINISHED, CHECKING = "2", "6", "10", "12"
INVENTORY_ASSET, RECEIVING_CLEARING, EQUITY = "1", "5", "9"
NORTHSIDE, HARBOR = "1", "1"  # demo vendor and customer ids


@pytest.fixture
def sandbox() -> QboSandbox:
    return QboSandbox(seed=True)


@pytest.fixture
def client(sandbox: QboSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(transport=sandbox.transport(), base_url=sandbox.base_url) as c:
        yield c


def hidden_fields(page: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {name: html.unescape(value) for name, value in found}


def authorize_params(**overrides: str) -> dict[str, str]:
    return {
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": DEMO_REDIRECT_URI,
        "response_type": "code",
        "scope": f"{SCOPE} openid",
        "state": "st-123",
        **overrides,
    }


def connect(
    client: httpx.Client, decision: str = "allow", realm: str = REALM, **overrides: str
) -> dict[str, str]:
    """Walks the HTML form like a browser; returns the query parameters of the redirect back to the app."""
    page = client.get("/connect/oauth2", params=authorize_params(**overrides))
    assert page.status_code == 200
    consent = client.post(
        "/connect/oauth2",
        data={**hidden_fields(page.text), "username": DEMO_USERNAME, "password": DEMO_PASSWORD},
    )
    assert 'name="realm_id"' in consent.text and "Partsemble Demo Manufacturing (US)" in consent.text
    answer = client.post(
        "/connect/oauth2", data={**hidden_fields(consent.text), "realm_id": realm, "decision": decision}
    )
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == DEMO_REDIRECT_URI
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def exchange(client: httpx.Client, code: str, **extra: str) -> httpx.Response:
    return client.post(
        TOKEN_PATH,
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT_URI, **extra},
    )


def refresh(
    client: httpx.Client, refresh_token: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post(
        TOKEN_PATH,
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        headers=headers,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


@pytest.fixture
def tokens(client: httpx.Client) -> dict[str, Any]:
    response = exchange(client, connect(client)["code"])
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def api(sandbox: QboSandbox, tokens: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=sandbox.transport(),
        base_url=f"{sandbox.base_url}/v3/company/{REALM}",
        headers={"authorization": f"Bearer {tokens['access_token']}", "accept": "application/json"},
    ) as c:
        yield c


def api_for(sandbox: QboSandbox, client: httpx.Client, realm: str) -> httpx.Client:
    """An API client for another company the demo user may connect (after ``sandbox.add_user``)."""
    tokens = exchange(client, connect(client, realm=realm)["code"]).json()
    return httpx.Client(
        transport=sandbox.transport(),
        base_url=f"{sandbox.base_url}/v3/company/{realm}",
        headers={"authorization": f"Bearer {tokens['access_token']}", "accept": "application/json"},
    )


def query(api: httpx.Client, text: str) -> dict[str, Any]:
    response = api.get("/query", params={"query": text, "minorversion": "75"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["QueryResponse"]
    return body


def fault_code(response: httpx.Response) -> str:
    return str(response.json()["Fault"]["Error"][0]["code"])


def journal(debit: str = "125.00", credit: str = "125.00", **fields: Any) -> dict[str, Any]:
    def line(posting: str, amount: str, account: str) -> dict[str, Any]:
        return {
            "Amount": Decimal(amount),
            "DetailType": "JournalEntryLineDetail",
            "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": account}},
        }

    return {
        "TxnDate": "2026-10-31",
        "DocNumber": "MFG-1031",
        "PrivateNote": "syncid:je-1",
        "Line": [line("Debit", debit, WASTE), line("Credit", credit, SHRINKAGE)],
        **fields,
    }


def post_json(api: httpx.Client, path: str, body: dict[str, Any], **params: str) -> httpx.Response:
    # Decimal amounts go out as JSON numbers, as a real client sends them.
    return api.post(
        path,
        params=params,
        content=json.dumps(body, default=float),
        headers={"content-type": "application/json"},
    )


def adjustment(**detail: Any) -> dict[str, Any]:
    return {
        "TxnDate": "2026-10-31",
        "PrivateNote": "cycle count; syncid=adj-1",
        "AdjustAccountRef": {"value": SHRINKAGE},
        "Line": [
            {
                "DetailType": "ItemAdjustmentLineDetail",
                "ItemAdjustmentLineDetail": {"ItemRef": {"value": BRACKET_20}, **detail},
            }
        ],
    }


# ---- OAuth ------------------------------------------------------------------------------------------


def test_connect_through_form_returns_code_realm_and_state(client: httpx.Client) -> None:
    result = connect(client)
    assert result["realmId"] == REALM and result["state"] == "st-123" and result["code"]
    response = exchange(client, result["code"])
    body = response.json()
    assert response.status_code == 200 and response.headers["intuit_tid"]
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["x_refresh_token_expires_in"] == 8_640_000
    assert "x_refresh_token_hard_expires_in" not in body


def test_deny_sends_access_denied_and_state(client: httpx.Client) -> None:
    assert connect(client, decision="deny") == {"error": "access_denied", "state": "st-123"}


def test_unregistered_redirect_uri_gets_error_page_not_redirect(client: httpx.Client) -> None:
    page = client.get("/connect/oauth2", params=authorize_params(redirect_uri="https://evil.test/cb"))
    assert page.status_code == 400 and "location" not in page.headers and "redirect_uri" in page.text


def test_missing_accounting_scope_redirects_with_invalid_scope(client: httpx.Client) -> None:
    page = client.get("/connect/oauth2", params=authorize_params(scope="openid email"))
    assert page.status_code == 302 and "error=invalid_scope" in page.headers["location"]


def test_wrong_password_shows_sign_in_again(client: httpx.Client) -> None:
    page = client.get("/connect/oauth2", params=authorize_params())
    again = client.post(
        "/connect/oauth2", data={**hidden_fields(page.text), "username": DEMO_USERNAME, "password": "nope"}
    )
    assert again.status_code == 200 and "Invalid username or password" in again.text
    assert 'name="realm_id"' not in again.text
    fields = {**hidden_fields(page.text), "username": DEMO_USERNAME, "password": "d\u00e9mo"}
    accented = client.post("/connect/oauth2", data=fields)  # beyond ASCII: a wrong password, not a crash
    assert accented.status_code == 200 and "Invalid username or password" in accented.text


def test_bad_client_secret_is_invalid_client(client: httpx.Client) -> None:
    code = connect(client)["code"]
    response = client.post(
        TOKEN_PATH,
        auth=(DEMO_CLIENT_ID, "wrong"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT_URI},
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    accented = client.post(
        TOKEN_PATH,
        auth=(DEMO_CLIENT_ID, "wr\u00f6ng"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT_URI},
    )
    assert accented.status_code == 401 and accented.json()["error"] == "invalid_client"


def test_code_is_single_use(client: httpx.Client) -> None:
    code = connect(client)["code"]
    assert exchange(client, code).status_code == 200
    second = exchange(client, code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert second.headers["intuit_tid"]


def test_code_expires_after_five_minutes(sandbox: QboSandbox, client: httpx.Client) -> None:
    code = connect(client)["code"]
    sandbox.clock.advance(301)
    assert exchange(client, code).json()["error"] == "invalid_grant"


def test_code_exchange_needs_the_authorize_redirect_uri(sandbox: QboSandbox, client: httpx.Client) -> None:
    sandbox.register_app(
        DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [DEMO_REDIRECT_URI, "http://127.0.0.1:3000/other"]
    )
    code = connect(client)["code"]
    assert exchange(client, code, redirect_uri="http://127.0.0.1:3000/other").status_code == 400


def test_pkce_verifier_must_match_challenge(client: httpx.Client) -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    assert exchange(client, connect(client, **pkce)["code"], code_verifier="w" * 50).status_code == 400
    assert exchange(client, connect(client, **pkce)["code"], code_verifier=verifier).status_code == 200


def test_refresh_rotates_and_the_old_value_is_dead(client: httpx.Client, tokens: dict[str, Any]) -> None:
    first = refresh(client, tokens["refresh_token"])
    assert first.status_code == 200 and first.json()["refresh_token"] != tokens["refresh_token"]
    stale = refresh(client, tokens["refresh_token"])
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"
    assert refresh(client, first.json()["refresh_token"]).status_code == 200


def test_hard_expiry_is_reported_only_on_request(client: httpx.Client, tokens: dict[str, Any]) -> None:
    plain = refresh(client, tokens["refresh_token"]).json()
    assert "x_refresh_token_hard_expires_in" not in plain
    opted = refresh(
        client, plain["refresh_token"], {"x-include-refresh-token-hard-expires-in": "true"}
    ).json()
    assert 5 * 365 * DAY <= opted["x_refresh_token_hard_expires_in"] <= 5 * 366 * DAY


def test_refresh_token_dies_after_100_idle_days(
    sandbox: QboSandbox, client: httpx.Client, tokens: dict[str, Any]
) -> None:
    sandbox.clock.advance(99 * DAY)
    kept = refresh(client, tokens["refresh_token"])  # use within 100 days extends the window
    assert kept.status_code == 200
    sandbox.clock.advance(100 * DAY + 1)
    assert refresh(client, kept.json()["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_stops_at_the_five_year_cap(
    sandbox: QboSandbox, client: httpx.Client, tokens: dict[str, Any]
) -> None:
    current = tokens["refresh_token"]
    for _ in range(18):  # 18 * 99 days = 1782 days, inside five years
        sandbox.clock.advance(99 * DAY)
        body = refresh(client, current).json()
        current = body["refresh_token"]
    assert body["x_refresh_token_expires_in"] < 8_640_000  # capped by the hard expiry
    sandbox.clock.advance(99 * DAY)
    assert refresh(client, current).json()["error"] == "invalid_grant"


def test_revoke_ends_the_whole_grant(client: httpx.Client, api: httpx.Client, tokens: dict[str, Any]) -> None:
    response = client.post(
        "/v2/oauth2/tokens/revoke",
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        json={"token": tokens["refresh_token"]},
    )
    assert response.status_code == 200
    assert api.get(f"/companyinfo/{REALM}").status_code == 401
    assert refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_user_removing_the_app_in_qbo_disconnects(
    client: httpx.Client, api: httpx.Client, tokens: dict[str, Any]
) -> None:
    assert client.post(f"/_admin/companies/{REALM}/revoke").json() == {"revoked_grants": 1}
    assert api.get(f"/companyinfo/{REALM}").status_code == 401
    assert refresh(client, tokens["refresh_token"]).status_code == 400


def test_discovery_document_points_at_the_sandbox(sandbox: QboSandbox, client: httpx.Client) -> None:
    for path in ("/.well-known/openid_sandbox_configuration/", "/.well-known/openid_configuration"):
        doc = client.get(path).json()
        assert doc["token_endpoint"] == f"{sandbox.base_url}{TOKEN_PATH}"
        assert doc["authorization_endpoint"] == f"{sandbox.base_url}/connect/oauth2"
        assert doc["revocation_endpoint"] == f"{sandbox.base_url}/v2/oauth2/tokens/revoke"


# ---- API auth --------------------------------------------------------------------------------------


def test_expired_access_token_gets_401_3200(sandbox: QboSandbox, api: httpx.Client) -> None:
    sandbox.clock.advance(3601)
    response = api.get(f"/companyinfo/{REALM}")
    assert response.status_code == 401 and response.headers["intuit_tid"]
    assert response.json()["fault"]["error"][0]["code"] == "3200"


def test_token_for_another_realm_gets_403_3100(sandbox: QboSandbox, api: httpx.Client) -> None:
    other = sandbox.add_company("Other Co", realm_id="4620816365000000001")
    response = api.get(f"{sandbox.base_url}/v3/company/{other.realm_id}/companyinfo/{other.realm_id}")
    assert response.status_code == 403 and fault_code(response) == "3100"


def test_company_info_and_preferences_describe_the_company(api: httpx.Client) -> None:
    info = api.get(f"/companyinfo/{REALM}", params={"minorversion": "65"}).json()
    assert info["CompanyInfo"]["Country"] == "US" and info["time"]
    assert {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"} in info["CompanyInfo"]["NameValue"]
    prefs = api.get("/preferences").json()["Preferences"]
    assert prefs["ProductAndServicesPrefs"]["QuantityOnHand"] is True
    assert prefs["AccountingInfoPrefs"]["BookCloseDate"] == "2026-01-31"


def test_company_info_and_preferences_answer_a_query(api: httpx.Client) -> None:
    """python-quickbooks' CompanyInfo.all() posts this query (content-type application/text)."""
    response = api.post(
        "/query",
        params={"minorversion": "75"},
        content=b"SELECT * FROM CompanyInfo MAXRESULTS 100",
        headers={"content-type": "application/text"},
    )
    assert response.status_code == 200, response.text
    info = response.json()["QueryResponse"]["CompanyInfo"]
    assert [i["Id"] for i in info] == [REALM] and info[0][
        "CompanyName"
    ] == "Partsemble Demo Manufacturing (US)"
    prefs = query(api, "select * from Preferences")["Preferences"][0]
    assert prefs["ProductAndServicesPrefs"]["QuantityOnHand"] is True
    assert query(api, "select count(*) from CompanyInfo") == {"totalCount": 1}


# ---- queries ---------------------------------------------------------------------------------------


def test_query_pages_with_startposition_and_maxresults(api: httpx.Client) -> None:
    first = query(api, "select * from Item STARTPOSITION 1 MAXRESULTS 4")
    second = query(api, "SELECT * FROM Item startposition 5 maxresults 4")
    assert first["startPosition"] == 1 and first["maxResults"] == 4
    assert [i["Id"] for i in first["Item"]] == ["1", "2", "3", "4"]
    assert [i["Id"] for i in second["Item"]] == ["5", "6", "7", "8"]


def test_query_rejects_maxresults_over_1000(api: httpx.Client) -> None:
    response = api.get("/query", params={"query": "select * from Item maxresults 1001"})
    assert response.status_code == 400 and fault_code(response) == "4001"
    detail = response.json()["Fault"]["Error"][0]["Detail"]  # QBO's words (ruckus/quickbooks-ruby#24)
    assert detail == "QueryValidationError: value 1001 is too large. Max allowed value is 1000"


def test_name_lists_hide_inactive_unless_asked(api: httpx.Client) -> None:
    active = query(api, "select * from Account maxresults 1000")["Account"]
    everything = query(api, "select * from Account where Active IN (true, false) maxresults 1000")["Account"]
    assert INACTIVE_ACCOUNT not in {a["Id"] for a in active}
    assert INACTIVE_ACCOUNT in {a["Id"] for a in everything}
    assert (
        query(api, "select * from Account where Active = false")["Account"][0]["Name"]
        == "Old Freight Clearing"
    )


def test_query_rejects_or_with_parser_error(api: httpx.Client) -> None:
    response = api.get("/query", params={"query": "select * from Item where Name = 'a' OR Name = 'b'"})
    assert response.status_code == 400 and fault_code(response) == "4000"


def test_a_backslash_in_a_string_literal_escapes_the_next_character(api: httpx.Client) -> None:
    for name in ("Acme\\", "Smith\\'s Shop"):
        assert post_json(api, "/vendor", {"DisplayName": name}).status_code == 200
    found = query(api, "select * from Vendor where DisplayName IN ('Acme\\\\', 'Smith\\\\\\'s Shop')")
    assert sorted(v["DisplayName"] for v in found["Vendor"]) == ["Acme\\", "Smith\\'s Shop"]
    bare = api.get("/query", params={"query": "select * from Vendor where DisplayName = 'Acme\\'"})
    assert bare.status_code == 400 and fault_code(bare) == "4000"


@pytest.mark.parametrize(
    ("entity", "where"),
    [
        ("InventoryAdjustment", "DocNumber = 'PS-1'"),
        ("InventoryAdjustment", "TxnDate >= '2026-01-01'"),
        ("JournalEntry", "PrivateNote LIKE '%PS-1%'"),
        ("Vendor", "PrimaryEmailAddr = 'a@b.c'"),
        ("Invoice", "PrivateNote = 'x'"),
    ],
)
def test_query_refuses_a_property_that_is_not_filterable(api: httpx.Client, entity: str, where: str) -> None:
    """QBO answers 4001 for a WHERE on a property its reference does not mark filterable for that entity."""
    response = api.get("/query", params={"query": f"select * from {entity} where {where}"})
    assert response.status_code == 400 and fault_code(response) == "4001"
    field = where.split()[0]
    error = response.json()["Fault"]["Error"][0]
    assert (error["Message"], error["Detail"]) == (
        "Invalid query",
        f"QueryValidationError: property '{field}' is not queryable",
    )


def test_query_accepts_what_the_official_client_sends(api: httpx.Client) -> None:
    found = query(api, "SELECT *, Sku FROM Item WHERE Name = 'Wall Bracket 20mm'")["Item"]
    assert found[0]["Sku"] == "FG-WB-20"
    listed = query(api, "select Id, DisplayName from Vendor where DisplayName = 'Northside Metals Ltd'")
    assert listed["Vendor"][0]["Id"] == NORTHSIDE
    vendor = {"DisplayName": "Rate Vendor", "BillRate": 12.5, "TaxReportingBasis": "Cash"}
    created = post_json(api, "/vendor", vendor, minorversion="75")
    assert created.status_code == 200, created.text


def test_query_entity_names_are_case_sensitive(api: httpx.Client) -> None:
    assert api.get("/query", params={"query": "select * from item"}).status_code == 400


def test_count_and_empty_result(api: httpx.Client) -> None:
    assert query(api, "select count(*) from Invoice") == {"totalCount": 5}  # six seeded, one deleted
    assert query(api, "select * from Invoice where DocNumber = 'nope'") == {}
    assert query(api, "select * from Item startposition 500") == {}


def test_query_by_last_updated_time_sent_as_post_body(api: httpx.Client) -> None:
    response = api.post(
        "/query",
        content=b"select * from Invoice where Metadata.LastUpdatedTime > "
        b"'2026-10-01T00:00:00-07:00' ORDERBY MetaData.LastUpdatedTime DESC",
        headers={"content-type": "application/text"},
    )
    invoices = response.json()["QueryResponse"]["Invoice"]
    assert [i["DocNumber"] for i in invoices] == [
        "1004",
        "1006",
        "1003",
    ]  # the void is stamped at seed time, after 1006


def test_order_by_in_two_words_orders_as_orderby(api: httpx.Client) -> None:
    """Intuit's own reference queries write "Order By" (the JournalEntry page), python-quickbooks'
    ``all(order_by=...)`` "ORDER BY": both order as ORDERBY does; ORDER alone is still refused."""
    one_word = query(api, "select * from Invoice ORDERBY TxnDate DESC")["Invoice"]
    assert [i["Id"] for i in query(api, "select * from Invoice Order By TxnDate DESC")["Invoice"]] == [
        i["Id"] for i in one_word
    ]
    assert api.get("/query", params={"query": "select * from Invoice ORDER TxnDate"}).status_code == 400


def test_group_bundle_reads_with_component_lines(api: httpx.Client) -> None:
    invoice = query(api, "select * from Invoice where DocNumber = '1002'")["Invoice"][0]
    group = invoice["Line"][0]["GroupLineDetail"]
    assert group["Quantity"] == 10 and [c["SalesItemLineDetail"]["Qty"] for c in group["Line"]] == [10, 10]
    assert invoice["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    assert query(api, "select * from Item where Type = 'Group'")["Item"][0]["ItemGroupDetail"][
        "ItemGroupLine"
    ]


def test_eur_invoice_has_currency_and_exchange_rate(api: httpx.Client) -> None:
    invoice = query(api, "select * from Invoice where DocNumber = '1003'")["Invoice"][0]
    assert invoice["CurrencyRef"]["value"] == "EUR" and Decimal(str(invoice["ExchangeRate"])) == Decimal(
        "1.085"
    )


def test_voided_invoice_is_kept_with_zero_amounts(api: httpx.Client) -> None:
    invoice = query(api, "select * from Invoice where DocNumber = '1004'")["Invoice"][0]
    assert (
        invoice["TotalAmt"] == 0 and invoice["Balance"] == 0 and invoice["PrivateNote"].startswith("Voided")
    )
    assert all(line["Amount"] == 0 for line in invoice["Line"]) and "status" not in invoice
    assert int(invoice["SyncToken"]) >= 1


def test_operation_void_keeps_the_invoice_with_zero_amounts(api: httpx.Client) -> None:
    invoice = query(api, "select * from Invoice where DocNumber = '1002'")["Invoice"][0]
    assert invoice["TotalAmt"] > 0
    stale = {"Id": invoice["Id"], "SyncToken": str(int(invoice["SyncToken"]) + 1)}
    refused = post_json(api, "/invoice", stale, operation="void")
    assert refused.status_code == 400 and fault_code(refused) == "5010"
    voided = post_json(
        api, "/invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="void"
    )
    assert voided.status_code == 200, voided.text
    record = voided.json()["Invoice"]
    assert record["Id"] == invoice["Id"] and int(record["SyncToken"]) == int(invoice["SyncToken"]) + 1
    assert record["TotalAmt"] == 0 and record["PrivateNote"].startswith("Voided")
    assert all(line["Amount"] == 0 for line in record["Line"])
    again = query(api, "select * from Invoice where DocNumber = '1002'")["Invoice"][0]
    assert again["TotalAmt"] == 0 and again["SyncToken"] == record["SyncToken"]


def test_a_sales_receipt_is_voided_by_an_update_that_includes_void(api: httpx.Client) -> None:
    receipt = query(api, "select * from SalesReceipt")["SalesReceipt"][0]
    body = {"Id": receipt["Id"], "SyncToken": receipt["SyncToken"], "sparse": True}
    wrong = post_json(api, "/salesreceipt", body, operation="void")
    assert wrong.status_code == 400 and fault_code(wrong) == "500"
    voided = post_json(api, "/salesreceipt", body, operation="update", include="void")
    assert voided.status_code == 200, voided.text
    record = voided.json()["SalesReceipt"]
    assert record["TotalAmt"] == 0 and record["PrivateNote"].startswith("Voided")


def test_operation_void_is_refused_for_a_journal_entry(api: httpx.Client) -> None:
    created = post_json(api, "/journalentry", journal()).json()["JournalEntry"]
    body = {"Id": created["Id"], "SyncToken": created["SyncToken"]}
    refused = post_json(api, "/journalentry", body, operation="void")
    assert refused.status_code == 400 and fault_code(refused) == "500"
    assert api.get(f"/journalentry/{created['Id']}").json()["JournalEntry"]["TotalAmt"] == 125


def test_operation_delete_removes_an_invoice_and_a_create_without_lines_is_refused(
    api: httpx.Client,
) -> None:
    invoice = query(api, "select * from Invoice where DocNumber = '1002'")["Invoice"][0]
    deleted = post_json(
        api, "/invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="delete"
    )
    assert deleted.status_code == 200 and deleted.json()["Invoice"]["status"] == "Deleted"
    assert query(api, "select * from Invoice where DocNumber = '1002'") == {}
    made = post_json(api, "/invoice", {"Line": [], "CustomerRef": {"value": "1"}})
    assert made.status_code == 400 and fault_code(made) == "2020"
    assert query(api, "select count(*) from Invoice") == {"totalCount": 4}


@pytest.mark.parametrize("segment", ["creditmemo", "refundreceipt"])
def test_operation_delete_removes_a_credit_memo_or_refund_receipt(
    sandbox: QboSandbox, api: httpx.Client, segment: str
) -> None:
    """As python-quickbooks' DeleteMixin sends it; they have no void through the API."""
    entity = "CreditMemo" if segment == "creditmemo" else "RefundReceipt"
    found = query(api, f"select * from {entity}").get(entity) or [
        sandbox.create_record(
            REALM,
            entity,
            {
                "CustomerRef": {"value": HARBOR},
                "DepositToAccountRef": {"value": CHECKING},
                "Line": [
                    {
                        "Amount": 10,
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": SHOP_SUPPLIES}, "Qty": 1},
                    }
                ],
            },
        )
    ]
    record = found[0]
    body = {"Id": record["Id"], "SyncToken": record["SyncToken"]}
    voided = post_json(api, f"/{segment}", body, operation="void", minorversion="75")
    assert voided.status_code == 400 and fault_code(voided) == "500"
    deleted = post_json(api, f"/{segment}", body, operation="delete", minorversion="75")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()[entity] == {"status": "Deleted", "domain": "QBO", "Id": record["Id"]}
    assert api.get(f"/{segment}/{record['Id']}").status_code == 400


def test_deleted_invoice_is_gone_from_reads(api: httpx.Client) -> None:
    assert query(api, "select * from Invoice where DocNumber = '1005'") == {}
    assert api.get("/invoice/5").status_code == 400


# ---- CDC -------------------------------------------------------------------------------------------


def test_cdc_returns_changes_and_deleted_entities(api: httpx.Client) -> None:
    response = api.get(
        "/cdc", params={"entities": "Invoice,Item", "changedSince": "2026-10-10T00:00:00-07:00"}
    )
    invoice_block, item_block = response.json()["CDCResponse"][0]["QueryResponse"]
    by_id = {i["Id"]: i for i in invoice_block["Invoice"]}
    assert by_id["5"]["status"] == "Deleted" and by_id["4"]["TotalAmt"] == 0 and "3" not in by_id
    # the items whose stock a sale, the void or the delete moved since then: Wall Bracket 20mm and 40mm,
    # Corner Brace (Shelf Kit Oak last moved on 2026-10-06)
    assert sorted(i["Id"] for i in item_block["Item"]) == ["5", "6", "8"]


def test_cdc_refuses_changed_since_older_than_30_days(api: httpx.Client) -> None:
    response = api.get("/cdc", params={"entities": "Invoice", "changedSince": "2026-09-30T00:00:00-07:00"})
    assert response.status_code == 400 and "older than" in response.json()["Fault"]["Error"][0]["Detail"]


def test_cdc_returns_at_most_1000_objects(sandbox: QboSandbox, api: httpx.Client) -> None:
    for n in range(1001):
        sandbox.create_record(REALM, "JournalEntry", journal(DocNumber=f"BULK-{n}"))
    response = api.get("/cdc", params={"entities": "JournalEntry,Invoice", "changedSince": "2026-10-31"})
    blocks = response.json()["CDCResponse"][0]["QueryResponse"]
    assert blocks[0]["maxResults"] == 1000 and blocks[1] == {}


# ---- writes ----------------------------------------------------------------------------------------


def test_journal_entry_is_created_and_found_by_doc_number(api: httpx.Client) -> None:
    created = post_json(api, "/journalentry", journal(), minorversion="75")
    assert created.status_code == 200, created.text
    entry = created.json()["JournalEntry"]
    assert entry["SyncToken"] == "0" and entry["TotalAmt"] == 125
    assert (
        query(api, "select * from JournalEntry where DocNumber = 'MFG-1031'")["JournalEntry"][0]["Id"]
        == entry["Id"]
    )
    assert api.get(f"/journalentry/{entry['Id']}").json()["JournalEntry"]["DocNumber"] == "MFG-1031"


def test_journal_entry_sent_as_the_official_client_does_gets_a_string_sync_token_and_deletes(
    api: httpx.Client,
) -> None:
    """python-quickbooks 0.9.12 sends its defaults on a create: an int SyncToken 0, an empty TxnDate and
    DocNumber, LineNum 0, empty LinkedTxn; QBO answers SyncToken "0", which the delete then quotes."""

    def line(posting: str, account: str) -> dict[str, Any]:
        return {
            "Amount": 12.5,
            "CustomField": [],
            "DetailType": "JournalEntryLineDetail",
            "JournalEntryLineDetail": {
                "AccountRef": {"name": "", "type": "", "value": account},
                "PostingType": posting,
                "TaxAmount": 0,
                "TaxApplicableOn": "Sales",
            },
            "LineNum": 0,
            "LinkedTxn": [],
        }

    body = {
        "Adjustment": False,
        "DocNumber": "",
        "ExchangeRate": 1,
        "Line": [line("Debit", WASTE), line("Credit", SHRINKAGE)],
        "PrivateNote": "",
        "SyncToken": 0,
        "TotalAmt": 0,
        "TxnDate": "",
        "domain": "QBO",
        "sparse": False,
    }
    created = post_json(api, "/journalentry", body, minorversion="75")
    assert created.status_code == 200, created.text
    entry = created.json()["JournalEntry"]
    assert entry["SyncToken"] == "0" and entry["TotalAmt"] == 12.5
    assert api.get(f"/journalentry/{entry['Id']}").json()["JournalEntry"]["SyncToken"] == "0"
    deleted = post_json(
        api, "/journalentry", {"Id": entry["Id"], "SyncToken": "0"}, operation="delete", minorversion="75"
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["JournalEntry"]["status"] == "Deleted"


def test_journal_entry_must_balance(api: httpx.Client) -> None:
    response = post_json(api, "/journalentry", journal(debit="125.00", credit="124.99"))
    assert response.status_code == 400 and fault_code(response) == "6000"
    assert query(api, "select count(*) from JournalEntry") == {"totalCount": 0}


def test_journal_entry_refuses_inactive_and_unknown_accounts(api: httpx.Client) -> None:
    body = journal()
    body["Line"][1]["JournalEntryLineDetail"]["AccountRef"] = {"value": INACTIVE_ACCOUNT}
    assert fault_code(post_json(api, "/journalentry", body)) == "610"
    body["Line"][1]["JournalEntryLineDetail"]["AccountRef"] = {"value": "999"}
    assert fault_code(post_json(api, "/journalentry", body)) == "2500"


def test_journal_entry_on_or_before_closing_date_is_refused(api: httpx.Client) -> None:
    response = post_json(api, "/journalentry", journal(TxnDate="2026-01-31"))
    assert response.status_code == 400 and fault_code(response) == "6210"


def on_account(account: str, entity: dict[str, Any] | None = None) -> dict[str, Any]:
    """The demo journal with its credit line on ``account``, naming ``entity`` when given."""
    body = journal()
    detail = body["Line"][1]["JournalEntryLineDetail"]
    detail["AccountRef"] = {"value": account}
    if entity is not None:
        detail["Entity"] = entity
    return body


@pytest.mark.parametrize(
    ("account", "entity", "detail"),
    [
        (PAYABLE, None, "When you use Accounts Payable, you must choose a vendor in the Name field."),
        (
            PAYABLE,
            {"Type": "Customer", "EntityRef": {"value": HARBOR}},
            "When you use Accounts Payable, you must choose a vendor in the Name field.",
        ),
        (RECEIVABLE, None, "When you use Accounts Receivable, you must choose a customer in the Name field."),
    ],
)
def test_payable_and_receivable_lines_need_a_name(
    api: httpx.Client, account: str, entity: dict[str, Any] | None, detail: str
) -> None:
    response = post_json(api, "/journalentry", on_account(account, entity), minorversion="75")
    assert response.status_code == 400
    assert response.json()["Fault"] == {
        "type": "ValidationFault",
        "Error": [
            {
                "Message": "A business validation error has occurred while processing your request",
                "Detail": f"Business Validation Error: {detail}",
                "code": "6000",
                "element": "",
            }
        ],
    }
    assert query(api, "select count(*) from JournalEntry") == {"totalCount": 0}


def test_payable_line_naming_a_vendor_is_saved_with_the_vendor(api: httpx.Client) -> None:
    vendor = {"Type": "Vendor", "EntityRef": {"value": NORTHSIDE}}
    created = post_json(api, "/journalentry", on_account(PAYABLE, vendor), minorversion="75")
    assert created.status_code == 200, created.text
    line = created.json()["JournalEntry"]["Line"][1]["JournalEntryLineDetail"]
    assert line["Entity"] == {
        "Type": "Vendor",
        "EntityRef": {"value": NORTHSIDE, "name": "Northside Metals Ltd"},
    }
    unknown = on_account(PAYABLE, {"Type": "Vendor", "EntityRef": {"value": "999"}})
    assert fault_code(post_json(api, "/journalentry", unknown)) == "2500"
    customer = {"Type": "Customer", "EntityRef": {"value": HARBOR}}
    assert post_json(api, "/journalentry", on_account(RECEIVABLE, customer)).status_code == 200


def test_journal_in_a_foreign_currency_needs_multicurrency_on(
    sandbox: QboSandbox, client: httpx.Client, api: httpx.Client
) -> None:
    """Intuit's JournalEntry reference: CurrencyRef is the transaction's currency, and multicurrency is on
    when Preferences.CurrencyPrefs.MultiCurrencyEnabled is: a company without it has only its home
    currency. The demo company holds a euro customer and invoice, so it has multicurrency on."""
    home_only = sandbox.add_company("Home Currency Only Inc")
    for name, kind in (("Scrap", "Expense"), ("Shrinkage", "Cost of Goods Sold")):
        sandbox.create_record(home_only.realm_id, "Account", {"Name": name, "AccountType": kind})
    sandbox.add_user(DEMO_USERNAME, DEMO_PASSWORD, [REALM, home_only.realm_id])
    with api_for(sandbox, client, home_only.realm_id) as other:
        prefs = other.get("/preferences").json()["Preferences"]["CurrencyPrefs"]
        assert prefs == {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "USD"}}

        def posted(**fields: Any) -> httpx.Response:
            body = journal(**fields)
            for line, account in zip(body["Line"], ("1", "2"), strict=True):
                line["JournalEntryLineDetail"]["AccountRef"] = {"value": account}
            return post_json(other, "/journalentry", body)

        refused = posted(CurrencyRef={"value": "EUR"}, ExchangeRate=1.085)
        assert refused.status_code == 400 and fault_code(refused) == "6000"
        assert "home currency USD" in refused.json()["Fault"]["Error"][0]["Detail"]
        assert query(other, "select count(*) from JournalEntry") == {"totalCount": 0}
        home = posted(CurrencyRef={"value": "USD"}).json()["JournalEntry"]
        assert home["CurrencyRef"] == {"value": "USD"}
        assert posted().json()["JournalEntry"]["CurrencyRef"] == {"value": "USD"}
        assert not other.get("/preferences").json()["Preferences"]["CurrencyPrefs"]["MultiCurrencyEnabled"]
    assert api.get("/preferences").json()["Preferences"]["CurrencyPrefs"]["MultiCurrencyEnabled"] is True
    euro = post_json(api, "/journalentry", journal(CurrencyRef={"value": "EUR"}, ExchangeRate=1.085))
    assert euro.status_code == 200, euro.text


def test_unknown_property_is_refused(api: httpx.Client) -> None:
    response = post_json(api, "/journalentry", journal(SyncId="abc"))
    assert response.status_code == 400 and fault_code(response) == "2010"


def test_inventory_adjustment_changes_quantity_on_hand(api: httpx.Client) -> None:
    sync_token = int(api.get(f"/item/{BRACKET_20}").json()["Item"]["SyncToken"])  # the demo sales moved it
    assert post_json(api, "/inventoryadjustment", adjustment(QtyDiff=-3)).status_code == 200
    assert api.get(f"/item/{BRACKET_20}").json()["Item"]["QtyOnHand"] == 137
    counted = post_json(api, "/inventoryadjustment", adjustment(NewQty=120))
    assert counted.status_code == 200
    item = api.get(f"/item/{BRACKET_20}").json()["Item"]
    assert item["QtyOnHand"] == 120 and item["SyncToken"] == str(sync_token + 2)
    found = query(
        api, "select * from InventoryAdjustment where MetaData.CreateTime >= '2000-01-01T00:00:00Z'"
    )
    assert sum("syncid=adj-1" in r["PrivateNote"] for r in found["InventoryAdjustment"]) == 2


def test_inventory_adjustment_needs_us_plus_or_advanced(sandbox: QboSandbox, api: httpx.Client) -> None:
    sandbox.update_company(REALM, plan="Essentials")
    response = post_json(api, "/inventoryadjustment", adjustment(QtyDiff=1))
    assert (
        response.status_code == 400 and "Plus or Advanced" in response.json()["Fault"]["Error"][0]["Detail"]
    )


def test_inventory_adjustment_rules_on_lines(api: httpx.Client) -> None:
    both = post_json(api, "/inventoryadjustment", adjustment(QtyDiff=1, NewQty=5))
    assert both.status_code == 400
    non_inventory = adjustment(QtyDiff=1)
    non_inventory["Line"][0]["ItemAdjustmentLineDetail"]["ItemRef"] = {"value": SHOP_SUPPLIES}
    assert post_json(api, "/inventoryadjustment", non_inventory).status_code == 400
    no_account = {k: v for k, v in adjustment(QtyDiff=1).items() if k != "AdjustAccountRef"}
    assert fault_code(post_json(api, "/inventoryadjustment", no_account)) == "2020"


@pytest.mark.parametrize(
    ("account", "saved"),
    [
        (SHRINKAGE, True),  # Cost of Goods Sold
        (WASTE, True),  # Expense
        (EQUITY, True),  # Opening Balance Equity
        (INVENTORY_ASSET, False),  # Other Current Asset
        (RECEIVING_CLEARING, False),  # Other Current Liability
        (INCOME, False),
        (CHECKING, False),  # Bank
    ],
)
def test_inventory_adjustment_account_must_be_an_expense_or_equity_account(
    api: httpx.Client, account: str, saved: bool
) -> None:
    body = {**adjustment(QtyDiff=-1), "AdjustAccountRef": {"value": account}}
    response = post_json(api, "/inventoryadjustment", body)
    if saved:
        assert response.status_code == 200, response.text
        assert response.json()["InventoryAdjustment"]["AdjustAccountRef"]["value"] == account
    else:
        assert response.status_code == 400 and fault_code(response) == "6000"
        assert "must be a Cost of Goods Sold, Expense" in response.json()["Fault"]["Error"][0]["Detail"]
        assert query(api, "select count(*) from InventoryAdjustment") == {"totalCount": 0}


def test_inventory_adjustment_account_may_be_an_other_expense_account(api: httpx.Client) -> None:
    created = post_json(api, "/account", {"Name": "Stock Write-offs", "AccountType": "Other Expense"})
    other_expense = created.json()["Account"]["Id"]
    body = {**adjustment(QtyDiff=-1), "AdjustAccountRef": {"value": other_expense}}
    assert post_json(api, "/inventoryadjustment", body).status_code == 200


TEXT_WRITES = [
    ("/journalentry", "JournalEntry", lambda: journal()),
    ("/inventoryadjustment", "InventoryAdjustment", lambda: adjustment(QtyDiff=-1)),
    ("/invoice", "Invoice", lambda: sale((BRACKET_20, 1))),
    ("/salesreceipt", "SalesReceipt", lambda: sale((BRACKET_20, 1))),
    ("/creditmemo", "CreditMemo", lambda: sale((BRACKET_20, 1))),
    (
        "/refundreceipt",
        "RefundReceipt",
        lambda: sale((BRACKET_20, 1), DepositToAccountRef={"value": CHECKING}),
    ),
]


@pytest.mark.parametrize(("path", "entity", "body"), TEXT_WRITES)
def test_doc_number_over_21_and_private_note_over_4000_characters_are_refused(
    api: httpx.Client, path: str, entity: str, body: Callable[[], dict[str, Any]]
) -> None:
    too_long = post_json(api, path, {**body(), "DocNumber": "D" * 22})
    assert too_long.status_code == 400
    assert too_long.json()["Fault"] == {
        "type": "ValidationFault",
        "Error": [
            {
                "Message": "String length is either shorter or longer than supported by specification",
                "Detail": "String length specified does not match the supported length. Min:0 Max:21 "
                "supported. Supplied length: 22",
                "code": "2050",
                "element": "DocNumber",
            }
        ],
    }
    long_note = post_json(api, path, {**body(), "PrivateNote": "n" * 4001})
    assert fault_code(long_note) == "2050"
    assert long_note.json()["Fault"]["Error"][0]["Detail"].endswith(
        "Max:4,000 supported. Supplied length: 4,001"
    )
    count = query(api, f"select count(*) from {entity}")
    saved = post_json(api, path, {**body(), "DocNumber": "D" * 21, "PrivateNote": "n" * 4000})
    assert saved.status_code == 200, saved.text
    record = saved.json()[entity]
    assert (len(record["DocNumber"]), len(record["PrivateNote"])) == (21, 4000)
    assert query(api, f"select count(*) from {entity}") == {"totalCount": count["totalCount"] + 1}


def test_an_update_is_held_to_the_same_lengths(api: httpx.Client) -> None:
    created = post_json(api, "/journalentry", journal()).json()["JournalEntry"]
    sparse = {
        "Id": created["Id"],
        "SyncToken": created["SyncToken"],
        "sparse": True,
        "PrivateNote": "n" * 4001,
    }
    assert fault_code(post_json(api, "/journalentry", sparse)) == "2050"
    assert api.get(f"/journalentry/{created['Id']}").json()["JournalEntry"]["PrivateNote"] == "syncid:je-1"


def test_same_requestid_returns_the_original_without_writing_again(api: httpx.Client) -> None:
    first = post_json(api, "/journalentry", journal(), requestid="7f1c2a9e-0000-4000-8000-000000000001")
    again = post_json(api, "/journalentry", journal(), requestid="7f1c2a9e-0000-4000-8000-000000000001")
    assert again.status_code == 200 and again.json() == first.json()
    assert query(api, "select count(*) from JournalEntry") == {"totalCount": 1}


def test_group_items_cannot_be_created_through_the_api(api: httpx.Client) -> None:
    response = post_json(api, "/item", {"Name": "New Kit", "Type": "Group"})
    assert response.status_code == 400 and fault_code(response) == "6000"


def test_a_person_makes_bundles_of_products_and_services_only_and_of_50_at_most(
    sandbox: QboSandbox, api: httpx.Client
) -> None:
    """Bundles are made in QBO's UI (the admin seed): of Inventory, NonInventory and Service items, each with
    a quantity. A bundle inside a bundle, a category, or more than 50 lines is refused, nothing stored; a
    bundle is never stock itself."""

    def bundle(name: str, parts: list[str]) -> dict[str, Any]:
        lines = [{"ItemRef": {"value": part}, "Qty": 2} for part in parts]
        return sandbox.create_record(
            REALM, "Item", {"Name": name, "Type": "Group", "ItemGroupDetail": {"ItemGroupLine": lines}}
        )

    made = bundle("Mounting Set", [BRACKET_20, SHOP_SUPPLIES, ASSEMBLY_LABOUR])
    assert [line["ItemRef"]["value"] for line in made["ItemGroupDetail"]["ItemGroupLine"]] == [
        BRACKET_20,
        SHOP_SUPPLIES,
        ASSEMBLY_LABOUR,
    ]
    assert made["TrackQtyOnHand"] is False and "QtyOnHand" not in made
    category = sandbox.create_record(REALM, "Item", {"Name": "Brackets", "Type": "Category"})
    before = query(api, "select count(*) from Item")
    with pytest.raises(AdminError, match="a bundle holds only products and services"):
        bundle("Bundle of Bundles", [BRACKET_40, BRACKET_BUNDLE])
    with pytest.raises(AdminError, match="a bundle holds only products and services"):
        bundle("Category Set", [category["Id"]])
    with pytest.raises(AdminError, match="at most 50"):
        bundle("Huge Set", [BRACKET_20] * 51)
    assert query(api, "select count(*) from Item") == before
    assert len(bundle("Big Set", [BRACKET_20] * 50)["ItemGroupDetail"]["ItemGroupLine"]) == 50


def test_vendor_create_and_stale_update(api: httpx.Client) -> None:
    created = post_json(api, "/vendor", {"DisplayName": "Riverside Plastics"}).json()["Vendor"]
    stale = post_json(
        api, "/vendor", {"Id": created["Id"], "SyncToken": "7", "sparse": True, "Active": False}
    )
    assert fault_code(stale) == "5010"
    duplicate = post_json(api, "/vendor", {"DisplayName": "Harbor Hardware Co"})  # a customer's name
    assert fault_code(duplicate) == "6240"


# ---- limits and faults -----------------------------------------------------------------------------


def test_501st_call_in_a_minute_is_throttled_until_the_next_window(
    sandbox: QboSandbox, api: httpx.Client
) -> None:
    sandbox.clock.set(sandbox.clock.now().replace(second=0))
    statuses = [api.get(f"/companyinfo/{REALM}").status_code for _ in range(501)]
    assert statuses[:500] == [200] * 500 and statuses[500] == 429
    throttled = api.get(f"/companyinfo/{REALM}")
    error = throttled.json()["Fault"]["Error"][0]
    assert (
        error["code"] == "3001"
        and error["Message"] == "message=ThrottleExceeded; errorCode=003001; statusCode=429"
    )
    sandbox.clock.advance(60)
    assert api.get(f"/companyinfo/{REALM}").status_code == 200


def test_throttling_can_answer_403_in_xml_with_code_3001_as_an_older_report_saw(
    sandbox: QboSandbox, api: httpx.Client, client: httpx.Client
) -> None:
    """qbo.md section 2.6: the throttle body has come back as XML despite `Accept: application/json`, with
    `statusCode=403` in its message; code 3001 is what says it is throttling."""
    assert client.post("/_admin/throttle", json={"status": 403}).status_code == 200
    sandbox.inject("429", path_prefix=f"/v3/company/{REALM}/query")
    throttled = api.get("/query", params={"query": "select * from Item"})
    assert throttled.status_code == 403 and throttled.headers["content-type"] == "application/xml"
    text = throttled.text
    assert '<Error code="3001">' in text and "errorCode=003001; statusCode=403" in text
    assert client.post("/_admin/throttle", json={"status": 500}).status_code == 400
    assert api.get("/query", params={"query": "select * from Item"}).status_code == 200


def test_eleventh_concurrent_call_is_throttled(sandbox: QboSandbox, api: httpx.Client) -> None:
    sandbox.latency_seconds = 0.3
    with ThreadPoolExecutor(max_workers=11) as pool:
        statuses = sorted(pool.map(lambda _: api.get(f"/companyinfo/{REALM}").status_code, range(11)))
    assert statuses == [200] * 10 + [429]


def test_injected_500_uses_qbo_fault_shape(sandbox: QboSandbox, api: httpx.Client) -> None:
    sandbox.inject("500", path_prefix=f"/v3/company/{REALM}/query")
    response = api.get("/query", params={"query": "select * from Item"})
    assert response.status_code == 500 and response.json()["Fault"]["type"] == "SystemFault"
    assert response.headers["intuit_tid"]


def test_lost_response_still_commits_the_write(sandbox: QboSandbox, api: httpx.Client) -> None:
    sandbox.inject("lost_response", method="POST", path_prefix=f"/v3/company/{REALM}/journalentry")
    with pytest.raises(httpx.ReadTimeout):
        post_json(api, "/journalentry", journal())
    assert len(query(api, "select * from JournalEntry where DocNumber = 'MFG-1031'")["JournalEntry"]) == 1


def test_unknown_path_answers_with_a_fault(api: httpx.Client) -> None:
    response = api.get("/widgets/1")
    assert response.status_code == 404 and "Fault" in response.json()


def test_each_company_stamps_its_times_in_its_own_time_zone(
    sandbox: QboSandbox, api: httpx.Client, client: httpx.Client
) -> None:
    """QBO stamps a company's times (responses' "time", MetaData) in the company's zone with its offset
    (qbo.md section 7 "Time zone"): a New York company's are -05:00 in November, the Pacific demo's -08:00."""
    assert sandbox.now() == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # after both zones left summer time
    assert client.post(
        f"/_admin/companies/{REALM}/settings", json={"time_zone": "America/New_York"}
    ).is_success
    info = api.get(f"/companyinfo/{REALM}").json()
    assert info["time"].startswith("2026-11-01T07:00:00") and info["time"].endswith("-05:00")
    vendor = post_json(api, "/vendor", {"DisplayName": "Zone Test Supplies"}).json()["Vendor"]
    assert vendor["MetaData"]["LastUpdatedTime"] == "2026-11-01T07:00:00-05:00"
    london = client.post("/_admin/companies", json={"name": "London Co", "time_zone": "Europe/London"})
    assert london.status_code == 201 and london.json()["time_zone"] == "Europe/London"
    other = sandbox.add_company("Pacific Co")  # a company whose zone is not chosen: Pacific
    assert sandbox.stamp(other).endswith("-08:00")
    assert sandbox.stamp(sandbox.company(london.json()["realm_id"])) == "2026-11-01T12:00:00+00:00"
    refused = client.post(f"/_admin/companies/{REALM}/settings", json={"time_zone": "Mars/Olympus_Mons"})
    assert refused.status_code == 400 and "time_zone" in refused.text


# ---- admin -----------------------------------------------------------------------------------------


def test_admin_routes_seed_a_company_and_edits_stamp_the_clock(
    sandbox: QboSandbox, client: httpx.Client
) -> None:
    company = client.post(
        "/_admin/companies",
        json={
            "name": "Tiny UK Ltd",
            "country": "GB",
            "plan": "Essentials",
            "inventory_tracking": False,
            "closing_date": "2026-03-31",
            "home_currency": "GBP",
        },
    ).json()
    realm = company["realm_id"]
    assert (
        client.post(
            "/_admin/users", json={"username": "uk@test", "password": "pw", "realm_ids": [realm]}
        ).status_code
        == 201
    )
    customer = client.post(f"/_admin/companies/{realm}/customer", json={"DisplayName": "Acme"}).json()
    income = client.post(
        f"/_admin/companies/{realm}/account", json={"Name": "Consulting Income", "AccountType": "Income"}
    ).json()
    item = client.post(
        f"/_admin/companies/{realm}/item",
        json={"Name": "Consulting", "Type": "Service", "IncomeAccountRef": {"value": income["Id"]}},
    ).json()
    invoice = client.post(
        f"/_admin/companies/{realm}/invoice",
        json={
            "CustomerRef": {"value": customer["Id"]},
            "TxnDate": "2026-10-01",
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 2, "UnitPrice": 50},
                }
            ],
        },
    ).json()
    assert invoice["TotalAmt"] == 100 and invoice["CurrencyRef"]["value"] == "GBP"
    sandbox.clock.advance(3600)
    edited = client.post(
        f"/_admin/companies/{realm}/invoice/{invoice['Id']}/edit", json={"PrivateNote": "re-priced"}
    ).json()
    assert (
        edited["SyncToken"] == "1"
        and edited["MetaData"]["LastUpdatedTime"] > invoice["MetaData"]["LastUpdatedTime"]
    )
    assert len(client.get(f"/_admin/companies/{realm}/invoice").json()["items"]) == 1
    assert (
        client.post(f"/_admin/companies/{realm}/settings", json={"closing_date": None}).json()["closing_date"]
        is None
    )
    assert client.post("/_admin/companies/nope/item", json={}).status_code == 404


def test_reset_restores_the_demo_data(sandbox: QboSandbox) -> None:
    sandbox.delete_record(REALM, "Invoice", "1")
    sandbox.reset()
    assert sandbox.get_record(REALM, "Invoice", "1")["DocNumber"] == "1001"
    assert QboSandbox().companies == {}  # created empty, stays empty


def test_served_on_loopback_answers_a_real_socket() -> None:
    sandbox = QboSandbox(seed=True)
    server = serve(sandbox)
    try:
        doc = httpx.get(f"{sandbox.base_url}/.well-known/openid_sandbox_configuration", timeout=5).json()
        assert doc["token_endpoint"] == f"{sandbox.base_url}{TOKEN_PATH}"
    finally:
        server.shutdown()


def test_demo_company_has_the_promised_shape(sandbox: QboSandbox) -> None:
    items = sandbox.list_records(REALM, "Item")
    assert {i["Type"] for i in items} == {"Inventory", "NonInventory", "Service", "Group"}
    assert any(i["Type"] == "Inventory" and "Sku" not in i for i in items)
    assert sandbox.companies[REALM].closing_date == date(2026, 1, 31)


def test_a_discount_line_follows_the_subtotal_and_totalamt_is_after_it(
    sandbox: QboSandbox, api: httpx.Client
) -> None:
    def line(item: str, price: str) -> dict[str, Any]:
        return {
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": price},
        }

    with httpx.Client(transport=sandbox.transport(), base_url=sandbox.base_url) as admin:
        seeded = admin.post(
            f"/_admin/companies/{REALM}/invoice",
            json={
                "CustomerRef": {"value": "1"},
                "DocNumber": "D-1",
                "Line": [
                    line(BRACKET_20, "12.25"),
                    line(BRACKET_20, "12.25"),
                    line(BRACKET_20, "10.45"),
                    {
                        "DetailType": "DiscountLineDetail",
                        "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10},
                    },
                ],
            },
        )
        assert seeded.status_code == 201, seeded.text
        two = admin.post(
            f"/_admin/companies/{REALM}/invoice",
            json={
                "CustomerRef": {"value": "1"},
                "Line": [line(BRACKET_20, "5"), *2 * [{"DetailType": "DiscountLineDetail", "Amount": 1}]],
            },
        )
        assert two.status_code == 400 and "only one discount line" in two.text
    invoice = query(api, "select * from Invoice where DocNumber = 'D-1'")["Invoice"][0]
    # subtotal 12.25 + 12.25 + 10.45 = 34.95; 10 % = 3.495, rounded half up to 3.50; TotalAmt 31.45
    assert [(x["DetailType"], x["Amount"]) for x in invoice["Line"][3:]] == [
        ("SubTotalLineDetail", 34.95),
        ("DiscountLineDetail", 3.5),
    ]
    assert invoice["Line"][4]["DiscountLineDetail"] == {"PercentBased": True, "DiscountPercent": 10}
    assert invoice["TotalAmt"] == 31.45 and invoice["Balance"] == 31.45


# ---- reports ----------------------------------------------------------------------------------------


def trial_balance(api: httpx.Client, **params: str) -> dict[str, Any]:
    response = api.get("/reports/TrialBalance", params={"minorversion": "75", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_trial_balance_reports_what_was_posted_up_to_end_date(api: httpx.Client) -> None:
    assert post_json(api, "/journalentry", journal("40.00", "40.00", TxnDate="2026-10-15")).status_code == 200
    later = journal("7.00", "7.00", TxnDate="2026-11-02", DocNumber="MFG-1102")
    assert post_json(api, "/journalentry", later).status_code == 200
    assert post_json(api, "/inventoryadjustment", adjustment(QtyDiff=-10)).status_code == 200  # 2026-10-31

    report = trial_balance(api, end_date="2026-10-31", start_date="2026-10-01", accounting_method="Accrual")

    header = report["Header"]
    assert (header["ReportName"], header["ReportBasis"], header["Currency"]) == (
        "TrialBalance",
        "Accrual",
        "USD",
    )
    assert (header["StartPeriod"], header["EndPeriod"]) == ("2026-10-01", "2026-10-31")
    assert header["Option"] == [{"Name": "NoReportData", "Value": "false"}]
    assert [(c["ColType"], c["ColTitle"]) for c in report["Columns"]["Column"]] == [
        ("Account", ""),
        ("Money", "Debit"),
        ("Money", "Credit"),
    ]
    *accounts, total = report["Rows"]["Row"]
    rows = {r["ColData"][0]["id"]: (r["ColData"][1]["value"], r["ColData"][2]["value"]) for r in accounts}
    # 10 x Wall Bracket 20mm at its PurchaseCost 1.90 leave Finished Goods for Inventory Shrinkage; the
    # starting values of the demo items (starting quantity x PurchaseCost on InvStartDate) sit against
    # equity; the demo sales dated up to end_date post income, A/R or the bank, and COGS at PurchaseCost
    assert rows == {
        CHECKING: ("112.50", ""),  # sales receipts SR-2001 78.00 + SR-2002 34.50
        RECEIVABLE: ("767.61", ""),  # invoices 405.00 + 146.25 + 234.36 (EUR 216 at 1.085), memo -18.00
        "10": ("1160.00", ""),  # Finished Goods: 1515.80 starting value - 336.80 sold - 19.00 adjusted
        "11": ("1385.00", ""),  # Raw Materials
        "9": ("", "2900.80"),  # Opening Balance Equity
        INCOME: ("", "880.11"),  # the sales' line amounts (the voided and the deleted invoice: nothing)
        COGS: ("336.80", ""),  # the units those sales took, net of the return, at PurchaseCost
        SHRINKAGE: ("", "21.00"),  # credited 40.00 by the journal, debited 19.00 by the adjustment
        WASTE: ("40.00", ""),  # the journal dated after end_date is not counted
    }
    assert total["group"] == "GrandTotal" and total["type"] == "Section"
    assert [c["value"] for c in total["Summary"]["ColData"]] == ["TOTAL", "3801.91", "3801.91"]
    names = {r["ColData"][0]["id"]: r["ColData"][0]["value"] for r in accounts}
    assert names[WASTE] == "Waste and Scrap"

    after = trial_balance(api, end_date="2026-11-30")
    waste = next(r for r in after["Rows"]["Row"] if r.get("ColData", [{}])[0].get("id") == WASTE)
    assert waste["ColData"][1]["value"] == "47.00"
    assert after["Header"]["StartPeriod"] == "2026-01-01"  # the fiscal year's start by default


def test_trial_balance_before_anything_was_posted_has_no_report_data(api: httpx.Client) -> None:
    report = trial_balance(api, end_date="2025-12-31")
    assert report["Header"]["Option"] == [{"Name": "NoReportData", "Value": "true"}]
    assert report["Rows"] == {}


def test_trial_balance_refuses_a_date_that_is_not_a_date(api: httpx.Client) -> None:
    response = api.get("/reports/TrialBalance", params={"end_date": "31/10/2026"})
    assert response.status_code == 400 and "Fault" in response.json()


@pytest.mark.parametrize(
    ("macro", "start", "end"),
    [
        ("Last Month", "2026-10-01", "2026-10-31"),
        ("This Fiscal Quarter-to-date", "2026-10-01", "2026-11-01"),
        ("Yesterday", "2026-10-31", "2026-10-31"),
        ("Last Fiscal Year", "2025-01-01", "2025-12-31"),
    ],
)
def test_trial_balance_covers_the_period_a_date_macro_names(
    sandbox: QboSandbox, api: httpx.Client, macro: str, start: str, end: str
) -> None:
    assert sandbox.today(sandbox.company(REALM)) == date(2026, 11, 1)  # the sandbox clock's first day
    assert post_json(api, "/journalentry", journal(TxnDate="2026-10-15")).status_code == 200
    report = trial_balance(api, date_macro=macro)
    assert (report["Header"]["StartPeriod"], report["Header"]["EndPeriod"]) == (start, end)
    assert report["Rows"] == trial_balance(api, start_date=start, end_date=end)["Rows"]
    unknown = api.get("/reports/TrialBalance", params={"date_macro": "Last Decade"})
    assert unknown.status_code == 400 and "Fault" in unknown.json()


def report(api: httpx.Client, name: str, **params: str) -> dict[str, Any]:
    response = api.get(f"/reports/{name}", params={"minorversion": "75", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def flatten(rows: list[dict[str, Any]], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """(the groups of the enclosing sections, the row's id or name) -> its figure, for every Data row, and
    (groups..., "Summary") -> the total of every section."""
    found: dict[tuple[str, ...], str] = {}
    for row in rows:
        where = (*path, row.get("group", ""))
        if "ColData" in row:
            account = row["ColData"][0]
            found[(*path, account.get("id") or account["value"])] = row["ColData"][1]["value"]
        found.update(flatten(row.get("Rows", {}).get("Row", []), where))
        if "Summary" in row:
            found[(*where, "Summary")] = row["Summary"]["ColData"][1]["value"]
    return found


ASSETS, CURRENT, OTHER_CURRENT = "TotalAssets", "CurrentAssets", "OtherCurrentAssets"
CLAIMS = "TotalLiabilitiesAndEquity"


def test_balance_sheet_ties_to_the_trial_balance(api: httpx.Client) -> None:
    """Intuit's BalanceSheet from the trial balance's ledger: each balance-sheet account at its trial
    balance figure (assets debit, liabilities and equity credit), the fiscal year's net income in Equity
    (group NetIncome), TOTAL ASSETS equal to TOTAL LIABILITIES AND EQUITY; nested as the reference's
    sample."""
    assert post_json(api, "/journalentry", journal("40.00", "40.00", TxnDate="2026-10-15")).status_code == 200
    trial = trial_balance(api, end_date="2026-10-31")
    balances = {
        r["ColData"][0]["id"]: Decimal(r["ColData"][1]["value"] or 0) - Decimal(r["ColData"][2]["value"] or 0)
        for r in trial["Rows"]["Row"]
        if "ColData" in r
    }

    sheet = report(api, "BalanceSheet", end_date="2026-10-31")

    header = sheet["Header"]
    assert (header["ReportName"], header["EndPeriod"], header["SummarizeColumnsBy"]) == (
        "BalanceSheet",
        "2026-10-31",
        "Total",
    )
    assert header["Option"] == [
        {"Name": "AccountingStandard", "Value": "GAAP"},
        {"Name": "NoReportData", "Value": "false"},
    ]
    assert [(c["ColType"], c["ColTitle"]) for c in sheet["Columns"]["Column"]] == [
        ("Account", ""),
        ("Money", "Total"),
    ]
    assets, claims = sheet["Rows"]["Row"]
    assert (assets["group"], assets["Header"]["ColData"][0]["value"]) == (ASSETS, "ASSETS")
    assert (claims["group"], claims["Header"]["ColData"][0]["value"]) == (CLAIMS, "LIABILITIES AND EQUITY")
    figures = flatten(sheet["Rows"]["Row"])
    assert figures[(ASSETS, CURRENT, "BankAccounts", CHECKING)] == f"{balances[CHECKING]:.2f}"
    assert figures[(ASSETS, CURRENT, "AR", RECEIVABLE)] == f"{balances[RECEIVABLE]:.2f}"
    assert figures[(ASSETS, CURRENT, OTHER_CURRENT, "10")] == f"{balances['10']:.2f}"  # Finished Goods
    assert figures[(CLAIMS, "Equity", "9")] == f"{-balances['9']:.2f}"  # Opening Balance Equity: a credit
    profit = -sum((balances[i] for i in (INCOME, COGS, SHRINKAGE, WASTE)), Decimal(0))
    assert figures[(CLAIMS, "Equity", "Net Income")] == f"{profit:.2f}"
    net_income = next(r for r in claims["Rows"]["Row"][-1]["Rows"]["Row"] if "group" in r)
    assert net_income["group"] == "NetIncome" and "id" not in net_income["ColData"][0]
    assert figures[(ASSETS, "Summary")] == figures[(CLAIMS, "Summary")]
    assert assets["Summary"]["ColData"][0]["value"] == "TOTAL ASSETS"


def test_profit_and_loss_reports_the_period_as_the_trial_balance_does(api: httpx.Client) -> None:
    assert post_json(api, "/journalentry", journal("40.00", "40.00", TxnDate="2026-10-15")).status_code == 200
    trial = trial_balance(api, end_date="2026-10-31")  # income and expense accounts: the fiscal year to date
    debit = {
        r["ColData"][0]["id"]: Decimal(r["ColData"][1]["value"] or 0) - Decimal(r["ColData"][2]["value"] or 0)
        for r in trial["Rows"]["Row"]
        if "ColData" in r
    }

    profit = report(api, "ProfitAndLoss", start_date="2026-01-01", end_date="2026-10-31")

    assert [r["group"] for r in profit["Rows"]["Row"]] == [
        "Income",
        "COGS",
        "GrossProfit",
        "Expenses",
        "NetOperatingIncome",
        "NetIncome",
    ]
    figures = flatten(profit["Rows"]["Row"])
    assert figures[("Income", INCOME)] == f"{-debit[INCOME]:.2f}"  # income: credit-positive
    assert figures[("COGS", SHRINKAGE)] == f"{debit[SHRINKAGE]:.2f}"  # a credit to a cost reads negative
    assert figures[("Expenses", WASTE)] == "40.00"
    net = -sum((debit[i] for i in (INCOME, COGS, SHRINKAGE, WASTE)), Decimal(0))
    assert figures[("NetIncome", "Summary")] == f"{net:.2f}"
    sheet = report(api, "BalanceSheet", end_date="2026-10-31")
    assert flatten(sheet["Rows"]["Row"])[(CLAIMS, "Equity", "Net Income")] == f"{net:.2f}"
    # before the journal: no expense, the section stays with its Header and a blank total (the sample)
    early = report(api, "ProfitAndLoss", start_date="2026-01-01", end_date="2026-10-14")
    expenses = next(r for r in early["Rows"]["Row"] if r["group"] == "Expenses")
    assert "Rows" not in expenses and expenses["Summary"]["ColData"] == [
        {"value": "Total Expenses"},
        {"value": ""},
    ]


def test_balance_sheet_and_profit_and_loss_refuse_what_they_cannot_answer(api: httpx.Client) -> None:
    for name in ("BalanceSheet", "ProfitAndLoss"):
        empty = report(api, name, end_date="2025-12-31")
        assert (
            empty["Header"]["Option"][1] == {"Name": "NoReportData", "Value": "true"} and empty["Rows"] == {}
        )
        for bad in (
            {"end_date": "31/10/2026"},
            {"start_date": "2026-11-01", "end_date": "2026-10-01"},
            {"accounting_method": "Modified"},
            {"customer": "1"},  # the sandbox's ledger carries no customer to filter by
            {"summarize_column_by": "Month"},
        ):
            refused = api.get(f"/reports/{name}", params=bad)
            assert refused.status_code == 400, (name, bad)
            assert refused.json()["Fault"]["type"] == "ValidationFault"


# ---- sales move stock and post to the ledger ---------------------------------------------------------


def on_hand(sandbox: QboSandbox, *item_ids: str) -> list[Decimal]:
    return [Decimal(str(sandbox.get_record(REALM, "Item", i)["QtyOnHand"])) for i in item_ids]


def sale(*lines: tuple[str, int], **fields: Any) -> dict[str, Any]:
    return {
        "CustomerRef": {"value": HARBOR},
        "TxnDate": "2026-11-01",
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": "10.00"},
            }
            for item, qty in lines
        ],
        **fields,
    }


def balances(api: httpx.Client, end_date: str = "2026-11-30") -> dict[str, Decimal]:
    """Account id (or, for an account QBO would create, its name) -> debit minus credit."""
    rows = trial_balance(api, end_date=end_date)["Rows"].get("Row", [])
    found = {}
    for row in rows:
        if "ColData" in row:
            account, debit, credit = row["ColData"]
            key = account.get("id") or account["value"]
            found[key] = Decimal(debit["value"] or 0) - Decimal(credit["value"] or 0)
    return found


def moved(before: dict[str, Decimal], after: dict[str, Decimal]) -> dict[str, Decimal]:
    keys = set(before) | set(after)
    change = {k: after.get(k, Decimal(0)) - before.get(k, Decimal(0)) for k in keys}
    return {k: v for k, v in change.items() if v}


def test_demo_quantities_are_the_figures_after_the_demo_sales(sandbox: QboSandbox) -> None:
    assert on_hand(sandbox, *(str(n) for n in range(1, 9))) == [row[3] for row in INVENTORY_ITEMS]
    bracket = sandbox.get_record(REALM, "Item", BRACKET_20)
    # started with 140 + what invoices 1001, 1002 (bundles), 1006 and SR-2002 (bundles) took, less CM-3001
    assert sandbox.companies[REALM].openings[BRACKET_20] == (date(2026, 1, 1), Decimal("471.20"))
    assert bracket["SyncToken"] != "0"  # each sale moved its stock


@pytest.mark.parametrize(("entity", "sign"), [("Invoice", -1), ("SalesReceipt", -1), ("CreditMemo", 1)])
def test_a_sales_document_moves_tracked_inventory_only(sandbox: QboSandbox, entity: str, sign: int) -> None:
    before = on_hand(sandbox, BRACKET_20, SHELF_KIT)
    stamp_before = sandbox.get_record(REALM, "Item", BRACKET_20)["SyncToken"]
    sandbox.clock.advance(60)
    sandbox.create_record(
        REALM, entity, sale((BRACKET_20, 7), (SHELF_KIT, 2), (SHOP_SUPPLIES, 3), (ASSEMBLY_LABOUR, 1))
    )
    assert on_hand(sandbox, BRACKET_20, SHELF_KIT) == [before[0] + sign * 7, before[1] + sign * 2]
    item = sandbox.get_record(REALM, "Item", BRACKET_20)
    assert item["SyncToken"] == str(int(stamp_before) + 1)
    assert item["MetaData"]["LastUpdatedTime"] == sandbox.stamp(sandbox.company(REALM))
    for untracked in (SHOP_SUPPLIES, ASSEMBLY_LABOUR):  # no quantity to move
        assert "QtyOnHand" not in sandbox.get_record(REALM, "Item", untracked)


def test_a_refund_receipt_puts_stock_back_and_needs_the_account_it_pays_from(sandbox: QboSandbox) -> None:
    before = on_hand(sandbox, CORNER_BRACE)[0]
    with pytest.raises(AdminError, match="DepositToAccountRef"):
        sandbox.create_record(REALM, "RefundReceipt", sale((CORNER_BRACE, 5)))
    refund = sandbox.create_record(
        REALM, "RefundReceipt", sale((CORNER_BRACE, 5), DepositToAccountRef={"value": CHECKING})
    )
    assert on_hand(sandbox, CORNER_BRACE) == [before + 5]
    assert refund["DepositToAccountRef"] == {"value": CHECKING, "name": "Business Checking"}


@pytest.mark.parametrize("path", ["/invoice", "/salesreceipt", "/creditmemo", "/refundreceipt"])
def test_an_inactive_item_on_a_sales_line_is_refused(
    sandbox: QboSandbox, api: httpx.Client, path: str
) -> None:
    """qbo.md section 2.8: 610 "Object Not Found" when something referenced has been made inactive."""
    before = on_hand(sandbox, BRACKET_20, BRACKET_40)
    fields = {"DepositToAccountRef": {"value": CHECKING}} if path == "/refundreceipt" else {}
    discontinued = post_json(api, path, sale((BRACKET_20, 1), (DISCONTINUED, 1), **fields))
    assert discontinued.status_code == 400 and fault_code(discontinued) == "610"
    assert "made inactive" in discontinued.json()["Fault"]["Error"][0]["Detail"]
    sandbox.edit_record(REALM, "Item", BRACKET_40, {"Active": False})
    bundle = {"DetailType": "GroupLineDetail", "GroupLineDetail": {"GroupItemRef": {"value": BRACKET_BUNDLE}}}
    assert fault_code(post_json(api, path, {**sale(), "Line": [bundle], **fields})) == "610"
    assert on_hand(sandbox, BRACKET_20, BRACKET_40) == before
    assert post_json(api, path, sale((BRACKET_20, 1), **fields)).status_code == 200


def test_editing_a_document_whose_item_was_made_inactive_is_refused(
    sandbox: QboSandbox, api: httpx.Client
) -> None:
    invoice = post_json(api, "/invoice", sale((CORNER_BRACE, 2))).json()["Invoice"]
    sandbox.edit_record(REALM, "Item", CORNER_BRACE, {"Active": False})
    edit = {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"], "sparse": True, "PrivateNote": "late"}
    assert fault_code(post_json(api, "/invoice", edit)) == "610"
    voided = post_json(
        api, "/invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="void"
    )
    assert voided.status_code == 200, voided.text  # voiding takes nothing new from the item


def test_a_bundle_line_relieves_each_component(sandbox: QboSandbox) -> None:
    before = on_hand(sandbox, BRACKET_20, BRACKET_40)
    bundle = {
        "DetailType": "GroupLineDetail",
        "GroupLineDetail": {"GroupItemRef": {"value": BRACKET_BUNDLE}, "Quantity": 3},
    }
    sandbox.create_record(REALM, "Invoice", {**sale(), "Line": [bundle]})
    assert on_hand(sandbox, BRACKET_20, BRACKET_40) == [before[0] - 3, before[1] - 3]


def test_void_and_delete_give_the_stock_back(sandbox: QboSandbox) -> None:
    before = on_hand(sandbox, BRACKET_20)[0]
    voided = sandbox.create_record(REALM, "Invoice", sale((BRACKET_20, 12)))
    deleted = sandbox.create_record(REALM, "SalesReceipt", sale((BRACKET_20, 5)))
    credit = sandbox.create_record(REALM, "CreditMemo", sale((BRACKET_20, 2)))
    assert on_hand(sandbox, BRACKET_20) == [before - 12 - 5 + 2]
    sandbox.void_record(REALM, "Invoice", voided["Id"])
    assert on_hand(sandbox, BRACKET_20) == [before - 5 + 2]
    sandbox.void_record(REALM, "Invoice", voided["Id"])  # voiding again moves nothing more
    sandbox.delete_record(REALM, "SalesReceipt", deleted["Id"])
    assert on_hand(sandbox, BRACKET_20) == [before + 2]
    sandbox.void_record(REALM, "CreditMemo", credit["Id"])
    assert on_hand(sandbox, BRACKET_20) == [before]


def test_an_edit_moves_the_difference(sandbox: QboSandbox, client: httpx.Client) -> None:
    before = on_hand(sandbox, BRACKET_20, BRACKET_40)
    invoice = sandbox.create_record(REALM, "Invoice", sale((BRACKET_20, 10)))
    edited = client.post(
        f"/_admin/companies/{REALM}/invoice/{invoice['Id']}/edit",
        json={"Line": sale((BRACKET_20, 4), (BRACKET_40, 6))["Line"]},
    )
    assert edited.status_code == 200, edited.text
    assert on_hand(sandbox, BRACKET_20, BRACKET_40) == [before[0] - 4, before[1] - 6]
    sandbox.edit_record(REALM, "Invoice", invoice["Id"], {"Line": sale((BRACKET_40, 1))["Line"]})
    assert on_hand(sandbox, BRACKET_20, BRACKET_40) == [before[0], before[1] - 1]
    sandbox.edit_record(REALM, "Invoice", invoice["Id"], {"PrivateNote": "re-sent"})  # lines unchanged
    assert on_hand(sandbox, BRACKET_20, BRACKET_40) == [before[0], before[1] - 1]


def test_refund_receipts_are_read_and_queried_like_other_sales(
    sandbox: QboSandbox, api: httpx.Client
) -> None:
    refund = sandbox.create_record(
        REALM, "RefundReceipt", sale((CORNER_BRACE, 1), DepositToAccountRef={"value": CHECKING})
    )
    assert api.get(f"/refundreceipt/{refund['Id']}").json()["RefundReceipt"]["TotalAmt"] == 10
    found = query(api, "select * from RefundReceipt where TxnDate = '2026-11-01'")
    assert [r["Id"] for r in found["RefundReceipt"]] == [refund["Id"]]


def test_trial_balance_after_an_invoice(sandbox: QboSandbox, api: httpx.Client) -> None:
    before, october = balances(api), balances(api, end_date="2026-10-31")
    invoice = sandbox.create_record(REALM, "Invoice", sale((BRACKET_20, 3), (ASSEMBLY_LABOUR, 1)))

    # income: 3 x 10.00 to Sales of Product Income and 10.00 to Services; A/R the 40.00 total; the three
    # brackets at PurchaseCost 1.90 leave Finished Goods for Cost of Goods Sold
    assert moved(before, balances(api)) == {
        RECEIVABLE: Decimal("40.00"),
        INCOME: Decimal("-30.00"),
        "14": Decimal("-10.00"),  # Services
        COGS: Decimal("5.70"),
        FINISHED: Decimal("-5.70"),
    }
    assert moved(october, balances(api, end_date="2026-10-31")) == {}  # dated 2026-11-01

    sandbox.void_record(REALM, "Invoice", invoice["Id"])
    assert moved(before, balances(api)) == {}


def test_a_tax_inclusive_invoice_keeps_its_line_amounts_without_tax(
    sandbox: QboSandbox, api: httpx.Client
) -> None:
    """GlobalTaxCalculation TaxInclusive: a line's Amount and UnitPrice stay net, its TaxInclusiveAmt holds
    the tax; the tax is TxnTaxDetail.TotalTax and in TotalAmt, owed to the tax agency in the books."""
    before = balances(api)
    body = sale((BRACKET_20, 3), (BRACKET_20, 1), GlobalTaxCalculation="TaxInclusive")
    taxed = body["Line"][0]
    taxed["SalesItemLineDetail"].update(TaxCodeRef={"value": "10"}, TaxInclusiveAmt="33.00")
    created = post_json(api, "/invoice", body)
    assert created.status_code == 200, created.text
    invoice = created.json()["Invoice"]
    lines = [(x["Amount"], x["SalesItemLineDetail"]["TaxInclusiveAmt"]) for x in invoice["Line"][:2]]
    assert lines == [(30, 33), (10, 10)]  # 3 x 10.00 net with 3.00 tax; 10.00 with no tax code, no tax
    assert (invoice["TxnTaxDetail"]["TotalTax"], invoice["TotalAmt"], invoice["Balance"]) == (3, 43, 43)
    assert moved(before, balances(api)) == {
        RECEIVABLE: Decimal("43.00"),
        INCOME: Decimal("-40.00"),
        "Tax Payable": Decimal("-3.00"),
        COGS: Decimal("7.60"),
        FINISHED: Decimal("-7.60"),
    }

    del taxed["SalesItemLineDetail"]["TaxInclusiveAmt"]  # a taxed line must say what it holds with tax
    assert fault_code(post_json(api, "/invoice", body)) == "2020"
    assert fault_code(post_json(api, "/invoice", {**body, "GlobalTaxCalculation": "Inclusive"})) == "2010"

    voided = post_json(api, "/invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="void")
    record = voided.json()["Invoice"]
    assert [x["SalesItemLineDetail"]["TaxInclusiveAmt"] for x in record["Line"][:2]] == [0, 0]
    assert (record["TotalAmt"], record["TxnTaxDetail"]["TotalTax"]) == (0, 0)
    assert moved(before, balances(api)) == {}


def test_trial_balance_after_cash_sales_returns_and_discounts(sandbox: QboSandbox, api: httpx.Client) -> None:
    before = balances(api)
    discount = {"DetailType": "DiscountLineDetail", "Amount": "4.00"}
    receipt = sale((SHELF_KIT, 2))
    sandbox.create_record(REALM, "SalesReceipt", {**receipt, "Line": [*receipt["Line"], discount]})
    sandbox.create_record(REALM, "CreditMemo", sale((SHELF_KIT, 1)))

    # no DepositToAccountRef and no Undeposited Funds account in the demo: QBO's own account, by name;
    # the discount goes to QBO's "Discounts given"
    assert moved(before, balances(api)) == {
        "Undeposited Funds": Decimal("16.00"),  # 20.00 less the 4.00 discount
        "Discounts given": Decimal("4.00"),
        RECEIVABLE: Decimal("-10.00"),  # the credit memo
        INCOME: Decimal("-10.00"),  # 20.00 sold, 10.00 returned
        COGS: Decimal("16.00"),  # one Shelf Kit Oak net at 16.00
        FINISHED: Decimal("-16.00"),
    }
    rows = trial_balance(api, end_date="2026-11-30")["Rows"]["Row"]
    names = [r["ColData"][0] for r in rows if "ColData" in r]
    assert {"value": "Undeposited Funds"} in names  # no id: the company has no such account


# ---- what an official client (python-quickbooks 0.9.12) does, answered as QBO answers it -------------------
def test_journal_entry_full_and_sparse_update(api: httpx.Client) -> None:
    entry = post_json(api, "/journalentry", journal()).json()["JournalEntry"]
    entry["Line"][0]["Amount"] = entry["Line"][1]["Amount"] = 80  # full update: the object as read, edited
    full = post_json(api, "/journalentry", {**entry, "PrivateNote": "re-costed"})
    assert full.status_code == 200, full.text
    assert full.json()["JournalEntry"]["TotalAmt"] == 80 and full.json()["JournalEntry"]["SyncToken"] == "1"
    sparse = post_json(
        api, "/journalentry", {"Id": entry["Id"], "SyncToken": "1", "sparse": True, "DocNumber": "X"}
    )
    updated = sparse.json()["JournalEntry"]
    assert (updated["DocNumber"], updated["PrivateNote"], updated["TotalAmt"]) == ("X", "re-costed", 80)
    unbalanced = {**updated, "Line": [updated["Line"][0]]}
    assert fault_code(post_json(api, "/journalentry", unbalanced)) == "6000"
    stale = post_json(api, "/journalentry", {"Id": entry["Id"], "SyncToken": "1", "sparse": True})
    assert fault_code(stale) == "5010"


def test_inventory_adjustment_takes_only_a_sparse_update_keeping_its_date(api: httpx.Client) -> None:
    made = post_json(api, "/inventoryadjustment", adjustment(QtyDiff=-3)).json()["InventoryAdjustment"]
    assert api.get(f"/item/{BRACKET_20}").json()["Item"]["QtyOnHand"] == 137
    assert fault_code(post_json(api, "/inventoryadjustment", {**made, "PrivateNote": "full"})) == "6000"
    moved = {"Id": made["Id"], "SyncToken": "0", "sparse": True, "TxnDate": "2026-10-30"}
    assert fault_code(post_json(api, "/inventoryadjustment", moved)) == "6000"
    lines = adjustment(QtyDiff=-5)["Line"]
    sparse = post_json(
        api, "/inventoryadjustment", {"Id": made["Id"], "SyncToken": "0", "sparse": True, "Line": lines}
    )
    assert sparse.status_code == 200, sparse.text
    assert sparse.json()["InventoryAdjustment"]["PrivateNote"] == "cycle count; syncid=adj-1"
    assert api.get(f"/item/{BRACKET_20}").json()["Item"]["QtyOnHand"] == 135


def test_account_create_read_update_and_its_name_rules(api: httpx.Client) -> None:
    # python-quickbooks sends these on every Account; only AccountSubType names the kind (its own test)
    sent = {
        "Name": "Petty Cash",
        "AccountSubType": "CashOnHand",
        "AcctNum": "",
        "Active": True,
        "Description": "",
        "FullyQualifiedName": "",
        "SubAccount": False,
        "SyncToken": 0,
    }
    created = post_json(api, "/account", sent)
    assert created.status_code == 200, created.text
    account = created.json()["Account"]
    assert (account["AccountType"], account["Classification"], account["SyncToken"]) == ("Bank", "Asset", "0")
    typed = post_json(api, "/account", {"Name": "Customer Deposits AR", "AccountType": "Accounts Receivable"})
    assert typed.json()["Account"]["AccountSubType"] == "AccountsReceivable"  # the reference's own sample
    assert fault_code(post_json(api, "/account", {"Name": "petty cash", "AccountType": "Bank"})) == "6240"
    assert fault_code(post_json(api, "/account", {"Name": "Cash: Till", "AccountType": "Bank"})) == "2050"
    assert fault_code(post_json(api, "/account", {"Name": "X" * 101, "AccountType": "Bank"})) == "2050"
    assert fault_code(post_json(api, "/account", {"Name": "No Kind"})) == "2020"
    renamed = post_json(api, "/account", {**account, "Name": "Till", "Classification": "Revenue"})
    assert renamed.status_code == 200, renamed.text
    read = api.get(f"/account/{account['Id']}").json()["Account"]
    assert (read["Name"], read["FullyQualifiedName"], read["Classification"], read["SyncToken"]) == (
        "Till",
        "Till",
        "Asset",
        "1",
    )
    assert (
        fault_code(post_json(api, "/account", {"Id": account["Id"], "SyncToken": "1"}, operation="delete"))
        == "500"
    )


def test_vendor_without_display_name_takes_its_name_parts(api: httpx.Client) -> None:
    # python-quickbooks sends "" for every name part it was not given
    blank = dict.fromkeys(("DisplayName", "Title", "MiddleName", "Suffix", "CompanyName"), "")
    vendor = post_json(api, "/vendor", {**blank, "GivenName": "Ann", "FamilyName": "Lee"}).json()["Vendor"]
    assert vendor["DisplayName"] == "Ann Lee"
    assert fault_code(post_json(api, "/vendor", {**blank, "CompanyName": "Only Co"})) == "2020"
    assert fault_code(post_json(api, "/customer", {"GivenName": "Ann", "FamilyName": "Lee"})) == "6240"


@pytest.mark.parametrize("entity", ["vendor", "customer"])
@pytest.mark.parametrize(
    "names",
    [
        {"DisplayName": "Tractor:Trailer"},
        {"DisplayName": "Tractor\tTrailer"},
        {"GivenName": "Ann:", "FamilyName": "Lee"},
        {"DisplayName": "Ann Lee", "PrintOnCheckName": "Ann\nLee"},
    ],
)
def test_a_name_with_a_colon_tab_or_newline_is_refused(
    api: httpx.Client, entity: str, names: dict[str, str]
) -> None:
    kind = entity.capitalize()
    before = query(api, f"select count(*) from {kind}")
    assert fault_code(post_json(api, f"/{entity}", names)) == "6000"
    assert query(api, f"select count(*) from {kind}") == before


def test_customer_create_with_the_properties_an_official_client_sends(api: httpx.Client) -> None:
    sent = {
        "DisplayName": "Bay Fixtures",
        "BalanceWithJobs": 0,
        "BillWithParent": False,
        "Job": False,
        "Level": 0,
        "IsProject": False,
        "PreferredDeliveryMethod": "",
        "PrimaryTaxIdentifier": "",
        "ResaleNum": "",
        "Taxable": False,
        "FullyQualifiedName": "",
        "SyncToken": 0,
    }
    created = post_json(api, "/customer", sent)
    assert created.status_code == 200, created.text


def test_item_rules_a_real_company_enforces(api: httpx.Client) -> None:
    service = {"Name": "Setup", "Type": "Service", "IncomeAccountRef": {"value": INCOME}}
    assert fault_code(post_json(api, "/item", {**service, "IncomeAccountRef": None})) == "2020"
    assert fault_code(post_json(api, "/item", {**service, "Name": "S" * 101})) == "2050"
    assert (
        fault_code(post_json(api, "/item", {**service, "IncomeAccountRef": {"value": INACTIVE_ACCOUNT}}))
        == "610"
    )
    assert post_json(api, "/item", service).status_code == 200
    stock = {
        "Name": "Bin",
        "Type": "Inventory",
        "TrackQtyOnHand": True,
        "QtyOnHand": 1,
        "InvStartDate": "2026-10-01",
        "IncomeAccountRef": {"value": INCOME},
        "ExpenseAccountRef": {"value": COGS},
    }
    assert fault_code(post_json(api, "/item", {**stock, "AssetAccountRef": {"value": INCOME}})) == "6000"
    assert post_json(api, "/item", {**stock, "AssetAccountRef": {"value": FINISHED}}).status_code == 200
    bundle = api.get(f"/item/{BRACKET_BUNDLE}").json()["Item"]  # as read: PrintGroupedItems included
    refused = post_json(api, "/item", {**bundle, "Description": "two brackets"})
    assert fault_code(refused) == "6000" and "Bundle" in refused.json()["Fault"]["Error"][0]["Detail"]
    renamed = post_json(
        api, "/item", {**api.get(f"/item/{ASSEMBLY_LABOUR}").json()["Item"], "Name": "Fitting"}
    )
    assert renamed.json()["Item"]["FullyQualifiedName"] == "Fitting"


def batch(api: httpx.Client, *items: dict[str, Any]) -> httpx.Response:
    return post_json(api, "/batch", {"BatchItemRequest": list(items)})


def test_batch_answers_each_item_on_its_own(api: httpx.Client) -> None:
    response = batch(
        api,
        {"bId": "b1", "operation": "create", "Vendor": {"DisplayName": "Smith Family Store"}},
        {"bId": "b2", "operation": "create", "Vendor": {"DisplayName": "Harbor Hardware Co"}},
        {"bId": "b3", "operation": "update", "Vendor": {"Id": NORTHSIDE, "SyncToken": "9", "sparse": True}},
        {"bId": "b4", "Query": "select * from Vendor where DisplayName = 'Smith Family Store'"},
        {"bId": "b5", "operation": "create", "JournalEntry": journal()},
    )
    assert response.status_code == 200, response.text
    answers = {a["bId"]: a for a in response.json()["BatchItemResponse"]}
    assert answers["b1"]["Vendor"]["SyncToken"] == "0"
    assert answers["b2"]["Fault"]["Error"][0]["code"] == "6240"
    assert answers["b3"]["Fault"]["Error"][0]["code"] == "5010"
    assert "QueryResponse" in answers["b4"] and answers["b5"]["JournalEntry"]["TotalAmt"] == 125
    deleted = batch(
        api,
        {
            "bId": "d1",
            "operation": "delete",
            "JournalEntry": {"Id": answers["b5"]["JournalEntry"]["Id"], "SyncToken": "0"},
        },
    )
    assert deleted.json()["BatchItemResponse"][0]["JournalEntry"]["status"] == "Deleted"


def test_batch_holds_30_items_and_40_batches_a_minute(api: httpx.Client) -> None:
    query_item = {"bId": "q", "Query": "select count(*) from Item"}
    assert batch(api, *[query_item] * 31).status_code == 400
    for _ in range(39):  # the refused one above was the first of the 40
        assert batch(api, query_item).status_code == 200
    throttled = batch(api, query_item)
    assert throttled.status_code == 429 and fault_code(throttled) == "3001"


def test_userinfo_answers_a_token_granted_openid(client: httpx.Client) -> None:
    with_email = exchange(client, connect(client, scope=f"{SCOPE} openid email")["code"]).json()
    info = client.get(
        "/v1/openid_connect/userinfo", headers={"authorization": f"Bearer {with_email['access_token']}"}
    )
    assert info.status_code == 200 and info.json()["email"] == DEMO_USERNAME and info.json()["emailVerified"]
    accounting = exchange(client, connect(client, scope=SCOPE)["code"]).json()
    refused = client.get(
        "/v1/openid_connect/userinfo", headers={"authorization": f"Bearer {accounting['access_token']}"}
    )
    assert refused.status_code == 403
    assert (
        client.get("/v1/openid_connect/userinfo", headers={"authorization": "Bearer nope"}).status_code == 401
    )


def test_an_openid_consent_gets_an_id_token_signed_by_a_key_of_the_jwks_uri(
    sandbox: QboSandbox, client: httpx.Client
) -> None:
    body = exchange(client, connect(client, scope=f"{SCOPE} openid email")["code"]).json()
    discovery = client.get("/.well-known/openid_sandbox_configuration/").json()
    keys = jwt.PyJWKSet.from_dict(client.get(urlsplit(discovery["jwks_uri"]).path).json())
    key = keys[jwt.get_unverified_header(body["id_token"])["kid"]].key
    claims = jwt.decode(  # exp is of the sandbox's clock, not this machine's
        body["id_token"], key, algorithms=["RS256"], audience=DEMO_CLIENT_ID, options={"verify_exp": False}
    )
    assert claims["iss"] == discovery["issuer"] and claims["aud"] == [DEMO_CLIENT_ID]
    assert claims["realmid"] == REALM and claims["exp"] - claims["iat"] == 3600
    assert "id_token" not in refresh(client, body["refresh_token"]).json()
    assert "id_token" not in exchange(client, connect(client, scope=SCOPE)["code"]).json()


def test_sales_documents_are_created_and_updated_as_an_official_client_sends_them(
    sandbox: QboSandbox, api: httpx.Client
) -> None:
    # python-quickbooks 0.9.12's Invoice as its integration test makes it: "" for every unset date and total,
    # Qty and UnitPrice 0 with the line's Amount
    line: dict[str, Any] = {
        "Amount": 100,
        "Description": "description",
        "DetailType": "SalesItemLineDetail",
        "LineNum": 1,
        "SalesItemLineDetail": {
            "ItemRef": {"name": "", "type": "", "value": BRACKET_20},
            "Qty": 0,
            "UnitPrice": 0,
            "ServiceDate": "",
            "TaxInclusiveAmt": 0,
        },
    }
    sent = {
        "CustomerRef": {"name": "", "type": "", "value": HARBOR},
        "Line": [line],
        "TxnDate": "",
        "DueDate": "",
        "TotalAmt": "",
        "Balance": 0,
        "HomeBalance": 0,
        "ExchangeRate": 1,
        "SyncToken": 0,
        "CustomerMemo": {"value": "Customer Memo"},
        "PrivateNote": "",
        "sparse": False,
    }
    created = post_json(api, "/invoice", sent)
    assert created.status_code == 200, created.text
    invoice = created.json()["Invoice"]
    assert (invoice["TotalAmt"], invoice["Balance"], invoice["TxnDate"], invoice["SyncToken"]) == (
        100,
        100,
        "2026-11-01",
        "0",
    )
    before = on_hand(sandbox, BRACKET_20)
    line["SalesItemLineDetail"]["Qty"] = 4
    updated = post_json(api, "/invoice", {**invoice, "Line": [line]})
    assert updated.status_code == 200, updated.text
    assert on_hand(sandbox, BRACKET_20) == [before[0] - 4]
    sparse = post_json(
        api, "/invoice", {"Id": invoice["Id"], "SyncToken": "1", "sparse": True, "PrivateNote": "n"}
    )
    assert sparse.json()["Invoice"]["PrivateNote"] == "n" and sparse.json()["Invoice"]["TotalAmt"] == 100
    closed = post_json(api, "/salesreceipt", {**sent, "TxnDate": "2026-01-15"})
    assert fault_code(closed) == "6210"
    assert fault_code(post_json(api, "/creditmemo", {**sent, "CustomerRef": None})) == "2020"


def test_an_entity_the_sandbox_keeps_none_of_answers_as_a_company_without_any(api: httpx.Client) -> None:
    assert query(api, "select * from Payment where TxnDate >= '2026-01-01'") == {}
    assert query(api, "select count(*) from Employee") == {"totalCount": 0}
    assert fault_code(api.get("/payment/1")) == "610"
    since = "2026-10-20T00:00:00-07:00"
    changed = api.get("/cdc", params={"entities": "Payment,Invoice", "changedSince": since}).json()
    assert changed["CDCResponse"][0]["QueryResponse"][0] == {}
    refused = api.get("/cdc", params={"entities": "TaxCode", "changedSince": since})  # CDC leaves it out
    assert refused.status_code == 400 and fault_code(refused) == "4001"
