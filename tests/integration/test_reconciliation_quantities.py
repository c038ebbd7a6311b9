"""GET /reconciliation in QBO inventory mode: each linked item's QtyOnHand against Partsemble's on hand."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import Api, Sandboxes
from tests.integration.test_exports import QBO_PARTS, ok, setup_qbo


def test_qbo_inventory_mode_compares_item_quantities(api: Api, sandboxes: Sandboxes) -> None:
    setup_qbo(api, sandboxes, mode="inventory_adjustments")
    answer = ok(api.call("GET", "/reconciliation"))
    assert (answer["mode"], answer["accounts"]) == ("inventory_adjustments", [])
    items = {i["item_id"]: i for i in answer["items"]}
    assert set(items) <= set(QBO_PARTS.values()) and items
    for item in items.values():  # nothing received in Partsemble yet: QBO's quantity is the difference
        assert Decimal(item["on_hand"]) == 0
        if item["provider_quantity"] is not None:
            assert Decimal(item["difference"]) == Decimal(item["provider_quantity"])
    assert len(answer["notes"]) == 2
    assert answer["status"] == (
        "discrepancy" if any(Decimal(i["difference"] or 0) for i in items.values()) else "balanced"
    )
