"""axe-core over Settings -> Integrations in each of its main states, at desktop and phone width: no serious
or critical violation (WCAG 2 A and AA rules and axe's best practices)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import DESKTOP, PHONE, LocalStack, Screenshots, serious_violations
from tests.browser.test_books_page import Api
from tests.browser.test_integrations_page import connect_qbo, new_organisation, open_page
from tests.integration.test_exports import QBO_ACCOUNTS

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_available fixture skips every test here (and fails them in CI)
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_no_serious_accessibility_violations_in_the_main_states(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    found: dict[str, list[str]] = {}

    def check(state: str) -> None:
        for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            found[f"{state} ({width})"] = serious_violations(page)
            shoot(page, f"{state}-{width}")
        page.set_viewport_size(DESKTOP)

    organisation = new_organisation("axe")
    api = Api(local_stack, organisation)
    open_page(page, local_stack, organisation)
    page.wait_for_load_state("networkidle")
    check("1-empty")

    connect_qbo(page)
    page.wait_for_load_state("networkidle")
    check("2-connected")

    settings = page.locator("section#export-settings")
    settings.get_by_role("button", name="Sync items").click()
    expect(settings.locator('[data-role="items"] tr[data-item]').first).to_be_visible()
    check("3-items-panel")

    api("POST", "/integrations/qbo/sync/accounts")
    product = api("POST", "/products/import-from-provider", {"provider": "qbo", "item_ids": ["7"]})[
        "created"
    ][0]
    api("PUT", "/integrations/qbo/export-settings", {"mode": "journals", "accounts": QBO_ACCOUNTS})
    line = {"product_id": product["product_id"], "quantity": "50", "unit_cost": "20.00"}
    api("POST", "/receipts", {"received_at": "2026-08-01T09:00:00-07:00", "lines": [line]}, status=201)
    api.wait_for_exports({"receipt": ["posted"]})
    exports = page.locator("section#exports")
    exports.get_by_role("button", name="Refresh list").click()
    expect(exports.locator('tr[data-status="posted"]')).to_have_count(1)
    check("4-exports")

    api("PUT", "/integrations/qbo/sales-tracking", {"enabled": True, "start_date": "2026-08-01"})
    sales = page.locator("section#sales")
    sales.get_by_role("button", name="Pull sales now").click()
    expect(sales.locator('[data-role="margin-chart"]')).to_be_visible()
    check("5-margins-chart")

    books = page.locator("section#reconciliation")
    books.get_by_role("button", name="Check the books").click()
    expect(books.locator('[data-role="verdict"]')).to_have_attribute("data-status", "discrepancy")
    check("6-books")

    assert {state: v for state, v in found.items() if v} == {}

    # the check can fail: a button with no name, planted in the page, is a critical violation
    page.evaluate("document.querySelector('main').append(document.createElement('button'))")
    assert any("button-name" in v for v in serious_violations(page))
