"""Settings -> Integrations probed as a demanding user would: the API refusing or down (4xx, 503) while the
page is in use, answers that arrive out of order, money shown exactly, the popup's end by keyboard, and the
exports list at phone width. Where the state is hard to reach through the sandboxes (a 503 at the right
moment, a margin beyond a float's precision), the page's own requests are answered by Playwright."""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.conftest import PHONE, LocalStack, Screenshots, serious_violations
from tests.browser.test_books_page import PASSWORD, connect_xero, xero_organisations
from tests.browser.test_integrations_page import card, new_organisation, open_page, sign_in

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_available fixture skips every test here (and fails them in CI)
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page, Route, ViewportSize

pytestmark = pytest.mark.browser

CONNECTED = [
    {
        "provider": "qbo",
        "provider_label": "QuickBooks Online",
        "status": "connected",
        "company_name": "Probe Manufacturing",
        "tenant_id": "9130",
        "connected_at": "2026-11-01T10:00:00+00:00",
    },
    {"provider": "xero", "provider_label": "Xero", "status": "not_connected"},
]
# a promise that settles after twenty turns of the page's event loop: what a response already received does to
# the page has been done by then
TWENTY_TURNS = (
    "() => new Promise((done) => { let n = 0; const turn = () => (++n > 20 ? done() : setTimeout(turn)); "
    "turn(); })"
)
PHONE_SIZE: ViewportSize = {"width": PHONE["width"], "height": PHONE["height"]}
BUSY = {"error": "ServiceUnavailable", "message": "the service is busy; try again shortly"}


EXPORTS = re.compile(r".*/exports(\?[^/]*)?$")  # GET /exports, whatever page it asks for


def one_page(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A list's answer holding all of ``items`` (GET /exports, GET /products)."""
    return {"items": items, "next_cursor": None}


def answer(route: Route, body: Any, status: int = 200) -> None:
    route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


def open_connected(page: Page, stack: LocalStack) -> None:
    """The page of a fresh organisation, shown as connected to QuickBooks (its GET /integrations answered
    here; every other request reaches the local stack unless a test answers it)."""
    page.route(
        re.compile(r".*/integrations$"),
        lambda route: answer(route, CONNECTED) if route.request.method == "GET" else route.continue_(),
    )
    open_page(page, stack, f"probe-{uuid.uuid4().hex[:8]}")
    expect(card(page, "qbo")).to_have_attribute("data-status", "connected")


def csv_file(name: str, text: str) -> FilePayload:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


def failed_export(export_id: str, record_id: str, last_error: str) -> dict[str, Any]:
    return {
        "export_id": export_id,
        "kind": "receipt",
        "record_id": record_id,
        "status": "failed",
        "provider": "qbo",
        "attempts": 1,
        "last_error": last_error,
        "happened_at": "2026-11-20T09:00:00Z",
        "created_at": "2026-11-20T09:00:00Z",
        "updated_at": "2026-11-20T09:05:00Z",
    }


def test_refresh_list_says_when_the_exports_could_not_be_read(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """The list read, then Refresh list while the API answers 503: the person is told, not left looking at
    the old list as if it were current; a refresh that works again clears the message."""
    down = {"now": False}
    listed = [failed_export("e-1", "R-1", "QuickBooks refused it: the account is inactive")]
    requests: list[str] = []

    def exports(route: Route) -> None:
        requests.append(route.request.method)
        answer(route, BUSY, 503) if down["now"] else answer(route, one_page(listed))

    page.route(EXPORTS, exports)
    open_connected(page, local_stack)
    section = page.locator("section#exports")
    expect(section.locator('tr[data-export-id="e-1"]')).to_be_visible()

    down["now"] = True
    before = len(requests)
    section.get_by_role("button", name="Refresh list").dblclick()
    problem = section.get_by_role("alert")
    expect(problem).to_contain_text("could not be refreshed: the service is busy; try again shortly")
    expect(section.get_by_role("button", name="Refresh list")).to_be_enabled()
    assert len(requests) - before == 1, "a double-click read the list twice"
    shoot(page, "1-refresh-refused")

    down["now"] = False
    section.get_by_role("button", name="Refresh list").click()
    expect(problem).to_be_hidden()
    expect(section.locator('tr[data-export-id="e-1"]')).to_be_visible()


def test_a_refused_retry_says_why_once_and_a_missing_day_is_marked_on_its_field(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """A receipt refused for QuickBooks' closing date: Retry refused twice shows one reason, not two; "Retry
    on that day" without a day says so on the date field and moves focus there; the controls pass axe (each
    button's name holds the words it shows, for speech input)."""
    locked = failed_export("e-7", "R-7", "QuickBooks refused it: the date is on or before the closing date")
    page.route(EXPORTS, lambda route: answer(route, one_page([locked])))
    retried: list[str] = []

    def refuse(route: Route) -> None:
        retried.append(route.request.url)
        answer(route, {"error": "Conflict", "message": "the books are still closed on that date"}, 409)

    page.route(re.compile(r".*/exports/e-7/retry.*"), refuse)
    open_connected(page, local_stack)
    row = page.locator('section#exports tr[data-export-id="e-7"]')
    expect(row).to_be_visible()

    retry = row.get_by_role("button", name="Retry receipt R-7")
    for _ in (1, 2):
        with page.expect_response(re.compile(r".*/exports/e-7/retry")):
            retry.click()
        expect(retry).to_be_enabled()
        expect(row.get_by_role("alert")).to_have_count(1)
        expect(row.get_by_role("alert")).to_have_text("the books are still closed on that date")
        expect(retry).to_be_focused()
    assert len(retried) == 2

    row.get_by_role("button", name="Retry on that day").click()
    day = row.get_by_label("or post on")
    expect(day).to_be_focused()
    expect(day).to_have_attribute("aria-invalid", "true")
    expect(row.get_by_role("alert")).to_have_count(1)
    expect(row.get_by_role("alert")).to_have_text("Choose the day to post it on first.")
    expect(day).to_have_accessible_description("Choose the day to post it on first.")
    assert len(retried) == 2, "a retry without its day reached the API"
    shoot(page, "1-retry-refused")

    assert serious_violations(page) == []


def margin_figures(revenue: str, cogs: str, margin: str, pct: str) -> dict[str, Any]:
    return {
        "revenue": revenue,
        "cogs": cogs,
        "uncosted": "0",
        "incomplete": False,
        "margin": margin,
        "margin_pct": pct,
    }


TRACKED = [
    {
        "provider": "qbo",
        "enabled": True,
        "start_date": "2026-11-01",
        "time_zone": "America/Los_Angeles",
        "pulling": False,
        "stalled": False,
        "last_pull": {"at": "2026-12-01T10:00:00Z", "ok": True, "read": 3, "stored": 3},
    }
]
BY_PRODUCT = {
    "home_currency": "USD",
    "totals": margin_figures("20.00", "12.50", "7.50", "37.50"),
    "groups": [
        {"key": "p-1", "label": "Wall bracket", "figures": margin_figures("20.00", "12.50", "7.50", "37.50")}
    ],
    "notes": [],
}


def test_margins_say_when_another_grouping_or_the_csv_could_not_be_read(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """Margins by product shown; then the API is down: choosing Month says so instead of leaving the
    product figures under "Month", and Download CSV says why nothing downloaded."""
    down = {"now": False}
    page.route(re.compile(r".*/sales/status$"), lambda route: answer(route, TRACKED))
    page.route(
        re.compile(r".*/margins\?.*"),
        lambda route: answer(route, BUSY, 503) if down["now"] else answer(route, BY_PRODUCT),
    )
    page.route(re.compile(r".*/margins/export\?.*"), lambda route: answer(route, BUSY, 503))
    open_connected(page, local_stack)
    sales = page.locator("section#sales")
    expect(sales.locator("tr[data-total]")).to_be_visible()

    sales.get_by_role("link", name="Download CSV").click()
    expect(sales.locator('[data-role="download-problem"]')).to_have_text(
        "The CSV could not be downloaded: the service is busy; try again shortly"
    )

    down["now"] = True
    sales.get_by_label("Margins by").select_option("period")
    expect(sales.locator('[data-role="margins"]').get_by_role("alert")).to_have_text(
        "The margins could not be read: the service is busy; try again shortly"
    )
    expect(sales.locator('[data-role="margins"] table')).to_have_count(0)  # no product figures under "Month"
    shoot(page, "1-margins-refused")


def test_margins_show_each_amount_exactly_as_money(page: Page, local_stack: LocalStack) -> None:
    """Amounts arrive as decimal strings: the table shows each with its cents ("0.00", not "0"; "1.50", not
    "1.5") and every digit, and the chart's words for screen readers say the same amounts, never a binary
    float's rounding of them (1.505 is not 1.50)."""
    report = {
        "home_currency": "USD",
        "totals": margin_figures("90071992547421.005", "10.00", "90071992547411.005", "99.99"),
        "groups": [
            {
                "key": "p-1",
                "label": "Wall bracket",
                "figures": margin_figures("90071992547419.5", "10", "90071992547409.5", "99.99"),
            },
            {"key": "p-2", "label": "Shelf", "figures": margin_figures("1.505", "0", "1.505", "100")},
        ],
        "notes": [],
    }
    page.route(re.compile(r".*/sales/status$"), lambda route: answer(route, TRACKED))
    page.route(re.compile(r".*/margins\?.*"), lambda route: answer(route, report))
    open_connected(page, local_stack)
    sales = page.locator("section#sales")
    bracket = sales.locator("tbody tr").filter(has_text="Wall bracket")
    expect(bracket.locator("td.number")).to_have_text(
        ["90071992547419.50", "10.00", "90071992547409.50", "99.99%"]
    )
    shelf = sales.locator("tbody tr").filter(has_text="Shelf")
    expect(shelf.locator("td.number")).to_have_text(["1.505", "0.00", "1.505", "100%"])
    expect(sales.locator('[data-role="margin-chart"]')).to_have_attribute(
        "aria-label", "Margin by product (USD): Wall bracket 90071992547409.50, Shelf 1.505"
    )


def test_margins_word_units_given_back_apart_from_units_not_costed(
    page: Page, local_stack: LocalStack
) -> None:
    """A negative uncosted quantity is a credit's units given back from a sale that found too little stock:
    said so, never as "-1 not costed"."""
    shelf = {**margin_figures("-4.00", "0.00", "", ""), "uncosted": "-1", "margin": None, "margin_pct": None}
    bracket = {
        **margin_figures("20.00", "12.50", "", ""),
        "uncosted": "2",
        "margin": None,
        "margin_pct": None,
    }
    report = {
        "home_currency": "USD",
        "totals": {
            **margin_figures("16.00", "12.50", "", ""),
            "uncosted": "1",
            "margin": None,
            "margin_pct": None,
        },
        "groups": [
            {"key": "p-1", "label": "Wall bracket", "figures": bracket},
            {"key": "p-2", "label": "Shelf", "figures": shelf},
        ],
        "notes": [],
    }
    page.route(re.compile(r".*/sales/status$"), lambda route: answer(route, TRACKED))
    page.route(re.compile(r".*/margins\?.*"), lambda route: answer(route, report))
    open_connected(page, local_stack)
    rows = page.locator("section#sales tbody tr")
    expect(rows.filter(has_text="Wall bracket").locator("td.number").nth(1)).to_contain_text(
        "2 not costed: too little stock on record"
    )
    given_back = rows.filter(has_text="Shelf").locator("td.number").nth(1)
    expect(given_back).to_contain_text("1 given back uncosted: their sale found too little stock on record")
    expect(given_back).not_to_contain_text("-1")


def test_focus_comes_back_to_connect_when_the_popup_ends_without_a_connection(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """By keyboard: Enter on Connect opens the sign-in window (the card's buttons wait, disabled); closing it,
    or declining in it, says so on the card and puts focus back on Connect, so Enter tries again, rather than
    leaving the person at the top of the page."""
    open_page(page, local_stack, new_organisation("probe-focus"))
    qbo = card(page, "qbo")
    connect = qbo.get_by_role("button", name="Connect QuickBooks Online")

    connect.focus()
    with page.expect_popup() as opened:
        page.keyboard.press("Enter")
    popup = opened.value
    expect(qbo).to_contain_text("Finish signing in to QuickBooks Online in the window that opened.")
    expect(connect).to_be_disabled()
    popup.close()
    expect(qbo.locator('[data-role="message"]')).to_contain_text("window was closed before the connection")
    expect(connect).to_be_focused()

    with page.expect_popup() as opened:
        page.keyboard.press("Enter")
    popup = opened.value
    sign_in(popup)
    popup.get_by_role("button", name="Deny").click()
    expect(qbo.locator('[data-role="message"]')).to_contain_text("declined")
    expect(qbo).to_have_attribute("data-status", "not_connected")
    expect(connect).to_be_focused()
    shoot(page, "1-declined")


def test_a_file_checked_before_another_never_shows_as_the_one_chosen(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """A person chooses a file, then at once a corrected one. The check of the first answers last: the page
    still shows the second file's check, and its Import imports what it says."""
    open_page(page, local_stack, new_organisation("probe-import"))
    section = page.locator("section#product-import")
    held: list[Route] = []

    def hold_the_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(r".*/products/import\?mode=dry_run$"), hold_the_first)
    chooser = section.locator('input[type="file"]')
    first = "SKU,Name\nF-1,First\nF-2,First\nF-3,First\n"
    second = "SKU,Name\nS-1,Second\n"
    chooser.set_input_files(files=[csv_file("first.csv", first)])
    for _ in range(100):  # until the first check's request is held here
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the first file was never checked"
    chooser.set_input_files(files=[csv_file("second.csv", second)])
    summary = section.locator('[data-role="summary"]')
    expect(summary).to_contain_text("1 row is ready to import")
    with page.expect_response(re.compile(r".*/products/import\?mode=dry_run$")) as late:
        held[0].continue_()
    assert late.value.ok
    late.value.finished()  # its body has reached the page; a few turns of the page's event loop to read it
    page.evaluate(TWENTY_TURNS)
    expect(section.get_by_role("button", name="Import 3 products")).to_have_count(0)
    expect(summary).to_contain_text("1 row is ready to import")
    expect(section.locator('[data-role="counts"]')).to_have_text(
        "1 row read; an import would create 1 product."
    )
    shoot(page, "1-second-file")

    section.get_by_role("button", name="Import 1 product").click()
    expect(section.locator('[data-role="apply-status"]')).to_have_text("Imported: 1 product new.")


def test_a_long_refusal_does_not_push_retry_off_a_phone_screen(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """At phone width each export is a block of labelled lines; a provider's refusal holding a long unbroken
    word (a URL, an id) wraps within it, so the Retry button and the row's words stay on the screen."""
    refusal = (
        "QuickBooks refused it (6000): see https://quickbooks.example.com/app/journal?txnId="
        + "9" * 60
        + "&realm=9130 for the account that is inactive"
    )
    page.route(EXPORTS, lambda route: answer(route, one_page([failed_export("e-9", "R-9", refusal)])))
    page.set_viewport_size(PHONE_SIZE)
    open_connected(page, local_stack)
    row = page.locator('section#exports tr[data-export-id="e-9"]')
    expect(row).to_contain_text("6000")
    retry = row.get_by_role("button", name="Retry receipt R-9")
    retry.scroll_into_view_if_needed()
    box = retry.bounding_box()
    assert box is not None
    width = PHONE["width"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"Retry lies at {box}, off a {width} px screen"
    wrap = page.locator("section#exports .table-wrap")
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), "the exports table scrolls sideways"
    shoot(page, "1-long-refusal-phone")


def test_disconnect_on_its_way_cannot_be_sent_twice_and_a_refusal_is_shown(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """Disconnect confirmed: until the API answers, the card says it is disconnecting and no second disconnect
    can be confirmed; when the API is down (503) the card says so, stays connected, and focus is back on
    Disconnect to try again."""
    sent: list[Route] = []
    page.route(re.compile(r".*/integrations/qbo/disconnect$"), lambda route: sent.append(route))
    open_connected(page, local_stack)
    qbo = card(page, "qbo")
    dialog = page.locator("dialog#confirm")

    qbo.get_by_role("button", name="Disconnect").click()
    dialog.get_by_role("button", name="Disconnect QuickBooks Online").click()
    expect(qbo.get_by_role("button", name="Disconnecting…")).to_be_disabled()
    shoot(page, "1-disconnecting")
    qbo.get_by_role("button", name="Disconnecting…").click(force=True)  # a second press does nothing
    expect(dialog).to_be_hidden()
    for _ in range(100):
        if sent:
            break
        page.wait_for_timeout(50)
    assert len(sent) == 1

    answer(sent[0], BUSY, 503)
    expect(qbo.locator('[data-role="message"]')).to_have_text("the service is busy; try again shortly")
    expect(qbo).to_have_attribute("data-status", "connected")
    disconnect = qbo.get_by_role("button", name="Disconnect")
    expect(disconnect).to_be_enabled()
    expect(disconnect).to_be_focused()
    assert len(sent) == 1


def test_a_long_company_name_stays_readable_in_the_disconnect_confirmation_on_a_phone(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """The company name comes from the provider, and may be one long word: at phone width the confirmation
    of Disconnect shows all of it (wrapped), and neither it nor the card scrolls sideways."""
    name = "Northside" + "Fabrication" * 8 + "Pty"
    views = [dict(CONNECTED[0], company_name=name), CONNECTED[1]]
    page.route(
        re.compile(r".*/integrations$"),
        lambda route: answer(route, views) if route.request.method == "GET" else route.continue_(),
    )
    page.set_viewport_size(PHONE_SIZE)
    open_page(page, local_stack, new_organisation("probe-long-name"))
    qbo = card(page, "qbo")
    expect(qbo).to_contain_text(name)
    assert qbo.evaluate("c => c.scrollWidth <= c.clientWidth"), "the card scrolls sideways"
    qbo.get_by_role("button", name="Disconnect").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_contain_text(f"Partsemble stops posting to {name}")
    assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth"), "the confirmation scrolls sideways"
    shoot(page, "1-confirm-long-name-phone")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()


def test_a_connect_refused_because_the_other_system_was_connected_meanwhile_shows_it(
    page: Page, local_stack: LocalStack
) -> None:
    """The page was read with nothing connected; meanwhile a colleague connected Xero. Connect QuickBooks is
    refused (409, saying so): the cards are read again, so the page shows Xero connected, in agreement with
    the message, instead of both "Not connected" beside "connected to Xero"."""
    nothing = [dict(CONNECTED[0], status="not_connected", company_name=None), CONNECTED[1]]
    xero = dict(CONNECTED[1], status="connected", company_name="Harbour Fabrication", tenant_id="t-1")
    now = {"views": nothing}
    page.route(
        re.compile(r".*/integrations$"),
        lambda route: answer(route, now["views"]) if route.request.method == "GET" else route.continue_(),
    )
    refusal = "this organisation is connected to Xero; disconnect it before connecting QuickBooks Online"
    page.route(
        re.compile(r".*/integrations/qbo/connect$"),
        lambda route: answer(route, {"error": "Conflict", "message": refusal}, 409),
    )
    open_page(page, local_stack, new_organisation("probe-meanwhile"))
    expect(card(page, "xero")).to_have_attribute("data-status", "not_connected")
    now["views"] = [nothing[0], xero]
    card(page, "qbo").get_by_role("button", name="Connect QuickBooks Online").click()
    expect(card(page, "qbo").locator('[data-role="message"]')).to_have_text(refusal)
    expect(card(page, "xero")).to_have_attribute("data-status", "connected")
    expect(card(page, "xero")).to_contain_text("Harbour Fabrication")


def test_the_margins_shown_are_those_of_the_grouping_chosen_last(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """Month chosen, then Product at once; the months' answer comes last. The page still shows the margins by
    product, as the list says, not the months' figures under it."""
    by_month = {
        "home_currency": "USD",
        "totals": margin_figures("20.00", "12.50", "7.50", "37.50"),
        "groups": [
            {
                "key": "2026-11",
                "label": "Nov 2026",
                "figures": margin_figures("20.00", "12.50", "7.50", "37.50"),
            }
        ],
        "notes": [],
    }
    held: list[Route] = []

    def margins(route: Route) -> None:
        if "group=period" in route.request.url:
            held.append(route)
        else:
            answer(route, BY_PRODUCT)

    page.route(re.compile(r".*/sales/status$"), lambda route: answer(route, TRACKED))
    page.route(re.compile(r".*/margins\?.*"), margins)
    open_connected(page, local_stack)
    sales = page.locator("section#sales")
    grouping = sales.get_by_label("Margins by")
    expect(sales.locator("tbody tr").first).to_contain_text("Wall bracket")

    grouping.select_option("period")
    for _ in range(100):  # until the months' request is held here
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the margins by month were never asked for"
    grouping.select_option("product")
    expect(sales.locator("table caption")).to_have_text("Margins by product")
    with page.expect_response(re.compile(r".*/margins\?group=period")) as late:
        answer(held[0], by_month)
    late.value.finished()
    page.evaluate(TWENTY_TURNS)
    expect(sales.locator("table caption")).to_have_text("Margins by product")
    expect(sales.locator("tbody tr").first).to_contain_text("Wall bracket")
    expect(grouping).to_have_value("product")
    shoot(page, "1-product-chosen-last")


def test_an_expired_connection_can_be_switched_to_another_organisation_from_its_card(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """Xero organisation A is connected, then its connection is removed in Xero: the card says to reconnect.
    The person reconnects choosing organisation B instead: refused, saying to switch explicitly; the card
    offers that switch (before: only Disconnect, then a switch from the disconnected card); it connects B."""
    (first, _), username = xero_organisations(local_stack, 2)
    organisation = new_organisation("probe-expired-switch")
    open_page(page, local_stack, organisation)
    tag = username.removeprefix("books-").removesuffix("@partsemble.test")
    name_a, name_b = f"Books {tag} Pty Ltd", f"Books {tag}-2 Pty Ltd"
    connect_xero(page, username, name_a)
    removed = httpx.post(f"{local_stack.xero_url}/_admin/organisations/{first}/disconnect", timeout=10)
    assert removed.status_code == 200, removed.text
    local_stack.fire_schedule("TokenRefreshFunction")
    page.reload()
    xero = card(page, "xero")
    expect(xero).to_have_attribute("data-status", "expired")

    with page.expect_popup() as opened:
        xero.get_by_role("button", name="Reconnect").click()
    popup = opened.value
    popup.locator('input[type="text"]').fill(username)
    popup.locator('input[type="password"]').fill(PASSWORD)
    popup.locator('button[type="submit"]').click()
    popup.get_by_role("checkbox", name=name_b).check()
    popup.get_by_role("button", name="Allow access").click()
    expect(xero.locator('[data-role="message"]')).to_contain_text("switch companies explicitly")
    expect(xero).to_have_attribute("data-status", "expired")
    shoot(page, "1-reconnect-to-another-refused")

    connect_xero(page, username, name_b, switch=True)
    expect(xero).to_contain_text(name_b)
    shoot(page, "2-switched")


def test_a_retry_that_reads_the_list_again_clears_the_word_of_a_failed_refresh(
    page: Page, local_stack: LocalStack
) -> None:
    """Refresh list failed (503) and said so; then Retry works and the list is read again: the banner saying
    the list could not be refreshed goes, as the list on screen is now current."""
    down = {"now": False}
    listed = [failed_export("e-3", "R-3", "QuickBooks refused it: the account is inactive")]

    def exports(route: Route) -> None:
        answer(route, BUSY, 503) if down["now"] else answer(route, one_page(listed))

    page.route(EXPORTS, exports)
    page.route(re.compile(r".*/exports/e-3/retry$"), lambda route: answer(route, {"status": "pending"}, 202))
    open_connected(page, local_stack)
    section = page.locator("section#exports")
    expect(section.locator('tr[data-export-id="e-3"]')).to_be_visible()
    down["now"] = True
    section.get_by_role("button", name="Refresh list").click()
    banner = section.locator('[data-role="problem"]')
    expect(banner).to_contain_text("could not be refreshed")

    down["now"] = False
    listed[0] = dict(listed[0], status="pending", last_error=None)
    section.get_by_role("button", name="Retry receipt R-3").click()
    expect(section.locator('tr[data-export-id="e-3"]')).to_have_attribute("data-status", "pending")
    expect(banner).to_be_hidden()


def test_connection_status_that_could_not_be_checked_again_says_so(
    page: Page, local_stack: LocalStack
) -> None:
    """The page re-reads the connections when the person comes back to its tab (and every minute). When that
    read fails (503), the cards stay as last read and the page says they could not be checked again, rather
    than presenting them as current; the next read that works clears it."""
    down = {"now": False}

    def integrations(route: Route) -> None:
        if route.request.method != "GET":
            route.continue_()
        elif down["now"]:
            answer(route, BUSY, 503)
        else:
            answer(route, CONNECTED)

    page.route(re.compile(r".*/integrations$"), integrations)
    open_page(page, local_stack, new_organisation("probe-stale"))
    qbo = card(page, "qbo")
    expect(qbo).to_have_attribute("data-status", "connected")
    stale = page.locator('section#connections [data-role="stale"]')
    expect(stale).to_be_hidden()

    down["now"] = True
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # back to the tab
    expect(stale).to_contain_text(
        "The connection status could not be checked again (the service is busy; try again shortly)"
    )
    expect(qbo).to_have_attribute("data-status", "connected")

    down["now"] = False
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(stale).to_be_hidden()


def test_a_switch_of_company_that_did_not_finish_offers_reconnect_and_says_why(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """A switch to another company whose process died part way: the connection is still connected but not
    used until a reconnect finishes it (every action is refused saying so). The card must not look healthy:
    it says it needs reconnecting, why, and offers Reconnect, which opens the sign-in."""
    hint = (
        "The switch to Probe Manufacturing did not finish, so nothing is sent to QuickBooks Online until it "
        "does. Click Reconnect and sign in to QuickBooks Online choosing Probe Manufacturing to finish it; "
        "pending exports will resume by themselves."
    )
    unfinished = [dict(CONNECTED[0], reconnect_hint=hint), CONNECTED[1]]
    page.route(
        re.compile(r".*/integrations$"),
        lambda route: answer(route, unfinished) if route.request.method == "GET" else route.continue_(),
    )
    open_page(page, local_stack, new_organisation("probe-switch-unfinished"))
    qbo = card(page, "qbo")
    expect(qbo.locator('[data-role="status"]')).to_have_text("Needs reconnecting")
    expect(qbo.locator('[data-role="hint"]')).to_have_text(hint)
    reconnect = qbo.get_by_role("button", name="Reconnect")
    expect(reconnect).to_be_visible()
    expect(qbo.get_by_role("button", name="Disconnect")).to_be_visible()
    shoot(page, "1-switch-unfinished")

    with page.expect_popup() as opened:
        reconnect.click()
    popup = opened.value
    expect(popup.locator('input[type="password"]')).to_be_visible()  # the provider's sign-in
    popup.close()


def test_a_sign_in_that_expired_meanwhile_is_said_in_words_where_it_was_met(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """The gateway answers an expired token with a bare 401 "Unauthorized": the page says once at the top to
    sign in again, and the button that met it says so too, never the gateway's word."""
    open_connected(page, local_stack)
    gone = {"message": "Unauthorized"}  # API Gateway's JWT authorizer, as the local gateway answers it
    page.route(re.compile(r".*/integrations/qbo/sync/items$"), lambda route: answer(route, gone, 401))
    sync = page.locator('section#export-settings [data-role="sync"]')
    sync.get_by_role("button", name="Sync items").click()
    expect(page.locator("#page-problem")).to_have_text(
        "Your Partsemble sign-in has expired. Reload the page to sign in again."
    )
    expect(sync).to_contain_text("Your sign-in has expired: reload the page.")
    expect(page.locator("main")).not_to_contain_text("Unauthorized")
    shoot(page, "signed-out")


def test_retry_keeps_its_word_whole_beside_a_long_refusal_at_desktop_width(
    page: Page, local_stack: LocalStack, shoot: Screenshots
) -> None:
    """At desktop width the exports table gives the Reason column its room; the Action column still keeps the
    Retry button's word whole ("Ret" over "ry" read as two words), however long the refusal beside it."""
    refusal = (
        "no export settings for QuickBooks Online: choose the accounts in Settings -> Integrations, "
        "then retry"
    )
    exports = [failed_export(f"e-{n}", f"RCV-B514F9586F4{n}", refusal) for n in range(3)]
    page.route(EXPORTS, lambda route: answer(route, one_page(exports)))
    open_connected(page, local_stack)
    retry = page.locator('section#exports tr[data-export-id="e-0"]').get_by_role("button", name="Retry")
    expect(retry).to_have_text("Retry")
    lines = retry.evaluate(  # one rectangle per line the button's text is laid out on
        "b => { const text = document.createRange(); text.selectNodeContents(b); "
        "return text.getClientRects().length; }"
    )
    shoot(page, "1-retry-desktop")
    assert lines == 1, f"the Retry button's word is broken over {lines} lines"


def test_a_disconnected_xero_card_offers_a_different_organisation_in_xeros_word(
    page: Page, local_stack: LocalStack
) -> None:
    """Xero calls what it connects an organisation, and the card names it so ("Organisation"): its switch
    button and confirmation say organisation too, not QuickBooks' "company"."""
    disconnected = [
        {"provider": "qbo", "provider_label": "QuickBooks Online", "status": "not_connected"},
        {
            "provider": "xero",
            "provider_label": "Xero",
            "status": "disconnected",
            "company_name": "Partsemble Demo (AU)",
            "disconnected_at": "2026-11-01T10:00:00+00:00",
        },
    ]
    page.route(re.compile(r".*/integrations$"), lambda route: answer(route, disconnected))
    open_page(page, local_stack, f"probe-{uuid.uuid4().hex[:8]}")
    xero = card(page, "xero")
    expect(xero).to_contain_text("Organisation")
    xero.get_by_role("button", name="Connect a different organisation").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog.get_by_role("heading")).to_have_text("Connect a different organisation?")
    dialog.get_by_role("button", name="Choose another organisation").wait_for()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).not_to_be_visible()


def test_an_export_queued_again_words_the_refusal_as_its_last_attempts(
    page: Page, local_stack: LocalStack
) -> None:
    """A failed export retried is queued with its refusal still in `last_error`: beside "Queued", the row says
    that refusal was the last attempt's, not why it is queued now (the settings it asked for may be saved)."""
    refusal = "no export settings for QuickBooks Online: choose the accounts in Settings -> Integrations"
    queued = dict(failed_export("e-q", "R-Q", refusal), status="pending", attempts=2)
    page.route(EXPORTS, lambda route: answer(route, one_page([queued, failed_export("e-f", "R-F", refusal)])))
    open_connected(page, local_stack)
    rows = page.locator("section#exports")
    expect(rows.locator('tr[data-export-id="e-q"] td[data-label="Reason"]')).to_have_text(
        f"Last attempt: {refusal}"
    )
    expect(rows.locator('tr[data-export-id="e-f"] td[data-label="Reason"]')).to_have_text(refusal)


def test_the_books_check_in_journals_mode_shows_the_notes_under_its_accounts(
    page: Page, local_stack: LocalStack
) -> None:
    """The books check's notes say what the table cannot (goods sold without stock, whose cost is not posted
    until their receipts are recorded; which year the income accounts cover): shown in journals mode too, not
    only in QuickBooks' inventory mode."""
    sold_short = (
        "Sold without stock, so no cost of goods sold is posted for them (the margins show them uncosted): "
        "62 of FG-WB-20 Wall Bracket 20mm (the first on 2026-10-27). Record the receipts or builds they came "
        "from, dated before those sales: the next true-up posts their cost."
    )
    year = "Income and expense accounts are compared for the financial year from 2026-01-01."
    books = {
        "provider": "qbo",
        "as_of": "2026-12-06",
        "mode": "journals",
        "status": "balanced",
        "accounts": [
            {
                "account_id": "1",
                "code": "1300",
                "name": "Inventory Asset",
                "roles": ["receiving_debit"],
                "provider_balance": "11.05",
                "posted": "11.05",
                "subledger": "11.05",
                "difference": "0.00",
                "reasons": [],
                "unexplained": "0.00",
            },
            {
                "account_id": "5",
                "code": "310",
                "name": "Cost of Goods Sold",
                "roles": ["cogs"],
                "provider_balance": None,
                "posted": "0.00",
                "subledger": "318.75",
                "difference": "-318.75",
                "reasons": [  # the exact amount as the API gives it: shown with the digits that say something
                    {
                        "kind": "not_exported",
                        "amount": "-318.7500",
                        "note": "cost of goods sold for 2026-10-21 is not exported yet",
                    }
                ],
                "unexplained": "0.0000",
            },
        ],
        "items": [],
        "notes": [year, sold_short],
        "deleted": [],
    }
    page.route(
        re.compile(r".*/export-settings\?warnings=false$"), lambda route: answer(route, {"configured": True})
    )
    page.route(re.compile(r".*/reconciliation(\?.*)?$"), lambda route: answer(route, books))
    open_connected(page, local_stack)
    section = page.locator("section#reconciliation")
    expect(section.locator('tr[data-account="1300"]')).to_contain_text("11.05")
    expect(section.locator('tr[data-account="310"] li')).to_have_text(
        "Cost of goods sold for 21 Oct 2026 is not exported yet: -318.75"
    )
    notes = section.locator('[data-role="notes"] li')
    expect(notes).to_have_text([year, sold_short])


def test_a_books_check_day_out_of_range_is_marked_on_its_field_not_sent(
    page: Page, local_stack: LocalStack
) -> None:
    """The date field holds today at most, and 10 years back at least (the API's bounds): a day typed beyond
    either is said on the field, which keeps focus, and never sent (the API's refusal read "Partsemble can't
    check the books yet: invalid request: query.as_of: ..." in the verdict's place)."""
    asked: list[str] = []
    page.route(
        re.compile(r".*/export-settings\?warnings=false$"), lambda route: answer(route, {"configured": True})
    )

    def books(route: Route) -> None:
        asked.append(route.request.url)
        answer(route, {"provider": "qbo", "as_of": "2026-12-06", "mode": "journals", "status": "balanced"})

    page.route(re.compile(r".*/reconciliation(\?.*)?$"), books)
    open_connected(page, local_stack)
    section = page.locator("section#reconciliation")
    day = section.get_by_label("Balances at the end of")
    expect(section.locator('[data-role="verdict"]')).to_contain_text("Balanced")
    error = section.locator('[data-role="error"]')
    for typed, said in (
        ("2099-01-31", r"^Choose \d{1,2} \w{3} \d{4} or an earlier day\.$"),
        ("2000-01-31", r"^Choose \d{1,2} \w{3} \d{4} or a later day: Partsemble checks the last 10 years\.$"),
    ):
        day.fill(typed)
        section.get_by_role("button", name="Check the books").click()
        expect(error).to_have_text(re.compile(said))
        expect(day).to_have_attribute("aria-invalid", "true")
        expect(day).to_be_focused()
    assert not [url for url in asked if "as_of=" in url], asked


def test_margins_by_document_say_which_are_voided_and_what_the_figures_leave_out(
    page: Page, local_stack: LocalStack
) -> None:
    """A voided invoice stays listed at 0.00: its row says it is voided. A document's lines that name no
    Partsemble product, and a draft not counted at all, are said under the table (the API's `issues` and
    `excluded`), not left for the person to wonder at. A quantity reads as a person writes it (6, not 6.0)."""
    sale = {**margin_figures("234.36", "0.00", "", ""), "uncosted": "6.0", "margin": None, "margin_pct": None}
    voided = {
        "kind": "invoice",
        "number": "1004",
        "date": "2026-10-14",
        "status": "voided",
        "figures": margin_figures("0", "0.00", "0.00", ""),
        "issues": ["1 line(s) name no Partsemble product: kept, shown as unmapped, not costed"],
    }
    report = {
        "home_currency": "USD",
        "totals": sale,
        "documents": [
            {"kind": "invoice", "number": "1003", "date": "2026-10-06", "status": "active", "figures": sale},
            voided,
        ],
        "groups": [],
        "excluded": [{"document_id": "xero:Invoice:1", "number": "1007", "reason": "a draft: not a sale"}],
        "notes": [],
    }
    page.route(re.compile(r".*/sales/status$"), lambda route: answer(route, TRACKED))
    page.route(re.compile(r".*/margins\?.*"), lambda route: answer(route, report))
    open_connected(page, local_stack)
    sales = page.locator("section#sales")
    sales.get_by_label("Margins by").select_option("document")
    rows = sales.locator("tbody tr")
    expect(rows.first.locator("td").first).to_have_text("Invoice 1003")
    # Xero writes quantities as 6.0: a person reads 6
    not_costed = rows.first.locator('td.number [class~="problem"]')
    expect(not_costed).to_have_text("6 not costed: too little stock on record")
    expect(rows.nth(1).locator("td").first).to_have_text("Invoice 1004 (voided)")
    expect(sales.locator('[data-role="margin-notes"] li')).to_have_text(
        [
            "Invoice 1004: 1 line(s) name no Partsemble product: kept, shown as unmapped, not costed",
            "1007 is not counted: a draft: not a sale",
        ]
    )


def test_a_sync_that_finds_the_connection_ended_shows_reconnect_on_its_card_at_once(
    page: Page, local_stack: LocalStack
) -> None:
    """QuickBooks stopped accepting the connection (revoked there) since the page was read: Sync items is
    refused (409 AuthExpired). The card says so at once, with Reconnect, instead of "Connected" and "Active"
    until the next reload; the button's words say what to do, not the provider's error code."""
    ended = {"read": False}
    expired = [dict(CONNECTED[0], status="expired"), CONNECTED[1]]
    page.route(
        re.compile(r".*/integrations$"),
        lambda route: answer(route, expired if ended["read"] else CONNECTED),
    )

    def refused(route: Route) -> None:
        ended["read"] = True
        message = "qbo: the provider no longer accepts this connection (invalid_grant); reconnect"
        answer(route, {"error": "AuthExpired", "message": message}, 409)

    page.route(re.compile(r".*/integrations/qbo/sync/items$"), refused)
    open_page(page, local_stack, f"probe-{uuid.uuid4().hex[:8]}")
    qbo = card(page, "qbo")
    expect(qbo).to_have_attribute("data-status", "connected")
    sync = page.locator('section#export-settings [data-role="sync"]')
    sync.get_by_role("button", name="Sync items").click()
    expect(sync.locator(".form-status")).to_have_text(
        "QuickBooks Online no longer accepts Partsemble's access: reconnect it on its card above."
    )
    expect(qbo).to_have_attribute("data-status", "expired")
    expect(qbo.get_by_role("button", name="Reconnect")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("invalid_grant")


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "said"),
    [
        (
            503,
            "ProviderUnavailable",
            "5",
            "QuickBooks Online is not answering right now: try again in 5 seconds.",
        ),
        (
            429,
            "RateLimited",
            "42",
            "QuickBooks Online asks Partsemble to slow down (its rate limit): try again in 42 seconds.",
        ),
    ],
)
def test_a_provider_down_or_throttling_is_said_in_its_name_with_when_to_try_again(
    page: Page, local_stack: LocalStack, status: int, code: str, retry_after: str, said: str
) -> None:
    """The API answers QuickBooks' outage or rate limit with its code and Retry-After: the button's words name
    QuickBooks and the wait, not "qbo: the provider is unavailable (HTTP 503)"."""
    message = {"ProviderUnavailable": "qbo: the provider is unavailable (HTTP 503)"}.get(
        code, "qbo: the provider's rate limit was reached"
    )
    page.route(
        re.compile(r".*/integrations/qbo/sync/items$"),
        lambda route: route.fulfill(
            status=status,
            content_type="application/json",
            headers={"Retry-After": retry_after},
            body=json.dumps({"error": code, "message": message}),
        ),
    )
    open_connected(page, local_stack)
    sync = page.locator('section#export-settings [data-role="sync"]')
    sync.get_by_role("button", name="Sync items").click()
    expect(sync.locator(".form-status")).to_have_text(said)


def test_sales_pulled_that_name_no_product_are_not_called_no_sales(
    page: Page, local_stack: LocalStack
) -> None:
    """Sales were pulled (the last pull stored 3), but none of their lines names an item linked to a
    Partsemble product: the margins by product are empty, and say why and what to do, not "No sales pulled
    yet." under "3 new or changed sales documents pulled"."""
    empty = {
        "home_currency": "USD",
        "totals": margin_figures("0", "0.00", "0.00", ""),
        "groups": [],
        "notes": [],
    }
    page.route(re.compile(r".*/sales/status$"), lambda route: answer(route, TRACKED))
    page.route(re.compile(r".*/margins\?.*"), lambda route: answer(route, empty))
    open_connected(page, local_stack)
    margins = page.locator('section#sales [data-role="margins"]')
    expect(margins).to_have_text(
        "No sale pulled so far names a Partsemble product: link or import the items your sales name "
        "(Sync items, above), and their margins show here."
    )
