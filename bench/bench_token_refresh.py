"""Token refresh under pressure, against the sandboxes in-process:
(1) 50 concurrent callers needing a token for the same expired connection: provider refresh calls
    (target exactly 1) and DynamoDB / KMS requests per caller, then a warm function's repeated reads;
(2) a crash injected between Xero's refresh and the store, 100 times: is the connection still usable?

The callers race on DynamoDB's conditional writes (the refresh lease). DynamoDB applies each request
atomically; moto does not across threads, so moto_stack handles its requests one at a time: the race is
decided as DynamoDB would decide it, and the one refresh is the service's doing, not moto's timing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from infra.local.testbed import Sandboxes, moto_stack, sandboxes_installed
from infra.sandboxes.consent import walk_consent
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared.aws import client, table
from shared.services import connections, tokens
from shared.store import connections as store

CALLERS = 50
TRIALS = 100


def connect(sandboxes: Sandboxes, provider: str, choose: list[str] | None = None) -> store.Connection:
    organisation = f"org-bench-{provider}"
    started = connections.start_connect(organisation, provider, switch_company=False, now=datetime.now(UTC))
    with sandboxes.client() as browser:
        params = walk_consent(
            browser, started.authorize_url, username="demo@partsemble.test", password="demo", choose=choose
        )
    connections.complete_callback(provider, params, started.cookie_value, datetime.now(UTC))
    found = store.get_connection(organisation, provider)
    assert found is not None
    return found


def count_requests() -> Counter[str]:
    counts: Counter[str] = Counter()
    for service, api in (("dynamodb", table().meta.client), ("kms", client("kms"))):
        api.meta.events.register(f"before-call.{service}", lambda s=service, **_: counts.update([s]))
    return counts


def concurrent_callers(sandboxes: Sandboxes) -> None:
    asker = tokens.asking(connect(sandboxes, "qbo"))
    sandboxes.qbo.clock.advance(3600)
    before = sandboxes.qbo.call_count("POST", "/oauth2/v1/tokens/bearer")
    counts = count_requests()
    tokens_seen: list[str] = []
    started = time.perf_counter()
    threads = [
        threading.Thread(
            target=lambda: tokens_seen.append(
                tokens.fresh_tokens(asker, clock=sandboxes.qbo.clock.now)[0].access_token
            )
        )
        for _ in range(CALLERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    refreshes = sandboxes.qbo.call_count("POST", "/oauth2/v1/tokens/bearer") - before
    print(
        f"{CALLERS} concurrent callers, one expired QBO connection: {refreshes} provider refresh call(s) "
        f"(target 1); {len(set(tokens_seen))} distinct access token(s) handed out; {elapsed:.2f} s"
    )
    print(
        f"  DynamoDB requests per caller: {counts['dynamodb'] / CALLERS:.2f}; "
        f"KMS requests per caller: {counts['kms'] / CALLERS:.2f}"
    )
    counts.clear()
    for _ in range(CALLERS):  # one warm function reading the token again and again
        tokens.fresh_tokens(asker, clock=sandboxes.qbo.clock.now)
    print(
        f"  {CALLERS} more reads by a warm function: {counts['dynamodb']} DynamoDB and {counts['kms']} KMS "
        "requests (each stored ciphertext is opened once)"
    )


def crash_trials(sandboxes: Sandboxes) -> None:
    connection = connect(sandboxes, "xero", choose=[AU_TENANT_ID])
    original = store.store_refreshed
    recovered = 0

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("process died after Xero rotated the refresh token")

    for _ in range(TRIALS):
        sandboxes.xero.clock.advance(1800)
        store.store_refreshed = crash
        try:
            tokens.fresh_tokens(tokens.asking(connection), clock=sandboxes.xero.clock.now)
        except RuntimeError:
            pass
        finally:
            store.store_refreshed = original
        sandboxes.xero.clock.advance(tokens.LEASE_SECONDS + 1)
        try:
            fresh, _ = tokens.fresh_tokens(tokens.asking(connection), clock=sandboxes.xero.clock.now)
            tokens.provider("xero").check_tenant(fresh.access_token, tokens.tenant_of(connection))
            recovered += 1
        except Exception as err:  # a failed trial is counted and reported, not raised
            print(f"  trial failed: {type(err).__name__}: {err}")
    print(
        f"Xero crash between refresh and store: connection usable afterwards in {recovered}/{TRIALS} trials "
        f"({100 * recovered / TRIALS:.0f}%, target 100%)"
    )


def main() -> None:
    with moto_stack() as stack, sandboxes_installed(stack) as sandboxes:
        concurrent_callers(sandboxes)
        crash_trials(sandboxes)


if __name__ == "__main__":
    main()
