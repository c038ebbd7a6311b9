"""Checkpoints of the stock ledger: every product's open lots after the movements up to a replay-order key, so
a back-dated write replays from the nearest one before it instead of from the ledger's first movement; and the
index of documents by their first movement's key, which gives the movements after a checkpoint (DESIGN.md,
"Checkpoints: back-dated writes").

A checkpoint at key K taken at ledger version v holds while no write after v moved anything at or before K:
the ledger item keeps the first key and the version of its back-dated writes (``cuts``)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from itertools import islice
from typing import Any

from shared.aws import table
from shared.domain.inventory import Stock
from shared.domain.ledger import AnyMovement, Layer, MovementKey, order_key
from shared.store import lots
from shared.store.dynamo import conditional, org_batch_get, query_items
from shared.store.keys import (
    CHECKPOINT_PREFIX,
    LEDGER_SK,
    MOVED_AT_PREFIX,
    checkpoint_part_sk,
    checkpoint_sk,
    moved_at_sk,
    moves_sk,
    org_pk,
)

PART_BYTES = 350_000  # a part's lots as JSON; DynamoDB refuses items over 400 KB
SEARCHED = 25  # checkpoints looked at, newest first, for one that still holds
Cut = tuple[str, int]  # a back-dated write: its first movement's sortable key, its version


def sortable(key: MovementKey) -> str:
    """A replay-order key as a string that sorts as the key does (time in UTC to the microsecond, the seq
    zero-padded, then the movement id)."""
    at, seq, movement_id = key
    return f"{at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')}#{seq:010d}#{movement_id}"


def index_items(pk: str, documents: Mapping[str, Sequence[AnyMovement]]) -> list[dict[str, Any]]:
    """A write's entries in the index of documents by key (written, new, in its transaction)."""
    return [
        {"pk": pk, "sk": moved_at_sk(sortable(min(order_key(m) for m in moved))), "document": document}
        for document, moved in documents.items()
        if moved
    ]


@dataclass(frozen=True)
class Checkpoint:
    key: str  # sortable: the checkpoint holds the lots after every movement up to it
    version: int  # the ledger's version it was taken at
    firsts: tuple[str, ...]  # the first product of each part (the lots are stored by product)

    def parts_of(self, product_ids: Iterable[str]) -> list[int]:
        """The parts that hold these products' lots (the part before the first that starts with a product may
        hold its first lots)."""
        wanted: set[int] = set()
        for p in product_ids:
            wanted.update(range(max(bisect_left(self.firsts, p) - 1, 0), bisect_right(self.firsts, p)))
        return sorted(wanted)


def holds(checkpoint: Checkpoint, cuts: Iterable[Cut]) -> bool:
    """No write after the checkpoint moved anything at or before its key."""
    return not any(version > checkpoint.version and first <= checkpoint.key for first, version in cuts)


def nearest(organisation_id: str, before: str, cuts: Sequence[Cut]) -> Checkpoint | None:
    """The latest checkpoint that still holds, at a key before ``before`` (sortable)."""
    found = query_items(
        KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
        ExpressionAttributeValues={
            ":pk": org_pk(organisation_id),
            ":low": CHECKPOINT_PREFIX,
            ":high": CHECKPOINT_PREFIX + before,
        },
        ScanIndexForward=False,
        ConsistentRead=True,
        Limit=SEARCHED,
    )
    for item in islice(found, SEARCHED):
        checkpoint = Checkpoint(str(item["key"]), int(item["version"]), tuple(str(f) for f in item["firsts"]))
        if checkpoint.key < before and holds(checkpoint, cuts):
            return checkpoint
    return None


def lots_at(
    organisation_id: str, checkpoint: Checkpoint, product_ids: Iterable[str]
) -> dict[str, tuple[Layer, ...]] | None:
    """These products' open lots at the checkpoint, oldest first (a product with none is left out); None if a
    part is missing (never: they are written before the checkpoint's item)."""
    wanted = set(product_ids)
    numbers = checkpoint.parts_of(wanted)
    parts = org_batch_get(
        organisation_id, (checkpoint_part_sk(checkpoint.key, checkpoint.version, n) for n in numbers)
    )
    if len(parts) != len(numbers):
        return None
    layers: dict[str, list[Layer]] = {}
    for part in sorted(parts, key=lambda item: str(item["sk"])):
        for product_id, *row in part["lots"]:
            if product_id in wanted:
                layers.setdefault(product_id, []).append(lots.layer(row))
    return {p: tuple(found) for p, found in layers.items()}


def movements_after(organisation_id: str, key: str) -> list[AnyMovement]:
    """The movements of every document whose first movement comes after ``key`` (sortable)."""
    documents = [
        str(item["document"])
        for item in query_items(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": org_pk(organisation_id),
                ":low": f"{MOVED_AT_PREFIX}{key}\x00",  # strictly after the key
                ":high": f"{MOVED_AT_PREFIX}~",  # after every key (they start with the year's digits)
            },
            ConsistentRead=True,
        )
    ]
    found: list[AnyMovement] = []
    for item in org_batch_get(organisation_id, (moves_sk(d) for d in documents)):
        found.extend(lots.MOVEMENTS.validate_json(item["movements"]))
    return found


def save(organisation_id: str, key: str, version: int, stock: Mapping[str, Stock]) -> None:
    """Stores a checkpoint: its parts first, then the item that makes it found, so a found checkpoint is
    whole."""
    rows = [[p, *lots.row(lot)] for p, found in sorted(stock.items()) for lot in found.lots]
    parts = [page for page, _ in lots.paged(rows, PART_BYTES)]
    pk = org_pk(organisation_id)
    with table().batch_writer() as writer:
        for n, part in enumerate(parts):
            writer.put_item(Item={"pk": pk, "sk": checkpoint_part_sk(key, version, n), "lots": part})
    firsts = [part[0][0] if part else "" for part in parts]
    table().put_item(
        Item={"pk": pk, "sk": checkpoint_sk(key, version), "key": key, "version": version, "firsts": firsts}
    )


MAX_CUTS = 16


def with_cut(cuts: Sequence[Cut], cut: Cut) -> list[Cut]:
    """The cuts with one more; past ``MAX_CUTS`` the two oldest become one that cuts at least what both did
    (the earlier key, the later version): a checkpoint is then given up more often than needed, never
    trusted wrongly."""
    merged = sorted([*cuts, cut], key=lambda c: c[1])
    while len(merged) > MAX_CUTS:
        (first_a, version_a), (first_b, version_b), *rest = merged
        merged = [(min(first_a, first_b), max(version_a, version_b)), *rest]
    return merged


def mark_taken(organisation_id: str, moved: int) -> None:
    """Records on the ledger item that a checkpoint was taken when ``moved`` movements had been written."""
    conditional(
        lambda: table().update_item(
            Key={"pk": org_pk(organisation_id), "sk": LEDGER_SK},
            UpdateExpression="SET #c = :moved",
            ConditionExpression="attribute_not_exists(#c) OR #c < :moved",
            ExpressionAttributeNames={"#c": "checkpointed"},
            ExpressionAttributeValues={":moved": moved},
        )
    )
