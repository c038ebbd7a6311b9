"""Fixtures: fake AWS credentials, moto holding the template's resources, the gateway, tokens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from infra.local.template import load_template

# Powertools reads its settings when the shared Logger and Metrics are created at import, as in Lambda.
for _name, _value in load_template()["Globals"]["Function"]["Environment"]["Variables"].items():
    if _name.startswith("POWERTOOLS_") and isinstance(_value, str):
        os.environ.setdefault(_name, _value)

from infra.local.devauth import DevIdentityProvider  # noqa: E402 - after the environment above
from infra.local.gateway import Gateway, GatewayResponse  # noqa: E402 - after the environment above
from infra.local.stack import FAKE_AWS_ENV, LocalStack, create_from_template  # noqa: E402 - after the environment above
from shared.aws import clear_cached_clients  # noqa: E402 - after the environment above

APP_ORIGIN = "https://app.partsemble.test"
PUBLIC_BASE_URL = "https://api.partsemble.test"
QBO_BASE = "http://qbo.sandbox.test"
XERO_BASE = "http://xero.sandbox.test"
TEST_PARAMETERS = {
    "JwtIssuer": "https://identity.partsemble.test",
    "JwtAudience": "partsemble-accounting",
    "AppOrigin": APP_ORIGIN,
    "PublicBaseUrl": PUBLIC_BASE_URL,
    "QboAuthorizeUrl": f"{QBO_BASE}/connect/oauth2",
    "QboTokenUrl": f"{QBO_BASE}/oauth2/v1/tokens/bearer",
    "QboRevokeUrl": f"{QBO_BASE}/v2/oauth2/tokens/revoke",
    "QboApiUrl": QBO_BASE,
    "XeroAuthorizeUrl": f"{XERO_BASE}/identity/connect/authorize",
    "XeroTokenUrl": f"{XERO_BASE}/connect/token",
    "XeroRevokeUrl": f"{XERO_BASE}/connect/revocation",
    "XeroApiUrl": XERO_BASE,
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """moto with every resource of template.yaml, and the functions' environment set from it."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        clear_cached_clients()
        stack = create_from_template(TEST_PARAMETERS)
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        clear_cached_clients()
        yield stack
    clear_cached_clients()


@pytest.fixture
def identity() -> DevIdentityProvider:
    return DevIdentityProvider(issuer=TEST_PARAMETERS["JwtIssuer"], audience=TEST_PARAMETERS["JwtAudience"])


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
            import json

            body = json.dumps(json_body).encode()
            all_headers.setdefault("content-type", "application/json")
        return self.gateway.request(method, path, all_headers, body)


@pytest.fixture
def api(aws: LocalStack, identity: DevIdentityProvider) -> Api:
    return Api(Gateway(aws, identity), identity)


# ---- provider sandboxes reached through the service's own HTTP client ---------------------------------
QBO_TEST_APP = ("test-qbo-client", "test-qbo-secret")
XERO_TEST_APP = ("test-xero-client", "test-xero-secret")


class Sandboxes:
    def __init__(self, qbo: Any, xero: Any) -> None:
        self.qbo = qbo
        self.xero = xero
        self._by_host = {urlsplit_host(QBO_BASE): qbo, urlsplit_host(XERO_BASE): xero}

    def handle(self, request: Any) -> Any:
        return self._by_host[request.url.host].handle(request)

    def client(self) -> Any:
        """A browser-like client that reaches both sandboxes (for walking consent pages)."""
        import httpx

        return httpx.Client(transport=httpx.MockTransport(self.handle), follow_redirects=False)


def urlsplit_host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


@pytest.fixture
def sandboxes(aws: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandboxes]:
    """Seeded QBO and Xero sandboxes on the service's HTTP path, with this deployment's OAuth apps."""
    import json
    from datetime import UTC, datetime

    import boto3
    import httpx

    from infra.sandboxes.qbo import QboSandbox
    from infra.sandboxes.xero import XeroSandbox
    from shared.providers import http
    from shared.services import credentials, tokens

    now = datetime.now(UTC).replace(microsecond=0)
    qbo, xero = QboSandbox(seed=True, base_url=QBO_BASE), XeroSandbox(seed=True, base_url=XERO_BASE)
    for sandbox in (qbo, xero):
        sandbox.clock.set(now)
    qbo.register_app(*QBO_TEST_APP, [f"{PUBLIC_BASE_URL}/oauth/qbo/callback"])
    xero.register_app(*XERO_TEST_APP, [f"{PUBLIC_BASE_URL}/oauth/xero/callback"])
    boto3.client("secretsmanager").put_secret_value(
        SecretId=aws.physical("ProviderSecret"),
        SecretString=json.dumps(
            {
                "qbo": dict(zip(("client_id", "client_secret"), QBO_TEST_APP, strict=True)),
                "xero": dict(zip(("client_id", "client_secret"), XERO_TEST_APP, strict=True)),
            }
        ),
    )
    both = Sandboxes(qbo, xero)
    transport = httpx.MockTransport(both.handle)
    monkeypatch.setattr(http, "default_transport", lambda: transport)
    credentials.clear()
    tokens.provider.cache_clear()
    yield both
    credentials.clear()
    tokens.provider.cache_clear()
