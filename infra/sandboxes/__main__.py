"""`python -m infra.sandboxes qbo|xero --port N [--empty]`: one provider sandbox on a loopback port."""

from __future__ import annotations

import argparse
import threading

from infra.sandboxes.common import Clock, serve
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.xero import XeroSandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("provider", choices=["qbo", "xero"])
    parser.add_argument(
        "--port", type=int, default=None, help="default: 4001 (qbo), 4002 (xero); 0: any free port"
    )
    parser.add_argument("--empty", action="store_true", help="start without the demo data")
    args = parser.parse_args(argv)
    clock = Clock(real_time=True)  # alone on a port, a sandbox's time passes as the provider's does
    sandbox = (
        QboSandbox(seed=not args.empty, clock=clock)
        if args.provider == "qbo"
        else XeroSandbox(seed=not args.empty, clock=clock)
    )
    port = args.port if args.port is not None else (4001 if args.provider == "qbo" else 4002)
    server = serve(sandbox, port=port)
    print(
        f"{args.provider} sandbox at {sandbox.base_url} (admin routes under /_admin; "
        "sign in as demo@partsemble.test / demo)",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
