"""Connecting QBO and Xero through the real routes, consent pages and callback."""

from __future__ import annotations

import time
from typing import Any

import pytest

from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from shared.domain.connections import ProviderName
from tests.conftest import APP_ORIGIN, Api, Sandboxes
from tests.integration.connect_flow import DEMO_USER, callback, connect, pick_organisation, start


def status_of(api: Api, provider: str, organisation: str = "org-a") -> dict[str, Any]:
    views = api.call("GET", "/integrations", organisation=organisation).json()
    return next(v for v in views if v["provider"] == provider)


def xero_orgs(sandboxes: Sandboxes) -> dict[str, str]:
    return {o.name: o.tenant_id for o in sandboxes.xero.organisations.values()}


def test_qbo_connects_and_shows_company_and_token_health(api: Api, sandboxes: Sandboxes) -> None:
    landed = connect(api, sandboxes, "qbo")
    assert landed.page.status == 200
    assert landed.page.headers["content-type"].startswith("text/html")
    assert "Partsemble Demo Manufacturing (US)" in landed.text
    assert f'postMessage(m,"{APP_ORIGIN}")' in landed.text  # the result goes to the app's origin only
    view = status_of(api, "qbo")
    assert view["status"] == "connected"
    assert view["company_name"] == "Partsemble Demo Manufacturing (US)"
    assert view["tenant_id"] == DEMO_REALM_ID
    assert view["access_token_expires_at"] and view["refresh_token_expires_at"]
    assert view["refresh_token_hard_expires_at"]  # QBO's 5-year cap, asked for with the opt-in header
    assert view["reconnect_hint"] is None


def test_xero_consent_with_two_organisations_asks_which_one(api: Api, sandboxes: Sandboxes) -> None:
    orgs = xero_orgs(sandboxes)
    landed = connect(api, sandboxes, "xero", choose=list(orgs.values()))
    assert landed.page.status == 200
    assert "Choose the Xero organisation" in landed.text
    assert "Partsemble Demo (AU)" in landed.text and "Partsemble Demo (NZ)" in landed.text
    assert status_of(api, "xero")["status"] == "not_connected"  # never the first one silently

    chosen = pick_organisation(api, landed, orgs["Partsemble Demo (NZ)"])
    assert chosen.status == 200, chosen.body
    view = status_of(api, "xero")
    assert (view["status"], view["company_name"]) == ("connected", "Partsemble Demo (NZ)")
    assert view["tenant_id"] == orgs["Partsemble Demo (NZ)"]
    assert (
        pick_organisation(api, landed, orgs["Partsemble Demo (AU)"]).status == 400
    )  # the choice is single-use
    assert status_of(api, "xero")["company_name"] == "Partsemble Demo (NZ)"


def _grants() -> list[dict[str, Any]]:
    """Every stored consent (its sealed tokens), as the table holds them."""
    from boto3.dynamodb.conditions import Attr

    from shared.aws import table

    return list(
        table().meta.client.scan(TableName=table().name, FilterExpression=Attr("sk").eq("GRANT"))["Items"]
    )


def test_a_consent_waiting_for_a_choice_of_organisation_is_deleted_unless_one_is_chosen(
    api: Api, sandboxes: Sandboxes
) -> None:
    orgs = xero_orgs(sandboxes)
    landed = connect(api, sandboxes, "xero", choose=list(orgs.values()))
    (waiting,) = _grants()
    assert int(waiting["expires_at"]) > time.time() + 600  # the table's TTL deletes it if nobody chooses
    assert pick_organisation(api, landed, orgs["Partsemble Demo (NZ)"]).status == 200
    (kept,) = _grants()
    assert kept["grant_id"] == waiting["grant_id"] and "expires_at" not in kept


def test_an_organisation_that_was_not_offered_ends_the_choice_and_its_consent(
    api: Api, sandboxes: Sandboxes
) -> None:
    orgs = xero_orgs(sandboxes)
    landed = connect(api, sandboxes, "xero", choose=list(orgs.values()))
    refused = pick_organisation(api, landed, "00000000-0000-0000-0000-000000000000")
    assert refused.status == 400 and "start the connection again" in refused.body.decode()
    assert _grants() == []  # not left with live tokens that nothing uses
    assert status_of(api, "xero")["status"] == "not_connected"


def test_xero_consent_with_one_organisation_connects_directly(api: Api, sandboxes: Sandboxes) -> None:
    orgs = xero_orgs(sandboxes)
    landed = connect(api, sandboxes, "xero", choose=[orgs["Partsemble Demo (AU)"]])
    assert "Connected to Xero" in landed.text
    assert status_of(api, "xero")["company_name"] == "Partsemble Demo (AU)"


def test_declined_consent_says_so_and_stores_nothing(api: Api, sandboxes: Sandboxes) -> None:
    landed = connect(api, sandboxes, "qbo", allow=False)
    assert landed.page.status == 400
    assert "you declined the connection" in landed.text
    assert '"status": "error"' in landed.text
    assert status_of(api, "qbo")["status"] == "not_connected"


def test_connecting_the_other_provider_while_one_is_active_is_refused(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    response = api.call("POST", "/integrations/xero/connect", json_body={})
    assert response.status == 409
    assert "disconnect it before connecting Xero" in response.json()["message"]


def test_organisations_see_only_their_own_connection(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo", organisation="org-a")
    assert status_of(api, "qbo", organisation="org-b")["status"] == "not_connected"
    refused = api.call("POST", "/integrations/qbo/disconnect", organisation="org-b")
    assert refused.status == 404
    assert status_of(api, "qbo", organisation="org-a")["status"] == "connected"


def test_two_organisations_connected_to_one_company_are_each_told(api: Api, sandboxes: Sandboxes) -> None:
    """Both would post into one company's books: each connection says so, for as long as both are in use."""
    connect(api, sandboxes, "qbo", organisation="org-a")
    assert status_of(api, "qbo", organisation="org-a")["other_organisations"] == 0
    connect(api, sandboxes, "qbo", organisation="org-b")
    assert status_of(api, "qbo", organisation="org-a")["other_organisations"] == 1
    assert status_of(api, "qbo", organisation="org-b")["other_organisations"] == 1
    assert api.call("POST", "/integrations/qbo/disconnect", organisation="org-b").status == 200
    assert status_of(api, "qbo", organisation="org-a")["other_organisations"] == 0
    assert status_of(api, "qbo", organisation="org-b")["other_organisations"] == 0

    orgs = xero_orgs(sandboxes)  # two organisations of one Xero login: different companies, nothing shared
    connect(api, sandboxes, "xero", organisation="org-c", choose=[orgs["Partsemble Demo (AU)"]])
    connect(api, sandboxes, "xero", organisation="org-d", choose=[orgs["Partsemble Demo (NZ)"]])
    assert status_of(api, "xero", organisation="org-c")["other_organisations"] == 0
    assert status_of(api, "xero", organisation="org-d")["other_organisations"] == 0


def test_unknown_provider_is_404_on_connect_and_callback(api: Api, sandboxes: Sandboxes) -> None:
    assert api.call("POST", "/integrations/sage/connect", json_body={}).status == 404
    callback = api.call("GET", "/oauth/sage/callback?code=x&state=y", organisation=None)
    assert callback.status == 404
    assert "unknown accounting provider" in callback.body.decode()


def test_a_reconnect_whose_write_fails_leaves_the_connection_working_on_its_consent(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new connection is written before the consent it replaces is ended: a throttled write leaves the
    old consent the connection's (not ended at QuickBooks, still usable); the next reconnect replaces it."""
    from botocore.exceptions import ClientError

    from shared.store import connections as connection_store

    connect(api, sandboxes, "qbo")
    before = connection_store.get_connection("org-a", "qbo")
    assert before is not None and len(_grants()) == 1
    write = connection_store.put_connection

    def throttled(*args: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutItem")

    monkeypatch.setattr(connection_store, "put_connection", throttled)
    assert connect(api, sandboxes, "qbo").page.status >= 500
    monkeypatch.setattr(connection_store, "put_connection", write)
    after = connection_store.get_connection("org-a", "qbo")
    assert after is not None and after.grant_id == before.grant_id
    assert before.grant_id in {g["pk"].removeprefix("GRANT#") for g in _grants()}
    assert status_of(api, "qbo")["status"] == "connected"
    assert api.call("POST", "/integrations/qbo/sync/accounts").status == 200  # its tokens still work

    revokes = sandboxes.qbo.call_count("POST", "/v2/oauth2/tokens/revoke")
    connect(api, sandboxes, "qbo")
    again = connection_store.get_connection("org-a", "qbo")
    assert again is not None and again.grant_id != before.grant_id
    assert before.grant_id not in {g["pk"].removeprefix("GRANT#") for g in _grants()}
    # the same company's consent replaced is deleted, not revoked: revoking one QBO consent may end the
    # app's access to the whole company, the new consent with it
    assert sandboxes.qbo.call_count("POST", "/v2/oauth2/tokens/revoke") == revokes


@pytest.mark.parametrize("dies_in", ["_refuse_if_other_provider_active", "put_connection"])
def test_a_consent_stored_by_a_process_that_died_before_connecting_is_deleted_by_the_ttl(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, dies_in: str
) -> None:
    """Every new consent is stored to be deleted by the table's TTL until a connection claims it, in the
    connection's own write: one whose process died before its connection was written, at any step of
    making it, holds no tokens for ever."""
    from shared.services import connections as connection_service
    from shared.store import connections as connection_store

    refuse = connection_service._refuse_if_other_provider_active
    calls = []

    def died(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        if dies_in == "_refuse_if_other_provider_active" and len(calls) == 1:
            return refuse(*args, **kwargs)  # the connect's start: the callback's check is the one that dies
        raise SystemExit("the process died before the connection was written")

    with monkeypatch.context() as patch:
        if dies_in == "put_connection":
            patch.setattr(connection_store, "put_connection", died)
        else:  # the first step of making the connection, once the consent is stored
            patch.setattr(connection_service, dies_in, died)
        with pytest.raises(SystemExit):
            connect(api, sandboxes, "qbo")
    (left,) = _grants()
    assert int(left["expires_at"]) > time.time()  # the TTL deletes it
    connect(api, sandboxes, "qbo")
    claimed = [g for g in _grants() if "expires_at" not in g]
    assert len(claimed) == 1  # the connection's own consent is kept


def test_a_callback_of_the_other_provider_that_completes_first_wins_the_race(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both connects were started while neither provider was connected, and the QBO callback passes the
    "no other provider" check just before the Xero callback connects: QBO is refused, not connected beside
    Xero (an organisation posting to two ledgers at once), and its consent is ended."""
    from datetime import UTC, datetime

    from shared.services import connections

    orgs = xero_orgs(sandboxes)
    qbo, xero = start(api, "qbo"), start(api, "xero")
    with sandboxes.client() as browser:
        qbo_params = walk_consent(browser, qbo.authorize_url, username=DEMO_USER[0], password=DEMO_USER[1])
        xero_params = walk_consent(
            browser,
            xero.authorize_url,
            username=DEMO_USER[0],
            password=DEMO_USER[1],
            choose=[orgs["Partsemble Demo (AU)"]],
        )
    check = connections._refuse_if_other_provider_active
    raced: list[str] = []

    def xero_connects_meanwhile(organisation_id: str, wanted: ProviderName) -> None:
        check(organisation_id, wanted)
        if wanted == "qbo" and not raced:  # QBO's callback has just passed the check
            raced.append("xero")
            binding = xero.cookie.split("=", 1)[1]
            connections.complete_callback("xero", xero_params, binding, datetime.now(UTC))

    monkeypatch.setattr(connections, "_refuse_if_other_provider_active", xero_connects_meanwhile)
    refused = callback(api, "qbo", qbo_params, qbo.cookie)
    assert raced == ["xero"]
    assert refused.status == 409, refused.body
    assert "disconnect it before connecting QuickBooks Online" in refused.body.decode()
    assert status_of(api, "xero")["status"] == "connected"
    assert status_of(api, "qbo")["status"] == "not_connected"
    assert [grant["provider"] for grant in _grants()] == ["xero"]  # QBO's consent is not kept
