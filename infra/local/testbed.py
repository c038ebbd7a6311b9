"""The service in one process for tests and benchmarks: moto holding the template's resources and
both sandboxes reached through the service's own HTTP client (an in-process transport)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from botocore.awsrequest import AWSPreparedRequest
from moto import mock_aws
from moto.core.common_types import TYPE_RESPONSE
from moto.core.models import botocore_stubber

from infra.local.moto_speed import set_up_once
from infra.local.stack import FAKE_AWS_ENV, LocalStack, aws_client, create_from_template
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.xero import XeroSandbox
from shared.aws import clear_cached_clients
from shared.providers import http
from shared.services import credentials, tokens

APP_ORIGIN = "https://app.partsemble.test"
PUBLIC_BASE_URL = "https://api.partsemble.test"
QBO_BASE = "http://qbo.sandbox.test"
XERO_BASE = "http://xero.sandbox.test"
QBO_TEST_APP = ("test-qbo-client", "test-qbo-secret")
XERO_TEST_APP = ("test-xero-client", "test-xero-secret")
PARAMETERS = {
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


@contextmanager
def environment(values: dict[str, str], drop: tuple[str, ...] = ()) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in [*values, *drop]}
    os.environ.update(values)
    for name in drop:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def one_request_at_a_time() -> Iterator[None]:
    """moto handles each AWS request whole before the next, whatever the threads calling it.

    DynamoDB applies each request atomically: a conditional write's check and its write are one step, so
    of two writers racing on one condition exactly one wins. moto runs a request's check and write as
    separate Python steps, which threads interleave; serialising its requests makes it as atomic as the
    service it stands for, so a race a test or benchmark stages is decided as DynamoDB would decide it."""
    lock = threading.RLock()  # re-entrant: a request moto handles may make another (a rule's SQS target)
    handle = botocore_stubber.process_request

    def serialised(request: AWSPreparedRequest) -> TYPE_RESPONSE | None:
        with lock:
            return handle(request)

    botocore_stubber.process_request = serialised  # type: ignore[method-assign]
    try:
        yield
    finally:
        del botocore_stubber.process_request  # the class's own method again


@contextmanager
def moto_stack(parameters: dict[str, str] = PARAMETERS) -> Iterator[LocalStack]:
    """moto with every resource of template.yaml, and the functions' environment set from it; its
    requests are handled one at a time (atomic, as AWS's are), and what each stack's set-up repeated is done
    once (``infra.local.moto_speed``)."""
    with (
        environment(FAKE_AWS_ENV, drop=("AWS_ENDPOINT_URL",)),
        set_up_once(),
        mock_aws(),
        one_request_at_a_time(),
    ):
        clear_cached_clients()
        stack = create_from_template(parameters)
        with environment(stack.environment):
            clear_cached_clients()
            try:
                yield stack
            finally:
                clear_cached_clients()


class Sandboxes:
    """Both sandboxes, seeded, on the service's HTTP path under the test base URLs."""

    def __init__(self, stack: LocalStack) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        self.qbo = QboSandbox(seed=True, base_url=QBO_BASE)
        self.xero = XeroSandbox(seed=True, base_url=XERO_BASE)
        for sandbox in (self.qbo, self.xero):
            sandbox.clock.set(now)
        self.qbo.register_app(*QBO_TEST_APP, [f"{PUBLIC_BASE_URL}/oauth/qbo/callback"])
        self.xero.register_app(*XERO_TEST_APP, [f"{PUBLIC_BASE_URL}/oauth/xero/callback"])
        aws_client("secretsmanager").put_secret_value(
            SecretId=stack.physical("ProviderSecret"),
            SecretString=json.dumps(
                {
                    "qbo": {"client_id": QBO_TEST_APP[0], "client_secret": QBO_TEST_APP[1]},
                    "xero": {"client_id": XERO_TEST_APP[0], "client_secret": XERO_TEST_APP[1]},
                }
            ),
        )
        self._by_host = {urlsplit(QBO_BASE).hostname: self.qbo, urlsplit(XERO_BASE).hostname: self.xero}
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        return self._by_host[request.url.host].handle(request)

    def client(self) -> httpx.Client:
        """A browser-like client that reaches both sandboxes (for walking consent pages)."""
        return httpx.Client(transport=self.transport, follow_redirects=False)


@contextmanager
def sandboxes_installed(stack: LocalStack) -> Iterator[Sandboxes]:
    both = Sandboxes(stack)
    original = http.default_transport
    http.default_transport = lambda: both.transport
    credentials.clear()
    tokens.provider.cache_clear()
    try:
        yield both
    finally:
        http.default_transport = original
        credentials.clear()
        tokens.provider.cache_clear()
