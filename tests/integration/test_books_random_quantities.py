"""The books rule in QBO inventory mode over a random history through the service (``bench.bench_books``):
receipts with rejections, two-level builds, sales, edits, back-dated receipts and the rare events, exported
as inventory adjustments. QuickBooks values the stock itself there, so what must agree is each linked item's
QtyOnHand: it differs from Partsemble's on hand by nothing beyond QuickBooks' starting quantity and the units
sold or built without stock (which QuickBooks counts out and Partsemble cannot)."""

from __future__ import annotations

import pytest

from bench import bench_books
from infra.local.stack import LocalStack
from shared.money import ZERO
from shared.services import inventory
from tests.conftest import Sandboxes


def test_a_random_history_in_qbo_inventory_mode_leaves_every_items_quantity_explained(
    aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inventory, "CHECKPOINT_EVERY", 3)
    clock = bench_books.Clock(sandboxes)
    bench_books.install(clock, monkeypatch.setattr)
    outcome = bench_books.simulate(aws, sandboxes, clock, "qbo", "inventory_adjustments", events=40, seed=7)
    assert outcome.history.kinds["build"] and outcome.history.kinds["sale"], outcome.history.kinds
    assert outcome.final.mode != "journals" and outcome.final.items
    unexplained = {
        item.label: bench_books.unexplained_quantity(item, outcome.starting) for item in outcome.final.items
    }
    assert all(quantity == ZERO for quantity in unexplained.values()), unexplained
