"""Fixtures: moto holding the template's resources, the gateway, tokens, the provider sandboxes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from infra.local.template import load_template

# Powertools reads its settings when the shared Logger and Metrics are created at import, as in Lambda.
for _name, _value in load_template()["Globals"]["Function"]["Environment"]["Variables"].items():
    if _name.startswith(("POWERTOOLS_", "PYDANTIC_")) and isinstance(_value, str):
        os.environ.setdefault(_name, _value)

from infra.local.devauth import DevIdentityProvider  # noqa: E402 - after the environment above
from infra.local.gateway import Gateway, GatewayResponse  # noqa: E402
from infra.local.stack import LocalStack  # noqa: E402
from infra.local.testbed import (  # noqa: E402
    APP_ORIGIN,
    PARAMETERS,
    PUBLIC_BASE_URL,
    QBO_BASE,
    QBO_TEST_APP,
    XERO_BASE,
    XERO_TEST_APP,
    Sandboxes,
    moto_stack,
    sandboxes_installed,
)
from shared.domain.catalog import Product  # noqa: E402
from shared.store import catalog as catalog_store  # noqa: E402

TEST_PARAMETERS = PARAMETERS
__all__ = [
    "APP_ORIGIN",
    "PUBLIC_BASE_URL",
    "QBO_BASE",
    "QBO_TEST_APP",
    "XERO_BASE",
    "XERO_TEST_APP",
    "Api",
    "Sandboxes",
]


@pytest.fixture
def aws() -> Iterator[LocalStack]:
    """moto with every resource of template.yaml, and the functions' environment set from it."""
    with moto_stack() as stack:
        yield stack


@pytest.fixture(scope="session")  # its RSA key costs a twentieth of a second to make: one a worker
def identity() -> DevIdentityProvider:
    return DevIdentityProvider(issuer=PARAMETERS["JwtIssuer"], audience=PARAMETERS["JwtAudience"])


class Api:
    """The HTTP API as a browser or the app calls it, through the local gateway (no sockets)."""

    def __init__(self, gateway: Gateway, identity: DevIdentityProvider) -> None:
        self.gateway = gateway
        self.identity = identity

    def call(
        self,
        method: str,
        path: str,
        *,
        organisation: str | None = "org-a",
        json_body: Any = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> GatewayResponse:
        all_headers = dict(headers or {})
        if organisation is not None:
            all_headers.setdefault("authorization", f"Bearer {self.identity.mint(organisation)}")
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("content-type", "application/json")
        return self.gateway.request(method, path, all_headers, body)

    def pull_sales(self, organisation: str = "org-a") -> list[dict[str, Any]]:
        """'Pull now' as the app calls it (202, the pulls queued), then the sales pull queue drained, as
        Lambda's event source would; returns what was queued."""
        from infra.local.poller import Poller

        answer = self.call("POST", "/sales/pull", organisation=organisation)
        assert answer.status == 202, answer.body
        Poller(self.gateway.stack).drain()
        queued: list[dict[str, Any]] = answer.json()
        return queued


@pytest.fixture
def api(aws: LocalStack, identity: DevIdentityProvider) -> Api:
    return Api(Gateway(aws, identity), identity)


VIRTUAL_START = 1_800_000_000.0  # a rate-budget window starts here


@pytest.fixture
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Retries wait through this list instead of the clock, and pacing waits outside it: each wait moves a
    virtual clock that the rate budget reads, which starts at the beginning of one of its windows, so whether
    pacing steps in never depends on the machine's speed (only on the retries' jitter, which the list's
    count therefore never depends on)."""
    from shared.providers import http
    from shared.services import sessions
    from shared.store.rate_budget import DynamoRateBudget

    waits: list[float] = []
    now = [VIRTUAL_START]
    pacing = [False]

    def sleep(seconds: float) -> None:
        if not pacing[0]:
            waits.append(seconds)
        now[0] += seconds

    def pace(seconds: float) -> None:
        """Through whichever sleep is in place (a test's own clock may have replaced this one), uncounted."""
        pacing[0] = True
        try:
            http.sleep(seconds)
        finally:
            pacing[0] = False

    monkeypatch.setattr(http, "sleep", sleep)
    monkeypatch.setattr(http, "pace", pace)
    monkeypatch.setattr(sessions, "DynamoRateBudget", lambda: DynamoRateBudget(clock=lambda: now[0]))
    yield waits


@pytest.fixture
def sandboxes(aws: LocalStack) -> Iterator[Sandboxes]:
    """Seeded QBO and Xero sandboxes on the service's HTTP path, with this deployment's OAuth apps."""
    with sandboxes_installed(aws) as both:
        yield both


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SKUs of every product the import writes, created or updated (the real store still writes them)."""
    skus: list[str] = []

    write_products = catalog_store.write_products

    def recording(
        organisation_id: str,
        new: Sequence[Product],
        changed: Sequence[catalog_store.ProductChange] = (),
        made_by: catalog_store.MadeBy | None = None,
    ) -> list[str]:
        skus.extend([*(p.sku for p in new), *(c.product.sku for c in changed)])
        return write_products(organisation_id, new, changed, made_by)

    monkeypatch.setattr(catalog_store, "write_products", recording)
    return skus


# The files that take longest, first: each runs whole on one worker (``--dist loadfile``), so one left for the
# end keeps a worker busy while the other idles. Longest first, the two workers end nearly together. Not the
# hour of exports: it holds real-time bounds, and next to these, the busiest minutes, it missed one (a
# QuickBooks export 29 s late behind the local ExportFunction's one-at-a-time Xero waits).
LONGEST_FIRST = (
    "integration/test_outage_sweep.py",
    "integration/test_books_random_histories.py",
    "browser/test_books_page.py",
    "integration/test_probe_catalog.py",
    "integration/test_books.py",
    "integration/test_books_exact_accountant.py",
    "integration/test_record_paging.py",
    "integration/test_probe_books_accountant.py",
    "browser/test_integrations_page.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.as_posix()
        return next(
            (n for n, name in enumerate(LONGEST_FIRST) if path.endswith(f"tests/{name}")), len(LONGEST_FIRST)
        )

    items.sort(key=rank)  # stable: every other file, and each file's tests, keep their order
