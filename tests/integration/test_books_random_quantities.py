"""The books rule in QBO inventory mode over a random history through the service (``bench.bench_books``):
receipts with rejections, two-level builds, sales, edits, back-dated receipts and the rare events, exported
as inventory adjustments. QuickBooks values the stock itself there, so what must agree is each linked item's
QtyOnHand: it differs from Partsemble's on hand by nothing beyond QuickBooks' starting quantity and the units
sold or built without stock (which QuickBooks counts out and Partsemble cannot), and the service says so
itself."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bench import bench_books
from bench.bench_exports import VirtualTime, follow
from infra.local.stack import LocalStack
from shared.money import ZERO
from shared.services import inventory
from tests.conftest import Sandboxes


def test_a_random_history_in_qbo_inventory_mode_leaves_every_items_quantity_explained(
    aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inventory, "CHECKPOINT_EVERY", 3)
    clock = VirtualTime(sandboxes)
    follow(clock, monkeypatch.setattr)
    outcome = bench_books.simulate(aws, sandboxes, clock, "qbo", "inventory_adjustments", events=40, seed=7)
    assert outcome.history.kinds["build"] and outcome.history.kinds["sale"], outcome.history.kinds
    assert outcome.final.mode != "journals" and outcome.final.items
    unexplained = {
        item.label: bench_books.unexplained_quantity(item, outcome.starting) for item in outcome.final.items
    }
    assert all(quantity == ZERO for quantity in unexplained.values()), unexplained
    # the service's own figures agree: each item's starting quantity is what QBO held before the history
    # (read at its first adjustment, with the sales read by then added back), nothing unexplained
    starting = {
        item.label: (item.starting_quantity, Decimal(str(outcome.starting.get(item.item_id) or 0)))
        for item in outcome.final.items
    }
    assert all(ours == known for ours, known in starting.values()), starting
    assert all(item.unexplained == ZERO == item.not_in_quickbooks for item in outcome.final.items)
    assert outcome.final.status == "explained"
