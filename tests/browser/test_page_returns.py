"""Coming back to something on the page: a sign-in window that went behind the page, a card's note after the
cards are read again, a product file chosen again once it was fixed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import LocalStack, Screenshots
from tests.browser.test_integrations_page import card, new_organisation, open_page
from tests.browser.test_probe_page import TWENTY_TURNS, answer, csv_file

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_available fixture skips every test here (and fails them in CI)
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

# the page reads the cards again whenever it becomes visible, as when a person comes back to the tab
READ_AGAIN = "() => document.dispatchEvent(new Event('visibilitychange'))"


def test_a_sign_in_window_gone_behind_the_page_can_be_shown_again_or_cancelled(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """While the card waits for the sign-in window (its Connect disabled), it offers the window again and a
    way out: Cancel closes the window, the card says so and Connect is back, with focus on it."""
    open_page(page, local_stack, new_organisation("returns-window"))
    qbo = card(page, "qbo")
    with page.expect_popup() as opened:
        qbo.get_by_role("button", name="Connect QuickBooks Online").click()
    popup = opened.value
    popup.wait_for_load_state()
    page.bring_to_front()  # the sign-in window is behind the page now
    expect(qbo.get_by_role("button", name="Connect QuickBooks Online")).to_be_disabled()
    show = qbo.get_by_role("button", name="Show the sign-in window")
    expect(show).to_be_enabled()
    shoot(page, "1-waiting")
    # headless Chromium moves no window in front of another (focus is emulated per page): what is checked is
    # that showing the window leaves the sign-in going, the window open and the card waiting for it
    show.click()
    assert not popup.is_closed()
    expect(qbo).to_contain_text("Finish signing in to QuickBooks Online in the window that opened.")

    qbo.get_by_role("button", name="Cancel sign-in").click()
    expect(qbo.locator('[data-role="message"]')).to_contain_text("window was closed before the connection")
    assert popup.is_closed()
    connect = qbo.get_by_role("button", name="Connect QuickBooks Online")
    expect(connect).to_be_enabled()
    expect(connect).to_be_focused()
    expect(qbo.get_by_role("button", name="Show the sign-in window")).to_have_count(0)


def test_a_cards_note_is_read_out_when_it_appears_not_again_at_each_reading(
    page: Page, local_stack: LocalStack
) -> None:
    """A refusal is read out once, through the page's live region, when it appears. The cards are drawn again
    whenever their status is read (every minute, on coming back to the tab, after a refusal): the note stays
    on the card as plain text, never a live region of its own, so no drawing reads it out again."""
    refusal = "this organisation is connected to Xero; disconnect it before connecting QuickBooks Online"
    page.route(
        re.compile(r".*/integrations/qbo/connect$"),
        lambda route: answer(route, {"error": "Conflict", "message": refusal}, 409),
    )
    open_page(page, local_stack, new_organisation("returns-note"))
    page.evaluate(
        "() => { window.said = []; new MutationObserver(() => { const t = announcer.textContent;"
        " if (t) window.said.push(t); }).observe(announcer, { childList: true, characterData: true,"
        " subtree: true }); }"
    )
    qbo = card(page, "qbo")
    with page.expect_popup():
        qbo.get_by_role("button", name="Connect QuickBooks Online").click()
    expect(page.locator("#announcer")).to_have_text(refusal)
    expect(qbo.locator('[data-role="message"]')).to_have_text(refusal)
    for _ in range(2):
        with page.expect_response(re.compile(r".*/integrations$")):
            page.evaluate(READ_AGAIN)
        page.evaluate(TWENTY_TURNS)
    expect(qbo.get_by_role("button", name="Connect QuickBooks Online")).to_be_enabled()
    expect(qbo.locator('[data-role="message"]')).to_have_text(refusal)
    assert page.evaluate("() => window.said").count(refusal) == 1
    expect(qbo.locator('[role="alert"], [role="status"], [aria-live]')).to_have_count(0)


def test_a_product_file_fixed_and_chosen_again_is_checked_again(page: Page, local_stack: LocalStack) -> None:
    """A person's file has an error; they fix it and choose the same file again. Browsers send no change for
    the file already chosen: the input is emptied as its picker opens, so the fixed file is checked. A
    picker dismissed without a choice keeps the file that was checked."""
    open_page(page, local_stack, new_organisation("returns-file"))
    section = page.locator("section#product-import")
    chooser = section.locator('input[type="file"]')
    summary = section.locator('[data-role="summary"]')

    with page.expect_file_chooser() as picked:
        chooser.click()
    picked.value.set_files(files=[csv_file("products.csv", "SKU,Name\nP-1,Bolt\n,Nut\n")])
    expect(summary).to_contain_text("1 row is ready to import; 1 row has errors")

    with page.expect_file_chooser() as picked:
        chooser.click()
    assert chooser.evaluate("input => input.value") == ""  # whatever is chosen now is a change
    picked.value.set_files(files=[csv_file("products.csv", "SKU,Name\nP-1,Bolt\nP-2,Nut\n")])
    expect(summary).to_contain_text("2 rows are ready to import.")

    with page.expect_file_chooser():
        chooser.click()
    chooser.evaluate("input => input.dispatchEvent(new Event('cancel'))")  # dismissed without a choice
    assert chooser.evaluate("input => input.files[0]?.name") == "products.csv"
    expect(section.get_by_role("button", name="Import 2 products")).to_be_enabled()
