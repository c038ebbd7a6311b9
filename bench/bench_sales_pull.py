"""Sales pull against both sandboxes in-process: provider calls to pull N changed documents (seeded through
the sandboxes' admin HTTP APIs) on the first pull and after N edits (targets: ceil(N/1000) + a constant for
QBO, ceil(N/page) + a constant for Xero), and with nothing changed (target: a constant).
Run: python -m bench bench_sales_pull"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from bench.bench_token_refresh import connect
from infra.local.testbed import QBO_BASE, XERO_BASE, Sandboxes, moto_stack, sandboxes_installed
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.qbo_demo import BRACKET_20, DEMO_REALM_ID, HARBOR
from infra.sandboxes.xero import XeroSandbox
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from shared.bodies import TrackingRequest
from shared.services import sales

N = 2_500
PAGE = 1000  # both providers' largest page
LATER = 600.0  # seconds between the changes and the pull that reads them (past QBO's 5-minute overlap)


def tick(admin: httpx.Client, base: str, seconds: float = 0.01) -> None:
    """Moves the sandbox clock on: documents written one after another carry distinct change stamps."""
    admin.post(f"{base}/_admin/clock", json={"advance_seconds": seconds}).raise_for_status()


def seed_qbo(admin: httpx.Client, number: Callable[[int], str]) -> None:
    for n in range(N):
        tick(admin, QBO_BASE)
        response = admin.post(
            f"{QBO_BASE}/_admin/companies/{DEMO_REALM_ID}/invoice",
            json={
                "DocNumber": number(n),
                "TxnDate": "2026-11-02",
                "CustomerRef": {"value": HARBOR},
                "Line": [
                    {
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": BRACKET_20},
                            "Qty": 1 + n % 7,
                            "UnitPrice": "4.50",
                        },
                    }
                ],
            },
        )
        response.raise_for_status()


def edit_qbo(admin: httpx.Client, sandboxes: Sandboxes) -> None:
    for record in sandboxes.qbo.list_records(DEMO_REALM_ID, "Invoice"):
        if record["DocNumber"].startswith("B"):
            tick(admin, QBO_BASE)
            admin.post(
                f"{QBO_BASE}/_admin/companies/{DEMO_REALM_ID}/invoice/{record['Id']}/edit",
                json={"PrivateNote": "edited"},
            ).raise_for_status()


def seed_xero(admin: httpx.Client, number: Callable[[int], str]) -> None:
    for n in range(N):
        tick(admin, XERO_BASE)
        response = admin.post(
            f"{XERO_BASE}/_admin/organisations/{AU_TENANT_ID}/Invoices",
            json={
                "InvoiceNumber": number(n),
                "Type": "ACCREC",
                "Date": "2026-11-02",
                "Status": "AUTHORISED",
                "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")},
                "LineItems": [
                    {
                        "ItemCode": "WIDGET-10",
                        "Description": "Widget",
                        "Quantity": str(1 + n % 7),
                        "UnitAmount": "6.00",
                    }
                ],
            },
        )
        response.raise_for_status()


def edit_xero(admin: httpx.Client, sandboxes: Sandboxes) -> None:
    for record in sandboxes.xero.list_records(AU_TENANT_ID, "Invoices"):
        if record["InvoiceNumber"].startswith("B"):
            tick(admin, XERO_BASE)
            admin.post(
                f"{XERO_BASE}/_admin/organisations/{AU_TENANT_ID}/Invoices/{record['InvoiceID']}/edit",
                json={"Reference": "edited"},
            ).raise_for_status()


def pull(sandboxes: Sandboxes, provider: str, organisation: str, label: str, target: str) -> int:
    sandbox: QboSandbox | XeroSandbox = sandboxes.qbo if provider == "qbo" else sandboxes.xero
    prefix = f"/v3/company/{DEMO_REALM_ID}/" if provider == "qbo" else "/api.xro/2.0/"
    before = sandbox.call_count(path_prefix=prefix)
    started = time.perf_counter()
    result = sales.pull_changes(organisation, provider, now=datetime.now(UTC))
    elapsed = time.perf_counter() - started
    calls = sandbox.call_count(path_prefix=prefix) - before
    print(
        f"  {label}: {calls} provider calls (target {target}), read {result.read}, "
        f"stored {len(result.stored)}, {elapsed:.2f} s",
        flush=True,
    )
    return calls


def bench(
    provider: str,
    seed: Callable[[httpx.Client, Callable[[int], str]], None],
    edit: Callable[[httpx.Client, Sandboxes], None],
    constant: int,
) -> None:
    with moto_stack() as stack, sandboxes_installed(stack) as sandboxes:
        connection = connect(sandboxes, provider, [AU_TENANT_ID] if provider == "xero" else None)
        organisation = connection.organisation_id
        base = QBO_BASE if provider == "qbo" else XERO_BASE
        with sandboxes.client() as admin:
            seed(admin, lambda n: f"B{n:05d}")
            sales.set_tracking(
                organisation,
                provider,
                TrackingRequest(enabled=True, start_date="2026-08-01"),
                datetime.now(UTC),
            )
            pages = math.ceil(N / PAGE)
            print(f"{provider}: {N} seeded documents (plus the demo's)", flush=True)
            tick(admin, base, LATER)
            pull(sandboxes, provider, organisation, "first pull", f"~{pages} + {constant}")
            pull(sandboxes, provider, organisation, "no change", "a constant")
            edit(admin, sandboxes)
            tick(admin, base, LATER)
            pull(sandboxes, provider, organisation, f"{N} edited", f"~{pages} + {constant}")
            pull(sandboxes, provider, organisation, "no change", "a constant")


def main() -> None:
    bench("qbo", seed_qbo, edit_qbo, constant=3)  # a query per document kind (and CDC first when changed)
    bench("xero", seed_xero, edit_xero, constant=1)  # credit notes: one page


if __name__ == "__main__":
    main()
