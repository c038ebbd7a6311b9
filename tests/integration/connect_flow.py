"""Helpers that drive a whole connect as the browser does: the app's POST, the consent, the callback."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from infra.local.gateway import GatewayResponse
from infra.sandboxes.consent import forms_of, walk_consent
from tests.conftest import Api, Sandboxes

DEMO_USER = ("demo@partsemble.test", "demo")


@dataclass
class Started:
    authorize_url: str
    cookie: str  # "name=value", as the browser would send it back


def start(api: Api, provider: str, organisation: str = "org-a", **body: object) -> Started:
    response = api.call(
        "POST", f"/integrations/{provider}/connect", organisation=organisation, json_body=body
    )
    assert response.status == 200, response.body
    set_cookie = next(c for c in response.cookies if c.startswith(f"__Secure-ps_oauth_{provider}="))
    return Started(response.json()["authorize_url"], set_cookie.split(";")[0])


def callback(api: Api, provider: str, params: dict[str, str], cookie: str | None) -> GatewayResponse:
    headers = {"cookie": cookie} if cookie else {}
    return api.call(
        "GET", f"/oauth/{provider}/callback?{urlencode(params)}", organisation=None, headers=headers
    )


@dataclass
class Landed:
    page: GatewayResponse
    cookie: str

    @property
    def text(self) -> str:
        return self.page.body.decode()


def connect(
    api: Api,
    sandboxes: Sandboxes,
    provider: str,
    organisation: str = "org-a",
    choose: list[str] | None = None,
    allow: bool = True,
    **body: object,
) -> Landed:
    """Connect as the browser does; returns the page the popup lands on (and the browser's cookie)."""
    started = start(api, provider, organisation, **body)
    with sandboxes.client() as browser:
        params = walk_consent(
            browser,
            started.authorize_url,
            username=DEMO_USER[0],
            password=DEMO_USER[1],
            choose=choose,
            allow=allow,
        )
    return Landed(callback(api, provider, params, started.cookie), started.cookie)


def pick_organisation(api: Api, landed: Landed, tenant_id: str, provider: str = "xero") -> GatewayResponse:
    """Submits the organisation choice form of the callback page."""
    form = forms_of(httpx.Response(200, text=landed.text))[0]
    body = urlencode({**{k: v[-1] for k, v in form.fields.items()}, "tenant_id": tenant_id}).encode()
    return api.call(
        "POST",
        f"/oauth/{provider}/callback",
        organisation=None,
        body=body,
        headers={"cookie": landed.cookie, "content-type": "application/x-www-form-urlencoded"},
    )
