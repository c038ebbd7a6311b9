"""Keyboard alone on Settings -> Integrations: pull sales and read the margins' notes (credits that matched no
sale, and where their units went); retry an export the provider refused, once the cause is gone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from tests.browser.conftest import LocalStack, Screenshots
from tests.browser.test_books_page import Api, connect_xero, tab_to, xero_organisation
from tests.browser.test_integrations_page import connect_qbo, new_organisation, open_page
from tests.integration.test_exports import QBO_ACCOUNTS

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_available fixture skips every test here (and fails them in CI)
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_pull_by_keyboard_shows_where_the_units_of_unmatched_credits_went(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    tenant, username = xero_organisation(local_stack)
    organisation = new_organisation("notes")
    api = Api(local_stack, organisation)
    open_page(page, local_stack, organisation)
    connect_xero(page, username)
    api("POST", "/integrations/xero/sync/items")
    (item,) = [i["item_id"] for i in api("GET", "/integrations/xero/items")["items"] if i["sku"] == "BOLT-M8"]
    bolt = api("POST", "/products/import-from-provider", {"provider": "xero", "item_ids": [item]})["created"][
        0
    ]
    line = {"product_id": bolt["product_id"], "quantity": "10", "unit_cost": "0.18"}
    api("POST", "/receipts", {"received_at": "2026-11-02T09:00:00Z", "lines": [line]}, status=201)
    admin = f"{local_stack.xero_url}/_admin/organisations/{tenant}"
    contact = httpx.get(f"{admin}/Contacts").json()[0]  # who never bought anything
    for number, day, quantity, reference in (
        ("CN-7", "2026-11-10", "2", "Returned unopened"),
        ("CN-8", "2026-11-12", "1", "Scrapped: crushed in transit"),
    ):
        credit = {
            "CreditNoteNumber": number,
            "Type": "ACCRECCREDIT",
            "Contact": {"ContactID": contact["ContactID"]},
            "Date": day,
            "Status": "AUTHORISED",
            "Reference": reference,
            "LineItems": [
                {"ItemCode": "BOLT-M8", "Description": "Bolt", "Quantity": quantity, "UnitAmount": "0.55"}
            ],
        }
        added = httpx.post(f"{admin}/CreditNotes", json=credit)
        assert added.status_code == 201, added.text
    api("PUT", "/integrations/xero/sales-tracking", {"enabled": True, "start_date": "2026-11-01"})

    sales = page.locator("section#sales")
    pull = sales.get_by_role("button", name="Pull sales now")
    page.locator("section#export-settings").get_by_role("button", name="Sync items").focus()
    tab_to(page, pull)
    page.keyboard.press("Enter")
    expect(sales.locator('[data-role="status"]')).to_contain_text("pulled")
    expect(pull).to_be_focused()  # focus stays on the control that acted
    notes = sales.locator('[data-role="margin-notes"] li')
    expect(notes).to_have_text(
        [
            "Credit CN-7 matched no sale: 2 x BOLT-M8 restocked at 0.18",
            "Credit CN-8 matched no sale: 1 x BOLT-M8 written off (not restockable)",
        ]
    )
    shoot(page, "1-notes-by-product")

    grouping = sales.get_by_label("Margins by")
    tab_to(page, grouping)
    page.keyboard.press("ArrowDown")  # a native select changes its choice with the arrows
    expect(grouping).to_have_value("period")
    expect(sales.locator("table caption")).to_have_text("Margins by month")
    expect(notes).to_have_count(2)  # whatever the grouping, the notes stay
    shoot(page, "2-notes-regrouped")


def test_retry_by_keyboard_posts_the_export_the_closed_books_refused(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """QuickBooks refuses a receipt dated on or before its closing date; once the books are reopened there,
    Retry (keyboard only) posts it."""
    organisation = new_organisation("retry")
    api = Api(local_stack, organisation)
    open_page(page, local_stack, organisation)
    connect_qbo(page)
    api("POST", "/integrations/qbo/sync/accounts")
    api("POST", "/integrations/qbo/sync/items")
    product = api("POST", "/products/import-from-provider", {"provider": "qbo", "item_ids": ["7"]})[
        "created"
    ][0]
    api("PUT", "/integrations/qbo/export-settings", {"mode": "journals", "accounts": QBO_ACCOUNTS})
    settings = f"{local_stack.qbo_url}/_admin/companies/{DEMO_REALM_ID}/settings"
    line = {"product_id": product["product_id"], "quantity": "4", "unit_cost": "1.90"}
    body = {"receipt_id": "R-CLOSED", "received_at": "2026-11-20T09:00:00Z", "lines": [line]}
    try:
        closed = httpx.post(settings, json={"closing_date": "2026-11-25"})
        assert closed.status_code == 200, closed.text
        api("POST", "/receipts", body, status=201)
        api.wait_for_exports({"receipt": ["failed"]})
    finally:  # the demo company is every browser test's: its books reopen whatever happens here
        reopened = httpx.post(settings, json={"closing_date": None})
        assert reopened.status_code == 200, reopened.text

    exports = page.locator("section#exports")
    refresh = exports.get_by_role("button", name="Refresh list")
    refresh.focus()
    page.keyboard.press("Enter")
    failed = exports.locator('tr[data-status="failed"]')
    expect(failed).to_contain_text("Receipt R-CLOSED")
    expect(failed).to_contain_text("closing date")
    shoot(page, "1-failed")

    retry = failed.get_by_role("button", name="Retry receipt R-CLOSED")
    tab_to(page, retry)
    page.keyboard.press("Enter")
    expect(refresh).to_be_focused()  # the row's button is gone with the retry: focus moves to the list's
    api.wait_for_exports({"receipt": ["posted"]})
    page.keyboard.press("Enter")  # Refresh list
    posted = exports.locator('tr[data-status="posted"]')
    expect(posted).to_contain_text("for receipt R-CLOSED")
    expect(exports.locator('tr[data-status="failed"]')).to_have_count(0)
    shoot(page, "2-retried-and-posted")


def test_a_product_file_imported_by_keyboard_leaves_focus_on_what_was_imported(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """The Import button goes once the file is imported: focus moves to the words saying what was imported,
    not to the top of the page, so a keyboard or screen reader user carries on where they were."""
    open_page(page, local_stack, new_organisation("import-keys"))
    section = page.locator("section#product-import")
    csv = "SKU,Name,Unit cost\nWB-20,Wall bracket 20mm,1.90\n"
    section.locator('input[type="file"]').set_input_files(
        files=[{"name": "products.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    apply = section.get_by_role("button", name="Import 1 product")
    tab_to(page, apply)
    page.keyboard.press("Enter")
    said = section.locator('[data-role="apply-status"]')
    expect(said).to_have_text("Imported: 1 product new.")
    expect(apply).to_have_count(0)
    expect(said).to_be_focused()
    shoot(page, "1-imported")
