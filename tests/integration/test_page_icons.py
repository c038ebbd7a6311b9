"""Every HTML page the service serves names its own icon inline, so a browser does not ask for /favicon.ico:
there the gateway answers 401 (its JWT check), a console error on /docs and in the OAuth popup. The page's
Content-Security-Policy, when it sends one, must allow that icon (``img-src data:``) or the browser blocks
it, another console error."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Api

ICON = re.compile(r"""<link\s+rel=["']icon["']\s+href=["']data:,["']\s*/?>""")


def _allows_data_images(csp: str | None) -> bool:
    """Whether a policy lets an ``<img>``-like ``data:`` load: ``img-src``, else ``default-src``, else all."""
    if csp is None:
        return True
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.split()}
    sources = directives.get("img-src", directives.get("default-src"))
    return sources is None or "data:" in sources


@pytest.mark.parametrize(
    "path",
    [
        "/",  # the Settings -> Integrations page
        "/docs",  # Swagger UI
        "/oauth/qbo/callback?error=access_denied&state=x.y",  # the popup's page (here: declined)
    ],
)
def test_each_html_page_names_an_inline_icon_its_policy_allows(api: Api, path: str) -> None:
    response = api.call("GET", path, organisation=None)
    headers = {k.lower(): v for k, v in response.headers.items()}
    assert headers["content-type"].startswith("text/html"), (response.status, headers)
    assert ICON.search(response.body.decode()), response.body[:300]
    assert _allows_data_images(headers.get("content-security-policy")), headers


def test_the_policy_check_can_fail() -> None:
    """The check above refuses a policy that blocks the icon, and accepts the ones that allow it."""
    assert not _allows_data_images("default-src 'none'; style-src 'unsafe-inline'")
    assert not _allows_data_images("default-src 'self' data:; img-src 'self'")
    assert _allows_data_images("default-src 'none'; img-src data:")
    assert _allows_data_images(None)
