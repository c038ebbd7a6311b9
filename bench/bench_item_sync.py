"""Item sync against the QBO sandbox in-process, with 10,000 extra items in the demo company:
provider calls and DynamoDB requests for the first sync (target ceil(N/1000) + a constant provider calls)
and for a re-sync with nothing changed (target a constant), plus one re-sync after 50 items changed."""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bench.bench_token_refresh import connect
from infra.local.testbed import Sandboxes, moto_stack, sandboxes_installed
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from shared.aws import table
from shared.services import catalog

ITEMS = 10_000
CHANGED = 50
PAGE = 1000
API_PREFIX = f"/v3/company/{DEMO_REALM_ID}/"


def seed_items(sandboxes: Sandboxes) -> list[str]:
    """Adds the items the way QBO stores them (straight into the company: the sandbox's name-uniqueness
    check on create is quadratic); every 100th is a bundle of the two items before it."""
    qbo = sandboxes.qbo
    company = qbo.companies[DEMO_REALM_ID]
    ids: list[str] = []
    with qbo.lock:
        for n in range(ITEMS):
            record: dict[str, Any] = {
                "Name": f"Bench part {n:05d}",
                "Sku": f"BP-{n:05d}",
                "Active": True,
                "domain": "QBO",
                "sparse": False,
                "UnitPrice": Decimal("2.50"),
                "PurchaseCost": Decimal(n % 500) / 100,
                "Type": "NonInventory",
                "TrackQtyOnHand": False,
            }
            if n % 100 == 99:
                record["Type"] = "Group"
                record["ItemGroupDetail"] = {
                    "ItemGroupLine": [
                        {"ItemRef": {"value": ids[-2], "type": "Item"}, "Qty": Decimal(2)},
                        {"ItemRef": {"value": ids[-1], "type": "Item"}, "Qty": Decimal(1)},
                    ]
                }
            ids.append(qbo._insert(company, "Item", record)["Id"])
    qbo.clock.advance(1)  # the sync starts after the items were written, as it would in QBO
    return ids


def count_dynamodb() -> Counter[str]:
    counts: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    table().meta.client.meta.events.register("before-call.dynamodb", count)
    return counts


def measured(sandboxes: Sandboxes, organisation: str, label: str) -> dict[str, Any]:
    counts = count_dynamodb()
    before = sandboxes.qbo.call_count(path_prefix=API_PREFIX)
    started = time.perf_counter()
    result = catalog.sync_items(organisation, "qbo", datetime.now(UTC))
    elapsed = time.perf_counter() - started
    calls = sandboxes.qbo.call_count(path_prefix=API_PREFIX) - before
    requests = dict(sorted(counts.items()))
    counts.clear()
    table().meta.client.meta.events.unregister("before-call.dynamodb")
    print(
        f"{label}: {calls} provider calls, {sum(requests.values())} DynamoDB requests {requests}, "
        f"read {result.read}, created {len(result.created)}, updated {len(result.updated)}, "
        f"skipped {len(result.skipped)} ({elapsed:.1f} s)"
    )
    return {"calls": calls, "result": result}


def main() -> None:
    with moto_stack() as stack, sandboxes_installed(stack) as sandboxes:
        organisation = connect(sandboxes, "qbo").organisation_id
        ids = seed_items(sandboxes)
        total = len(sandboxes.qbo.list_records(DEMO_REALM_ID, "Item"))
        target = math.ceil(ITEMS / PAGE)
        print(
            f"{total} QBO items ({ITEMS} added, every 100th a bundle); target: ceil({ITEMS}/{PAGE}) = "
            f"{target} + a constant provider calls for the first sync, a constant for a re-sync"
        )
        first = measured(sandboxes, organisation, "first sync")
        assert first["result"].read == total, "the first sync must read every item"
        again = measured(sandboxes, organisation, "re-sync, nothing changed")
        sandboxes.qbo.clock.advance(60)
        for item_id in ids[:CHANGED]:
            sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", item_id, {"PurchaseCost": "9.99"})
        changed = measured(sandboxes, organisation, f"re-sync, {CHANGED} items changed")
        print(
            f"provider calls: first {first['calls']} (ceil(N/1000) + {first['calls'] - target}), "
            f"unchanged re-sync {again['calls']}, {CHANGED} changed {changed['calls']}"
        )


if __name__ == "__main__":
    main()
