"""The providers' official clients work against the sandboxes served on loopback ports, as they do against
QuickBooks Online and Xero: Intuit's ``intuit-oauth``, the widely used ``python-quickbooks`` and Xero's
``xero-python``. Each is pointed at the sandbox the way a user of the library can (a discovery URL, a base
URL, the endpoints it keeps as attributes); nothing here reaches past the loopback interface."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import (
    AuthorizationException,
    ObjectNotFoundException,
    QuickbooksException,
    ValidationException,
)
from quickbooks.objects.account import Account
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.journalentry import JournalEntry, JournalEntryLine, JournalEntryLineDetail
from quickbooks.objects.vendor import Vendor
from xero_python.accounting import (
    AccountingApi,
    Contact,
    CreditNote,
    CreditNotes,
    LineAmountTypes,
    LineItem,
    ManualJournal,
    ManualJournalLine,
    ManualJournals,
)
from xero_python.accounting import Invoice as XeroInvoice
from xero_python.accounting import Invoices as XeroInvoices
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import (
    AccountingBadRequestException,
    ApiException,
    HTTPStatusException,
    RateLimitException,
)
from xero_python.identity import IdentityApi

from infra.sandboxes.common import Clock, Sandbox, serve
from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.qbo_demo import DEMO_CLIENT_ID as QBO_CLIENT_ID
from infra.sandboxes.qbo_demo import DEMO_CLIENT_SECRET as QBO_CLIENT_SECRET
from infra.sandboxes.qbo_demo import DEMO_PASSWORD, DEMO_REALM_ID, DEMO_USERNAME
from infra.sandboxes.qbo_demo import DEMO_REDIRECT_URI as QBO_REDIRECT_URI
from infra.sandboxes.xero import XeroSandbox
from infra.sandboxes.xero_demo import AU_TENANT_ID
from infra.sandboxes.xero_demo import DEMO_CLIENT_ID as XERO_CLIENT_ID
from infra.sandboxes.xero_demo import DEMO_CLIENT_SECRET as XERO_CLIENT_SECRET
from infra.sandboxes.xero_demo import DEMO_REDIRECT_URI as XERO_REDIRECT_URI

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SandboxT = TypeVar("SandboxT", bound=Sandbox)


# ---- QuickBooks Online: intuit-oauth and python-quickbooks ------------------------------------------------


@contextmanager
def served(sandbox: SandboxT) -> Iterator[SandboxT]:
    """The sandbox on a loopback port for as long as the block runs (its base_url names the port)."""
    server = serve(sandbox)
    try:
        yield sandbox
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def qbo() -> Iterator[QboSandbox]:
    with served(QboSandbox(seed=True, clock=Clock(real_time=True))) as sandbox:
        yield sandbox


def auth_client(sandbox: QboSandbox, **tokens: Any) -> AuthClient:
    """intuit-oauth reads its endpoints from a discovery document: ``environment`` names Intuit's two, or is
    the URL of another (``intuitlib.utils.get_discovery_doc``), here the sandbox's."""
    return AuthClient(
        QBO_CLIENT_ID,
        QBO_CLIENT_SECRET,
        QBO_REDIRECT_URI,
        f"{sandbox.base_url}/.well-known/openid_sandbox_configuration/",
        **tokens,
    )


def qbo_connect(client: AuthClient, scopes: list[Scopes]) -> dict[str, str]:
    url = client.get_authorization_url(scopes)
    with httpx.Client() as browser:
        answer = walk_consent(browser, url, username=DEMO_USERNAME, password=DEMO_PASSWORD)
    assert answer["state"] == client.state_token
    client.get_bearer_token(answer["code"], realm_id=answer["realmId"])
    return answer


@pytest.fixture
def connected(qbo: QboSandbox) -> AuthClient:
    client = auth_client(qbo)
    qbo_connect(client, [Scopes.ACCOUNTING])
    return client


def test_intuit_oauth_reads_the_sandbox_discovery_document(qbo: QboSandbox) -> None:
    client = auth_client(qbo)
    assert client.auth_endpoint == f"{qbo.base_url}/connect/oauth2"
    assert client.token_endpoint == f"{qbo.base_url}/oauth2/v1/tokens/bearer"
    assert client.revoke_endpoint == f"{qbo.base_url}/v2/oauth2/tokens/revoke"
    assert client.user_info_url == f"{qbo.base_url}/v1/openid_connect/userinfo"
    assert client.issuer_uri and client.jwks_uri.startswith(qbo.base_url)


def test_intuit_oauth_connects_refreshes_rotates_and_revokes(qbo: QboSandbox) -> None:
    client = auth_client(qbo)
    answer = qbo_connect(client, [Scopes.ACCOUNTING])
    assert answer["realmId"] == DEMO_REALM_ID == client.realm_id
    assert client.access_token and client.refresh_token
    assert client.expires_in == 3600
    assert client.x_refresh_token_expires_in == 8_640_000  # 100 days (qbo.md section 1.5)

    first_access, first_refresh = client.access_token, client.refresh_token
    client.refresh()
    assert client.access_token != first_access
    # the value rotates, the old one dead at once: the sandbox's reading of "always use the latest" (qbo.md
    # section 1.5; Intuit may return the same value for up to a day, so a client must not rely on either)
    assert client.refresh_token != first_refresh
    assert client.expires_in == 3600 and client.x_refresh_token_expires_in == 8_640_000
    with pytest.raises(AuthClientError) as superseded:
        client.refresh(refresh_token=first_refresh)
    assert superseded.value.status_code == 400
    assert b"invalid_grant" in superseded.value.content
    assert superseded.value.intuit_tid  # every token response carries one

    access = client.access_token
    assert client.revoke() is True
    with pytest.raises(AuthClientError) as revoked:
        client.refresh()
    assert revoked.value.status_code == 400 and b"invalid_grant" in revoked.value.content
    info = httpx.get(
        f"{qbo.base_url}/v3/company/{DEMO_REALM_ID}/companyinfo/{DEMO_REALM_ID}",
        headers={"authorization": f"Bearer {access}", "accept": "application/json"},
    )
    assert info.status_code == 401  # the grant's access tokens died with it


def test_intuit_oauth_refuses_a_wrong_secret(qbo: QboSandbox) -> None:
    client = auth_client(qbo)
    client.client_secret = "not-the-secret"
    with pytest.raises(AuthClientError) as refused:
        client.refresh(refresh_token="RT1_whatever")
    assert refused.value.status_code == 401 and b"invalid_client" in refused.value.content


def test_intuit_oauth_validates_the_id_token_of_an_openid_consent() -> None:
    """intuit-oauth checks an ID token against the wall clock (``datetime.utcnow()``), so this sandbox's clock
    starts now; it keeps the token only when issuer, audience, expiry and the signature by a key of the
    discovery document's jwks_uri all hold (``intuitlib.utils.validate_id_token``)."""
    with served(QboSandbox(seed=True, clock=Clock(datetime.now(UTC), real_time=True))) as sandbox:
        client = auth_client(sandbox)
        qbo_connect(client, [Scopes.ACCOUNTING, Scopes.OPENID, Scopes.EMAIL])
        assert client.id_token is not None  # validated and kept
        claims = jwt.decode(client.id_token, options={"verify_signature": False})
        assert claims["aud"] == [QBO_CLIENT_ID] and claims["realmid"] == DEMO_REALM_ID
        assert claims["iss"] == client.issuer_uri
        info = client.get_user_info().json()
        assert info["email"] == DEMO_USERNAME and info["sub"] == claims["sub"]
        without = auth_client(sandbox)
        qbo_connect(without, [Scopes.ACCOUNTING])
        assert without.id_token is None  # no openid, no ID token


def quickbooks(sandbox: QboSandbox, client: AuthClient) -> QuickBooks:
    """python-quickbooks keeps Intuit's API hosts as class attributes; a user points an instance elsewhere
    by setting them. Its session starts by refreshing the tokens through the AuthClient."""
    refresh_token = client.refresh_token
    client.access_token = None
    qb = QuickBooks(
        auth_client=client, refresh_token=refresh_token, company_id=DEMO_REALM_ID, minorversion=75
    )
    qb.api_url_v3 = qb.sandbox_api_url_v3 = f"{sandbox.base_url}/v3"
    return qb


@pytest.fixture
def qb(qbo: QboSandbox, connected: AuthClient, monkeypatch: pytest.MonkeyPatch) -> QuickBooks:
    # requests-oauthlib (python-quickbooks' session) refuses plain http unless told the transport is safe:
    # the sandbox is on loopback http where Intuit is https
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    return quickbooks(qbo, connected)


def test_python_quickbooks_starts_its_session_with_a_refresh(connected: AuthClient, qbo: QboSandbox) -> None:
    before = connected.refresh_token
    qb = quickbooks(qbo, connected)
    assert qb.refresh_token == connected.refresh_token != before


def test_python_quickbooks_reads_accounts(qb: QuickBooks) -> None:
    accounts = Account.all(qb=qb, max_results=1000)
    names = {a.Name for a in accounts}
    assert "Inventory Asset" in names and "Old Freight Clearing" not in names  # inactive ones are hidden
    assert all(a.Active for a in accounts)
    cogs = Account.filter(AccountType="Cost of Goods Sold", qb=qb)
    assert {a.Name for a in cogs} == {"Cost of Goods Sold", "Inventory Shrinkage"}
    one = Account.get(cogs[0].Id, qb=qb)
    assert one.Name == cogs[0].Name and one.SyncToken == "0"
    counted = Account.count(qb=qb)
    assert counted == len(accounts)


def test_python_quickbooks_reads_items(qb: QuickBooks) -> None:
    items = Item.all(qb=qb)  # SELECT *, Sku FROM Item
    skus = {i.Sku for i in items}
    assert "FG-WB-20" in skus
    inventory = Item.query("SELECT * FROM Item WHERE Type = 'Inventory' MAXRESULTS 3", qb=qb)
    assert len(inventory) == 3 and all(i.Type == "Inventory" for i in inventory)
    found = Item.where("Sku = 'FG-WB-20'", qb=qb)
    assert [i.Name for i in found] == ["Wall Bracket 20mm"]


def test_python_quickbooks_creates_a_vendor(qb: QuickBooks) -> None:
    vendor = Vendor()
    vendor.DisplayName = f"Official Client Vendor {time.time_ns()}"
    vendor.CompanyName = "Official Client Vendor Ltd"
    saved = vendor.save(qb=qb)
    assert saved.Id and saved.SyncToken == "0" and saved.DisplayName == vendor.DisplayName
    again = Vendor()
    again.DisplayName = vendor.DisplayName
    with pytest.raises(QuickbooksException) as duplicate:  # 6240: outside the library's named ranges
        again.save(qb=qb)
    assert duplicate.value.error_code == 6240


def journal(qb: QuickBooks, debit: str, credit: str, doc_number: str) -> JournalEntry:
    accounts = {a.Name: a for a in Account.all(qb=qb, max_results=1000)}
    entry = JournalEntry()
    entry.DocNumber = doc_number
    for amount, posting, account in (
        (debit, "Debit", "Cost of Goods Sold"),
        (credit, "Credit", "Finished Goods"),
    ):
        line = JournalEntryLine()
        line.Amount = amount
        line.JournalEntryLineDetail = JournalEntryLineDetail()
        line.JournalEntryLineDetail.PostingType = posting
        line.JournalEntryLineDetail.AccountRef = accounts[account].to_ref()
        entry.Line.append(line)
    return entry


def test_python_quickbooks_creates_a_balanced_journal_entry(qb: QuickBooks) -> None:
    saved = journal(qb, "125.50", "125.50", "OC-JE-1").save(qb=qb)
    assert saved.Id and saved.DocNumber == "OC-JE-1"
    assert float(saved.TotalAmt) == 125.5
    read = JournalEntry.get(saved.Id, qb=qb)
    assert [line.JournalEntryLineDetail.PostingType for line in read.Line] == ["Debit", "Credit"]
    assert JournalEntry.filter(DocNumber="OC-JE-1", qb=qb)[0].Id == saved.Id


def test_python_quickbooks_reads_balance_sheet_accounts_current_balance(qb: QuickBooks) -> None:
    """An accountant checks what was posted by the accounts' balances: CurrentBalance follows every posting on
    a balance-sheet account (an asset's debits positive) and stays 0 on income and expense accounts."""

    def balances() -> dict[str, Decimal]:
        return {a.Name: Decimal(str(a.CurrentBalance)) for a in Account.all(qb=qb, max_results=1000)}

    before = balances()
    journal(qb, "40.25", "40.25", "OC-CB-1").save(qb=qb)  # debit Cost of Goods Sold, credit Finished Goods
    after = balances()
    assert after["Finished Goods"] - before["Finished Goods"] == Decimal("-40.25")
    assert before["Cost of Goods Sold"] == after["Cost of Goods Sold"] == 0  # a P&L account has none
    goods = Account.where("Name = 'Finished Goods'", qb=qb)[0]
    assert Decimal(str(Account.get(goods.Id, qb=qb).CurrentBalance)) == after["Finished Goods"]


def report_lines(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Row name (an account's, or a total's) -> its figure, across a QBO report's nested sections."""
    found: dict[str, str] = {}
    for row in rows:
        if "ColData" in row:
            found[row["ColData"][0]["value"]] = row["ColData"][1]["value"]
        found.update(report_lines(row.get("Rows", {}).get("Row", [])))
        if "Summary" in row:
            found[row["Summary"]["ColData"][0]["value"]] = row["Summary"]["ColData"][1]["value"]
    return found


def test_python_quickbooks_reads_the_balance_sheet_and_profit_and_loss_of_what_was_posted(
    qb: QuickBooks,
) -> None:
    """An accountant's reports with python-quickbooks' get_report: what a journal entry and a sale post
    shows on the BalanceSheet and ProfitAndLoss as on the TrialBalance, and the sheet balances."""
    period = {"start_date": "2026-01-01", "end_date": "2026-12-31"}

    def reports() -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
        sheet = report_lines(qb.get_report("BalanceSheet", qs=period)["Rows"]["Row"])
        profit = report_lines(qb.get_report("ProfitAndLoss", qs=period)["Rows"]["Row"])
        trial = qb.get_report("TrialBalance", qs=period)["Rows"]["Row"]
        return sheet, profit, {r["ColData"][0]["value"]: r["ColData"] for r in trial if "ColData" in r}

    _, profit_before, _ = reports()
    journal(qb, "40.25", "40.25", "OC-RPT-1").save(qb=qb)  # debit Cost of Goods Sold, credit Finished Goods
    invoice = Invoice()
    invoice.CustomerRef = Customer.all(qb=qb)[0].to_ref()
    invoice.Line.append(sales_line(Item.where("Sku = 'FG-WB-20'", qb=qb)[0], 3, "10.00"))
    invoice.save(qb=qb)

    sheet, profit, trial = reports()

    assert sheet["TOTAL ASSETS"] == sheet["TOTAL LIABILITIES AND EQUITY"]
    assert sheet["Finished Goods"] == trial["Finished Goods"][1]["value"]  # a debit balance
    assert sheet["Net Income"] == profit["Net Income"]
    # 30.00 of sales, less the journal's 40.25 and the 3 brackets' cost at PurchaseCost 1.90
    moved = Decimal(profit["Net Income"]) - Decimal(profit_before["Net Income"])
    assert moved == Decimal("30.00") - Decimal("40.25") - Decimal("5.70")
    with pytest.raises(QuickbooksException):
        qb.get_report("BalanceSheet", qs={"end_date": "31/12/2026"})


def test_python_quickbooks_raises_qbo_fault_for_an_unbalanced_journal(qb: QuickBooks) -> None:
    with pytest.raises(QuickbooksException) as refused:
        journal(qb, "100.00", "90.00", "OC-JE-2").save(qb=qb)
    assert refused.value.error_code == 6000  # a business validation fault (qbo.md section 2.8)
    assert refused.value.message and refused.value.detail


def test_python_quickbooks_queries_invoices(qb: QuickBooks) -> None:
    invoices = Invoice.all(qb=qb)
    assert invoices and all(i.Id and i.CustomerRef.value for i in invoices)
    page = Invoice.filter(start_position=1, max_results=2, order_by="TxnDate", qb=qb)  # ... ORDERBY TxnDate
    assert len(page) == 2
    newest_first = Invoice.all(order_by="TxnDate DESC", qb=qb)  # ... ORDER BY TxnDate DESC
    assert [i.TxnDate for i in newest_first] == sorted((i.TxnDate for i in invoices), reverse=True)
    one = Invoice.get(invoices[0].Id, qb=qb)
    assert one.DocNumber == invoices[0].DocNumber
    assert Invoice.count(qb=qb) == len(invoices)


def sales_line(item: Item, quantity: int, price: str) -> SalesItemLine:
    line = SalesItemLine()
    line.Amount = str(quantity * Decimal(price))
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    line.SalesItemLineDetail.Qty = quantity
    line.SalesItemLineDetail.UnitPrice = price
    return line


def test_python_quickbooks_sells_and_credits_an_item(qb: QuickBooks) -> None:
    """Sales the service pulls, made with the library: an invoice and a credit memo of an item."""
    item = Item.where("Sku = 'FG-WB-20'", qb=qb)[0]
    customer = Customer.all(qb=qb)[0]
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line.append(sales_line(item, 3, "10.00"))
    sold = invoice.save(qb=qb)
    assert sold.Id and sold.DocNumber and float(sold.TotalAmt) == 30.0
    read = Invoice.get(sold.Id, qb=qb)
    detail = read.Line[0].SalesItemLineDetail
    assert detail.ItemRef.value == item.Id and float(detail.Qty) == 3
    memo = CreditMemo()
    memo.CustomerRef = customer.to_ref()
    memo.Line.append(sales_line(item, 1, "10.00"))
    credited = memo.save(qb=qb)
    assert credited.Id and float(credited.TotalAmt) == 10.0
    assert CreditMemo.get(credited.Id, qb=qb).Line[0].SalesItemLineDetail.ItemRef.value == item.Id


def test_python_quickbooks_reads_changes_and_sends_a_batch(qbo: QboSandbox, qb: QuickBooks) -> None:
    since = (qbo.now() - timedelta(minutes=1)).isoformat()
    saved = journal(qb, "6.00", "6.00", "OC-CDC-1").save(qb=qb)
    changes = change_data_capture([JournalEntry, Vendor], since, qb=qb)
    assert saved.Id in [entry.Id for entry in changes.JournalEntry]
    assert not hasattr(changes, "Vendor") or all(v.Id for v in changes.Vendor)
    name = f"Batch Vendor {time.time_ns()}"
    vendors = []
    for display_name in (name, f"{name} 2", name):  # the third repeats the first's name
        vendor = Vendor()
        vendor.DisplayName = display_name
        vendors.append(vendor)
    result = batch_create(vendors, qb=qb)
    assert sorted(v.DisplayName for v in result.successes) == [name, f"{name} 2"]
    assert [f.Error[0].code for f in result.faults] == ["6240"]  # each item answered on its own


def test_python_quickbooks_raises_validation_exception_for_a_property_not_queryable(qb: QuickBooks) -> None:
    with pytest.raises(ValidationException) as refused:
        JournalEntry.filter(PrivateNote="anything", qb=qb)
    assert refused.value.error_code == 4001  # qbo.md section 7
    assert "not queryable" in refused.value.detail


def test_python_quickbooks_object_not_found_and_expired_token(qbo: QboSandbox, qb: QuickBooks) -> None:
    with pytest.raises(ObjectNotFoundException) as missing:
        Account.get("99999", qb=qb)
    assert missing.value.error_code == 610
    qb.session.access_token = "not-a-token"
    with pytest.raises(AuthorizationException) as refused:
        Account.all(qb=qb)
    assert refused.value.error_code == 401


# ---- Xero: xero-python ------------------------------------------------------------------------------------

XERO_SCOPES = (
    "offline_access openid profile email accounting.settings accounting.contacts accounting.invoices "
    "accounting.manualjournals accounting.journals.read accounting.reports.read"
)


@pytest.fixture(scope="module")
def xero() -> Iterator[XeroSandbox]:
    with served(XeroSandbox(seed=True)) as sandbox:
        yield sandbox


@pytest.fixture
def xero_token(xero: XeroSandbox) -> dict[str, Any]:
    """A consent walked and its code exchanged as a web app does (xero-python leaves that step to the app's
    OAuth library); the token set in the shape xero-python's token getter returns."""
    authorize = httpx.URL(
        f"{xero.base_url}/identity/connect/authorize",
        params={
            "response_type": "code",
            "client_id": XERO_CLIENT_ID,
            "redirect_uri": XERO_REDIRECT_URI,
            "scope": XERO_SCOPES,
            "state": "xero-state",
        },
    )
    with httpx.Client() as browser:
        answer = walk_consent(
            browser, str(authorize), username=DEMO_USERNAME, password=DEMO_PASSWORD, choose=[AU_TENANT_ID]
        )
        assert answer["state"] == "xero-state"
        response = browser.post(
            f"{xero.base_url}/connect/token",
            auth=(XERO_CLIENT_ID, XERO_CLIENT_SECRET),
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": XERO_REDIRECT_URI,
            },
        )
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    token["scope"] = token["scope"].split()
    token["expires_at"] = time.time() + token["expires_in"]
    return token


@pytest.fixture
def xero_store(xero_token: dict[str, Any]) -> dict[str, Any]:
    """Where the app keeps its token set: xero-python reads it through the getter, saves through the saver."""
    return {"token": dict(xero_token)}


@pytest.fixture
def xero_client(xero: XeroSandbox, xero_store: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> ApiClient:
    """xero-python keeps Xero's identity URLs as class attributes of its TokenApi; a user points them at
    another identity server by setting them."""
    monkeypatch.setattr(TokenApi, "refresh_token_url", f"{xero.base_url}/connect/token")
    monkeypatch.setattr(TokenApi, "client_credentials_token_url", f"{xero.base_url}/connect/token")
    monkeypatch.setattr(TokenApi, "revoke_token_url", f"{xero.base_url}/connect/revocation")
    return ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id=XERO_CLIENT_ID, client_secret=XERO_CLIENT_SECRET)),
        pool_threads=1,
        oauth2_token_getter=lambda: xero_store["token"],
        oauth2_token_saver=lambda token: xero_store.update(token=token),
    )


def accounting(xero: XeroSandbox, client: ApiClient) -> AccountingApi:
    return AccountingApi(client, base_url=f"{xero.base_url}/api.xro/2.0")


def test_xero_python_lists_connections(xero: XeroSandbox, xero_client: ApiClient) -> None:
    connections = IdentityApi(xero_client, base_url=xero.base_url).get_connections()
    assert [c.tenant_id for c in connections] == [AU_TENANT_ID]
    assert connections[0].tenant_type == "ORGANISATION" and connections[0].tenant_name
    assert connections[0].created_date_utc is not None and connections[0].id


def test_xero_tokens_verify_against_the_keys_of_the_discovery_document(
    xero: XeroSandbox, xero_token: dict[str, Any]
) -> None:
    """xero-python trusts the token endpoint; Xero's xero-node and OpenID libraries verify the tokens with the
    keys of the jwks_uri in Xero's discovery document, as an app can here with PyJWT's JWKS client."""
    discovery = httpx.get(f"{xero.base_url}/.well-known/openid-configuration").json()
    keys = jwt.PyJWKClient(discovery["jwks_uri"])
    unexpired = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}  # the sandbox's clock
    for token, audience in (
        (xero_token["access_token"], "https://identity.xero.com/resources"),
        (xero_token["id_token"], XERO_CLIENT_ID),
    ):
        claims = jwt.decode(
            token,
            keys.get_signing_key_from_jwt(token).key,
            algorithms=discovery["id_token_signing_alg_values_supported"],
            audience=audience,
            issuer=discovery["issuer"],
            options=unexpired,
        )
        assert claims["xero_userid"]


def test_xero_python_refreshes_an_expired_token(
    xero: XeroSandbox, xero_client: ApiClient, xero_store: dict[str, Any]
) -> None:
    store = xero_store
    store["token"]["expires_at"] = time.time() - 10
    before = dict(store["token"])
    accounts = accounting(xero, xero_client).get_accounts(AU_TENANT_ID)
    assert accounts.accounts
    after = store["token"]
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # rotated, and saved through the saver
    assert after["expires_in"] == 1800 and after["expires_at"] > time.time() + 1700
    assert sorted(after["scope"]) == sorted(XERO_SCOPES.split())


def test_xero_python_reads_accounts_and_items(xero: XeroSandbox, xero_client: ApiClient) -> None:
    api = accounting(xero, xero_client)
    accounts = api.get_accounts(AU_TENANT_ID, where='Status=="ACTIVE" AND Type=="BANK"').accounts
    assert [a.code for a in accounts] == ["090"]
    assert accounts[0].account_id and accounts[0].updated_date_utc is not None
    everything = api.get_accounts(AU_TENANT_ID, order="Code ASC").accounts
    assert [a.code for a in everything] == sorted(a.code for a in everything)
    items = api.get_items(AU_TENANT_ID).items
    codes = {i.code for i in items}
    assert {"WIDGET-10", "KIT-STARTER"} <= codes
    widget = next(i for i in items if i.code == "WIDGET-10")
    assert float(widget.sales_details.unit_price) == 6.0
    assert api.get_items(AU_TENANT_ID, where='Code=="WIDGET-10"').items[0].item_id == widget.item_id


def manual_journal(narration: str, debit: str, credit: str) -> ManualJournals:
    return ManualJournals(
        manual_journals=[
            ManualJournal(
                narration=narration,
                date=date(2026, 10, 15),
                status="POSTED",
                line_amount_types=LineAmountTypes.NOTAX,
                journal_lines=[
                    ManualJournalLine(account_code="310", line_amount=debit, description="COGS"),
                    ManualJournalLine(account_code="632", line_amount=credit, description="Stock"),
                ],
            )
        ]
    )


def test_xero_python_creates_a_balanced_manual_journal(xero: XeroSandbox, xero_client: ApiClient) -> None:
    api = accounting(xero, xero_client)
    created = api.create_manual_journals(
        AU_TENANT_ID,
        manual_journal("Official client journal", "125.50", "-125.50"),
        idempotency_key="oc-mj-1",
    ).manual_journals
    assert len(created) == 1 and created[0].manual_journal_id
    assert created[0].status == "POSTED"
    assert [float(line.line_amount) for line in created[0].journal_lines] == [125.5, -125.5]
    read = api.get_manual_journal(AU_TENANT_ID, created[0].manual_journal_id).manual_journals[0]
    assert read.narration == "Official client journal"


def test_xero_python_raises_validation_exception_for_an_unbalanced_journal(
    xero: XeroSandbox, xero_client: ApiClient
) -> None:
    api = accounting(xero, xero_client)
    with pytest.raises(AccountingBadRequestException) as refused:
        api.create_manual_journals(AU_TENANT_ID, manual_journal("Unbalanced", "100.00", "-90.00"))
    data = refused.value.error_data
    assert data["ErrorNumber"] == 10 and data["Type"] == "ValidationException"
    assert "must equal total credits" in refused.value.reason


def test_xero_python_raises_rate_limit_exception_on_a_throttled_write(
    xero: XeroSandbox, xero_client: ApiClient
) -> None:
    """A throttled GET or PUT is retried by urllib3 after the Retry-After Xero sends (it honours the header on
    429 for the methods it deems idempotent); a POST is not, and surfaces as the SDK's RateLimitException."""
    xero.inject("429", method="POST", path_prefix="/api.xro/2.0/ManualJournals")
    with pytest.raises(RateLimitException) as throttled:
        accounting(xero, xero_client).update_or_create_manual_journals(
            AU_TENANT_ID, manual_journal("Throttled", "1.00", "-1.00")
        )
    assert throttled.value.status == 429 and throttled.value.rate_limit == "minute"
    assert 0 < int(throttled.value.headers["Retry-After"]) <= 60


def test_xero_python_reads_invoices_with_where_order_and_page(
    xero: XeroSandbox, xero_client: ApiClient
) -> None:
    api = accounting(xero, xero_client)
    invoices = api.get_invoices(AU_TENANT_ID, where='Type=="ACCREC"', order="Date DESC", page=1).invoices
    assert invoices and all(str(i.type).endswith("ACCREC") for i in invoices)
    dates = [i.date for i in invoices]
    assert dates == sorted(dates, reverse=True)
    assert all(i.line_items for i in invoices)  # a paged read carries the lines
    paged = api.get_invoices(AU_TENANT_ID, page=1, page_size=2)
    assert len(paged.invoices) == 2 and paged.pagination.page_size == 2
    assert paged.pagination.item_count >= 2


def test_xero_python_reads_contacts(xero: XeroSandbox, xero_client: ApiClient) -> None:
    api = accounting(xero, xero_client)
    contacts = api.get_contacts(AU_TENANT_ID).contacts
    names = {c.name for c in contacts}
    assert "Harbour Fabrication" in names and "Old Customer Co" not in names
    suppliers = api.get_contacts(AU_TENANT_ID, where="IsSupplier==true").contacts
    assert {c.name for c in suppliers} == {"Bolt Supplies Pty Ltd", "Acme Metals Ltd"}


def test_xero_python_refused_refresh_and_revoke(
    xero: XeroSandbox, xero_client: ApiClient, xero_store: dict[str, Any]
) -> None:
    issued = dict(xero_store["token"])
    token = OAuth2Token(client_id=XERO_CLIENT_ID, client_secret=XERO_CLIENT_SECRET)
    token.update_token(**issued)
    assert token.revoke_access_token(xero_client)  # the saver is handed an emptied token set
    assert xero_store["token"]["refresh_token"] is None
    stale = OAuth2Token(client_id=XERO_CLIENT_ID, client_secret=XERO_CLIENT_SECRET)
    stale.update_token(**{**issued, "expires_at": time.time() - 10})
    with pytest.raises(ApiException) as refused:
        stale.refresh_access_token(xero_client)
    assert refused.value.status == 400 and b"invalid_grant" in refused.value.body
    xero_store["token"] = issued
    # revoking removes all of the user's connections (xero-python's revoke_token docstring; xero.md 1.1): the
    # access token still issued lists none, and reaches no organisation
    assert IdentityApi(xero_client, base_url=xero.base_url).get_connections() == []
    with pytest.raises(HTTPStatusException) as gone:
        accounting(xero, xero_client).get_accounts(AU_TENANT_ID)
    assert gone.value.status == 403


def sales_invoice(contact_id: str, *, number: str | None = None, status: str = "AUTHORISED") -> XeroInvoices:
    line = LineItem(
        item_code="WIDGET-10", quantity=3, unit_amount=6, account_code="200", description="Widget"
    )
    invoice = XeroInvoice(
        type="ACCREC",
        contact=Contact(contact_id=contact_id),
        date=date(2026, 10, 20),
        due_date=date(2026, 11, 20),
        status=status,
        line_amount_types=LineAmountTypes.EXCLUSIVE,
        line_items=[line],
        invoice_number=number,
    )
    return XeroInvoices(invoices=[invoice])


def test_xero_python_sells_credits_and_voids(xero: XeroSandbox, xero_client: ApiClient) -> None:
    """Sales the service pulls, made with Xero's SDK: createInvoices (PUT), createCreditNotes,
    and updateInvoice to void. Numbers come from the organisation's sequence, past the seeded documents'."""
    api = accounting(xero, xero_client)
    contact = api.get_contacts(AU_TENANT_ID, where='Name=="Harbour Fabrication"').contacts[0]
    seeded = {i.invoice_number for i in api.get_invoices(AU_TENANT_ID).invoices}
    sold = api.create_invoices(AU_TENANT_ID, sales_invoice(contact.contact_id), idempotency_key="oc-inv-1")
    invoice = sold.invoices[0]
    assert invoice.invoice_id and invoice.invoice_number not in seeded
    assert str(invoice.status).endswith("AUTHORISED")
    assert (float(invoice.sub_total), float(invoice.total_tax), float(invoice.total)) == (18.0, 1.8, 19.8)
    assert invoice.line_items[0].item_code == "WIDGET-10" and float(invoice.line_items[0].quantity) == 3
    note = CreditNote(
        type="ACCRECCREDIT",
        contact=Contact(contact_id=contact.contact_id),
        date=date(2026, 10, 21),
        status="AUTHORISED",
        line_items=[LineItem(item_code="WIDGET-10", quantity=1, unit_amount=6, account_code="200")],
    )
    credited = api.create_credit_notes(AU_TENANT_ID, CreditNotes(credit_notes=[note])).credit_notes[0]
    assert (
        credited.credit_note_id and float(credited.total) == 6.6 and float(credited.remaining_credit) == 6.6
    )
    voided = XeroInvoice(invoice_id=invoice.invoice_id, status="VOIDED")
    after = api.update_invoice(AU_TENANT_ID, invoice.invoice_id, XeroInvoices(invoices=[voided])).invoices[0]
    assert str(after.status).endswith("VOIDED") and float(after.amount_due) == 0
    assert (
        api.get_invoice(AU_TENANT_ID, invoice.invoice_id).invoices[0].line_items[0].item_code == "WIDGET-10"
    )


def test_xero_python_is_refused_what_xero_refuses_of_an_invoice(
    xero: XeroSandbox, xero_client: ApiClient
) -> None:
    api = accounting(xero, xero_client)
    contact = api.get_contacts(AU_TENANT_ID, where='Name=="Harbour Fabrication"').contacts[0]
    first = api.create_invoices(AU_TENANT_ID, sales_invoice(contact.contact_id, status="DRAFT")).invoices[0]
    with pytest.raises(AccountingBadRequestException) as taken:  # PUT creates; a sales number is unique
        api.create_invoices(AU_TENANT_ID, sales_invoice(contact.contact_id, number=first.invoice_number))
    assert "must be unique" in taken.value.reason
    # POST with a taken sales number updates that invoice (pyxero#328): here, approves the draft
    upserted = api.update_or_create_invoices(
        AU_TENANT_ID, sales_invoice(contact.contact_id, number=first.invoice_number)
    ).invoices[0]
    assert upserted.invoice_id == first.invoice_id and str(upserted.status).endswith("AUTHORISED")
    for status in ("VOIDED", "PAID"):  # nothing is created voided, nor paid but by payments
        with pytest.raises(AccountingBadRequestException):
            api.create_invoices(AU_TENANT_ID, sales_invoice(contact.contact_id, status=status))
    with pytest.raises(AccountingBadRequestException) as paid:
        api.update_invoice(
            AU_TENANT_ID, first.invoice_id, XeroInvoices(invoices=[XeroInvoice(status="PAID")])
        )
    assert "PAID" in paid.value.reason
    deleted = XeroInvoices(invoices=[XeroInvoice(invoice_id=first.invoice_id, status="DELETED")])
    with pytest.raises(
        AccountingBadRequestException
    ) as approved:  # an approved invoice is voided, not deleted
        api.update_invoice(AU_TENANT_ID, first.invoice_id, deleted)
    assert "not of valid status" in approved.value.reason


def report_figures(report: Any) -> dict[str, list[str]]:
    """Row name -> its figures, across the sections of a xero-python ReportWithRow."""
    return {
        row.cells[0].value: [c.value for c in row.cells[1:]]
        for section in report.rows[1:]
        for row in section.rows or []
    }


def test_xero_python_reads_the_journals_and_statements_of_what_was_posted(
    xero: XeroSandbox, xero_client: ApiClient
) -> None:
    """An accountant's reads of the books with xero-python: get_journals shows a manual journal and a sale
    (and the sale's reversal once voided); get_report_balance_sheet and get_report_profit_and_loss agree
    with get_report_trial_balance, all from the one ledger."""
    api = accounting(xero, xero_client)
    before = max((j.journal_number for j in api.get_journals(AU_TENANT_ID).journals), default=0)
    while page := api.get_journals(AU_TENANT_ID, offset=before).journals:
        before = page[-1].journal_number
    api.create_manual_journals(AU_TENANT_ID, manual_journal("Books rule", "40.00", "-40.00"))
    contact = api.get_contacts(AU_TENANT_ID, where='Name=="Harbour Fabrication"').contacts[0]
    invoice = api.create_invoices(AU_TENANT_ID, sales_invoice(contact.contact_id)).invoices[0]

    manual, sold = api.get_journals(AU_TENANT_ID, offset=before).journals
    assert str(manual.source_type).endswith("MANJOURNAL") and manual.journal_number == before + 1
    assert sorted(float(line.net_amount) for line in manual.journal_lines) == [-40.0, 40.0]
    assert str(sold.source_type).endswith("ACCREC") and sold.source_id == invoice.invoice_id
    nets = {line.account_code or line.account_name: float(line.net_amount) for line in sold.journal_lines}
    assert nets == {"610": 19.8, "200": -18.0, "GST": -1.8}

    day = date(2026, 10, 31)
    trial = report_figures(api.get_report_trial_balance(AU_TENANT_ID, date=day).reports[0])
    sheet = api.get_report_balance_sheet(AU_TENANT_ID, date=day).reports[0]
    figures = report_figures(sheet)
    assert figures["Accounts Receivable"][0] == trial["Accounts Receivable (610)"][2]  # YTD debit
    assert figures["Net Assets"][0] == figures["Total Equity"][0]
    profit = api.get_report_profit_and_loss(AU_TENANT_ID, from_date=date(2026, 10, 1), to_date=day)
    income = report_figures(profit.reports[0])
    assert income["Sales"][0] == trial["Sales (200)"][1]  # October's credit

    api.update_invoice(
        AU_TENANT_ID, invoice.invoice_id, XeroInvoices(invoices=[XeroInvoice(status="VOIDED")])
    )
    (reversal,) = api.get_journals(AU_TENANT_ID, offset=sold.journal_number).journals
    assert reversal.source_id == invoice.invoice_id
    assert sorted(float(line.net_amount) for line in reversal.journal_lines) == sorted(
        -v for v in nets.values()
    )
