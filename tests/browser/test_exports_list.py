"""The exports list on Settings -> Integrations a page at a time, in headless Chromium against the local
stack: the latest 100, then Show more, by keyboard alone; a refresh keeps every row that was shown."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import LocalStack, Screenshots
from tests.browser.test_books_page import Api
from tests.browser.test_integrations_page import new_organisation, open_page

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_available fixture skips every test here (and fails them in CI)
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

RECEIPTS = 105  # a page of 100 and five more


def test_show_more_adds_the_next_exports_below_by_keyboard(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    organisation = new_organisation("exports")
    api = Api(local_stack, organisation)
    csv = b"SKU,Name,Unit cost\nBR-1,Bracket,1.90\n"
    file = {"filename": "products.csv", "content_base64": base64.b64encode(csv).decode()}
    api("POST", "/products/import?mode=apply", file)
    (product,) = api("GET", "/products")["items"]
    line = {"product_id": product["product_id"], "quantity": "1", "unit_cost": "1.90"}
    for n in range(RECEIPTS):
        receipt = {"receipt_id": f"R-{n:03d}", "received_at": "2026-11-02T09:00:00Z", "lines": [line]}
        api("POST", "/receipts", receipt, status=201)
    local_stack.settle()
    newest_first = [e["export_id"] for e in api("GET", "/exports?limit=500")["items"]]
    assert len(newest_first) == RECEIPTS

    open_page(page, local_stack, organisation)
    exports = page.locator("section#exports")
    rows = exports.locator("tr[data-export-id]")
    expect(rows).to_have_count(100)
    more = exports.get_by_role("button", name="Show more")
    expect(exports).to_contain_text("The latest 100 exports shown.")
    shoot(page, "1-latest-100")

    more.focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(RECEIPTS)
    assert rows.evaluate_all("rows => rows.map((r) => r.dataset.exportId)") == newest_first
    expect(more).to_have_count(0)  # the list is all shown: focus stays at its end, which says so
    expect(exports.locator('[data-role="all-shown"]')).to_be_focused()
    expect(exports.locator('[data-role="all-shown"]')).to_have_text(f"All {RECEIPTS} exports shown.")
    expect(page.locator("#announcer")).to_have_text("5 more exports shown: that is all of them.")
    shoot(page, "2-all-shown")

    exports.get_by_role("button", name="Refresh list").click()  # read again: as many as were shown
    expect(exports.get_by_role("button", name="Refresh list")).to_be_enabled()
    expect(rows).to_have_count(RECEIPTS)
    expect(more).to_have_count(0)
