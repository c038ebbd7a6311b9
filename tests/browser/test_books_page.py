"""The books on Settings -> Integrations in headless Chromium against the local stack: the books check
(reconciliation) with its reasons in words, the exports list in words (cost of goods sold, true-ups, skipped),
and the sales-tracking switch, by mouse and by keyboard alone, at desktop and phone width."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from infra.sandboxes.xero_demo import ACCOUNTS as XERO_CHART
from tests.browser.conftest import DESKTOP, PHONE, LocalStack, Screenshots
from tests.browser.test_integrations_page import card, connect_qbo, new_organisation, open_page

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_available fixture skips every test here (and fails them in CI)
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.browser

XERO_ACCOUNTS = {
    "build_debit": "632",
    "build_credit": "631",
    "receiving_debit": "630",
    "receiving_credit": "820",
    "waste": "480",
    "cogs": "310",
}  # by account code
QBO_ACCOUNTS = {
    "build_debit": "10",
    "build_credit": "11",
    "receiving_debit": "1",
    "receiving_credit": "5",
    "waste": "7",
    "cogs": "2",
    "adjustment": "3",
}
PASSWORD = "books-demo"
UNSETTLED = {"pending", "posting"}
NOT_CONNECTED = "this organisation is not connected to QuickBooks Online or Xero"


class Api:
    """The API as the organisation under test, for the data the page then shows."""

    def __init__(self, stack: LocalStack, organisation: str) -> None:
        self.stack, self.organisation = stack, organisation

    def __call__(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        response = self.stack.call(method, path, self.organisation, body)
        assert response.is_success if status is None else response.status_code == status, response.text
        return response.json()

    def wait_for_exports(self, want: dict[str, list[str]]) -> list[dict[str, Any]]:
        """The exports once the local stack's poller has handled everything queued, asserting their statuses
        per kind are `want`."""
        deadline = time.monotonic() + 90
        while True:  # an export mid-post (or back later after a rate limit) is not settled yet
            self.stack.settle()
            exports = self("GET", "/exports?limit=500")["items"]
            if time.monotonic() > deadline or not any(e["status"] in UNSETTLED for e in exports):
                break
        found: dict[str, list[str]] = {}
        for export in exports:
            found.setdefault(export["kind"], []).append(export["status"])
        assert {k: sorted(v) for k, v in found.items()} == {k: sorted(v) for k, v in want.items()}, found
        return list(exports)


def xero_organisation(stack: LocalStack) -> tuple[str, str]:
    """A Xero organisation of this test's own (no other test's journals in its trial balance) with the demo
    chart and one item, and a user who may connect only it; returns (tenant id, username)."""
    (tenant,), username = xero_organisations(stack, 1)
    return tenant, username


def xero_organisations(stack: LocalStack, count: int) -> tuple[list[str], str]:
    """``count`` such organisations ("Books <tag> Pty Ltd", "Books <tag>-2 Pty Ltd", ...) and a user who may
    connect them all."""
    tag = uuid.uuid4().hex[:8]
    tenants = [_xero_books_organisation(stack, f"{tag}{'' if n == 0 else f'-{n + 1}'}") for n in range(count)]
    username = f"books-{tag}@partsemble.test"
    _admin_post(stack, "/users", {"username": username, "password": PASSWORD, "tenant_ids": tenants})
    return tenants, username


def _admin_post(stack: LocalStack, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{stack.xero_url}/_admin{path}", json=body, timeout=10)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _xero_books_organisation(stack: LocalStack, tag: str) -> str:
    tenant = str(uuid.uuid4())

    def post(path: str, body: dict[str, Any]) -> None:
        _admin_post(stack, path, body)

    post("/organisations", {"name": f"Books {tag} Pty Ltd", "tenant_id": tenant, "country": "AU"})
    for code, name, kind, status, system in XERO_CHART:
        record = {"Code": code, "Name": name, "Type": kind, "Status": status, "SystemAccount": system}
        post(f"/organisations/{tenant}/Accounts", record)
    post(
        f"/organisations/{tenant}/Items",
        {
            "Code": "BOLT-M8",
            "Name": "Bolt M8 x 40",
            "PurchaseDetails": {"UnitPrice": "0.18", "AccountCode": "630", "TaxType": "INPUT"},
            "SalesDetails": {"UnitPrice": "0.55", "AccountCode": "200", "TaxType": "OUTPUT"},
            "IsSold": True,
        },
    )
    post(f"/organisations/{tenant}/Contacts", {"Name": "Harbour Fabrication", "IsCustomer": True})
    return tenant


def connect_xero(page: Page, username: str, organisation: str | None = None, switch: bool = False) -> None:
    """Connects through the popup, allowing ``organisation`` (the user's only one when None); ``switch``:
    through "Connect a different organisation" and its confirmation."""
    with page.expect_popup() as opened:
        if switch:
            card(page, "xero").locator('[data-action="switch"]').click()
            page.locator("dialog#confirm").get_by_role("button", name="Choose another organisation").click()
        else:
            card(page, "xero").locator('[data-action="connect"]').click()
    popup = opened.value
    popup.locator('input[type="text"]').fill(username)
    popup.locator('input[type="password"]').fill(PASSWORD)
    popup.locator('button[type="submit"]').click()
    popup.get_by_role("checkbox", name=organisation).check()
    popup.get_by_role("button", name="Allow access").click()
    expect(card(page, "xero")).to_have_attribute("data-status", "connected")


def watch_requests(page: Page) -> list[str]:
    """Console errors and failed or refused requests (4xx, 5xx) from now on."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.method} {r.url} {r.failure}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status}: {r.request.method} {r.url}") if r.status >= 400 else None,
    )
    return problems


def load_cleanly(page: Page, stack: LocalStack, organisation: str) -> None:
    """Opens the page, waits until every section has loaded, and checks nothing failed on the way."""
    page.goto("about:blank")  # what the page before was still fetching is not this load's
    problems = watch_requests(page)
    open_page(page, stack, organisation)
    page.wait_for_load_state("networkidle")
    assert problems == [], problems


def tab_to(page: Page, target: Locator, presses: int = 40) -> None:
    for _ in range(presses):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"Tab never reached {target}")


def type_date(page: Page, field: Locator, iso: str) -> None:
    """Types a date into the focused date field by keyboard, in whichever order the browser lays it out."""
    year, month, day = iso.split("-")
    page.keyboard.type(f"{day}{month}{year}")
    if field.input_value() != iso:  # month first: back to the first part, and again
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")
        page.keyboard.type(f"{month}{day}{year}")
    assert field.input_value() == iso


def focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement?.id || document.activeElement?.outerHTML.slice(0, 80)"))


def focus_ring_contrast(page: Page, target: Locator) -> float:
    """The contrast of the focused element's outline against its section's background."""
    return float(
        target.evaluate(
            """element => {
              const rgb = (text) => text.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
              const lum = ([r, g, b]) => [r, g, b].map((v) => v / 255)
                .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
                .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
              const style = getComputedStyle(element);
              if (style.outlineStyle === "none" || parseFloat(style.outlineWidth) < 2) return 0;
              const ring = lum(rgb(style.outlineColor));
              const back = lum(rgb(getComputedStyle(element.closest("section")).backgroundColor));
              return (Math.max(ring, back) + 0.05) / (Math.min(ring, back) + 0.05);
            }"""
        )
    )


def test_books_check_and_exports_in_words_for_xero(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    tenant, username = xero_organisation(local_stack)
    organisation = new_organisation("books")
    api = Api(local_stack, organisation)
    open_page(page, local_stack, organisation)
    connect_xero(page, username)

    # the books as a bookkeeper's month makes them (as tests/integration/test_books.py does)
    chart = {a["code"]: a["account_id"] for a in api("POST", "/integrations/xero/sync/accounts")["accounts"]}
    api("POST", "/integrations/xero/sync/items")
    (item,) = [i["item_id"] for i in api("GET", "/integrations/xero/items")["items"] if i["sku"] == "BOLT-M8"]
    bolt = api("POST", "/products/import-from-provider", {"provider": "xero", "item_ids": [item]})["created"][
        0
    ]
    accounts = {role: chart[code] for role, code in XERO_ACCOUNTS.items()}
    api("PUT", "/integrations/xero/export-settings", {"mode": "journals", "accounts": accounts})

    def receive(receipt_id: str, day: str, quantity: str, unit_cost: str) -> None:
        line = {"product_id": bolt["product_id"], "quantity": quantity, "unit_cost": unit_cost}
        body = {"receipt_id": receipt_id, "received_at": f"{day}T09:00:00Z", "lines": [line]}
        api("POST", "/receipts", body, status=201)

    receive("R-1", "2026-11-02", "3", "3.335")
    contact = httpx.get(f"{local_stack.xero_url}/_admin/organisations/{tenant}/Contacts").json()[0]
    invoice = {
        "InvoiceNumber": "INV-1101",
        "Type": "ACCREC",
        "Contact": {"ContactID": contact["ContactID"]},
        "Date": "2026-11-10",
        "Status": "AUTHORISED",
        "LineItems": [{"ItemCode": "BOLT-M8", "Description": "Bolt", "Quantity": "2", "UnitAmount": "20"}],
    }
    added = httpx.post(f"{local_stack.xero_url}/_admin/organisations/{tenant}/Invoices", json=invoice)
    assert added.status_code == 201, added.text
    api("PUT", "/integrations/xero/sales-tracking", {"enabled": True, "start_date": "2026-11-01"})
    api("POST", "/sales/pull")
    api.wait_for_exports({"receipt": ["posted"]})
    local_stack.fire_schedule("SalesPullFunction")  # closes 10 Nov: its cost of goods sold is exported
    api.wait_for_exports({"receipt": ["posted"], "cogs": ["posted"]})
    receive("R-0", "2026-11-01", "1", "1.00")  # back-dated before the sale: what was posted is trued up
    receive("FREE", "2026-11-25", "5", "0")  # worth nothing: skipped
    api.wait_for_exports(
        {"receipt": ["posted", "posted", "skipped"], "cogs": ["posted"], "trueup": ["posted"]}
    )
    journal = {  # someone writes stock off by hand in Xero
        "Narration": "stock count",
        "Date": "2026-11-05",
        "Status": "POSTED",
        "JournalLines": [
            {"AccountCode": "630", "LineAmount": "-3.00"},
            {"AccountCode": "480", "LineAmount": "3.00"},
        ],
    }
    added = httpx.post(f"{local_stack.xero_url}/_admin/organisations/{tenant}/ManualJournals", json=journal)
    assert added.status_code == 201, added.text
    locked = httpx.post(
        f"{local_stack.xero_url}/_admin/organisations/{tenant}/lock-dates",
        json={"period_lock_date": "2026-11-20"},
    )
    assert locked.status_code == 200, locked.text
    receive("R-3", "2026-11-04", "2", "1.005")  # into a locked period: fails, and the books say so
    api.wait_for_exports(
        {"receipt": ["posted", "posted", "skipped", "failed"], "cogs": ["posted"], "trueup": ["posted"]}
    )

    load_cleanly(page, local_stack, organisation)

    # the exports, in words
    exports = page.locator("section#exports")
    sentences = exports.locator('[data-role="sentence"]')
    expect(sentences.filter(has_text="Manual journal in Xero for receipt R-1, posted")).to_have_count(1)
    expect(
        sentences.filter(has_text="Cost of goods sold for 10 Nov 2026 \u2013 manual journal in Xero")
    ).to_have_count(1)
    expect(
        sentences.filter(has_text="True-up of values already posted \u2013 manual journal in Xero")
    ).to_have_count(1)
    skipped = exports.locator('tr[data-status="skipped"]')
    expect(skipped).to_contain_text("Receipt FREE")
    expect(skipped).to_contain_text("Nothing to post")
    failed = exports.locator('tr[data-status="failed"]')
    expect(failed).to_contain_text("Receipt R-3 \u2013 for Xero")
    expect(failed.get_by_role("button", name="Retry receipt R-3")).to_be_visible()
    link = exports.locator('tr[data-kind="cogs"] a')
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_contain_text("Manual journal")

    # the books check: a hand-made entry in Xero, and a receipt Xero refused
    books = page.locator("section#reconciliation")
    verdict = books.locator('[data-role="verdict"]')
    expect(verdict).to_have_attribute("data-status", "discrepancy")
    expect(verdict).to_contain_text("Discrepancy")
    inventory = books.locator('tr[data-account="630"]')
    expect(inventory).to_contain_text("Inventory")
    expect(inventory).to_contain_text("Inventory asset")
    expect(inventory.locator('[data-kind="others_entries"]')).to_have_text(
        "Entries in Xero not made by Partsemble: -3.00"
    )
    expect(inventory.locator('[data-kind="not_posted"]')).to_contain_text(
        "Receipt R-3 is not posted yet (failed: "
    )
    expect(inventory.locator('[data-kind="not_posted"]')).to_contain_text(": -2.01")
    expect(books.locator('tr[data-account="310"]')).to_contain_text("Cost of goods sold")
    shoot(page, "1-desktop")

    # keyboard alone: the date, Enter; the result is announced and focus stays where it was
    as_of = books.get_by_label("Balances at the end of")
    page.locator("section#exports").get_by_role("button", name="Refresh list").focus()
    tab_to(page, as_of)
    assert focus_ring_contrast(page, as_of) >= 3
    type_date(page, as_of, "2026-11-15")
    page.keyboard.press("Enter")
    status = books.locator('[data-role="status"]')
    expect(status).to_have_text("Books at the end of 15 Nov 2026: Discrepancy.")
    expect(verdict).to_contain_text("at the end of 15 Nov 2026")
    expect(as_of).to_be_focused()
    # the hand-made entry (5 Nov) is in; the true-up of 1 Dec is named as correcting what came before
    expect(books.locator('tr[data-account="630"] [data-kind="others_entries"]')).to_have_text(
        "Entries in Xero not made by Partsemble: -3.00"
    )
    expect(books.locator('tr[data-account="630"] [data-kind="corrected_later"]')).to_contain_text("True-up")
    check = books.get_by_role("button", name="Check the books")
    tab_to(page, check, presses=4)  # past the date's day, month and year parts
    assert focus_ring_contrast(page, check) >= 3
    shoot(page, "2-as-of-desktop")

    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways"
    page.keyboard.press("Enter")  # the button: again, by keyboard
    expect(status).to_have_text("Books at the end of 15 Nov 2026: Discrepancy.")
    expect(check).to_be_focused()
    shoot(page, "3-phone")
    page.set_viewport_size(DESKTOP)

    # the receipt Xero refused for its locked period: posted on a day after the lock, chosen on the page
    later = failed.get_by_role("button", name="Retry on that day: Receipt R-3")
    later.click()
    expect(failed.locator('[role="alert"]')).to_have_text("Choose the day to post it on first.")
    failed.get_by_label("or post on").fill("2026-11-21")
    failed.get_by_role("button", name="Retry on that day: Receipt R-3").click()
    api.wait_for_exports(
        {"receipt": ["posted", "posted", "posted", "skipped"], "cogs": ["posted"], "trueup": ["posted"]}
    )
    exports.get_by_role("button", name="Refresh list").click()
    expect(sentences.filter(has_text="Manual journal in Xero for receipt R-3, posted")).to_have_count(1)
    check.click()  # still at the end of 15 Nov: R-3 of 4 Nov is in the books from 21 Nov
    expect(books.locator('tr[data-account="630"] [data-kind="posted_later"]')).to_contain_text(
        "Receipt R-3 of 4 Nov 2026 is dated 21 Nov 2026, after the period the provider locked: -2.01"
    )
    shoot(page, "4-posted-later")

    # R-3's journal (21 Nov, after the lock) voided in Xero by someone: named, and posted again from the check
    r3 = next(e for e in api("GET", "/exports")["items"] if e["record_id"] == "R-3")
    voided = httpx.post(
        f"{local_stack.xero_url}/_admin/organisations/{tenant}/ManualJournals/{r3['document_id']}/void"
    )
    assert voided.status_code == 200, voided.text
    as_of.fill("2026-11-25")
    check.click()
    gone = books.locator('tr[data-account="630"] [data-kind="deleted_in_provider"]')
    expect(gone).to_contain_text(
        "Receipt R-3 was posted, and its journal is no longer in Xero (deleted or voided there): -2.01"
    )
    expect(books.locator('tr[data-account="820"] [data-kind="deleted_in_provider"]')).to_have_count(1)
    again = books.get_by_role("button", name="Post again: Receipt R-3")
    expect(again).to_have_count(1)  # once, though two accounts name it
    expect(books.locator('tr[data-account="630"] [data-kind="others_entries"]')).to_have_text(
        "Entries in Xero not made by Partsemble: -3.00"
    )  # the hand-made entry only: the voided journal is not taken for someone else's
    expect(books.locator('tr[data-account="820"] [data-kind="others_entries"]')).to_have_count(0)
    shoot(page, "5-voided")
    again.click()
    expect(check).to_be_focused()
    api.wait_for_exports(
        {"receipt": ["posted", "posted", "posted", "skipped"], "cogs": ["posted"], "trueup": ["posted"]}
    )
    check.click()
    expect(books.locator('[data-kind="deleted_in_provider"]')).to_have_count(0)
    reposted = next(e for e in api("GET", "/exports")["items"] if e["record_id"] == "R-3")
    assert reposted["document_id"] != r3["document_id"]


def test_exports_tell_a_days_cost_of_goods_sold_of_the_company_connected_before_from_this_ones(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """After a switch of company, one business day has a cost of goods sold in each company: the list says
    which is the company's connected before."""
    tenants, username = xero_organisations(local_stack, 2)
    organisation = new_organisation("switch")
    api = Api(local_stack, organisation)
    open_page(page, local_stack, organisation)
    sold = "2026-11-10"

    def map_accounts() -> None:
        """The connected company's accounts and items synced and its accounts mapped for exports."""
        chart = {
            a["code"]: a["account_id"] for a in api("POST", "/integrations/xero/sync/accounts")["accounts"]
        }
        api("POST", "/integrations/xero/sync/items")
        accounts = {role: chart[code] for role, code in XERO_ACCOUNTS.items()}
        api("PUT", "/integrations/xero/export-settings", {"mode": "journals", "accounts": accounts})

    def sell_a_bolt_in(tenant: str, number: str) -> None:
        """The company's accounts and items synced and mapped, one bolt sold there on the day, and its sales
        pulled and the day closed: that day's cost of goods sold is exported to it."""
        map_accounts()
        contact = httpx.get(f"{local_stack.xero_url}/_admin/organisations/{tenant}/Contacts").json()[0]
        line = {"ItemCode": "BOLT-M8", "Description": "Bolt", "Quantity": "1", "UnitAmount": "20"}
        invoice = {"InvoiceNumber": number, "Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]},
                   "Date": sold, "Status": "AUTHORISED", "LineItems": [line]}  # fmt: skip
        _admin_post(local_stack, f"/organisations/{tenant}/Invoices", invoice)
        api("PUT", "/integrations/xero/sales-tracking", {"enabled": True, "start_date": "2026-11-01"})
        api("POST", "/sales/pull")
        local_stack.settle()  # the pull is queued: read first
        local_stack.fire_schedule("SalesPullFunction")  # closes the day: its cost of goods sold is exported

    first, second = (f"Books {username.split('-')[1].split('@')[0]}{s} Pty Ltd" for s in ("", "-2"))
    connect_xero(page, username, first)
    api("POST", "/integrations/xero/sync/items")
    (item,) = [i["item_id"] for i in api("GET", "/integrations/xero/items")["items"] if i["sku"] == "BOLT-M8"]
    bolt = api("POST", "/products/import-from-provider", {"provider": "xero", "item_ids": [item]})["created"][
        0
    ]
    line = {"product_id": bolt["product_id"], "quantity": "5", "unit_cost": "3.00"}
    map_accounts()  # before the receipt: the local stack may export it at once, and would fail it unmapped
    api("POST", "/receipts", {"receipt_id": "R-1", "received_at": "2026-11-02T09:00:00Z", "lines": [line]},
        status=201)  # fmt: skip
    sell_a_bolt_in(tenants[0], "INV-1")
    api.wait_for_exports({"receipt": ["posted"], "cogs": ["posted"]})

    card(page, "xero").locator('[data-action="disconnect"]').click()
    page.locator("dialog#confirm").get_by_role("button", name="Disconnect Xero").click()
    expect(card(page, "xero")).to_have_attribute("data-status", "disconnected")
    connect_xero(page, username, second, switch=True)
    expect(card(page, "xero")).to_contain_text(second)
    sell_a_bolt_in(tenants[1], "INV-2")
    api.wait_for_exports({"receipt": ["posted"], "cogs": ["posted", "posted"]})

    load_cleanly(page, local_stack, organisation)
    sentences = page.locator("section#exports").locator('tr[data-kind="cogs"] [data-role="sentence"]')
    expect(sentences).to_have_count(2)
    before = (
        "Cost of goods sold for 10 Nov 2026 (sales of the company connected before) \u2013 manual journal"
    )
    expect(sentences.filter(has_text=before)).to_have_count(1)
    expect(
        sentences.filter(has_text="Cost of goods sold for 10 Nov 2026 \u2013 manual journal")
    ).to_have_count(1)
    shoot(page, "exports-after-a-switch")


def test_sales_tracking_switch_by_keyboard_with_field_errors(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    organisation = new_organisation("tracking")
    open_page(page, local_stack, organisation)
    connect_qbo(page)
    load_cleanly(page, local_stack, organisation)

    sales = page.locator("section#sales")
    switch = sales.get_by_role("switch", name="Track sales from QuickBooks Online")
    start = sales.get_by_label("Start date")
    zone = sales.get_by_label("Time zone")
    save = sales.get_by_role("button", name="Save sales tracking")
    status = sales.locator('[data-role="tracking-status"]')
    expect(switch).not_to_be_checked()
    expect(zone).to_have_attribute("placeholder", "QuickBooks Online's time zone")
    expect(zone).to_have_value("")

    # keyboard only: on, a start date, a zone the API refuses
    sales.get_by_role("button", name="Pull sales now").focus()
    tab_to(page, switch)
    assert focus_ring_contrast(page, switch) >= 3
    page.keyboard.press("Space")
    expect(switch).to_be_checked()
    expect(sales).to_contain_text("On: Partsemble reads your invoices")
    page.keyboard.press("Tab")
    expect(start).to_be_focused()
    type_date(page, start, "2026-11-01")
    tab_to(page, zone, presses=3)  # on from the date's day, month and year parts
    page.keyboard.type("Mars/Base")
    page.keyboard.press("Tab")
    expect(save).to_be_focused()
    page.keyboard.press("Enter")
    zone_field = sales.locator('[data-field="time_zone"]')
    expect(zone_field.locator(".field-error")).to_contain_text("Unknown time zone 'Mars/Base'")
    expect(zone).to_have_attribute("aria-invalid", "true")
    expect(zone).to_be_focused()
    expect(sales.locator('[data-field="start_date"] .field-error')).to_have_text("")
    shoot(page, "1-refused-time-zone")

    # empty: the provider's time zone
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(status).to_contain_text("Sales tracking is on from 1 Nov 2026, in ")
    expect(save).to_be_focused()
    expect(zone).not_to_have_value("")
    expect(zone).not_to_have_attribute("aria-invalid", "true")
    provider_zone = zone.input_value()
    assert provider_zone in status.inner_text()
    # QuickBooks tells only its UTC offset: the zone guessed from it is a fixed one, named the POSIX way round
    # (Etc/GMT+8 is UTC-8), so the page says which way and that it keeps no summer time
    assert provider_zone == "Etc/GMT+8", provider_zone  # the sandbox's company is in Los Angeles, in November
    expect(status).to_have_text(
        "Sales tracking is on from 1 Nov 2026, in Etc/GMT+8 time (UTC\u22128 all year, no summer time)."
    )
    expect(sales.locator('[data-role="zone-hint"]')).to_contain_text(
        "Etc/GMT+8 is UTC\u22128 all year, no summer time: name your own zone to follow summer time."
    )

    # a zone of one's own
    page.keyboard.press("Shift+Tab")
    expect(zone).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("Europe/London")
    page.keyboard.press("Enter")  # submits the form from the field
    expect(status).to_have_text("Sales tracking is on from 1 Nov 2026, in Europe/London time.")
    shoot(page, "2-saved")

    page.reload()
    expect(switch).to_be_checked()
    expect(start).to_have_value("2026-11-01")
    expect(zone).to_have_value("Europe/London")

    # off, by mouse, at phone width
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways"
    switch.click()
    expect(sales).to_contain_text("Off: Partsemble does not read your sales.")
    save.click()
    expect(status).to_have_text("Sales tracking is off.")
    shoot(page, "3-off-phone")
    api = Api(local_stack, organisation)
    (tracked,) = api("GET", "/sales/status")
    assert (tracked["enabled"], tracked["time_zone"], tracked["start_date"]) == (
        False,
        "Europe/London",
        "2026-11-01",
    )


def test_books_check_for_qbo_inventory_mode_and_before_export_settings(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    organisation = new_organisation("qbo-books")
    api = Api(local_stack, organisation)
    open_page(page, local_stack, organisation)
    connect_qbo(page)
    load_cleanly(page, local_stack, organisation)
    books = page.locator("section#reconciliation")
    expect(books.locator('[data-role="verdict"]')).to_contain_text(
        "Choose the export accounts for QuickBooks Online above"
    )

    api("POST", "/integrations/qbo/sync/accounts")
    api("POST", "/integrations/qbo/sync/items")
    api("POST", "/products/import-from-provider", {"provider": "qbo", "item_ids": ["1", "2"]})
    api(
        "PUT",
        "/integrations/qbo/export-settings",
        {"mode": "inventory_adjustments", "accounts": QBO_ACCOUNTS},
    )
    load_cleanly(page, local_stack, organisation)

    verdict = books.locator('[data-role="verdict"]')
    # QBO holds stock Partsemble never received: its own, from before Partsemble
    expect(verdict).to_have_attribute("data-status", "explained")
    rows = books.locator("tr[data-item]")
    expect(rows).to_have_count(2)
    expect(books.locator("table caption")).to_have_text("Item quantities (today)")
    expect(rows.first.locator('td[data-label="On hand in Partsemble"]')).to_have_text("0")
    held = rows.first.locator('td[data-label="In QuickBooks"]').inner_text()
    expect(rows.first.locator('td[data-label="Known causes"]')).to_have_text(
        f"{held} QuickBooks' own before Partsemble"
    )
    expect(rows.first.locator('td[data-label="Unexplained"]')).to_have_text("0")
    expect(rows.first).to_have_attribute("data-status", "ok")
    expect(books.locator('[data-role="notes"] li')).to_have_count(2)
    expect(books.locator('[data-role="notes"]')).to_contain_text("Partsemble checks quantities")
    shoot(page, "1-quantities-desktop")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways"
    shoot(page, "2-quantities-phone")
    page.set_viewport_size(DESKTOP)

    # an item's known causes, as the reconciliation names them (the answer altered on its way to the page)
    answer = api("GET", "/reconciliation")
    answer["items"][0] |= {
        "sold_without_stock": "3",
        "built_without_stock": "0",
        "written_off_credits": "1",
        "starting_quantity": "0",
        "unexplained": "2",
    }
    answer["status"] = "discrepancy"
    page.route("**/reconciliation?*", lambda route: route.fulfill(json=answer))
    books.get_by_role("button", name="Check the books").click()
    expect(rows.first.locator('td[data-label="Known causes"]')).to_have_text(
        "3 sold without stock; 1 credited, written off here"
    )
    expect(rows.first).to_have_attribute("data-status", "error")
    expect(verdict).to_have_attribute("data-status", "discrepancy")
    page.unroute("**/reconciliation?*")

    # a refusal (409: e.g. disconnected in another tab) shows its message, not a broken panel
    page.route(
        "**/reconciliation?*",
        lambda route: route.fulfill(
            status=409,
            json={"error": "Conflict", "message": NOT_CONNECTED},
        ),
    )
    books.get_by_role("button", name="Check the books").click()
    expect(books.locator('[data-role="verdict"]')).to_have_text(
        f"Partsemble can't check the books yet: {NOT_CONNECTED}."
    )
    expect(books.locator('[data-role="status"]')).to_have_text("The books could not be checked.")
    expect(books.locator("table")).to_have_count(0)
    shoot(page, "3-refused")
