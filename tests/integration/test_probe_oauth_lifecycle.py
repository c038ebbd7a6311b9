"""Adversarial probes of the connect flow and the token lifecycle: racing callbacks, a disconnect whose
provider or store fails part way, single-use Xero refresh tokens, rotation, and each route's organisation."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import LocalStack
from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared import aws as shared_aws
from shared.errors import AuthExpired, ProviderUnavailable
from shared.services import connections, tokens
from shared.store import connections as store
from shared.vault import TokenContext
from tests.conftest import APP_ORIGIN, Api, Sandboxes
from tests.integration.connect_flow import DEMO_USER, Started, callback, connect, start
from tests.integration.test_connect import status_of
from tests.integration.test_token_refresh import QBO_TOKEN_PATH, XERO_TOKEN_PATH, clock_of

ORG = "org-a"


def _connection(provider: str, organisation: str = ORG) -> store.Connection:
    found = store.get_connection(organisation, provider)
    assert found is not None
    return found


def _grant_ids(organisation: str = ORG) -> set[str]:
    """The consents stored for an organisation and kept (not waiting for the table's TTL to delete them)."""
    from boto3.dynamodb.conditions import Attr

    table = shared_aws.table()
    items = table.meta.client.scan(TableName=table.name, FilterExpression=Attr("sk").eq("GRANT"))["Items"]
    return {
        str(item["grant_id"])
        for item in items
        if item["organisation_id"] == organisation and "expires_at" not in item
    }


def _consented(sandboxes: Sandboxes, started: Started, **choice: Any) -> dict[str, str]:
    with sandboxes.client() as browser:
        return walk_consent(
            browser, started.authorize_url, username=DEMO_USER[0], password=DEMO_USER[1], **choice
        )


def _binding(started: Started) -> str:
    return started.cookie.split("=", 1)[1]


# ---- racing callbacks --------------------------------------------------------------------------------
def test_two_callbacks_completing_at_once_keep_one_consent_and_no_orphan(
    api: Api, sandboxes: Sandboxes
) -> None:
    """Two popups of one organisation (a double click, two tabs) land at once: whichever connection is
    written last is the one kept, and the other consent is not left stored with live tokens no connection
    holds (README: "No consent is kept that no connection uses")."""
    connect(api, sandboxes, "qbo")
    first, second = start(api, "qbo"), start(api, "qbo")
    first_params, second_params = _consented(sandboxes, first), _consented(sandboxes, second)
    dynamodb = shared_aws.table().meta.client
    raced: list[object] = []

    def second_lands_meanwhile(params: dict[str, Any], **_: Any) -> None:
        if raced:
            return
        raced.append(True)  # the first callback is about to write its connection: the second lands now
        outcome = connections.complete_callback("qbo", second_params, _binding(second), tokens.utc_now())
        raced.append(outcome.status)

    dynamodb.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", second_lands_meanwhile)
    try:
        landed = callback(api, "qbo", first_params, first.cookie)
    finally:
        dynamodb.meta.events.unregister(
            "provide-client-params.dynamodb.TransactWriteItems", second_lands_meanwhile
        )
    assert raced == [True, "connected"]
    # the first read the connection before the second wrote it: it writes nothing and says so
    assert landed.status == 404 and "another sign-in completed" in landed.body.decode()
    kept = _connection("qbo").grant_id
    assert _grant_ids() == {kept}  # exactly the consent the connection uses
    assert status_of(api, "qbo")["status"] == "connected"
    assert api.call("POST", "/integrations/qbo/sync/accounts").status == 200  # and it works


def test_a_second_organisations_callback_racing_never_attaches_to_the_first(
    api: Api, sandboxes: Sandboxes
) -> None:
    """Two organisations connect the same company at the same moment: each is connected with its own
    consent, which opens only for it."""
    a, b = start(api, "qbo", "org-a"), start(api, "qbo", "org-b")
    a_params, b_params = _consented(sandboxes, a), _consented(sandboxes, b)
    assert callback(api, "qbo", b_params, b.cookie).status == 200
    assert callback(api, "qbo", a_params, a.cookie).status == 200
    a_grant, b_grant = _connection("qbo", "org-a").grant_id, _connection("qbo", "org-b").grant_id
    assert a_grant and b_grant and a_grant != b_grant
    assert _grant_ids("org-a") == {a_grant} and _grant_ids("org-b") == {b_grant}
    assert status_of(api, "qbo", "org-a")["other_organisations"] == 1


def test_a_connection_written_without_a_claim_is_refused_once_it_changed_since_read(
    aws: LocalStack,
) -> None:
    """``put_connection(read=...)`` writes only while the connection is as read, with a consent to claim or
    without one; with no ``read`` (putting a connection back as it was) it writes whatever is there."""
    assert store.put_connection(ORG, "qbo", {"status": "connected", "grant_id": "g1"}, read=None)
    first = _connection("qbo")
    assert store.put_connection(ORG, "qbo", {"status": "connected", "grant_id": "g2"}, read=first)
    assert not store.put_connection(ORG, "qbo", {"status": "connected", "grant_id": "g3"}, read=first)
    assert not store.put_connection(ORG, "qbo", {"status": "connected", "grant_id": "g3"}, read=None)
    assert _connection("qbo").grant_id == "g2"  # the stale writes wrote nothing
    assert store.put_connection(ORG, "qbo", {"status": "connected", "grant_id": "g1"})
    assert _connection("qbo").grant_id == "g1"


# ---- states ------------------------------------------------------------------------------------------
def test_a_choice_token_is_not_accepted_as_a_state(api: Api, sandboxes: Sandboxes) -> None:
    """The Xero organisation choice is signed as another kind: pasted as a callback's state it is refused,
    and the choice still works afterwards."""
    from tests.integration.connect_flow import pick_organisation
    from tests.integration.test_connect import xero_orgs

    orgs = xero_orgs(sandboxes)
    landed = connect(api, sandboxes, "xero", choose=list(orgs.values()))
    choice = landed.text.split('name="choice" value="', 1)[1].split('"', 1)[0]
    forged = callback(api, "xero", {"state": choice, "code": "x"}, landed.cookie)
    assert forged.status == 400 and "not one this service issued" in forged.body.decode()
    assert pick_organisation(api, landed, orgs["Partsemble Demo (AU)"]).status == 200
    assert status_of(api, "xero")["status"] == "connected"


def test_a_declined_reconnect_leaves_the_working_connection_alone(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    before = _connection("qbo")
    declined = connect(api, sandboxes, "qbo", allow=False)
    assert declined.page.status == 400
    assert f'postMessage(m,"{APP_ORIGIN}")' in declined.text  # the failure goes to the app's origin only
    after = _connection("qbo")
    assert (after.status, after.grant_id) == ("connected", before.grant_id)
    assert api.call("POST", "/integrations/qbo/sync/accounts").status == 200


def test_the_outage_page_posts_its_message_to_the_app_origin_only(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = start(api, "qbo")
    params = _consented(sandboxes, started)

    def throttled(*_: Any, **__: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem")

    monkeypatch.setattr(store, "put_grant", throttled)
    page = callback(api, "qbo", params, started.cookie)
    assert page.status == 503 and page.headers["retry-after"]
    assert f'postMessage(m,"{APP_ORIGIN}")' in page.body.decode()
    assert '"*"' not in page.body.decode()


# ---- every route checks the caller's organisation ----------------------------------------------------
def test_another_organisation_cannot_see_use_or_disconnect_a_connection(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    assert status_of(api, "qbo", "org-b")["status"] == "not_connected"
    assert api.call("POST", "/integrations/qbo/disconnect", organisation="org-b").status == 404
    assert api.call("POST", "/integrations/qbo/sync/accounts", organisation="org-b").status in (404, 409)
    assert api.call("GET", "/integrations/qbo/accounts", organisation="org-b").json() in (
        [],
        {"accounts": []},
    )
    assert status_of(api, "qbo")["status"] == "connected"
    assert api.call("POST", "/integrations/qbo/sync/accounts").status == 200


# ---- disconnect --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "method", "path", "fault"),
    [
        ("qbo", "POST", "/v2/oauth2/tokens/revoke", "503"),
        ("qbo", "POST", "/v2/oauth2/tokens/revoke", "timeout"),
        ("xero", "DELETE", "/connections", "503"),
        ("xero", "POST", "/connect/revocation", "drop"),
    ],
)
def test_disconnect_while_the_provider_is_down_still_disconnects_and_deletes_the_ciphertext(
    api: Api, sandboxes: Sandboxes, provider: str, method: str, path: str, fault: str
) -> None:
    connect(api, sandboxes, provider, **({"choose": [AU_TENANT_ID]} if provider == "xero" else {}))
    grant_id = _connection(provider).grant_id
    sandbox = sandboxes.qbo if provider == "qbo" else sandboxes.xero
    sandbox.inject(fault, method=method, path_prefix=path, count=10)
    answer = api.call("POST", f"/integrations/{provider}/disconnect")
    assert answer.status == 200, answer.body
    view = answer.json()
    assert view["status"] == "disconnected" and view["company_name"]  # history kept
    assert "could not be told" in view["last_error"]["reason"]
    assert grant_id not in _grant_ids()


def test_disconnect_needing_a_refresh_while_the_provider_is_down_still_disconnects(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    grant_id = _connection("xero").grant_id
    sandboxes.xero.clock.advance(3600)  # the access token has expired: revoking needs a refresh first
    sandboxes.xero.inject("503", method="POST", path_prefix=XERO_TOKEN_PATH, count=10)
    answer = api.call("POST", "/integrations/xero/disconnect")
    assert answer.status == 200, answer.body
    assert answer.json()["status"] == "disconnected"
    assert grant_id not in _grant_ids()


def test_a_disconnect_whose_connection_write_fails_is_not_left_connected_without_tokens(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """The store throttles the disconnect's last write: the answer may be a 503, but the connection must
    not be left showing "connected" while its tokens are gone (revoked and deleted), where no scheduled
    check would ever mark it."""
    connect(api, sandboxes, "qbo")
    dynamodb = shared_aws.table().meta.client
    fails = [0]

    def throttle_disconnect_write(params: dict[str, Any], **_: Any) -> None:
        if "'disconnected'" in str(params) and not fails[0]:  # the disconnect's write
            fails[0] += 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "UpdateItem")

    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", throttle_disconnect_write)
    dynamodb.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", throttle_disconnect_write
    )
    try:
        answer = api.call("POST", "/integrations/qbo/disconnect")
    finally:
        dynamodb.meta.events.unregister(
            "provide-client-params.dynamodb.UpdateItem", throttle_disconnect_write
        )
        dynamodb.meta.events.unregister(
            "provide-client-params.dynamodb.TransactWriteItems", throttle_disconnect_write
        )
    assert fails[0] == 1
    assert answer.status == 503, answer.body
    view = status_of(api, "qbo")
    connection = _connection("qbo")
    tokens_kept = connection.grant_id is not None and store.get_grant(connection.grant_id) is not None
    # either nothing changed (still connected with its tokens), or it is shown as not usable
    assert tokens_kept or view["status"] != "connected"
    Scheduler(aws).fire("TokenRefreshFunction")
    Poller(aws).drain()
    assert tokens_kept or status_of(api, "qbo")["status"] != "connected"
    retried = api.call("POST", "/integrations/qbo/disconnect")
    assert retried.status == 200 and retried.json()["status"] == "disconnected"
    assert _grant_ids() == set()  # and its ciphertext is gone


# ---- Xero's single-use refresh tokens ----------------------------------------------------------------
def _xero_refresh_answer_lost(api: Api, sandboxes: Sandboxes) -> TokenContext:
    """A Xero connection whose access token is due, and whose refresh Xero carried out but whose answer was
    lost: Xero rotated the refresh token, the one stored is the previous (accepted for 30 minutes more)."""
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    asker = tokens.asking(_connection("xero"))
    sandboxes.xero.clock.advance(1800)
    sandboxes.xero.inject("lost_response", method="POST", path_prefix=XERO_TOKEN_PATH)
    with pytest.raises(ProviderUnavailable):
        tokens.fresh_tokens(asker, clock=clock_of(sandboxes.xero))
    return asker


def test_xero_lost_refresh_then_two_workers_at_once_refresh_once_and_both_work(
    api: Api, sandboxes: Sandboxes
) -> None:
    asker = _xero_refresh_answer_lost(api, sandboxes)
    before = sandboxes.xero.call_count("POST", XERO_TOKEN_PATH)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(tokens.fresh_tokens(asker, clock=clock_of(sandboxes.xero))[0].access_token)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sandboxes.xero.call_count("POST", XERO_TOKEN_PATH) - before == 1
    assert len(set(results)) == 1
    tenant = tokens.provider("xero").check_tenant(results[0], tokens.tenant_of(_connection("xero")))
    assert tenant.tenant_id == AU_TENANT_ID
    sandboxes.xero.clock.advance(1800)  # and the token stored then is the live one
    assert tokens.fresh_tokens(asker, clock=clock_of(sandboxes.xero))[1]


def test_xero_refresh_lost_and_retried_after_the_grace_expires_the_connection_once(
    api: Api, sandboxes: Sandboxes
) -> None:
    asker = _xero_refresh_answer_lost(api, sandboxes)
    sandboxes.xero.clock.advance(31 * 60)  # Xero's 30-minute grace for the previous token is over
    with pytest.raises(AuthExpired):
        tokens.fresh_tokens(asker, clock=clock_of(sandboxes.xero))
    assert status_of(api, "xero")["status"] == "expired"


# ---- QBO rotation ------------------------------------------------------------------------------------
def test_qbo_rotated_refresh_tokens_are_stored_every_time(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(_connection("qbo"))
    seen: set[str] = set()
    for _ in range(3):
        sandboxes.qbo.clock.advance(3600)
        fresh, refreshed = tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo))
        assert refreshed
        seen.add(fresh.refresh_token)
    assert len(seen) == 3  # each refresh rotated it, and the next used the newest
    assert status_of(api, "qbo")["status"] == "connected"


# ---- scheduled check ---------------------------------------------------------------------------------
def test_a_xero_organisation_disconnected_in_xero_is_expired_within_one_tick(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    sandboxes.xero.disconnect_organisation(AU_TENANT_ID)  # removed in Xero's Connected Apps
    Scheduler(aws).fire("TokenRefreshFunction")
    assert Poller(aws).drain() == 1
    assert status_of(api, "xero")["status"] == "expired"


def test_a_refresh_refused_while_a_disconnect_deletes_its_grant_says_reconnect_not_a_crash(
    api: Api, sandboxes: Sandboxes
) -> None:
    """The person removed Partsemble in QuickBooks, then clicks Disconnect while a sync is refreshing: the
    sync's refresh is refused (invalid_grant) after the disconnect deleted the grant. The sync ends as a
    refused connection (AuthExpired: reconnect), not an unhandled store error (a 500)."""
    from datetime import timedelta

    from shared.errors import AuthExpired

    connect(api, sandboxes, "qbo")
    asker = tokens.asking(_connection("qbo"))
    later = tokens.utc_now() + timedelta(hours=2)  # the access token has expired: the sync refreshes
    sandboxes.qbo.revoke_realm(DEMO_REALM_ID)
    disconnected: list[str] = []

    def disconnect_meanwhile(*_: Any) -> None:
        if not disconnected:  # the sync's refresh has been refused; its answer is on its way back
            disconnected.append("")
            # so late that the sync's lease has lapsed: the disconnect does not wait for it
            lapsed = later + timedelta(seconds=tokens.LEASE_SECONDS + 1)
            view = connections.disconnect(ORG, "qbo", lapsed)
            disconnected[0] = view.status

    sandboxes.qbo.after("POST", QBO_TOKEN_PATH, disconnect_meanwhile)
    with pytest.raises(AuthExpired):
        tokens.fresh_tokens(asker, clock=lambda: later)
    assert disconnected == ["disconnected"]
    assert status_of(api, "qbo")["status"] == "disconnected"
    assert _grant_ids() == set()


def test_the_choice_page_keeps_the_browser_binding_for_the_whole_life_of_the_choice(
    api: Api, sandboxes: Sandboxes
) -> None:
    """The binding cookie was set for ten minutes at the connect's start, the choice of organisation lives
    ten minutes from the callback: a person who took eight minutes at Xero's consent would have two left to
    choose, then be told the sign-in was "started in another browser". The choice page renews it."""
    from tests.integration.connect_flow import pick_organisation
    from tests.integration.test_connect import xero_orgs

    orgs = xero_orgs(sandboxes)
    landed = connect(api, sandboxes, "xero", choose=list(orgs.values()))
    assert "Choose the Xero organisation" in landed.text
    renewed = [c for c in landed.page.cookies if c.startswith(landed.cookie + ";")]
    assert len(renewed) == 1, landed.page.cookies
    attributes = {part.strip().split("=")[0].lower(): part for part in renewed[0].split(";")[1:]}
    assert attributes["max-age"].strip() == "Max-Age=600"
    assert {"httponly", "secure", "path"} <= attributes.keys()
    assert attributes["path"].strip() == "Path=/oauth/xero/callback"
    assert pick_organisation(api, landed, orgs["Partsemble Demo (AU)"]).status == 200


def test_a_revocation_whose_expiry_write_failed_is_shown_as_expired_at_the_next_check(
    api: Api, sandboxes: Sandboxes
) -> None:
    """The check that notices a revocation marks the grant expired, then the connection; the store throttles
    the second write. The next check must still show the connection as expired (with its event), not leave
    it "connected" for ever because its grant is no longer active."""
    from shared.contracts import ConnectionJob

    connect(api, sandboxes, "qbo")
    sandboxes.qbo.revoke_realm(DEMO_REALM_ID)
    dynamodb = shared_aws.table().meta.client
    fails = [0]

    def throttle_connection_expiry(params: dict[str, Any], **_: Any) -> None:
        if "'expired'" in str(params) and "'sk': 'CONNECTION#" in str(params) and not fails[0]:
            fails[0] += 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "UpdateItem")

    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", throttle_connection_expiry)
    job = ConnectionJob(organisation_id=ORG, provider="qbo")
    try:
        with pytest.raises(ClientError):
            tokens.check_one(job)
    finally:
        dynamodb.meta.events.unregister(
            "provide-client-params.dynamodb.UpdateItem", throttle_connection_expiry
        )
    assert fails[0] == 1
    tokens.check_one(job)  # the next tick
    view = status_of(api, "qbo")
    assert view["status"] == "expired" and view["reconnect_hint"]


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_a_code_from_another_consent_injected_with_this_browsers_state_connects_nothing(
    api: Api, sandboxes: Sandboxes, provider: str
) -> None:
    """Authorization code injection: someone slips the code of their own consent (their company) into the
    callback of a person who started a connect. The state and the cookie are the person's, but the code was
    issued for the other flow's PKCE challenge: the provider refuses it and nothing is attached."""
    victim, attacker = start(api, provider, "org-a"), start(api, provider, "org-b")
    victim_params = _consented(sandboxes, victim)
    attacker_params = _consented(sandboxes, attacker)
    injected = callback(api, provider, {**attacker_params, "state": victim_params["state"]}, victim.cookie)
    assert injected.status == 400, injected.body
    assert status_of(api, provider, "org-a")["status"] == "not_connected"
    assert _grant_ids("org-a") == set()
