"""Probe: the connection's lifecycle as an unlucky network and a demanding person see it. A token endpoint
down or throttling for a long time never marks the connection dead nor burns its refresh token, and its
health says the checks keep failing and are being retried."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import LocalStack
from shared.services import tokens
from shared.store import connections as store
from shared.vault import TokenContext
from tests.conftest import QBO_TEST_APP, Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_connect import status_of
from tests.integration.test_export_faults import WRITES, deliver, posted_once, receipt, setup
from tests.integration.test_exports import ok
from tests.integration.test_token_refresh import (
    QBO_TOKEN_PATH,
    XERO_TOKEN_PATH,
    clock_of,
    connection,
    events_queue,
)

__all__ = ["events_queue"]  # the fixture, used here by name

TICK = 5 * 60  # the schedule's period (template.yaml)


def _tick(aws: LocalStack) -> None:
    """One scheduled tick, through the queue."""
    Scheduler(aws).fire("TokenRefreshFunction")
    Poller(aws).drain()


def _tokens_of(asker: TokenContext) -> set[str]:
    grant = store.get_grant(asker.grant_id)
    assert grant is not None
    stored = tokens.stored_tokens(grant, asker)
    return {stored.access_token, stored.refresh_token}


def test_a_token_endpoint_down_for_hours_is_retried_each_tick_and_the_health_says_so(
    api: Api,
    sandboxes: Sandboxes,
    aws: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    connect(api, sandboxes, "qbo")
    monkeypatch.setattr(tokens, "utc_now", clock_of(sandboxes.qbo))
    asker = tokens.asking(connection("qbo"))
    grant_id = asker.grant_id
    secrets = {QBO_TEST_APP[1]} | _tokens_of(asker)
    sandboxes.qbo.clock.advance(55 * 60)  # the access token is due at the next check
    for kind in ("503", "429", "timeout", "500"):  # Intuit's token endpoint down, then throttling, ...
        sandboxes.qbo.inject(kind, method="POST", path_prefix=QBO_TOKEN_PATH, count=6)
    calls = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    _tick(aws)
    first = status_of(api, "qbo")["last_error"]
    for _ in range(23):  # two hours of ticks
        sandboxes.qbo.clock.advance(TICK)
        _tick(aws)
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) - calls == 24  # one try a tick, never a loop
    view = status_of(api, "qbo")
    assert view["status"] == "connected"  # not marked dead
    health = view["last_error"]
    assert "tried again every few minutes" in health["reason"] and "QuickBooks Online" in health["reason"]
    assert health["since"] == first["since"] != health["at"]  # how long it has been failing
    assert health["detail"] != first["detail"]  # the latest failure's words (throttled, then down again)
    grant = store.get_grant(grant_id)
    assert grant is not None and (grant.status, grant.version) == ("active", 1)  # nothing burned

    sandboxes.qbo.clock.advance(TICK)
    _tick(aws)  # QuickBooks answers again
    view = status_of(api, "qbo")
    assert view["status"] == "connected" and view["last_error"] is None
    assert store.get_grant(grant_id).version == 2  # type: ignore[union-attr]
    secrets |= _tokens_of(asker)
    output = capsys.readouterr()
    logged = output.out + output.err + caplog.text + json.dumps(health)
    assert sorted(s for s in secrets if s in logged) == []


def test_workers_whose_token_is_refused_at_once_replace_it_with_one_refresh(
    api: Api, sandboxes: Sandboxes
) -> None:
    """Ten exports running at once are all refused the same access token (it ended early at QuickBooks):
    one refresh replaces it and all ten use the new one. Intuit asks to refresh only when the access token
    has expired, not on every call (qbo.md 1.5); ten refreshes one after the other would also keep the later
    workers waiting on the lease, past ``WAIT_LIMIT`` (503) when a refresh is slow."""
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(connection("qbo"))
    sources = [tokens.TokenSource(asker, clock=clock_of(sandboxes.qbo)) for _ in range(10)]
    refused = {source(False) for source in sources}
    assert len(refused) == 1
    calls = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    start = threading.Barrier(len(sources))
    replaced: list[str] = []
    errors: list[BaseException] = []

    def worker(source: tokens.TokenSource) -> None:
        start.wait()
        try:
            replaced.append(source(True))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(source,)) for source in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) - calls == 1
    assert len(set(replaced)) == 1 and not set(replaced) & refused
    assert store.get_grant(asker.grant_id).version == 2  # type: ignore[union-attr]


def test_an_access_token_that_expires_between_an_exports_search_and_its_write_posts_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Xero's access token lasts 30 minutes (xero.md 1.2) and Partsemble's clock and Xero's disagree: the
    token still looks fresh here when Xero refuses the journal's write (401 TokenExpired). One refresh, the
    write repeated once, one journal; the export never waits nor fails."""
    bolt = setup(api, sandboxes, "xero")
    receipt(api, bolt)
    writes = {"PUT": 0}
    handle = sandboxes.xero.handle

    def expiring(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path == WRITES["xero"]:
            writes["PUT"] += 1
            if writes["PUT"] == 1:
                sandboxes.xero.clock.advance(31 * 60)  # expired at Xero just before the write reaches it
        response: httpx.Response = handle(request)
        return response

    monkeypatch.setattr(sandboxes.xero, "handle", expiring)
    refreshes = sandboxes.xero.call_count("POST", XERO_TOKEN_PATH)
    deliver(aws)
    assert writes["PUT"] == 2  # refused once, then written with the new token
    assert sandboxes.xero.call_count("POST", XERO_TOKEN_PATH) - refreshes == 1
    posted_once(api, sandboxes, "xero")
    assert status_of(api, "xero")["status"] == "connected"


def test_an_export_refused_a_fresh_token_twice_by_a_connection_that_works_is_posted_after_the_next_check(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QuickBooks refuses the journal's write with a 401, and again with the token just refreshed (its
    authentication faltering for a moment): the export waits for the connection, which still works. The
    next scheduled check proves it does and the export goes on: it never stays waiting while its connection
    is connected, with nobody told to do anything."""
    monkeypatch.setattr(tokens, "utc_now", clock_of(sandboxes.qbo))
    bolt = setup(api, sandboxes, "qbo")
    receipt(api, bolt)
    _refusing(sandboxes, monkeypatch, WRITES["qbo"], 2)  # the journal's write, and again with a fresh token
    deliver(aws)
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "waiting", export
    assert status_of(api, "qbo")["status"] == "connected"

    sandboxes.qbo.clock.advance(TICK)
    _tick(aws)  # the connection is checked and works
    deliver(aws)
    posted_once(api, sandboxes, "qbo")
    assert status_of(api, "qbo")["status"] == "connected"


def _refusing(sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, path: str, times: int) -> None:
    """QuickBooks answers its own 401 (a refused access token) to the next ``times`` requests to ``path``."""
    handle = sandboxes.qbo.handle
    left = [times]

    def refusing(request: httpx.Request) -> httpx.Response:
        if path in request.url.path and left[0]:
            left[0] -= 1
            return sandboxes.qbo._unauthenticated("Token invalid")
        response: httpx.Response = handle(request)
        return response

    monkeypatch.setattr(sandboxes.qbo, "handle", refusing)


def test_a_check_refused_even_with_a_token_just_refreshed_keeps_the_connection_until_the_next_one_is(
    api: Api,
    aws: LocalStack,
    sandboxes: Sandboxes,
    monkeypatch: pytest.MonkeyPatch,
    events_queue: Callable[[], list[dict[str, Any]]],
) -> None:
    """QuickBooks' authentication falters for a moment: the check's read is refused (401), and again with
    the token Intuit has just issued. A consent ended at Intuit refuses the refresh itself (invalid_grant:
    expired at once), so this one is kept, its health saying so, and the next check that works clears it.
    Refused at two checks in a row (the connecting user no longer an admin, QBO code 120), it is expired
    once, and told once."""
    monkeypatch.setattr(tokens, "utc_now", clock_of(sandboxes.qbo))
    connect(api, sandboxes, "qbo")
    grant_id = connection("qbo").grant_id or ""
    refreshes = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    _refusing(sandboxes, monkeypatch, "/companyinfo/", times=2)
    sandboxes.qbo.clock.advance(TICK)
    _tick(aws)
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) - refreshes == 1  # refreshed once, then refused
    view = status_of(api, "qbo")
    assert view["status"] == "connected", view
    assert "if it refuses again, the connection will need reconnecting" in view["last_error"]["reason"]
    assert store.get_grant(grant_id).status == "active"  # type: ignore[union-attr]
    sandboxes.qbo.clock.advance(TICK)
    _tick(aws)  # it works again
    assert status_of(api, "qbo")["last_error"] is None

    _refusing(sandboxes, monkeypatch, "/companyinfo/", times=1000)  # refused for good now
    for _ in range(3):
        sandboxes.qbo.clock.advance(TICK)
        _tick(aws)
    view = status_of(api, "qbo")
    assert view["status"] == "expired" and "Reconnect" in view["reconnect_hint"]
    assert [e["detail-type"] for e in events_queue()] == ["ConnectionExpired"]


def test_exports_that_cannot_refresh_through_a_long_token_endpoint_outage_wait_and_go_on_after_it(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intuit's token endpoint is down for two hours and the access token has expired: an export cannot
    get a token through all its attempts. It is not failed for a person to retry: it waits, and the
    connection's first check that refreshes again (the outage over) sends it on; posted once."""
    monkeypatch.setattr(tokens, "utc_now", clock_of(sandboxes.qbo))
    bolt = setup(api, sandboxes, "qbo")
    sandboxes.qbo.clock.advance(3600)  # the access token has expired
    sandboxes.qbo.inject("503", method="POST", path_prefix=QBO_TOKEN_PATH, count=1000)
    receipt(api, bolt)
    deliver(aws)
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "waiting", export
    assert "could not be refreshed" in export["last_error"]
    for _ in range(24):  # two hours of checks, all refused by the outage: it keeps waiting
        sandboxes.qbo.clock.advance(TICK)
        _tick(aws)
        deliver(aws)
    assert ok(api.call("GET", "/exports"))["items"][0]["status"] == "waiting"
    assert status_of(api, "qbo")["status"] == "connected"

    sandboxes.qbo.faults.clear()  # Intuit answers again
    sandboxes.qbo.clock.advance(TICK)
    _tick(aws)
    deliver(aws)
    posted_once(api, sandboxes, "qbo")


def test_the_apps_own_credentials_refused_say_so_on_the_health_and_keep_the_consent(
    api: Api,
    sandboxes: Sandboxes,
    aws: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client secret was rotated in Intuit's developer portal and not in this deployment: every refresh
    is refused with invalid_client (qbo.md 1.5). The operator's problem, not the customer's consent: the
    connection stays connected, its grant and refresh token untouched, its health saying plainly that
    QuickBooks refuses Partsemble's own app credentials (not to reconnect), an error is logged for the
    alarm, one try a tick, and the note goes once the deployment's secret works again."""
    from infra.local.testbed import PUBLIC_BASE_URL

    connect(api, sandboxes, "qbo")
    monkeypatch.setattr(tokens, "utc_now", clock_of(sandboxes.qbo))
    asker = tokens.asking(connection("qbo"))
    grant_id = asker.grant_id
    secrets = {QBO_TEST_APP[1], "rotated-at-intuit"} | _tokens_of(asker)
    redirect = [f"{PUBLIC_BASE_URL}/oauth/qbo/callback"]
    sandboxes.qbo.register_app(QBO_TEST_APP[0], "rotated-at-intuit", redirect)
    sandboxes.qbo.clock.advance(55 * 60)  # the access token is due at the next check
    calls = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    for _ in range(3):
        _tick(aws)
        sandboxes.qbo.clock.advance(TICK)
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) - calls == 3  # one try a tick, never a loop
    view = status_of(api, "qbo")
    assert view["status"] == "connected" and not view.get("reconnect_hint"), view
    reason = view["last_error"]["reason"]
    assert "does not accept Partsemble's own app credentials" in reason and "QuickBooks Online" in reason
    assert "need not reconnect" in reason
    grant = store.get_grant(grant_id)
    assert grant is not None and (grant.status, grant.version) == ("active", 1)  # nothing spent
    assert "client credentials are refused or not set up" in caplog.text  # the operator's alarm matches
    assert any(r.levelname == "ERROR" for r in caplog.records if "client credentials" in r.getMessage())

    sandboxes.qbo.register_app(QBO_TEST_APP[0], QBO_TEST_APP[1], redirect)  # the operator fixed it
    _tick(aws)
    view = status_of(api, "qbo")
    assert view["status"] == "connected" and view["last_error"] is None
    assert store.get_grant(grant_id).version == 2  # type: ignore[union-attr]
    secrets |= _tokens_of(asker)
    output = capsys.readouterr()
    logged = output.out + output.err + caplog.text + json.dumps(view) + reason
    assert sorted(s for s in secrets if s in logged) == []


def test_exports_refused_for_the_apps_own_credentials_wait_and_go_on_once_the_operator_fixes_them(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client secret was rotated at Intuit and not here, and the access token has expired: the export's
    refresh is refused with invalid_client (qbo.md 1.5). Like the connection, which is kept and checked each
    tick, the export is not failed for a person to retry: it waits, and the first check that refreshes once
    the operator has put the new secret in sends it on; posted once."""
    from infra.local.testbed import PUBLIC_BASE_URL

    monkeypatch.setattr(tokens, "utc_now", clock_of(sandboxes.qbo))
    bolt = setup(api, sandboxes, "qbo")
    redirect = [f"{PUBLIC_BASE_URL}/oauth/qbo/callback"]
    sandboxes.qbo.register_app(QBO_TEST_APP[0], "rotated-at-intuit", redirect)
    sandboxes.qbo.clock.advance(3600)  # the access token has expired
    receipt(api, bolt)
    deliver(aws)
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "waiting", export
    for _ in range(3):  # the checks are refused too: it keeps waiting
        sandboxes.qbo.clock.advance(TICK)
        _tick(aws)
        deliver(aws)
    assert ok(api.call("GET", "/exports"))["items"][0]["status"] == "waiting"
    assert status_of(api, "qbo")["status"] == "connected"

    sandboxes.qbo.register_app(QBO_TEST_APP[0], QBO_TEST_APP[1], redirect)  # the operator fixed it
    sandboxes.qbo.clock.advance(TICK)
    _tick(aws)
    deliver(aws)
    posted_once(api, sandboxes, "qbo")


def test_an_export_that_waits_while_the_check_resumes_the_others_keeps_its_mark_for_the_next_check(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check resumes the exports waiting for its connection: it lists them, then takes the connection's
    mark off. A second export whose write QuickBooks refuses (a 401, again with a fresh token) settles as
    waiting and marks the connection after the list and before that clear: its mark stays, so the next
    check resumes it and both are posted; it is never left waiting while the connection is connected."""
    from shared.services import exports
    from shared.store import exports as export_store

    monkeypatch.setattr(tokens, "utc_now", clock_of(sandboxes.qbo))
    bolt = setup(api, sandboxes, "qbo")
    _refusing(sandboxes, monkeypatch, WRITES["qbo"], 2)  # the journal's write, and again with a fresh token
    receipt(api, bolt)
    deliver(aws)  # the first export waits, its connection marked for the check
    listed = export_store.list_exports
    second: list[str] = []

    def list_then_another_waits(organisation_id: str, status: Any = None) -> list[Any]:
        found = listed(organisation_id, status)
        if not second:  # between the check's list and its clear: another export settles as waiting
            _refusing(sandboxes, monkeypatch, WRITES["qbo"], 2)
            second.append(receipt(api, bolt, quantity="3"))
            deliver(aws)
        return found

    monkeypatch.setattr(exports.store, "list_exports", list_then_another_waits)
    sandboxes.qbo.clock.advance(TICK)
    _tick(aws)  # the check works and resumes the first export
    monkeypatch.setattr(exports.store, "list_exports", listed)
    waiting = [e for e in ok(api.call("GET", "/exports"))["items"] if e["status"] == "waiting"]
    assert [e["record_id"] for e in waiting] == second  # waited after the check's list
    assert connection("qbo").resume_pending  # its mark was kept

    deliver(aws)
    sandboxes.qbo.clock.advance(TICK)
    _tick(aws)  # the next check resumes it
    deliver(aws)
    exports_now = ok(api.call("GET", "/exports"))["items"]
    assert sorted(e["status"] for e in exports_now) == ["posted", "posted"], exports_now
    assert not connection("qbo").resume_pending


@pytest.mark.parametrize(
    ("name", "token_path", "label"),
    [("qbo", QBO_TOKEN_PATH, "QuickBooks Online"), ("xero", XERO_TOKEN_PATH, "Xero")],
)
def test_a_token_endpoint_refusal_without_an_oauth_error_is_retried_and_never_expires_the_connection(
    api: Api,
    sandboxes: Sandboxes,
    aws: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    events_queue: Callable[[], list[dict[str, Any]]],
    name: str,
    token_path: str,
    label: str,
) -> None:
    """An edge network in front of the token endpoint blocks the refresh with its own HTML 403 page, then a
    proxy answers a bare 401: neither is the provider's word that the consent ended (that is invalid_grant,
    qbo.md 1.5). The connection stays connected with its grant untouched, the health says the checks are
    being retried, and the first check the provider answers again refreshes it; nobody is told to
    reconnect."""
    sandbox = getattr(sandboxes, name)
    connect(api, sandboxes, name)
    monkeypatch.setattr(tokens, "utc_now", clock_of(sandbox))
    grant_id = tokens.asking(connection(name)).grant_id
    sandbox.clock.advance(55 * 60)  # the access token is due at the next check
    sandbox.inject("blocked", method="POST", path_prefix=token_path, count=2)
    sandbox.inject("401_empty", method="POST", path_prefix=token_path, count=2)
    for _ in range(4):
        _tick(aws)
        view = status_of(api, name)
        assert view["status"] == "connected" and not view.get("reconnect_hint"), view
        assert (
            "tried again every few minutes" in view["last_error"]["reason"]
            and label in view["last_error"]["reason"]
        )
        sandbox.clock.advance(TICK)
    grant = store.get_grant(grant_id)
    assert grant is not None and (grant.status, grant.version) == ("active", 1)  # nothing expired nor spent
    assert "ConnectionExpired" not in [e["detail-type"] for e in events_queue()]  # no one told to reconnect

    _tick(aws)  # the provider answers again
    view = status_of(api, name)
    assert view["status"] == "connected" and view["last_error"] is None
    assert store.get_grant(grant_id).version == 2  # type: ignore[union-attr]
