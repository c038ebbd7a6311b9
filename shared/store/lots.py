"""Stock as the store writes it: a document's movements as JSON, a lot as a row of plain values (exact: each
Decimal as its own digits, which ``str`` gives back as they were), rows in pages that fit an item. Shared by
the stock items (``inventory``) and the ledger's checkpoints (``checkpoints``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, TypeAdapter

from shared.domain.ledger import Layer, Movement, MovementKey

MOVEMENTS = TypeAdapter(list[Movement], config=ConfigDict(defer_build=True))


def key_row(key: MovementKey) -> list[Any]:
    return [key[0].isoformat(), key[1], key[2]]


def key_of(row: Sequence[Any]) -> MovementKey:
    at, seq, movement_id = row
    return datetime.fromisoformat(at), int(seq), movement_id


def row(lot: Layer) -> list[Any]:
    return [lot.lot_id, *key_row(lot.key), str(lot.quantity), str(lot.cost), lot.incomplete]


def layer(row: Sequence[Any]) -> Layer:
    lot_id, at, seq, movement_id, quantity, cost, incomplete = row
    return Layer(key_of((at, seq, movement_id)), lot_id, Decimal(quantity), Decimal(cost), incomplete)


def paged(rows: list[list[Any]], limit: int) -> list[tuple[list[list[Any]], int]]:
    """The rows in pages of at most ``limit`` bytes as JSON (one page at least), with each page's size."""
    pages: list[tuple[list[list[Any]], int]] = [([], 2)]
    for one in rows:
        size = len(json.dumps(one)) + 2  # its separator
        if pages[-1][0] and pages[-1][1] + size > limit:
            pages.append(([], 2))
        page, used = pages[-1]
        page.append(one)
        pages[-1] = (page, used + size)
    return pages
