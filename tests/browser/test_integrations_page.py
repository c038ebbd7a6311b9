"""Settings -> Integrations in headless Chromium against the local stack and the provider sandboxes,
used the way a person uses it: popups, consent pages, keyboard, phone width."""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from infra.local.run import QBO_DEMO_APP, XERO_DEMO_APP
from infra.sandboxes.qbo_demo import DEMO_COMPANY_NAME, DEMO_PASSWORD, DEMO_REALM_ID, DEMO_USERNAME
from infra.sandboxes.xero_demo import DEMO_ORGS
from tests.browser.conftest import PHONE, LocalStack, Screenshots

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_available fixture skips every test here (and fails them in CI)
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Response

pytestmark = pytest.mark.browser
if expect is not None:
    expect.set_options(timeout=10_000)

XERO_ORGANISATIONS = [name for _, name, *_ in DEMO_ORGS]
# Secret fields by name, the QBO sandbox's code / access / refresh token prefixes, the apps' client secrets.
NEVER_ON_THE_PAGE = (
    '"access_token"',
    '"refresh_token"',
    '"id_token"',
    "AB11_",
    "eyJlbmMi_",
    "RT1_",
    QBO_DEMO_APP[1],
    XERO_DEMO_APP[1],
)
# The QBO demo's accounts by role, as the export settings' pickers show them.
QBO_ACCOUNT_CHOICES = {
    "receiving_debit": "1300 · Inventory Asset",
    "receiving_credit": "2150 · Receiving Clearing",
    "build_debit": "1310 · Finished Goods",
    "waste": "6150 · Waste and Scrap",
    "cogs": "5000 · Cost of Goods Sold",
}
# (section id, method, path, body): the routes the optional sections are built on.
SECTIONS = ("export-settings", "product-import", "exports", "sales")


def new_organisation(label: str) -> str:
    return f"browser-{label}-{uuid.uuid4().hex[:8]}"


def open_page(page: Page, stack: LocalStack, organisation: str) -> None:
    page.goto(f"{stack.url}/?org={organisation}")
    page.locator('[data-provider="qbo"]').wait_for()


def card(page: Page, provider: str) -> Locator:
    return page.locator(f'article[data-provider="{provider}"]')


def sign_in(popup: Page) -> None:
    popup.locator('input[type="text"]').fill(DEMO_USERNAME)
    popup.locator('input[type="password"]').fill(DEMO_PASSWORD)
    popup.locator('button[type="submit"]').click()


def connect_qbo(page: Page, action: str = "connect") -> Page:
    with page.expect_popup() as opened:
        card(page, "qbo").locator(f'[data-action="{action}"]').click()
    popup = opened.value
    sign_in(popup)
    popup.get_by_role("radio", name=DEMO_COMPANY_NAME).check()
    popup.get_by_role("button", name="Allow").click()
    expect(card(page, "qbo")).to_have_attribute("data-status", "connected")
    return popup


def test_connect_qbo_through_the_popup_shows_the_company(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    answers: list[Response] = []
    page.on("response", lambda r: answers.append(r) if r.request.resource_type == "fetch" else None)
    open_page(page, local_stack, new_organisation("qbo"))
    expect(card(page, "qbo").locator('[data-role="status"]')).to_contain_text("Not connected")
    shoot(page, "1-not-connected")

    connect_qbo(page)

    qbo = card(page, "qbo")
    expect(qbo).to_contain_text(DEMO_COMPANY_NAME)
    expect(qbo.locator('[data-role="status"]')).to_contain_text("Connected")
    expect(qbo).to_contain_text("No sync yet")
    expect(qbo).to_contain_text("renews it automatically")
    expect(card(page, "xero")).to_contain_text("Disconnect QuickBooks Online first to connect Xero.")
    expect(card(page, "xero").locator("button")).to_have_count(0)
    shoot(page, "2-connected")

    # No provider token or app secret ever reaches the page: not in what it fetched, not in the document,
    # not in storage (the page keeps only the app's bearer token, in memory).
    page.wait_for_load_state("networkidle")
    seen = "\n".join(r.text() for r in answers) + page.content()
    assert [s for s in NEVER_ON_THE_PAGE if s in seen] == []
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert any(r.url.endswith("/integrations") for r in answers)

    # Once connected, every section of the page shows (a section hides only when its route is not deployed).
    for section in SECTIONS:
        expect(page.locator(f"section#{section}")).to_have_js_property("hidden", False)

    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways"
    shoot(page, "3-connected-phone")

    # a second Partsemble organisation connecting the same company is told both post into its books
    open_page(page, local_stack, new_organisation("qbo-second"))
    connect_qbo(page)
    expect(card(page, "qbo").locator('[data-role="shared"]')).to_contain_text(
        "also connected to this company: each organisation posts into its books"
    )
    shoot(page, "4-second-organisation-phone")


def test_connect_xero_choosing_one_of_two_organisations_by_keyboard(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    open_page(page, local_stack, new_organisation("xero"))
    connect = card(page, "xero").locator('[data-action="connect"]')
    for _ in range(12):  # the Connect button is reachable with Tab alone
        page.keyboard.press("Tab")
        if connect.evaluate("button => button === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the Connect Xero button")
    with page.expect_popup() as opened:
        page.keyboard.press("Enter")
    popup = opened.value
    sign_in(popup)
    for name in XERO_ORGANISATIONS:
        popup.get_by_role("checkbox", name=name).check()
    popup.get_by_role("button", name="Allow access").click()

    chosen = XERO_ORGANISATIONS[1]
    expect(popup.get_by_role("radio")).to_have_count(len(XERO_ORGANISATIONS))
    popup.get_by_role("radio", name=chosen).check()
    shoot(popup, "1-choose-organisation")
    popup.get_by_role("button", name="Connect this organisation").click()

    xero = card(page, "xero")
    expect(xero).to_have_attribute("data-status", "connected")
    expect(xero).to_contain_text(chosen)
    assert XERO_ORGANISATIONS[0] not in xero.inner_text()
    shoot(page, "2-connected")


def test_revoked_in_the_sandbox_shows_reconnect_and_reconnecting_works(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    open_page(page, local_stack, new_organisation("revoke"))
    connect_qbo(page)
    revoked = httpx.post(f"{local_stack.qbo_url}/_admin/companies/{DEMO_REALM_ID}/revoke")
    assert revoked.status_code == 200, revoked.text
    report = local_stack.fire_schedule("TokenRefreshFunction")
    assert report["queued"] >= 1, report  # queued; the route answers once the queue is drained

    page.reload()
    qbo = card(page, "qbo")
    expect(qbo).to_have_attribute("data-status", "expired")
    expect(qbo.locator('[data-role="status"]')).to_contain_text("Needs reconnecting")
    expect(qbo.locator('[data-role="hint"]')).to_contain_text("Reconnect")
    expect(qbo.locator('[data-action="reconnect"]')).to_be_visible()
    shoot(page, "1-expired")

    connect_qbo(page, action="reconnect")
    expect(qbo).to_contain_text(DEMO_COMPANY_NAME)
    expect(qbo.locator('[data-action="reconnect"]')).to_have_count(0)
    shoot(page, "2-reconnected")


def test_disconnect_asks_for_confirmation_and_keeps_data(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    open_page(page, local_stack, new_organisation("disconnect"))
    connect_qbo(page)
    qbo = card(page, "qbo")

    qbo.locator('[data-action="disconnect"]').click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Your data is kept")
    shoot(page, "1-confirm")
    page.keyboard.press("Escape")  # cancelling changes nothing
    expect(dialog).to_be_hidden()
    expect(qbo).to_have_attribute("data-status", "connected")

    qbo.locator('[data-action="disconnect"]').click()
    dialog.get_by_role("button", name="Disconnect QuickBooks Online").click()
    expect(qbo).to_have_attribute("data-status", "disconnected")
    expect(qbo.locator('[data-role="message"]')).to_contain_text("Your data is kept")
    expect(qbo.locator('[data-action="connect"]')).to_be_focused()  # focus is not lost
    expect(card(page, "xero").locator('[data-action="connect"]')).to_be_visible()
    shoot(page, "2-disconnected")


def test_export_settings_show_the_refused_account_next_to_its_field(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    organisation = new_organisation("settings")
    open_page(page, local_stack, organisation)
    connect_qbo(page)
    section = page.locator("section#export-settings")
    expect(section).to_be_visible()
    if section.locator('[data-field="accounts.receiving_debit"] option').count() <= 1:
        section.get_by_role("button", name="Sync accounts").click()
        expect(section.locator(".sync-bar [role=status]")).to_contain_text("synced")
    section.get_by_label("Partsemble tracks inventory").check()
    choices = {
        "receiving_debit": "Sales of Product Income",  # an income account cannot hold inventory
        "receiving_credit": "Accounts Payable (A/P)",
        "build_debit": "Finished Goods",
        "build_credit": "Raw Materials",
        "waste": "Waste and Scrap",
        "cogs": "Cost of Goods Sold",
    }
    for role, account in choices.items():
        select = section.locator(f"select#account-{role}")
        value = select.locator("option", has_text=account).first.get_attribute("value")
        select.select_option(value)
    section.get_by_role("button", name="Save export settings").click()
    expect(section.get_by_role("alert")).to_be_visible()
    shoot(page, "1-refused-account")

    refused = section.locator('[data-field="accounts.receiving_debit"]')
    expect(refused.locator(".field-error")).to_contain_text("Sales of Product Income")
    expect(refused.locator("select")).to_have_attribute("aria-invalid", "true")
    expect(refused.locator("select")).to_be_focused()
    expect(section.locator(".field.invalid")).to_have_count(1)


def test_product_import_shows_the_bad_row_then_imports_the_good_ones(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    organisation = new_organisation("import")
    open_page(page, local_stack, organisation)
    section = page.locator("section#product-import")
    expect(section).to_be_visible()
    csv = "SKU,Name,Unit cost\nWB-20,Wall bracket 20mm,1.90\nWB-40,Wall bracket 40mm,abc\nCB-01,Brace,0.70\n"
    section.locator('input[type="file"]').set_input_files(
        files=[{"name": "products.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )

    summary = section.locator('[data-role="summary"]')
    expect(summary).to_contain_text("2 rows are ready to import")
    expect(summary).to_contain_text("1 row has errors")
    expect(section.locator('[data-role="counts"]')).to_have_text(
        "3 rows read; an import would create 2 products."
    )
    expect(section.locator('[data-role="error-rows"]')).to_have_text("Rows with errors: 3.")
    bad = section.locator('tr[data-row="3"]')
    expect(bad).to_have_attribute("data-status", "error")
    expect(bad).to_contain_text("WB-40")
    expect(bad).to_contain_text("Unit cost")
    expect(bad).to_contain_text("not a number: 'abc'")
    expect(section.locator("tbody tr")).to_have_count(1)  # only the rows with problems are listed
    shoot(page, "1-dry-run")

    section.get_by_role("button", name="Import 2 products").click()
    expect(section.locator('[data-role="apply-status"]')).to_contain_text("Imported: 2 products new")
    shoot(page, "2-applied")


def test_product_import_says_how_many_problem_rows_are_not_listed(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    organisation = new_organisation("import-many")
    open_page(page, local_stack, organisation)
    section = page.locator("section#product-import")
    expect(section).to_be_visible()
    csv = "SKU,Name,Unit cost\n" + "".join(f"P-{n},Part,-1\n" for n in range(1_010)) + "OK-1,Fine,2\n"
    section.locator('input[type="file"]').set_input_files(
        files=[{"name": "products.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )

    expect(section.locator('[data-role="summary"]')).to_contain_text("1010 rows have errors")
    expect(section.locator('[data-role="error-rows"]')).to_have_text("Rows with errors: 2\u20131011.")
    expect(section.locator('tr[data-row="2"]')).to_contain_text("negative (-1); it must be 0 or more")
    # the API lists the first 1,000 problem rows and the page the first 500 of those
    expect(section.locator("tbody tr")).to_have_count(500)
    expect(section.locator('[data-role="left-out"]')).to_contain_text("510 more rows with errors or warnings")
    shoot(page, "1-left-out")


def test_exports_list_shows_a_posted_receipt_and_sales_show_margins(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    organisation = new_organisation("exports")
    open_page(page, local_stack, organisation)
    connect_qbo(page)

    def ok(method: str, path: str, body: Any = None) -> Any:
        response = local_stack.call(method, path, organisation, body)
        assert response.is_success, response.text
        return response.json()

    ok("POST", "/integrations/qbo/sync/accounts")
    ok("POST", "/integrations/qbo/sync/items")
    product = ok("POST", "/products/import-from-provider", {"provider": "qbo", "item_ids": ["7"]})["created"][
        0
    ]
    ok(
        "PUT",
        "/integrations/qbo/export-settings",
        {
            "mode": "journals",
            "accounts": {
                "build_debit": "10",
                "build_credit": "11",
                "receiving_debit": "1",
                "receiving_credit": "5",
                "waste": "7",
                "cogs": "2",
            },
        },
    )
    ok(
        "POST",
        "/receipts",
        {
            "received_at": "2026-08-01T09:00:00-07:00",
            "lines": [{"product_id": product["product_id"], "quantity": "50", "unit_cost": "20.00"}],
        },
    )

    section = page.locator("section#exports")
    local_stack.settle()  # the local stack's queue poller has posted it
    section.get_by_role("button", name="Refresh list").click()
    posted = section.locator('tr[data-status="posted"]')
    expect(posted).to_have_count(1)
    expect(posted).to_contain_text("Journal in QuickBooks for receipt RCV-")
    shoot(page, "1-export-posted")

    ok("PUT", "/integrations/qbo/sales-tracking", {"enabled": True, "start_date": "2026-08-01"})
    sales = page.locator("section#sales")
    sales.get_by_role("button", name="Pull sales now").click()
    expect(sales.locator('[data-role="status"]')).to_contain_text("pulled")
    expect(sales.locator('[data-role="last-pull"]')).to_contain_text("Last pulled")
    expect(sales.locator("table")).to_contain_text(product["sku"])
    total = sales.locator("tr[data-total]")
    expect(total).to_contain_text("Total")  # the totals row
    chart = sales.locator('[data-role="margin-chart"]')
    expect(chart).to_be_visible()
    assert (chart.get_attribute("aria-label") or "").startswith("Margin by product")
    assert chart.locator("rect.bar").count() >= 1  # a bar per costed product
    expect(sales.locator('[data-role="download"]')).to_have_attribute("aria-disabled", "false")
    shoot(page, "2-margins-by-product")
    sales.get_by_label("Margins by").select_option("period")  # by month: the margin over periods, as a line
    expect(sales.locator('[data-role="margin-chart"] polyline')).to_have_count(1)
    expect(sales.locator("tr[data-total]")).to_contain_text("Total")
    shoot(page, "3-margins-by-month")


def test_after_a_switch_to_xero_the_sales_section_shows_xeros_pulls_not_the_disconnected_qbos(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """QuickBooks keeps its sales status once disconnected; the page connected to Xero says Xero has not
    been pulled, not "Last pulled" with QuickBooks' time, nor what QuickBooks' pull read beside the button."""
    organisation = new_organisation("switch-sales")
    open_page(page, local_stack, organisation)
    connect_qbo(page)
    tracked = local_stack.call(
        "PUT", "/integrations/qbo/sales-tracking", organisation, {"enabled": True, "start_date": "2026-08-01"}
    )
    assert tracked.is_success, tracked.text
    sales = page.locator("section#sales")
    sales.get_by_role("button", name="Pull sales now").click()
    expect(sales.locator('[data-role="last-pull"]')).to_contain_text("Last pulled")

    card(page, "qbo").locator('[data-action="disconnect"]').click()
    page.locator("dialog#confirm").get_by_role("button", name="Disconnect QuickBooks Online").click()
    expect(card(page, "qbo")).to_have_attribute("data-status", "disconnected")
    with page.expect_popup() as opened:
        card(page, "xero").locator('[data-action="connect"]').click()
    popup = opened.value
    sign_in(popup)
    popup.get_by_role("checkbox", name=XERO_ORGANISATIONS[0]).check()
    popup.get_by_role("button", name="Allow access").click()
    expect(card(page, "xero")).to_have_attribute("data-status", "connected")
    # without a reload too: the words QuickBooks' pull left beside the button are gone with it
    expect(sales.locator('[data-role="last-pull"]')).to_have_text("Sales have not been pulled yet.")
    expect(sales.locator('[data-role="status"]')).to_have_text("")

    page.reload()
    expect(sales.locator('[data-role="last-pull"]')).to_have_text("Sales have not been pulled yet.")
    expect(sales.get_by_role("switch", name="Track sales from Xero")).not_to_be_checked()
    shoot(page, "xero-not-pulled")


def test_items_synced_can_be_linked_or_imported_as_products_from_the_page(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """After "Sync items" the panel lists them: a product with an item's SKU is linked (by the sync), the
    others can become products, one without a SKU says why; by keyboard only."""
    organisation = new_organisation("items")
    catalog_file = base64.b64encode(b"SKU,Name\nFG-WB-20,Wall bracket\n").decode()
    body = {"filename": "products.csv", "content_base64": catalog_file}
    response = local_stack.call("POST", "/products/import?mode=apply", organisation, body)
    assert response.is_success, response.text  # a product with the SKU of QBO's item 5
    open_page(page, local_stack, organisation)
    connect_qbo(page)
    settings = page.locator("section#export-settings")
    settings.get_by_role("button", name="Sync items").focus()
    page.keyboard.press("Enter")
    panel = settings.locator('[data-role="items"]')
    expect(panel.locator("tr[data-item]").first).to_be_visible()
    expect(panel.locator('tr[data-item="5"]')).to_contain_text("Linked to FG-WB-20")
    expect(panel.locator('tr[data-item="7"]')).to_contain_text("New: will become a product")
    expect(page.locator("section#integrations, body").first).not_to_contain_text("No sync yet")
    expect(panel.locator("table")).to_contain_text("No SKU in QuickBooks Online")
    shoot(page, "1-items-panel")
    panel.get_by_role("button", name="Link or import the chosen items").focus()
    page.keyboard.press("Enter")
    expect(panel.locator('[data-role="items-status"]')).to_contain_text("created")
    expect(panel.locator('tr[data-item="7"]')).to_contain_text("Linked to FG-SK-OAK")
    expect(panel.locator('[data-role="items-status"]')).to_be_focused()  # nothing left to choose: the result
    products = local_stack.call("GET", "/products", organisation).json()["items"]
    assert {"FG-WB-20", "FG-SK-OAK"} <= {p["sku"] for p in products if p["provider_links"].get("qbo")}
    shoot(page, "2-items-linked")


def test_after_a_switch_to_xero_the_quickbooks_items_synced_before_are_not_offered_for_linking(
    page: Page, local_stack: LocalStack
) -> None:
    """QuickBooks' items are listed after Sync items; the person disconnects QuickBooks and connects Xero
    without reloading: the export settings are Xero's, and no list of QuickBooks items stays under them
    offering "Link or import the chosen items" for the disconnected company, nor QuickBooks' "Export settings
    saved." and books check beside Xero's."""
    open_page(page, local_stack, new_organisation("switch-items"))
    connect_qbo(page)
    settings = page.locator("section#export-settings")
    settings.get_by_role("button", name="Sync items").click()
    expect(settings.locator('[data-role="items"] h3')).to_have_text("Items in QuickBooks Online")
    settings.get_by_role("button", name="Sync accounts").click()
    for role, account in QBO_ACCOUNT_CHOICES.items():
        settings.locator(f"select#account-{role}").select_option(label=account)
    settings.get_by_role("button", name="Save export settings").click()
    saved = settings.locator('[data-role="form"] [data-role="status"]')
    expect(saved).to_have_text("Export settings saved.")
    books = page.locator("section#reconciliation")
    books.get_by_role("button", name="Check the books").click()
    checked = books.locator('form [data-role="status"]')
    expect(checked).to_contain_text("Books at the end of")

    card(page, "qbo").locator('[data-action="disconnect"]').click()
    page.locator("dialog#confirm").get_by_role("button", name="Disconnect QuickBooks Online").click()
    expect(card(page, "qbo")).to_have_attribute("data-status", "disconnected")
    with page.expect_popup() as opened:
        card(page, "xero").locator('[data-action="connect"]').click()
    popup = opened.value
    sign_in(popup)
    popup.get_by_role("checkbox", name=XERO_ORGANISATIONS[0]).check()
    popup.get_by_role("button", name="Allow access").click()
    expect(card(page, "xero")).to_have_attribute("data-status", "connected")

    expect(settings.locator('[data-role="intro"]')).to_contain_text("to Xero")
    expect(settings).not_to_contain_text("QuickBooks Online items")
    expect(settings.get_by_role("button", name="Link or import the chosen items")).to_have_count(0)
    expect(saved).to_have_text("")  # nothing is saved for Xero yet, nor its books checked
    expect(checked).to_have_text("")
    settings.get_by_role("button", name="Sync items").click()  # Xero's own, once synced
    expect(settings.locator('[data-role="items"] h3')).to_have_text("Items in Xero")
