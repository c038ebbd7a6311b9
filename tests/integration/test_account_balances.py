"""Account balances read back through our provider clients from the sandboxes' trial balances, after
journals posted through the same clients (one dated after the as-of date, which must not count)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest

from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero import XeroSandbox
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from shared.config import ProviderUrls
from shared.domain.connections import ClientCredentials
from shared.domain.postings import Journal, JournalLine
from shared.errors import PermissionDenied
from shared.providers import get_provider, http
from shared.providers.base import AccountingProvider, Session

APP = ClientCredentials(client_id="balances-app", client_secret="balances-secret")
REDIRECT = "https://app.example/oauth/callback"
USER = ("demo@partsemble.test", "demo")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
AS_OF = date(2026, 10, 31)


class Budget:
    """Admits every call (the rate budget itself is tested in tests/unit/test_provider_http.py)."""

    def acquire(
        self, key: str, *, window_seconds: int, window_cap: int, concurrent: int, daily_reserve: int
    ) -> float:
        return 0.0

    def release(self, key: str) -> None:
        pass

    def note_daily_remaining(self, key: str, remaining: int) -> None:
        pass


@pytest.fixture
def reach(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, httpx.MockTransport]]:
    """The sandboxes on the clients' HTTP path, by host."""
    transports: dict[str, httpx.MockTransport] = {}

    def route(request: httpx.Request) -> httpx.Response:
        return transports[request.url.host].handle_request(request)

    monkeypatch.setattr(http, "default_transport", lambda: httpx.MockTransport(route))
    yield transports


def connected(
    name: str, sandbox: QboSandbox | XeroSandbox, tenant: str, reach: dict[str, httpx.MockTransport]
) -> tuple[AccountingProvider, Session]:
    """Our client, connected to the sandbox the way the service connects (consent, code exchange)."""
    base = f"http://{name}.balances.test"
    sandbox.base_url = base
    sandbox.clock.set(NOW)
    sandbox.register_app(APP.client_id, APP.client_secret, [REDIRECT])
    reach[f"{name}.balances.test"] = sandbox.transport()
    paths = {
        "qbo": ("/connect/oauth2", "/oauth2/v1/tokens/bearer", "/v2/oauth2/tokens/revoke"),
        "xero": ("/identity/connect/authorize", "/connect/token", "/connect/revocation"),
    }[name]
    urls = ProviderUrls(authorize=base + paths[0], token=base + paths[1], revoke=base + paths[2], api=base)
    provider = get_provider("qbo" if name == "qbo" else "xero", lambda: APP, urls)
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with httpx.Client(transport=sandbox.transport()) as browser:
        answer = walk_consent(
            browser,
            provider.authorize_url(state="s", redirect_uri=REDIRECT, code_challenge=challenge),
            username=USER[0],
            password=USER[1],
            choose=[tenant],
        )
    grant = provider.exchange_code(
        code=answer["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
        now=NOW,
        realm_id=answer.get("realmId"),
    )
    access = grant.tokens.access_token
    return provider, Session(tenant_id=tenant, token=lambda refused: access, budget=Budget())


def journal(marker: str, on: date, debit: str, credit: str, amount: str, currency: str) -> Journal:
    return Journal(
        marker=marker,
        date=on,
        currency=currency,
        narration=f"balances {marker}",
        lines=(
            JournalLine(account_id=debit, side="debit", amount=Decimal(amount), description="debit"),
            JournalLine(account_id=credit, side="credit", amount=Decimal(amount), description="credit"),
        ),
    )


def test_qbo_balances_come_from_the_trial_balance(reach: dict[str, httpx.MockTransport]) -> None:
    provider, session = connected("qbo", QboSandbox(seed=True), DEMO_REALM_ID, reach)
    waste, finished = "7", "10"
    provider.post_journal(
        session, journal("BAL-1", date(2026, 10, 12), waste, finished, "12.34", "USD"), idempotency_key="k1"
    )
    provider.post_journal(
        session, journal("BAL-2", date(2026, 11, 3), waste, finished, "5.00", "USD"), idempotency_key="k2"
    )

    balances = provider.account_balances(session, AS_OF)

    # the demo items' starting values (starting quantity x PurchaseCost) sit in Finished Goods and Raw
    # Materials; the demo sales up to AS_OF post income, A/R or the bank, and COGS out of Finished Goods
    assert balances == {
        waste: Decimal("12.34"),
        finished: Decimal("1166.66"),  # 1515.80 starting value - 336.80 sold - 12.34
        "11": Decimal("1385.00"),
        "9": Decimal("-2900.80"),  # Opening Balance Equity
        "12": Decimal("112.50"),  # Business Checking: the two sales receipts
        "13": Decimal("767.61"),  # Accounts Receivable: the invoices less the credit memo
        "6": Decimal("-880.11"),  # Sales of Product Income
        "2": Decimal("336.80"),  # Cost of Goods Sold
    }
    assert all(isinstance(v, Decimal) for v in balances.values())
    assert provider.account_balances(session, date(2026, 11, 30))[waste] == Decimal("17.34")


def test_xero_balances_come_from_the_trial_balance_ytd_columns(reach: dict[str, httpx.MockTransport]) -> None:
    provider, session = connected("xero", XeroSandbox(seed=True), AU_TENANT_ID, reach)
    cogs, inventory = demo_id(AU_TENANT_ID, "account", "310"), demo_id(AU_TENANT_ID, "account", "630")
    provider.post_journal(
        session, journal("BAL-1", date(2026, 9, 20), cogs, inventory, "20.00", "AUD"), idempotency_key="k1"
    )
    provider.post_journal(
        session, journal("BAL-2", date(2026, 10, 12), cogs, inventory, "12.34", "AUD"), idempotency_key="k2"
    )
    provider.post_journal(
        session, journal("BAL-3", date(2026, 11, 3), cogs, inventory, "5.00", "AUD"), idempotency_key="k3"
    )

    balances = provider.account_balances(session, AS_OF)

    # the demo's approved sales and bills are in the ledger too (as in Xero), on other accounts than these
    assert (balances[cogs], balances[inventory]) == (Decimal("32.34"), Decimal("-32.34"))
    assert demo_id(AU_TENANT_ID, "account", "200") in balances  # the demo's sales
    assert provider.account_balances(session, date(2026, 11, 30))[cogs] == Decimal("37.34")


def test_xero_without_the_report_scope_is_permission_denied(
    reach: dict[str, httpx.MockTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.providers.xero import client

    monkeypatch.setattr(client, "SCOPE", client.SCOPE.replace(" accounting.reports.trialbalance.read", ""))
    provider, session = connected("xero", XeroSandbox(seed=True), AU_TENANT_ID, reach)
    with pytest.raises(PermissionDenied):
        provider.account_balances(session, AS_OF)
