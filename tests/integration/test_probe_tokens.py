"""Probe: a token refresh never burns a connection and nothing waits for ever. QBO rotates the refresh token
at each refresh and the one before stops working at once (provider facts qbo.md 1.5), so a refresh whose
answer is not kept, or a revoke naming the token a refresh just replaced, ends or orphans the consent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from infra.sandboxes.qbo_demo import DEMO_PASSWORD, DEMO_REALM_ID, DEMO_USERNAME
from shared import aws as shared_aws
from shared.errors import AuthExpired, ProviderError, ServiceError
from shared.services import tokens
from shared.store import connections as store
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_connect import status_of
from tests.integration.test_dependency_outages import client_error, fail_calls, unavailable
from tests.integration.test_token_refresh import QBO_TOKEN_PATH, clock_of, connection

__all__ = ["fail_calls"]  # the fixture, used here by name

QBO_REVOKE_PATH = "/v2/oauth2/tokens/revoke"
STORING = "#version + :one"  # in the write that stores a refresh's new tokens


def _live_qbo_consents(sandboxes: Sandboxes) -> list[Any]:
    return [grant for grant in sandboxes.qbo.grants if not grant.revoked]


def _works_at_qbo(access_token: str) -> bool:
    try:
        tokens.provider("qbo").check_tenant(access_token, tokens.tenant_of(connection("qbo")))
    except AuthExpired:
        return False
    return True


def _on_store(outcome: Callable[[int], None]) -> Callable[..., None]:
    """A DynamoDB hook that runs ``outcome(n)`` for the n-th write storing a refresh's new tokens."""
    seen = [0]

    def hook(params: dict[str, Any], **_: Any) -> None:
        if STORING in str(params.get("UpdateExpression", "")):
            seen[0] += 1
            outcome(seen[0])

    return hook


# ---- 1. KMS is asked before the provider rotates anything ---------------------------------------------
@pytest.mark.parametrize("code", ["ThrottlingException", "KMSInternalException"])
def test_kms_down_when_a_qbo_refresh_is_due_sends_no_refresh_and_the_connection_keeps_working(
    api: Api, sandboxes: Sandboxes, fail_calls: Any, code: str
) -> None:
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600)  # the access token has expired
    before = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    kms = shared_aws.client("kms")
    fail_calls(kms, "kms.GenerateDataKey", lambda: client_error(code, "GenerateDataKey"), 1)
    with pytest.raises(Exception) as down:
        tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo))
    assert shared_aws.is_outage(down.value)  # answered 503, nothing changed
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) == before  # QBO rotated nothing
    grant = store.get_grant(asker.grant_id)
    assert grant is not None and (grant.version, grant.lease_owner) == (1, None)
    sandboxes.qbo.clock.advance(tokens.LEASE_SECONDS + 1)  # however long a lease might have been held
    fresh, refreshed = tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo))
    assert refreshed and _works_at_qbo(fresh.access_token)
    assert status_of(api, "qbo")["status"] == "connected"


def test_disconnect_needing_a_refresh_while_kms_is_down_answers_503_and_changes_nothing(
    api: Api, sandboxes: Sandboxes, fail_calls: Any
) -> None:
    connect(api, sandboxes, "qbo")
    api.gateway.clock = sandboxes.qbo.clock.now  # the requests' time: the sandbox's
    sandboxes.qbo.clock.advance(3600)  # revoking needs a refresh first
    before = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    fail_calls(
        shared_aws.client("kms"),
        "kms.GenerateDataKey",
        lambda: client_error("ThrottlingException", "GenerateDataKey"),
        1,
    )
    unavailable(api.call("POST", "/integrations/qbo/disconnect"))
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) == before
    assert status_of(api, "qbo")["status"] == "connected" and _live_qbo_consents(sandboxes)
    retried = api.call("POST", "/integrations/qbo/disconnect")  # at once: no lease was left behind
    assert retried.status == 200 and retried.json()["last_error"] is None
    assert _live_qbo_consents(sandboxes) == []


# ---- 2. the refreshed tokens are stored through a short outage ----------------------------------------
def test_a_store_throttled_twice_after_qbo_rotated_keeps_the_new_tokens_within_six_seconds(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600)

    def throttled(n: int) -> None:
        if n <= 2:
            raise client_error("ProvisionedThroughputExceededException", "UpdateItem")

    waits: list[float] = []
    dynamodb = shared_aws.table().meta.client
    hook = _on_store(throttled)
    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", hook)
    try:
        fresh, refreshed = tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo), sleep=waits.append)
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", hook)
    assert refreshed and _works_at_qbo(fresh.access_token)
    assert len(waits) == 2 and sum(tokens.STORE_WAITS) <= 6.0 < tokens.LEASE_SECONDS / 2
    grant = store.get_grant(asker.grant_id)
    assert grant is not None and grant.version == 2
    assert tokens.stored_tokens(grant, asker).refresh_token == fresh.refresh_token  # the live one is kept
    sandboxes.qbo.clock.advance(3600)  # and the next refresh, with it, works
    assert tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo))[1]


def test_a_slow_qbo_answer_is_never_raced_by_a_second_refresh_with_the_token_it_replaces(
    api: Api, sandboxes: Sandboxes
) -> None:
    """QBO answers a refresh 45 s after the lease was taken (inside the token request's timeouts): a second
    worker asking then waits and answers 503; it never takes the lease over and sends the refresh token QBO
    has just replaced, which QBO would refuse (invalid_grant) and so expire the connection."""
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600)
    second: list[str] = []

    def slow_answer(*_: Any) -> None:
        if second:  # the first worker's answer only
            return
        second.append("asked")
        sandboxes.qbo.clock.advance(45)
        with pytest.raises(tokens.RefreshBusy):
            tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo), sleep=lambda _: None)
        second.append("answered 503")

    before = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    sandboxes.qbo.after("POST", QBO_TOKEN_PATH, slow_answer)
    fresh, refreshed = tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo))
    assert second == ["asked", "answered 503"] and refreshed and _works_at_qbo(fresh.access_token)
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) == before + 1  # one refresh: the first worker's
    assert status_of(api, "qbo")["status"] == "connected"


def test_a_store_whose_answer_was_lost_after_it_committed_uses_the_tokens_it_stored(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600)
    dynamodb = shared_aws.table().meta.client
    stores, lost = [0], [0]

    def storing(n: int) -> None:
        stores[0] = n

    def answer_lost(**_: Any) -> None:
        if stores[0] == 1 and not lost[0]:  # the first store's write committed; its answer never comes
            lost[0] += 1
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    hooks = (
        ("provide-client-params.dynamodb.UpdateItem", _on_store(storing)),
        ("after-call.dynamodb.UpdateItem", answer_lost),
    )
    for event, handler in hooks:
        dynamodb.meta.events.register(event, handler)
    try:
        fresh, refreshed = tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo), sleep=lambda _: None)
    finally:
        for event, handler in hooks:
            dynamodb.meta.events.unregister(event, handler)
    assert lost[0] == 1 and stores[0] == 2  # the write committed, its answer was lost, it was asked again
    assert refreshed and _works_at_qbo(fresh.access_token)
    grant = store.get_grant(asker.grant_id)
    assert grant is not None and grant.version == 2
    assert tokens.stored_tokens(grant, asker).refresh_token == fresh.refresh_token


# ---- 3. waiting for another worker's lease is bounded -------------------------------------------------
def _a_dead_workers_lease(sandboxes: Sandboxes) -> str:
    """The QBO connection's grant, its refresh lease held by a worker that died before sending anything."""
    grant_id = connection("qbo").grant_id or ""
    now = int(sandboxes.qbo.clock.now().timestamp())
    assert store.try_acquire_refresh_lease(
        grant_id, version=1, owner="a-worker-that-died", now=now, ttl_s=tokens.LEASE_SECONDS
    )
    return grant_id


def test_a_refresh_waiting_on_a_dead_workers_lease_gives_up_after_twenty_seconds(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600)
    _a_dead_workers_lease(sandboxes)
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        assert sum(waits) <= 60, "still waiting after a minute"

    frozen = sandboxes.qbo.clock.now()  # a request's time: it stands still while the request waits
    with pytest.raises(ProviderError) as busy:
        tokens.fresh_tokens(asker, clock=lambda: frozen, sleep=wait)
    assert busy.value.http_status == 503 and busy.value.retryable
    assert "try again" in busy.value.message
    assert 15 <= sum(waits) <= tokens.WAIT_LIMIT <= 20


def test_disconnect_while_a_dead_workers_lease_is_held_answers_503_then_disconnects(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    api.gateway.clock = sandboxes.qbo.clock.now  # the requests' time: the sandbox's
    sandboxes.qbo.clock.advance(3600)  # revoking needs a refresh first
    grant_id = _a_dead_workers_lease(sandboxes)
    waits: list[float] = []
    monkeypatch.setattr(tokens, "pause", waits.append)
    answer = api.call("POST", "/integrations/qbo/disconnect")
    assert answer.status == 503, answer.body
    assert answer.headers["retry-after"] == "5" and "try again" in answer.json()["message"]
    assert sum(waits) <= tokens.WAIT_LIMIT
    assert status_of(api, "qbo")["status"] == "connected"  # nothing changed
    assert store.get_grant(grant_id) is not None and _live_qbo_consents(sandboxes)

    sandboxes.qbo.clock.advance(tokens.LEASE_SECONDS + 1)  # the dead worker's lease has lapsed
    retried = api.call("POST", "/integrations/qbo/disconnect")
    assert retried.status == 200, retried.body
    assert retried.json()["status"] == "disconnected" and retried.json()["last_error"] is None
    assert store.get_grant(grant_id) is None and _live_qbo_consents(sandboxes) == []


# ---- 4. ending a consent while a refresh of it is in flight -------------------------------------------
class _InFlight:
    """A refresh QBO has answered (rotating the refresh token) whose answer has not reached the refresher
    yet; it goes on once ``go`` is set."""

    def __init__(self, sandboxes: Sandboxes) -> None:
        self.answered, self.go = threading.Event(), threading.Event()
        self.result: list[Any] = []
        self.sandboxes = sandboxes
        sandboxes.qbo.after("POST", QBO_TOKEN_PATH, self._hold)

    def _hold(self, *_: Any) -> None:
        if not self.answered.is_set():
            self.answered.set()
            self.go.wait(30)

    def start(self, work: Callable[[], Any]) -> threading.Thread:
        def run() -> None:
            try:
                self.result.append(work())
            except Exception as err:
                self.result.append(err)

        thread = threading.Thread(target=run)
        thread.start()
        return thread


def _waits_seen(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a worker waits for another's refresh lease (the waits themselves stay short)."""
    waiting = threading.Event()

    def wait(seconds: float) -> None:
        waiting.set()
        time.sleep(min(seconds, 0.05))

    monkeypatch.setattr(tokens, "pause", wait)
    return waiting


def test_disconnect_during_a_qbo_refresh_in_flight_revokes_the_rotated_consent(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduled check refreshes (10-minute margin) a token the disconnect finds still good (5 minutes):
    QBO has rotated the refresh token when the person clicks Disconnect. The revoke must name the new one,
    or QBO keeps Partsemble connected while Partsemble shows it disconnected."""
    connect(api, sandboxes, "qbo")
    api.gateway.clock = sandboxes.qbo.clock.now
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600 - 7 * 60)  # 7 minutes left
    waiting = _waits_seen(monkeypatch)
    refresh = _InFlight(sandboxes)
    refresher = refresh.start(
        lambda: tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo), margin=tokens.SCHEDULED_MARGIN)
    )
    assert refresh.answered.wait(10)
    answers: list[Any] = []
    disconnecting = threading.Thread(
        target=lambda: answers.append(api.call("POST", "/integrations/qbo/disconnect"))
    )
    disconnecting.start()
    waiting.wait(5)  # the disconnect waits for the refresh's lease
    refresh.go.set()
    refresher.join(30)
    disconnecting.join(30)
    (answer,) = answers
    assert answer.status == 200, answer.body
    assert answer.json()["status"] == "disconnected" and answer.json()["last_error"] is None
    (refreshed,) = refresh.result
    assert not isinstance(refreshed, ServiceError) or refreshed.http_status != 503, refreshed
    assert _live_qbo_consents(sandboxes) == []  # QBO no longer holds Partsemble's consent
    if not isinstance(refreshed, Exception):  # the refresher's new tokens were revoked with it
        assert not _works_at_qbo(refreshed[0].access_token)


def test_a_refresh_starting_while_a_disconnect_revokes_sends_nothing_and_says_reconnect(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    api.gateway.clock = sandboxes.qbo.clock.now
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600 - 7 * 60)
    waiting = _waits_seen(monkeypatch)
    revoking, go = threading.Event(), threading.Event()

    def hold(*_: Any) -> None:
        revoking.set()
        go.wait(30)

    sandboxes.qbo.after("POST", QBO_REVOKE_PATH, hold)
    answers: list[Any] = []
    disconnecting = threading.Thread(
        target=lambda: answers.append(api.call("POST", "/integrations/qbo/disconnect"))
    )
    disconnecting.start()
    assert revoking.wait(10)
    refreshes = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    outcome: list[Any] = []

    def check() -> None:
        try:
            outcome.append(
                tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo), margin=tokens.SCHEDULED_MARGIN)
            )
        except Exception as err:
            outcome.append(err)

    checking = threading.Thread(target=check)
    checking.start()
    waiting.wait(5)
    go.set()
    disconnecting.join(30)
    checking.join(30)
    assert answers[0].status == 200 and answers[0].json()["status"] == "disconnected"
    (refused,) = outcome
    assert isinstance(refused, AuthExpired) and "reconnect" in refused.message  # plainly, not a 503
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) == refreshes  # no refresh of a consent ending
    assert status_of(api, "qbo")["status"] == "disconnected"


def test_a_company_switch_during_a_refresh_in_flight_ends_the_old_companys_rotated_consent(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = sandboxes.qbo.add_company("Second Widgets LLC", country="US", plan="Plus")
    sandboxes.qbo.add_user(DEMO_USERNAME, DEMO_PASSWORD, [DEMO_REALM_ID, second.realm_id])
    connect(api, sandboxes, "qbo", choose=[DEMO_REALM_ID])
    api.gateway.clock = sandboxes.qbo.clock.now
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600 - 7 * 60)
    waiting = _waits_seen(monkeypatch)
    refresh = _InFlight(sandboxes)
    refresher = refresh.start(
        lambda: tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo), margin=tokens.SCHEDULED_MARGIN)
    )
    assert refresh.answered.wait(10)
    landed: list[Any] = []
    switching = threading.Thread(
        target=lambda: landed.append(
            connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True)
        )
    )
    switching.start()
    waiting.wait(5)  # the switch, discarding the old consent, waits for its refresh
    refresh.go.set()
    refresher.join(30)
    switching.join(60)
    assert landed[0].page.status == 200
    assert status_of(api, "qbo")["company_name"] == "Second Widgets LLC"
    old = [g for g in sandboxes.qbo.grants if g.realm_id == DEMO_REALM_ID]
    assert old and all(g.revoked for g in old)  # the old company's consent ended, with its newest token
    assert [g.realm_id for g in _live_qbo_consents(sandboxes)] == [second.realm_id]
    (refreshed,) = refresh.result
    assert not isinstance(refreshed, ServiceError) or refreshed.http_status != 503, refreshed
