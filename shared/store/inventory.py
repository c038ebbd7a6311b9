"""Inventory state in the table: each document's stock movements, the records (receipts, rejections, builds)
as JSON, and the ledger's version, which every write bumps in one transaction conditioned on the version read,
so two writers that read the same ledger can't both commit (keys: ``keys``). A write holds a constant number
of items however many lines it has, far below DynamoDB's 100-item limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, TypeAdapter

from shared.aws import forget_with_clients, table
from shared.domain.inventory import BuildRecord, Receipt, Rejection
from shared.domain.ledger import AnyMovement, Movement
from shared.errors import BadRequest, Conflict
from shared.store.dynamo import org_items
from shared.store.keys import LEDGER_SK, MOVES_PREFIX, moves_sk, org_pk, record_sk

MAX_ITEM_BYTES = 350_000  # DynamoDB refuses items over 400 KB; keep room for attribute names
_MOVEMENTS = TypeAdapter(list[Movement], config=ConfigDict(defer_build=True))


@dataclass(frozen=True)
class RecordRow:
    kind: str
    record_id: str
    body: str  # the record's JSON
    at: str  # when the thing happened (ISO), for listing


class LedgerMoved(Exception):
    """Another write committed since the ledger was read: read it again and recompute."""


def ledger_version(organisation_id: str) -> int:
    item = (
        table()
        .get_item(Key={"pk": org_pk(organisation_id), "sk": LEDGER_SK}, ConsistentRead=True)
        .get("Item")
    )
    return int(item["version"]) if item else 0


_READ: dict[str, tuple[int, list[AnyMovement]]] = {}  # a warm function's last read, by organisation
_READ_LIMIT = 16
forget_with_clients(_READ.clear)


def movements(organisation_id: str) -> list[AnyMovement]:
    """Every movement of the organisation. A warm function re-reads them only when the ledger's version
    moved since its last read (the version is read first: a read that also saw a newer write is kept under
    the older version, which no later read can return)."""
    version = ledger_version(organisation_id)
    if (known := _READ.get(organisation_id)) and known[0] == version:
        return list(known[1])
    found: list[AnyMovement] = []
    for item in org_items(organisation_id, MOVES_PREFIX, ConsistentRead=True):
        found.extend(_MOVEMENTS.validate_json(item["movements"]))
    _READ.pop(organisation_id, None)
    if len(_READ) >= _READ_LIMIT:
        del _READ[next(iter(_READ))]
    _READ[organisation_id] = (version, found)
    return list(found)


def commit(
    organisation_id: str,
    *,
    version: int,
    documents: Mapping[str, Sequence[AnyMovement]],
    records: list[RecordRow],
    extra: list[dict[str, Any]],
) -> None:
    """Writes the documents' movements, the records and ``extra`` items (new, never overwriting) and moves
    the ledger from ``version`` to ``version + 1``, all or nothing. Raises ``LedgerMoved`` when the ledger
    is no longer at ``version``, ``Conflict`` when a record with the same id exists."""
    pk = org_pk(organisation_id)
    items = [
        {"pk": pk, "sk": moves_sk(document), "movements": _MOVEMENTS.dump_json(list(moved)).decode()}
        for document, moved in documents.items()
    ]
    items += [
        {
            "pk": pk,
            "sk": record_sk(r.kind, r.record_id),
            "kind": r.kind,
            "record_id": r.record_id,
            "body": r.body,
            "at": r.at,
        }
        for r in records
    ]
    items += extra
    for item in items:
        if sum(len(str(v)) for v in item.values()) > MAX_ITEM_BYTES:
            raise BadRequest("this record is too large to store in one piece; split it into smaller ones")
    name = table().name  # the resource's client takes and gives plain Python values (it serializes them)
    bump = {
        "Update": {
            "TableName": name,
            "Key": {"pk": pk, "sk": LEDGER_SK},
            "UpdateExpression": "SET #v = :next",
            "ConditionExpression": "attribute_not_exists(#v) OR #v = :read",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":next": version + 1, ":read": version},
        }
    }
    puts = [
        {
            "Put": {
                "TableName": name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        for item in items
    ]
    client = table().meta.client
    try:
        client.transact_write_items(TransactItems=[bump, *puts])
    except client.exceptions.TransactionCanceledException as err:
        reasons = [r.get("Code") for r in err.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise LedgerMoved() from None
        if "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons:
            # another transaction was writing one of these items at that moment: a lost race like the above
            raise LedgerMoved() from None
        if "ConditionalCheckFailed" in reasons:
            raise Conflict("a record with this id is already recorded") from None
        raise


def get_record(organisation_id: str, kind: str, record_id: str) -> str | None:
    item = (
        table()
        .get_item(Key={"pk": org_pk(organisation_id), "sk": record_sk(kind, record_id)}, ConsistentRead=True)
        .get("Item")
    )
    return str(item["body"]) if item else None


InventoryRecord = Receipt | Rejection | BuildRecord
_RECORD_MODELS: dict[str, type[InventoryRecord]] = {
    "receipt": Receipt,
    "rejection": Rejection,
    "build": BuildRecord,
}


def load_record(organisation_id: str, kind: str, record_id: str) -> InventoryRecord | None:
    """A receipt, rejection or build as recorded (None when it is not)."""
    body = get_record(organisation_id, kind, record_id)
    return None if body is None else _RECORD_MODELS[kind].model_validate_json(body)


def list_records(organisation_id: str, kind: str) -> list[str]:
    return [str(item["body"]) for item in org_items(organisation_id, record_sk(kind, ""))]
