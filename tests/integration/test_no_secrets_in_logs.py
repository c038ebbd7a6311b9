"""No token, code, client secret or Authorization header reaches a log line, error or response."""

from __future__ import annotations

from datetime import timedelta

import pytest

from infra.local.scheduler import Scheduler
from infra.local.stack import LocalStack
from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from shared.services import tokens
from shared.store import connections as store
from tests.conftest import QBO_TEST_APP, XERO_TEST_APP, Api, Sandboxes
from tests.integration.connect_flow import DEMO_USER, callback, start


def test_full_flows_log_no_secret(
    api: Api,
    sandboxes: Sandboxes,
    aws: LocalStack,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets_seen: set[str] = {QBO_TEST_APP[1], XERO_TEST_APP[1]}
    responses: list[str] = []
    for provider in ("qbo", "xero"):
        started = start(api, provider)
        with sandboxes.client() as browser:
            params = walk_consent(
                browser, started.authorize_url, username=DEMO_USER[0], password=DEMO_USER[1]
            )
        secrets_seen |= {params["code"], started.cookie.split("=", 1)[1]}
        responses.append(callback(api, provider, params, started.cookie).body.decode())
        connection = store.get_connection("org-a", provider)
        assert connection is not None
        asker = tokens.asking(connection)
        grant = store.get_grant(asker.grant_id)
        assert grant is not None
        first = tokens.stored_tokens(grant, asker)
        secrets_seen |= {first.access_token, first.refresh_token}
        sandbox = sandboxes.qbo if provider == "qbo" else sandboxes.xero
        sandbox.clock.advance(3600)
        fresh, _ = tokens.fresh_tokens(asker, clock=sandbox.clock.now)
        secrets_seen |= {fresh.access_token, fresh.refresh_token}
        responses.append(api.call("GET", "/integrations").body.decode())
        responses.append(api.call("POST", f"/integrations/{provider}/disconnect").body.decode())
    sandboxes.qbo.clock.advance(timedelta(days=1).total_seconds())
    Scheduler(aws).fire("TokenRefreshFunction")
    # a failure path that logs an exception with the provider's response
    started = start(api, "qbo")
    responses.append(
        callback(
            api,
            "qbo",
            {"state": "x.y", "code": "leaky-code-value-789", "realmId": DEMO_REALM_ID},
            started.cookie,
        ).body.decode()
    )
    secrets_seen.add("leaky-code-value-789")

    output = capsys.readouterr()
    logged = output.out + output.err + caplog.text + "".join(responses)
    assert "connection completed" in logged  # the flows did log
    leaked = sorted(s for s in secrets_seen if s and s in logged)
    assert leaked == []
