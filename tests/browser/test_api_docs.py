"""The API docs (Swagger UI at /docs) as a newcomer uses them after `make run`: authorize with the printed
token, then try a route from the page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import LocalStack, Screenshots

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_available fixture skips every test here (and fails them in CI)
    expect = None

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_swagger_ui_authorizes_with_the_token_and_tries_a_route(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    page.goto(f"{local_stack.url}/docs")
    page.locator("button.authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator("#auth-bearer-value").fill(local_stack.token("docs-org"))
    dialog.get_by_role("button", name="Apply credentials").click()
    dialog.get_by_role("button", name="Close").click()

    operation = page.locator("#operations-default-me_me_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".responses-table.live-responses-table")
    expect(answer.locator("tbody .response-col_status")).to_have_text("200", timeout=20_000)
    expect(answer).to_contain_text('"organisation_id": "docs-org"')
    shoot(page, "tried-me")
