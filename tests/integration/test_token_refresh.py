"""Tokens stay usable: one refresh under concurrency, recovery from a lost Xero refresh, expiry on
revocation (once, with an event), the scheduled pass, and reconnecting."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
import pytest

from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import LocalStack
from infra.sandboxes.common import Sandbox
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared import aws as shared_aws
from shared.errors import AuthExpired, ProviderUnavailable
from shared.services import tokens
from shared.store import connections as store
from shared.store import keys
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_connect import status_of

QBO_TOKEN_PATH = "/oauth2/v1/tokens/bearer"
XERO_TOKEN_PATH = "/connect/token"


def connection(provider: str, organisation: str = "org-a") -> store.Connection:
    found = store.get_connection(organisation, provider)
    assert found is not None
    return found


def clock_of(sandbox: Sandbox) -> Callable[[], datetime]:
    return sandbox.clock.now


@pytest.fixture
def events_queue(aws: LocalStack) -> Callable[[], list[dict[str, Any]]]:
    """Everything the service puts on the event bus, read back through a rule and a queue."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="captured-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="capture", EventPattern=json.dumps({"source": ["partsemble.accounting"]}))
    events.put_targets(Rule="capture", Targets=[{"Id": "q", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return read


def test_fifty_concurrent_callers_cause_exactly_one_refresh(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600)  # the access token has expired for everyone
    before = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    results: list[str] = []
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            results.append(
                tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo), sleep=time.sleep)[0].access_token
            )
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=caller) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) - before == 1
    assert len(set(results)) == 1 and len(results) == 50
    grant = store.get_grant(asker.grant_id)
    assert grant is not None and grant.version == 2


def test_xero_refresh_whose_response_is_lost_recovers_with_the_previous_token(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    current = connection("xero")
    sandboxes.xero.clock.advance(1800)
    sandboxes.xero.inject(
        "lost_response", method="POST", path_prefix=XERO_TOKEN_PATH
    )  # Xero rotated; we never heard
    with pytest.raises(ProviderUnavailable):
        tokens.fresh_tokens(tokens.asking(current), clock=clock_of(sandboxes.xero))
    fresh, refreshed = tokens.fresh_tokens(tokens.asking(current), clock=clock_of(sandboxes.xero))
    assert refreshed
    tenant = tokens.provider("xero").check_tenant(fresh.access_token, tokens.tenant_of(current))
    assert tenant.name == "Partsemble Demo (AU)"


def test_xero_crash_between_refresh_and_store_recovers(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    current = connection("xero")
    sandboxes.xero.clock.advance(1800)
    dynamodb = shared_aws.table().meta.client

    def crash(params: dict[str, Any], **_: Any) -> None:
        if "#version + :one" in str(params.get("UpdateExpression", "")):  # the new tokens being stored
            raise SystemExit("the process died after Xero rotated the refresh token")

    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", crash)
    try:
        with pytest.raises(SystemExit):
            tokens.fresh_tokens(tokens.asking(current), clock=clock_of(sandboxes.xero))
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", crash)
    sandboxes.xero.clock.advance(tokens.LEASE_SECONDS + 1)  # the dead worker's lease runs out
    fresh, refreshed = tokens.fresh_tokens(tokens.asking(current), clock=clock_of(sandboxes.xero))
    assert refreshed
    assert (
        tokens.provider("xero").check_tenant(fresh.access_token, tokens.tenant_of(current)).tenant_id
        == AU_TENANT_ID
    )


def test_a_refresh_reads_the_client_secret_before_its_lease_and_reaches_xero_well_within_it(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A second refresher may take the lease once it lapses: the first one's request must have reached Xero
    by then, or Xero takes it as a retry of the same refresh token and drops the second's new one. So
    nothing slow runs between the lease and the request (the client secret, a cold start's first Secrets
    Manager read, is read before), and the request reaches Xero within its bounded timeouts."""
    from shared.providers.http import TOKEN_TIMEOUT
    from shared.services import credentials

    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    current = connection("xero")
    sandboxes.xero.clock.advance(1800)
    credentials.clear()  # a cold start: the client secret is not read yet
    steps: list[str] = []
    dynamodb, secrets = shared_aws.table().meta.client, shared_aws.client("secretsmanager")
    until: list[int] = []

    def leased(params: dict[str, Any], **_: Any) -> None:
        if "lease_owner = :o" in str(params.get("UpdateExpression", "")):
            steps.append("lease")
            until.append(int(params["ExpressionAttributeValues"][":until"]))

    def secret(**_: Any) -> None:
        steps.append("secret")
        sandboxes.xero.clock.advance(40)  # a slow first read: the lease runs from after it

    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", leased)
    secrets.meta.events.register("before-call.secrets-manager.GetSecretValue", secret)
    try:
        _, refreshed = tokens.fresh_tokens(tokens.asking(current), clock=clock_of(sandboxes.xero))
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", leased)
        secrets.meta.events.unregister("before-call.secrets-manager.GetSecretValue", secret)
    assert refreshed and steps == ["secret", "lease"]
    assert until[0] >= sandboxes.xero.clock.now().timestamp() - 1 + tokens.LEASE_SECONDS
    reached = (TOKEN_TIMEOUT.pool or 0) + (TOKEN_TIMEOUT.connect or 0) + (TOKEN_TIMEOUT.write or 0)
    assert reached <= tokens.LEASE_SECONDS / 2
    # a live refresher's answer, read and stored, lands inside its lease: no one takes it over meanwhile
    answered = tokens.SEND_WITHIN + reached + (TOKEN_TIMEOUT.read or 0)
    assert answered + sum(tokens.STORE_WAITS) < tokens.LEASE_SECONDS


@pytest.mark.parametrize("slow_writes", [1, 100])
def test_a_refresh_whose_lease_write_was_slow_takes_a_fresh_lease_and_gives_up_after_three(
    api: Api, sandboxes: Sandboxes, slow_writes: int
) -> None:
    """A lease whose own write took long has too little left to send the refresh in (a second refresher
    may take it as it lapses): it is given up and taken again, and the refresh goes out under the new one;
    after three slow ones the refresh is left for later (the store is struggling), never looped."""
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    current = connection("xero")
    sandboxes.xero.clock.advance(1800)
    dynamodb = shared_aws.table().meta.client
    leases: list[int] = []

    def slow(params: dict[str, Any], **_: Any) -> None:
        if "lease_owner = :o" in str(params.get("UpdateExpression", "")):
            leases.append(int(params["ExpressionAttributeValues"][":until"]))
            if len(leases) <= slow_writes:
                sandboxes.xero.clock.advance(tokens.SEND_WITHIN + 5)  # this write answers late

    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", slow)
    try:
        fresh, refreshed = tokens.fresh_tokens(
            tokens.asking(current), clock=clock_of(sandboxes.xero), sleep=lambda _: None
        )
    except ProviderUnavailable:
        fresh, refreshed = None, False
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", slow)
    if slow_writes == 1:
        assert refreshed and fresh is not None and len(leases) == 2
        assert leases[1] >= leases[0] + tokens.SEND_WITHIN
        assert tokens.provider("xero").check_tenant(fresh.access_token, tokens.tenant_of(current)).tenant_id
    else:
        assert not refreshed and len(leases) == tokens.SLOW_LEASES
        assert store.get_grant(current.grant_id or "").version == 1  # type: ignore[union-attr]


def test_revoked_connection_expires_once_with_an_event_and_no_retry_loop(
    api: Api, sandboxes: Sandboxes, events_queue: Callable[[], list[dict[str, Any]]]
) -> None:
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.revoke_realm(DEMO_REALM_ID)  # the person removed Partsemble in QuickBooks
    sandboxes.qbo.clock.advance(3600)
    with pytest.raises(AuthExpired) as refused:
        tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo))
    calls = sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH)
    with pytest.raises(AuthExpired) as again:
        tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo))
    assert sandboxes.qbo.call_count("POST", QBO_TOKEN_PATH) == calls  # never retried in a loop
    assert again.value.message == refused.value.message  # the stored reason, said as first (not "qbo: qbo:")
    assert refused.value.message.startswith("qbo: ") and refused.value.message.count("qbo: ") == 1
    view = status_of(api, "qbo")
    assert view["status"] == "expired"
    assert "QuickBooks Online no longer accepts Partsemble's access" in view["last_error"]["reason"]
    assert "invalid_grant" in view["last_error"]["detail"]
    assert "Reconnect" in view["reconnect_hint"]
    expired = [e for e in events_queue() if e["detail-type"] == "ConnectionExpired"]
    assert [e["detail"]["organisation_id"] for e in expired] == ["org-a"]
    assert expired[0]["detail"]["provider"] == "qbo"

    landed = connect(api, sandboxes, "qbo")  # reconnecting restores it
    assert landed.page.status == 200
    assert status_of(api, "qbo")["status"] == "connected"
    assert [e["detail-type"] for e in events_queue()] == ["ConnectionRestored"]


def test_a_connection_left_connected_on_an_expired_grant_is_marked_by_one_conditional_write(
    api: Api, sandboxes: Sandboxes, events_queue: Callable[[], list[dict[str, Any]]]
) -> None:
    """The grant was marked expired but its connection's write failed (throttled): the next refusal marks
    the connection in one write conditional on it still showing as connected on that grant, with no read of
    the connection before it and no second marking of the grant."""
    connect(api, sandboxes, "qbo")
    grant_id = connection("qbo").grant_id or ""
    store.mark_grant(grant_id, "expired", reason="qbo: invalid_grant", now=int(time.time()))
    made: list[str] = []

    def count(model: Any, **_: Any) -> None:
        made.append(model.name)

    dynamodb = shared_aws.table().meta.client
    dynamodb.meta.events.register("before-call.dynamodb", count)
    try:
        tokens.connection_refused(grant_id, reason="qbo: invalid_grant", now=tokens.utc_now())
        assert made == ["GetItem", "UpdateItem"]  # the grant read, the connection's conditional write
        view = status_of(api, "qbo")
        assert view["status"] == "expired" and view["last_error"]["detail"] == "qbo: invalid_grant"
        made.clear()
        tokens.connection_refused(grant_id, reason="qbo: invalid_grant", now=tokens.utc_now())
        assert made == ["GetItem", "UpdateItem"]  # shown as expired already: the write's condition refuses
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb", count)
    assert [e["detail-type"] for e in events_queue()] == ["ConnectionExpired"]  # told once


def test_scheduled_pass_notices_a_revocation_within_one_tick(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    connect(api, sandboxes, "qbo")
    sandboxes.qbo.revoke_realm(DEMO_REALM_ID)
    report = Scheduler(aws).fire("TokenRefreshFunction")
    assert (report["due"], report["queued"]) == (1, 1)  # the schedule only queues
    assert status_of(api, "qbo")["status"] == "connected"
    assert Poller(aws).drain() == 1
    assert status_of(api, "qbo")["status"] == "expired"


def test_scheduled_pass_refreshes_tokens_close_to_expiry_and_keeps_idle_ones_alive(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    monkeypatch.setattr(tokens, "utc_now", clock_of(sandboxes.xero))  # the service's clock: the sandbox's

    def tick() -> int:
        """One scheduled tick through the queue; the refreshes it made."""
        refreshes = sandboxes.xero.call_count("POST", XERO_TOKEN_PATH)
        assert Scheduler(aws).fire("TokenRefreshFunction")["queued"] == 1
        assert Poller(aws).drain() == 1
        return sandboxes.xero.call_count("POST", XERO_TOKEN_PATH) - refreshes

    sandboxes.xero.clock.advance(25 * 60)
    assert tick() == 1  # 5 minutes left is inside the scheduled margin
    for _ in range(3):  # idle for 59 days three times: each pass keeps the 60-day refresh token alive
        sandboxes.xero.clock.advance(59 * 24 * 3600)
        assert tick() == 1
    assert status_of(api, "xero")["status"] == "connected"


def test_a_tick_queues_only_connections_due_and_a_message_queued_twice_checks_once(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    connect(api, sandboxes, "qbo", organisation="org-a")
    connect(api, sandboxes, "xero", organisation="org-b", choose=[AU_TENANT_ID])
    assert Scheduler(aws).fire("TokenRefreshFunction")["queued"] == 2
    assert Scheduler(aws).fire("TokenRefreshFunction")["queued"] == 2  # a backlog: queued again
    calls = sandboxes.qbo.call_count("GET", "/v3/company/")
    assert Poller(aws).drain() == 4
    assert sandboxes.qbo.call_count("GET", "/v3/company/") - calls == 1  # the duplicate skipped the check
    assert Scheduler(aws).fire("TokenRefreshFunction")["due"] == 0  # both checked moments ago


def test_connections_spread_over_index_shards_and_the_pass_reads_every_shard(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    assert len({keys.connections_shard_pk(f"org-{n}") for n in range(200)}) == keys.CONNECTION_SHARDS
    # one organisation in each shard (found by the hash the store uses)
    organisations: dict[str, str] = {}
    for n in range(200):
        organisations.setdefault(keys.connections_shard_pk(f"org-{n}"), f"org-{n}")
    assert len(organisations) == keys.CONNECTION_SHARDS
    table = boto3.resource("dynamodb").Table(aws.physical("Table"))
    for shard, organisation in organisations.items():
        connect(api, sandboxes, "qbo", organisation=organisation)
        key = {"pk": keys.org_pk(organisation), "sk": keys.connection_sk("qbo")}
        assert table.get_item(Key=key)["Item"]["gsi1pk"] == shard
    assert sorted(c.organisation_id for c in store.all_connections()) == sorted(organisations.values())
    assert Scheduler(aws).fire("TokenRefreshFunction")["queued"] == keys.CONNECTION_SHARDS
    assert Poller(aws).drain() == keys.CONNECTION_SHARDS


def test_a_token_the_provider_refuses_mid_run_is_refreshed_once_and_the_call_repeated(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    current = connection("qbo")
    seen: list[str] = []

    def call(token: str) -> str:
        seen.append(token)
        if len(seen) == 1:
            raise AuthExpired("qbo", "the provider refused the access token")
        return "ok"

    assert tokens.call_with_token(current, call, clock=clock_of(sandboxes.qbo)) == "ok"
    assert len(seen) == 2 and seen[0] != seen[1]


def test_pending_refresh_state_survives_a_provider_outage(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    asker = tokens.asking(connection("qbo"))
    sandboxes.qbo.clock.advance(3600)
    sandboxes.qbo.inject("503", method="POST", path_prefix=QBO_TOKEN_PATH)
    with pytest.raises(ProviderUnavailable):
        tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo))
    assert status_of(api, "qbo")["status"] == "connected"  # transient: nothing marked, nothing lost
    assert tokens.fresh_tokens(asker, clock=clock_of(sandboxes.qbo))[1] is True


def test_one_broken_connection_never_stops_the_scheduled_pass(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    connect(api, sandboxes, "qbo", organisation="org-a")
    connect(api, sandboxes, "xero", organisation="org-b", choose=[AU_TENANT_ID])
    broken = keys.grant_pk(str(connection("qbo", "org-a").grant_id))
    dynamodb = shared_aws.table().meta.client

    def corrupt_grant(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", {}).get("pk") == broken:  # org-a's grant row can't be read
            raise RuntimeError("a corrupt row")

    dynamodb.meta.events.register("provide-client-params.dynamodb.GetItem", corrupt_grant)
    assert Scheduler(aws).fire("TokenRefreshFunction")["queued"] == 2
    delivered = Poller(aws).poll_once()
    assert (delivered.received, delivered.failed) == (2, 1)  # org-a's record comes back later (then the DLQ)
    assert status_of(api, "xero", organisation="org-b")["last_checked_at"]
    dynamodb.meta.events.unregister("provide-client-params.dynamodb.GetItem", corrupt_grant)
    assert status_of(api, "qbo", organisation="org-a")["status"] == "connected"


def test_a_refresh_refused_for_the_apps_own_credentials_frees_its_lease_at_once(
    api: Api, sandboxes: Sandboxes
) -> None:
    """invalid_client: the client secret was changed at Intuit and not in this deployment. The refresh is
    refused saying so, the stored tokens stay as they were, and the lease is let go: the next caller is told
    the same at once instead of waiting out a lease nobody holds any more (30 s each)."""
    from infra.local.testbed import PUBLIC_BASE_URL, QBO_TEST_APP
    from shared.errors import ProviderNotConfigured

    connect(api, sandboxes, "qbo")
    current = connection("qbo")
    before = store.get_grant(current.grant_id)
    sandboxes.qbo.clock.advance(3600)  # the access token has expired
    sandboxes.qbo.register_app(
        QBO_TEST_APP[0], "rotated-at-intuit", [f"{PUBLIC_BASE_URL}/oauth/qbo/callback"]
    )

    def never_wait(seconds: float) -> None:
        raise AssertionError(f"waited {seconds} s for a lease")

    for _ in range(2):  # the second caller finds no lease in its way
        with pytest.raises(ProviderNotConfigured, match="client credentials"):
            tokens.fresh_tokens(tokens.asking(current), clock=clock_of(sandboxes.qbo), sleep=never_wait)
    after = store.get_grant(current.grant_id)
    assert after is not None and before is not None
    assert (after.version, after.status) == (before.version, before.status)
    assert connection("qbo").status == "connected"
