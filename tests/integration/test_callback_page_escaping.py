"""The OAuth callback page embeds outside text (the company name, the provider's error_description) in its
markup and its script; planted markup stays text: it cannot close the script element or add an element."""

from __future__ import annotations

import json
import re

from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo_demo import DEMO_PASSWORD, DEMO_USERNAME
from shared.callback_page import script_json
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import DEMO_USER, callback, connect, start

PLANTED = "</script><script>alert(document.domain)</script><!-- <img src=x onerror=alert(1)> & \u2028\u2029"


def _message_of(page: str) -> dict[str, object]:
    """The one script element, its end tag the only one, and the message it posts."""
    assert page.count("<script") == 1 and page.count("</script>") == 1, page
    assert "<img" not in page and "<!--" not in page
    script = re.search(r"<script nonce=\"[^\"]+\">(.*?)</script>", page, re.DOTALL)
    assert script is not None
    literal = re.search(r"var m=(\{.*?\});if\(", script.group(1), re.DOTALL)
    assert literal is not None
    assert "\u2028" not in literal.group(1) and "\u2029" not in literal.group(1)
    message: dict[str, object] = json.loads(literal.group(1))
    return message


def test_a_company_name_with_markup_stays_text_in_the_page_and_the_message(
    api: Api, sandboxes: Sandboxes
) -> None:
    company = sandboxes.qbo.add_company(PLANTED, country="US", plan="Plus")
    sandboxes.qbo.add_user(DEMO_USERNAME, DEMO_PASSWORD, [company.realm_id])

    landed = connect(api, sandboxes, "qbo", choose=[company.realm_id])

    assert landed.page.status == 200
    message = _message_of(landed.text)
    assert message["status"] == "connected" and message["company_name"] == PLANTED
    assert "&lt;/script&gt;&lt;script&gt;alert(document.domain)" in landed.text  # shown as text


def test_an_error_description_with_markup_stays_text_in_the_page_and_the_message(
    api: Api, sandboxes: Sandboxes
) -> None:
    started = start(api, "qbo")
    with sandboxes.client() as browser:
        params = walk_consent(
            browser, started.authorize_url, username=DEMO_USER[0], password=DEMO_USER[1], allow=False
        )
    assert params.get("error")  # the provider's own refusal, made one whose description is shown
    params.update(error="server_error", error_description=PLANTED)

    page = callback(api, "qbo", params, started.cookie)

    assert page.status == 400
    message = _message_of(page.body.decode())
    assert message["status"] == "error" and PLANTED in str(message["message"])


def test_script_json_is_the_same_value_with_nothing_that_ends_a_script() -> None:
    value = {"name": PLANTED, "n": 1}
    literal = script_json(value)
    assert json.loads(literal) == value
    assert not set(literal) & {"<", ">", "&", "\u2028", "\u2029"}
