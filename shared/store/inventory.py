"""Inventory state in the table: each document's stock movements, the records (receipts, rejections, builds)
as JSON, each product's stock (its open lots and latest movement, as the whole ledger's replay leaves them)
and the ledger's version, which every write bumps in one transaction conditioned on the version read, so two
writers that read the same ledger can't both commit (keys: ``keys``). A write's movements and records are a
constant number of items however many lines it has, far below DynamoDB's 100-item limit.

A product's stock item is trusted while its version is at least the ledger's ``recost`` (DESIGN.md, "Stock
items")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, TypeAdapter

from shared.aws import forget_with_clients, table
from shared.domain.inventory import BuildRecord, Receipt, Rejection, Stock
from shared.domain.ledger import AnyMovement, Layer, Movement, MovementKey
from shared.errors import BadRequest, Conflict
from shared.store.dynamo import org_batch_get, org_items
from shared.store.keys import LEDGER_SK, MOVES_PREFIX, moves_sk, org_pk, record_sk, stock_sk

MAX_ITEM_BYTES = 350_000  # DynamoDB refuses items over 400 KB; keep room for attribute names
MAX_WRITE_ITEMS = 100  # DynamoDB's most actions in one TransactWriteItems
MAX_WRITE_BYTES = 3_500_000  # ... and its most bytes (4 MB), with room for names and expressions
_MOVEMENTS = TypeAdapter(list[Movement], config=ConfigDict(defer_build=True))


@dataclass(frozen=True)
class RecordRow:
    kind: str
    record_id: str
    body: str  # the record's JSON
    at: str  # when the thing happened (ISO), for listing


class DuplicateRecord(Conflict):
    def __init__(self) -> None:
        super().__init__("a record with this id is already recorded")


class LedgerMoved(Exception):
    """Another write committed since the ledger was read: read it again and recompute."""


@dataclass(frozen=True)
class LedgerHead:
    version: int  # bumped by every write
    recost: int  # stock items stored by a write before this version are not trusted
    # every product that ever moved has a stock item (stock was stored from the ledger's first write on, and
    # never left out), so a product without one has never moved: its stock is known, and empty
    complete: bool = False
    # the latest write stored the stock it changed; one that did not (a function still running the code from
    # before stock items, or one rolled back to it) may have moved any product: no stock item is trusted
    stocked: bool = True


NEVER_MOVED: MovementKey = (datetime.min.replace(tzinfo=UTC), 0, "")  # before every movement


def ledger_head(organisation_id: str) -> LedgerHead:
    item = (
        table()
        .get_item(Key={"pk": org_pk(organisation_id), "sk": LEDGER_SK}, ConsistentRead=True)
        .get("Item")
    ) or {}
    version, recost = int(item.get("version", 0)), int(item.get("recost", 0))
    if version and int(item.get("stocked", 0)) != version:  # every stock-keeping write marks its version
        return LedgerHead(version, version + 1, stocked=False)
    return LedgerHead(version, recost, complete=recost == 0 and (version == 0 or bool(item.get("complete"))))


def ledger_version(organisation_id: str) -> int:
    return ledger_head(organisation_id).version


def stock(organisation_id: str, product_ids: Iterable[str], head: LedgerHead) -> dict[str, Stock]:
    """The trusted stock of these products (one BatchGetItem per 100), by product."""
    wanted = list(product_ids)
    items = org_batch_get(organisation_id, (stock_sk(p) for p in wanted))
    found = {
        str(item["product_id"]): Stock(
            tuple(
                Layer((_at(at), int(seq), movement_id), lot_id, Decimal(quantity), Decimal(cost), incomplete)
                for lot_id, at, seq, movement_id, quantity, cost, incomplete in item["lots"]
            ),
            _last(item),
        )
        for item in items
        if _trusted(item, head)
    }
    return found | {p: Stock((), NEVER_MOVED) for p in _never_moved(wanted, items, head)}


@dataclass(frozen=True)
class Tail:
    """A product's trusted stock item read without its lots: its latest movement, and its lots' size."""

    last: MovementKey
    size: int


def tails(organisation_id: str, product_ids: Iterable[str], head: LedgerHead) -> dict[str, Tail]:
    """For products a write only adds lots to (a receipt's, a build's finished product): their lots, which
    can grow with every build of the product, are not read."""
    projected = {
        "ProjectionExpression": ", ".join(_NAMES),
        "ExpressionAttributeNames": _aliases(*_NAMES),
    }
    wanted = list(product_ids)
    items = org_batch_get(organisation_id, (stock_sk(p) for p in wanted), **projected)
    found = {
        str(item["product_id"]): Tail(_last(item), int(item["lots_size"]))
        for item in items
        if _trusted(item, head)
    }
    return found | {p: Tail(NEVER_MOVED, 0) for p in _never_moved(wanted, items, head)}


def _never_moved(wanted: list[str], items: list[dict[str, Any]], head: LedgerHead) -> list[str]:
    """The products without a stock item, on a ledger where that means they never moved."""
    if not head.complete:
        return []
    stored = {str(item["product_id"]) for item in items}
    return [p for p in wanted if p not in stored]


_NAMES = ("#product_id", "#version", "#last", "#lots_size")


def _aliases(*names: str) -> dict[str, str]:
    """Every attribute named in an expression by an alias, so none can clash with DynamoDB's reserved words
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html)."""
    return {name: name[1:] for name in names}


def _trusted(item: Mapping[str, Any], head: LedgerHead) -> bool:
    return "lots_size" in item and int(item["version"]) >= head.recost


def _last(item: Mapping[str, Any]) -> MovementKey:
    at, seq, movement_id = item["last"]
    return _at(at), int(seq), movement_id


def _key(key: MovementKey) -> list[Any]:
    return [key[0].isoformat(), key[1], key[2]]


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _lots(found: Stock) -> tuple[list[list[Any]], int]:
    """Exact: each Decimal as its own digits (``str`` gives them back as they were); with their size."""
    lots = [
        [lot.lot_id, *_key(lot.key), str(lot.quantity), str(lot.cost), lot.incomplete] for lot in found.lots
    ]
    return lots, len(json.dumps(lots))


def _stock_put(name: str, pk: str, product_id: str, found: Stock, version: int) -> dict[str, Any]:
    """A product's whole stock; too large for one item, it is stored without its lots (not trusted: the
    ledger is replayed for it when next needed)."""
    item = _stub(pk, product_id, version)
    lots, size = _lots(found)
    if size <= MAX_ITEM_BYTES:
        item |= {"lots": lots, "lots_size": size, "last": _key(found.last)}
    return {"Put": {"TableName": name, "Item": item}}


def _stub(pk: str, product_id: str, version: int) -> dict[str, Any]:
    return {"pk": pk, "sk": stock_sk(product_id), "product_id": product_id, "version": version}


def _stock_append(
    name: str, pk: str, product_id: str, tail: Tail, added: Stock, version: int
) -> dict[str, Any]:
    """The lots a write made, added after the product's stored ones, and its latest movement."""
    lots, size = _lots(added)
    if tail.size + size > MAX_ITEM_BYTES:
        return {"Put": {"TableName": name, "Item": _stub(pk, product_id, version)}}
    return {
        "Update": {
            "TableName": name,
            "Key": {"pk": pk, "sk": stock_sk(product_id)},
            # a product's first lots make its item (it never moved: no item, on a complete ledger)
            "UpdateExpression": "SET #lots = list_append(if_not_exists(#lots, :none), :lots), "
            "#lots_size = if_not_exists(#lots_size, :zero) + :size, #last = :last, #version = :version, "
            "#product_id = :product_id",
            "ExpressionAttributeNames": _aliases("#lots", "#lots_size", "#last", "#version", "#product_id"),
            "ExpressionAttributeValues": {
                ":lots": lots, ":size": size, ":last": _key(added.last), ":version": version,
                ":none": [], ":zero": 0, ":product_id": product_id,
            },
        }
    }  # fmt: skip


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
    stock: Mapping[str, Stock],
    added: Mapping[str, tuple[Tail, Stock]],
    recost: bool = False,
) -> None:
    """Writes the documents' movements, the records and ``extra`` items (new, never overwriting), the
    products' ``stock`` after them and the lots ``added`` after a product's stored ones (with its latest
    movement), and moves the ledger from ``version`` to ``version + 1``, all or nothing. When the stock does
    not fit in the transaction, none of it is stored and the ledger's ``recost`` moves to the new version
    instead (every stock item stored before is replayed again when next needed); ``recost`` moves it
    anyway (the ledger was read after a write that stored no stock). Raises
    ``LedgerMoved`` when the ledger is no longer at ``version``, ``Conflict`` when a record with the same id
    exists."""
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
    stored = [_stock_put(name, pk, p, found, version + 1) for p, found in sorted(stock.items())]
    stored += [
        _stock_append(name, pk, p, *tail_added, version + 1) for p, tail_added in sorted(added.items())
    ]
    size = sum(len(str(v)) for item in items for v in item.values()) + len(str(stored))
    fits = 1 + len(items) + len(stored) <= MAX_WRITE_ITEMS and size <= MAX_WRITE_BYTES
    # every write marks its version ``stocked`` (``LedgerHead``); the first of a ledger marks it complete;
    # stock left out (or stock items already not to be trusted) moves ``recost``
    # the write's own token on the ledger item tells a retried transaction whose first answer was lost (it
    # committed) from a write that lost the race
    token = uuid.uuid4().hex
    update = "SET #v = :next, #s = :next, #w = :token"
    names = {"#v": "version", "#s": "stocked", "#w": "write"}
    values: dict[str, Any] = {":next": version + 1, ":read": version, ":token": token}
    if fits:
        update += ", #c = if_not_exists(#c, :first)"
        names["#c"], values[":first"] = "complete", version == 0
    if recost or not fits:
        update += ", #r = :next"
        names["#r"] = "recost"
    bump = {
        "Update": {
            "TableName": name,
            "Key": {"pk": pk, "sk": LEDGER_SK},
            "UpdateExpression": update,
            "ConditionExpression": "attribute_not_exists(#v) OR #v = :read",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
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
    puts += stored if fits else []
    client = table().meta.client
    try:
        # the same token on botocore's retries makes them one transaction to DynamoDB (for 10 minutes):
        # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
        client.transact_write_items(TransactItems=[bump, *puts], ClientRequestToken=token)
    except client.exceptions.TransactionCanceledException as err:
        if _written_by(pk, token):  # a retry of this very write, refused on its own version: it committed
            return
        reasons = [r.get("Code") for r in err.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise LedgerMoved() from None
        if "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons:
            # another transaction was writing one of these items at that moment: a lost race like the above
            raise LedgerMoved() from None
        if "ConditionalCheckFailed" in reasons:
            raise DuplicateRecord() from None
        raise


def _written_by(pk: str, token: str) -> bool:
    item = table().get_item(Key={"pk": pk, "sk": LEDGER_SK}, ConsistentRead=True).get("Item") or {}
    return item.get("write") == token


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
