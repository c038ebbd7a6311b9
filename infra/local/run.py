"""`make run`: the whole service on this machine. moto (server mode) holds the template's resources,
the QBO and Xero sandboxes answer on their loopback ports, and the gateway, scheduler and queue
poller call the real handlers in-process."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from infra.local import gateway as gateway_module
from infra.local.devauth import DevIdentityProvider
from infra.local.gateway import Gateway, GatewayResponse
from infra.local.moto_speed import set_up_once
from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import FAKE_AWS_ENV, LocalStack, create_from_template
from infra.sandboxes.common import Clock
from infra.sandboxes.common import serve as serve_sandbox
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.xero import XeroSandbox

DEMO_ORGANISATION = "demo-org"
QBO_DEMO_APP = ("partsemble-local-qbo", "local-qbo-secret")
XERO_DEMO_APP = ("partsemble-local-xero", "local-xero-secret")


@dataclass
class RunningStack:
    url: str
    stack: LocalStack
    gateway: Gateway
    identity: DevIdentityProvider
    scheduler: Scheduler
    poller: Poller
    qbo: QboSandbox
    xero: XeroSandbox
    servers: list[Any]

    def stop(self) -> None:
        self.scheduler.stop()
        self.poller.stop()
        for server in reversed(self.servers):
            server.shutdown() if isinstance(server, ThreadingHTTPServer) else server.stop()


def start(
    port: int = 3000,
    qbo_port: int = 4001,
    xero_port: int = 4002,
    moto_port: int = 0,
    seed: bool = True,
    background: bool = True,
) -> RunningStack:
    os.environ.update(FAKE_AWS_ENV)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server would log every AWS call
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    moto_host, bound_moto_port = moto.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{moto_host}:{bound_moto_port}"

    # the sandboxes' clocks follow real time here, so Xero's minute windows reset as they do at Xero
    qbo = QboSandbox(seed=seed, clock=Clock(real_time=True))
    xero = XeroSandbox(seed=seed, clock=Clock(real_time=True))
    qbo_server, xero_server = serve_sandbox(qbo, port=qbo_port), serve_sandbox(xero, port=xero_port)

    identity = DevIdentityProvider()
    server = gateway_module.bind(port=port)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    qbo.register_app(*QBO_DEMO_APP, [f"{url}/oauth/qbo/callback"])
    xero.register_app(*XERO_DEMO_APP, [f"{url}/oauth/xero/callback"])
    stack = create_from_template(
        {
            "JwtIssuer": identity.issuer,
            "JwtAudience": identity.audience,
            "AppOrigin": url,
            "PublicBaseUrl": url,
            "QboAuthorizeUrl": f"{qbo.base_url}/connect/oauth2",
            "QboTokenUrl": f"{qbo.base_url}/oauth2/v1/tokens/bearer",
            "QboRevokeUrl": f"{qbo.base_url}/v2/oauth2/tokens/revoke",
            "QboApiUrl": qbo.base_url,
            "XeroAuthorizeUrl": f"{xero.base_url}/identity/connect/authorize",
            "XeroTokenUrl": f"{xero.base_url}/connect/token",
            "XeroRevokeUrl": f"{xero.base_url}/connect/revocation",
            "XeroApiUrl": xero.base_url,
        }
    )
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.physical("ProviderSecret"),
        SecretString=json.dumps(
            {
                "qbo": {"client_id": QBO_DEMO_APP[0], "client_secret": QBO_DEMO_APP[1]},
                "xero": {"client_id": XERO_DEMO_APP[0], "client_secret": XERO_DEMO_APP[1]},
            }
        ),
    )
    os.environ.update(stack.environment)
    # the metrics object was made at import, before the template's environment was set here
    from shared.observability import metrics

    metrics.namespace = stack.environment.get("POWERTOOLS_METRICS_NAMESPACE")

    gateway = Gateway(stack, identity)
    scheduler, poller = Scheduler(stack), Poller(stack)

    def mint(body: bytes) -> GatewayResponse:
        try:
            asked = json.loads(body or b"{}")
        except ValueError:
            asked = None
        organisation = asked.get("organisation_id", DEMO_ORGANISATION) if isinstance(asked, dict) else None
        if not isinstance(organisation, str) or not organisation:
            message = 'send {"organisation_id": "<organisation>"} (JSON), or nothing for ' + DEMO_ORGANISATION
            return GatewayResponse(
                400,
                {"content-type": "application/json"},
                json.dumps({"error": "BadRequest", "message": message}).encode(),
            )
        return GatewayResponse(
            200,
            {"content-type": "application/json"},
            json.dumps({"token": identity.mint(organisation)}).encode(),
        )

    def fire(name: str) -> Any:
        def run(_: bytes) -> GatewayResponse:
            # the schedule queues its work; the queues are then drained, so the answer comes once it is done
            report = scheduler.fire(name)
            delivered = poller.settle()
            return GatewayResponse(
                200,
                {"content-type": "application/json"},
                json.dumps({**report, "delivered": delivered}, default=str).encode(),
            )

        return run

    def settle(_: bytes) -> GatewayResponse:
        # answers once the queues are drained and nothing is in flight: what was queued has been handled
        delivered = poller.settle()
        return GatewayResponse(
            200, {"content-type": "application/json"}, json.dumps({"delivered": delivered}).encode()
        )

    local_routes: dict[str, Any] = {"POST /_local/token": mint, "POST /_local/settle": settle}
    local_routes |= {f"POST /_local/schedules/{name}": fire(name) for name in scheduler.functions}
    gateway_module.start(server, gateway, local_routes)
    if background:
        scheduler.start()
        poller.start()
    return RunningStack(
        url, stack, gateway, identity, scheduler, poller, qbo, xero, [moto, qbo_server, xero_server, server]
    )


@set_up_once()  # while it runs: the emulator without its repeated and needless work, its answers moto's
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="gateway port (0: any free port)")
    parser.add_argument("--qbo-port", type=int, default=4001)
    parser.add_argument("--xero-port", type=int, default=4002)
    parser.add_argument("--empty", action="store_true", help="start the sandboxes without demo data")
    args = parser.parse_args(argv)
    running = start(args.port, args.qbo_port, args.xero_port, seed=not args.empty)
    token = running.identity.mint(DEMO_ORGANISATION)
    print(f"Partsemble accounting integrations running at {running.url}", flush=True)
    print(f"  Settings -> Integrations page: {running.url}/", flush=True)
    print(f"  API docs (Swagger UI):         {running.url}/docs", flush=True)
    print(f"  QBO sandbox:  {running.qbo.base_url}   (sign in as demo@partsemble.test / demo)", flush=True)
    print(f"  Xero sandbox: {running.xero.base_url}   (sign in as demo@partsemble.test / demo)", flush=True)
    print(f"  Development bearer token for organisation {DEMO_ORGANISATION!r} (valid 12 h):", flush=True)
    print(f"    {token}", flush=True)
    print(f"  Try: curl -H 'Authorization: Bearer <token>' {running.url}/me", flush=True)
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    running.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
