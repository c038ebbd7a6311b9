"""Forged, tampered, expired, replayed and foreign-browser callbacks: each a specific 4xx, nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.sandboxes.consent import walk_consent
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import DEMO_USER, callback, connect, pick_organisation, start
from tests.integration.test_connect import status_of, xero_orgs


def _consent(sandboxes: Sandboxes, authorize_url: str) -> dict[str, str]:
    with sandboxes.client() as browser:
        return walk_consent(browser, authorize_url, username=DEMO_USER[0], password=DEMO_USER[1])


def _assert_refused(response: object, status: int, words: str, api: Api) -> None:
    assert response.status == status, response.body  # type: ignore[attr-defined]
    assert words in response.body.decode()  # type: ignore[attr-defined]
    assert status_of(api, "qbo")["status"] == "not_connected"


def test_forged_state_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url) | {"state": "made-up.signature"}
    _assert_refused(callback(api, "qbo", params, started.cookie), 400, "not one this service issued", api)


def test_a_state_or_choice_with_non_ascii_text_is_refused_not_a_500(api: Api, sandboxes: Sandboxes) -> None:
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url)
    nonce, _ = params["state"].split(".")
    for forged in (f"{nonce}.\u00e9t\u00e9", "\u00e9t\u00e9.\u00e9t\u00e9"):
        refused = callback(api, "qbo", params | {"state": forged}, started.cookie)
        _assert_refused(refused, 400, "not one this service issued", api)
    assert callback(api, "qbo", params, started.cookie).status == 200  # the real state is still good
    form = {"content-type": "application/x-www-form-urlencoded"}
    body = "choice=n.\u00e9&tenant_id=t".encode()
    chosen = api.call("POST", "/oauth/xero/callback", organisation=None, body=body, headers=form)
    assert chosen.status == 400, chosen.body


def test_tampered_state_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url)
    nonce, signature = params["state"].split(".")
    params["state"] = f"{nonce[:-1]}{'A' if nonce[-1] != 'A' else 'B'}.{signature}"
    _assert_refused(callback(api, "qbo", params, started.cookie), 400, "not one this service issued", api)


def test_replayed_state_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url)
    assert callback(api, "qbo", params, started.cookie).status == 200
    replay = callback(api, "qbo", params, started.cookie)
    assert replay.status == 400
    assert "already used" in replay.body.decode()


def test_state_from_another_browser_is_refused_and_left_for_the_browser_that_asked(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A forwarded link (no cookie, or a cookie of another connect) is refused without spending the state:
    whoever holds the link cannot cancel the flow of the person who started it."""
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url)
    _assert_refused(callback(api, "qbo", params, None), 400, "started in another browser", api)
    other = start(api, "qbo")  # a cookie this browser holds for another, unrelated connect
    _assert_refused(callback(api, "qbo", params, other.cookie), 400, "started in another browser", api)
    assert callback(api, "qbo", params, started.cookie).status == 200
    assert status_of(api, "qbo")["status"] == "connected"
    replay = callback(api, "qbo", params, other.cookie)  # spent now: a replay from anywhere finds nothing
    assert replay.status == 400 and "already used" in replay.body.decode()


def test_state_for_another_provider_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url)
    response = callback(api, "xero", params, started.cookie.replace("ps_oauth_qbo", "ps_oauth_xero"))
    assert response.status == 400


def test_expired_state_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    """The callback takes its time from the event (requestContext.timeEpoch): one API Gateway received 11
    minutes after the connect finds the state expired."""
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url)
    api.gateway.clock = lambda: datetime.now(UTC) + timedelta(minutes=11)
    _assert_refused(callback(api, "qbo", params, started.cookie), 400, "expired", api)


def test_state_issued_at_the_request_time_expires_from_it(api: Api, sandboxes: Sandboxes) -> None:
    """The API takes its time from the event (requestContext.timeEpoch): a connect API Gateway received 11
    minutes ago issued a state that has expired by now."""
    api.gateway.clock = lambda: datetime.now(UTC) - timedelta(minutes=11)
    started = start(api, "qbo")
    api.gateway.clock = lambda: datetime.now(UTC)
    params = _consent(sandboxes, started.authorize_url)
    _assert_refused(callback(api, "qbo", params, started.cookie), 400, "expired", api)


def test_callback_without_code_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url)
    del params["code"]
    _assert_refused(callback(api, "qbo", params, started.cookie), 400, "no authorization code", api)


def test_a_company_id_that_is_not_a_number_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    """A realmId of "<another company>/../<this one>" reached this company through the API's paths while the
    books and the shared-company check kept it under the other id."""
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url)
    params["realmId"] = f"9130350000000002/../{params['realmId']}"
    _assert_refused(callback(api, "qbo", params, started.cookie), 422, "realmId is not a number", api)


def test_a_consent_whose_company_check_fails_is_ended_at_the_provider(api: Api, sandboxes: Sandboxes) -> None:
    """The code was exchanged but the company could not be read: the page says so, and the consent is revoked
    rather than left live with nobody holding its tokens."""
    started = start(api, "qbo")
    params = _consent(sandboxes, started.authorize_url)
    sandboxes.qbo.inject("500", path_prefix=f"/v3/company/{params['realmId']}/companyinfo", count=10)
    landed = callback(api, "qbo", params, started.cookie)
    assert landed.status >= 400 and status_of(api, "qbo")["status"] == "not_connected"
    assert sandboxes.qbo.grants and all(grant.revoked for grant in sandboxes.qbo.grants)


def test_code_issued_for_another_redirect_uri_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    started = start(api, "qbo")
    url = started.authorize_url.replace("api.partsemble.test", "evil.example")
    sandboxes.qbo.register_app(
        "test-qbo-client",
        "test-qbo-secret",
        ["https://api.partsemble.test/oauth/qbo/callback", "https://evil.example/oauth/qbo/callback"],
    )
    params = _consent(sandboxes, url)
    _assert_refused(
        callback(api, "qbo", params, started.cookie), 400, "did not accept the authorization", api
    )


def test_callback_for_a_provider_not_configured_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    import json

    import boto3

    from shared.services import credentials

    boto3.client("secretsmanager").put_secret_value(
        SecretId=api.gateway.stack.physical("ProviderSecret"),
        SecretString=json.dumps({"qbo": {}, "xero": {}}),
    )
    credentials.clear()
    response = api.call("GET", "/oauth/qbo/callback?code=abc&state=x.y", organisation=None)
    assert response.status == 409
    assert "not configured" in response.body.decode()
    assert api.call("POST", "/integrations/qbo/connect", json_body={}).status == 409


def test_over_https_the_binding_cookie_is_secure_prefixed_and_scoped_to_the_callback(
    api: Api, sandboxes: Sandboxes
) -> None:
    from urllib.parse import parse_qs, urlsplit

    response = api.call("POST", "/integrations/qbo/connect", json_body={})  # the testbed's API is https
    [cookie] = [c for c in response.cookies if "ps_oauth_qbo=" in c]
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    assert name_value.startswith("__Secure-ps_oauth_qbo=")
    flags = {a.split("=")[0].lower(): a.partition("=")[2] for a in attributes}
    assert "secure" in flags and "httponly" in flags
    assert flags["path"] == "/oauth/qbo/callback" and flags["samesite"].lower() == "lax"

    state = parse_qs(urlsplit(response.json()["authorize_url"]).query)["state"][0]
    unprefixed = name_value.removeprefix("__Secure-")  # as a plain-http page could plant it: not the binding
    refused = callback(api, "qbo", {"state": state, "error": "access_denied"}, unprefixed)
    assert refused.status == 400 and "started in another browser" in refused.body.decode()

    response = api.call("POST", "/integrations/qbo/connect", json_body={})
    [cookie] = [c for c in response.cookies if "ps_oauth_qbo=" in c]
    state = parse_qs(urlsplit(response.json()["authorize_url"]).query)["state"][0]
    page = callback(api, "qbo", {"state": state, "error": "access_denied"}, cookie.split(";")[0])
    assert "you declined the connection" in page.body.decode()  # bound: the prefixed cookie was read
    [cleared] = page.cookies
    assert cleared.startswith("__Secure-ps_oauth_qbo=;") and "Secure" in cleared


def test_an_organisation_choice_that_is_not_utf8_is_a_400_and_the_choice_stays_usable(
    api: Api, sandboxes: Sandboxes
) -> None:
    orgs = xero_orgs(sandboxes)
    landed = connect(api, sandboxes, "xero", choose=list(orgs.values()))
    assert "Choose the Xero organisation" in landed.text
    form = {"cookie": landed.cookie, "content-type": "application/x-www-form-urlencoded"}
    garbled = api.call("POST", "/oauth/xero/callback", organisation=None, body=b"\xff\xfe%%%", headers=form)
    assert garbled.status == 400, garbled.body
    assert "not UTF-8" in garbled.body.decode()
    assert status_of(api, "xero")["status"] == "not_connected"
    chosen = pick_organisation(api, landed, orgs["Partsemble Demo (NZ)"])
    assert chosen.status == 200, chosen.body
    assert status_of(api, "xero")["company_name"] == "Partsemble Demo (NZ)"
