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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.aws import forget_with_clients, table
from shared.domain.inventory import BuildRecord, Receipt, Rejection, Stock
from shared.domain.ledger import AnyMovement, MovementKey, order_key
from shared.errors import BadRequest, Conflict
from shared.store import checkpoints, lots
from shared.store.dynamo import ListPosition, org_batch_get, org_items, org_list_page
from shared.store.keys import (
    LEDGER_SK,
    MOVES_PREFIX,
    moves_sk,
    org_pk,
    record_sk,
    records_list_pk,
    stock_page_sk,
    stock_sk,
)

MAX_ITEM_BYTES = 350_000  # DynamoDB refuses items over 400 KB; keep room for attribute names
MAX_WRITE_ITEMS = 100  # DynamoDB's most actions in one TransactWriteItems
MAX_WRITE_BYTES = 3_500_000  # ... and its most bytes (4 MB), with room for names and expressions
LOTS_PAGE_BYTES = MAX_ITEM_BYTES  # a product's open lots are stored in pages of this size (as JSON) ...
MAX_STOCK_PAGES = 8  # ... its first in its stock item, up to this many more in items of their own


@dataclass(frozen=True)
class RecordRow:
    kind: str
    record_id: str
    body: str  # the record's JSON
    at: str  # when the thing happened (ISO)
    listed: Mapping[str, str] = field(default_factory=dict)  # its place in its list (keys.records_list_index)


class DuplicateRecord(Conflict):
    def __init__(self, message: str = "a record with this id is already recorded") -> None:
        super().__init__(message)


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
    # every document is in the index by key (from the ledger's first write on): checkpoints can be used
    timed: bool = False
    latest: str = ""  # the latest movement's sortable key
    cuts: tuple[checkpoints.Cut, ...] = ()  # the back-dated writes that checkpoints before them must not miss
    moved: int = 0  # movements written (since checkpoints were kept)
    checkpointed: int = 0  # ... when the latest checkpoint was taken


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
    return LedgerHead(
        version,
        recost,
        complete=recost == 0 and (version == 0 or bool(item.get("complete"))),
        timed=version == 0 or bool(item.get("timed")),
        latest=str(item.get("latest", "")),
        cuts=tuple((str(first), int(at)) for first, at in item.get("cuts", [])),
        moved=int(item.get("moved", 0)),
        checkpointed=int(item.get("checkpointed", 0)),
    )


def ledger_version(organisation_id: str) -> int:
    return ledger_head(organisation_id).version


def stock(organisation_id: str, product_ids: Iterable[str], head: LedgerHead) -> dict[str, Stock]:
    """The trusted stock of these products (one BatchGetItem per 100, and one per 100 more pages of lots for
    the products with many), by product."""
    wanted = list(product_ids)
    every = org_batch_get(organisation_id, (stock_sk(p) for p in wanted))
    return _with_lots(organisation_id, every, head) | {
        p: Stock((), NEVER_MOVED) for p in _never_moved(wanted, every, head)
    }


def _with_lots(organisation_id: str, items: list[dict[str, Any]], head: LedgerHead) -> dict[str, Stock]:
    """The trusted ones of these stock items, with their pages of lots."""
    trusted = [item for item in items if _trusted(item, head)]
    more = [stock_page_sk(str(item["product_id"]), n) for item in trusted for n in range(1, _pages(item) + 1)]
    pages = {str(page["sk"]): page["lots"] for page in org_batch_get(organisation_id, more)} if more else {}
    found = {}
    for item in trusted:
        product_id = str(item["product_id"])
        keys = [stock_page_sk(product_id, n) for n in range(1, _pages(item) + 1)]
        if not all(key in pages for key in keys):  # written with its item, always: never trust a part
            continue
        found[product_id] = Stock(
            tuple(lots.layer(row) for page in (item["lots"], *(pages[key] for key in keys)) for row in page),
            _last(item),
        )
    return found


def all_stock(organisation_id: str, head: LedgerHead) -> dict[str, Stock] | None:
    """Every product's stock at ``head``'s version, when every stock item is trusted and nothing was written
    meanwhile (None otherwise)."""
    if not head.complete:
        return None
    items = org_items(organisation_id, stock_sk(""), ConsistentRead=True)
    found = _with_lots(organisation_id, items, head)
    if len(found) != len(items) or ledger_version(organisation_id) != head.version:
        return None
    return found


@dataclass(frozen=True)
class Tail:
    """A product's trusted stock item read without its lots: its latest movement, where its lots end."""

    last: MovementKey
    size: int  # of its last page of lots
    pages: int = 0  # its pages of lots after the first, in items of their own


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
        str(item["product_id"]): Tail(_last(item), int(item["lots_size"]), _pages(item))
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


_NAMES = ("#product_id", "#version", "#last", "#lots_size", "#pages")


def _aliases(*names: str) -> dict[str, str]:
    """Every attribute named in an expression by an alias, so none can clash with DynamoDB's reserved words
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html)."""
    return {name: name[1:] for name in names}


def _pages(item: Mapping[str, Any]) -> int:
    return int(item.get("pages", 0))


def _trusted(item: Mapping[str, Any], head: LedgerHead) -> bool:
    return "lots_size" in item and int(item["version"]) >= head.recost


def _last(item: Mapping[str, Any]) -> MovementKey:
    return lots.key_of(item["last"])


def _rows(found: Stock) -> list[list[Any]]:
    return [lots.row(lot) for lot in found.lots]


def _stock_put(name: str, pk: str, product_id: str, found: Stock, version: int) -> list[dict[str, Any]]:
    """A product's whole stock: its first page of lots in its item, the rest in items of their own; with
    more than ``MAX_STOCK_PAGES`` pages it is stored without its lots (not trusted: the ledger is replayed
    for it when next needed)."""
    item = _stub(pk, product_id, version)
    pages = lots.paged(_rows(found), LOTS_PAGE_BYTES)
    if len(pages) - 1 > MAX_STOCK_PAGES:
        return [{"Put": {"TableName": name, "Item": item}}]
    item |= {
        "lots": pages[0][0],
        "lots_size": pages[-1][1],
        "last": lots.key_row(found.last),
        "pages": len(pages) - 1,
    }
    more = [
        {"Put": {"TableName": name, "Item": {"pk": pk, "sk": stock_page_sk(product_id, n), "lots": lots}}}
        for n, (lots, _) in enumerate(pages[1:], 1)
    ]
    return [{"Put": {"TableName": name, "Item": item}}, *more]


def _stub(pk: str, product_id: str, version: int) -> dict[str, Any]:
    return {"pk": pk, "sk": stock_sk(product_id), "product_id": product_id, "version": version}


def _stock_append(
    name: str, pk: str, product_id: str, tail: Tail, added: Stock, version: int
) -> list[dict[str, Any]]:
    """The lots a write made, added after the product's stored ones (on its last page, or a new one when
    that is full), and its latest movement."""
    rows = _rows(added)
    size = len(json.dumps(rows))
    page = tail.pages if tail.size + size <= LOTS_PAGE_BYTES else tail.pages + 1
    if page > MAX_STOCK_PAGES or size > LOTS_PAGE_BYTES:
        return [{"Put": {"TableName": name, "Item": _stub(pk, product_id, version)}}]
    values = {
        ":last": lots.key_row(added.last),
        ":version": version,
        ":product_id": product_id,
        ":size": size,
    }
    latest = "#last = :last, #version = :version, #product_id = :product_id"
    names, head = _aliases("#last", "#version", "#product_id", "#lots_size"), stock_sk(product_id)
    if page == 0:  # a product's first lots make its item (it never moved: no item, on a complete ledger)
        values |= {":lots": rows, ":none": [], ":zero": 0}
        appended = "#lots = list_append(if_not_exists(#lots, :none), :lots), "
        counted = "#lots_size = if_not_exists(#lots_size, :zero) + :size, "
        return [
            _update(name, pk, head, "SET " + appended + counted + latest, names | _aliases("#lots"), values)
        ]
    page_sk = stock_page_sk(product_id, page)
    if page == tail.pages:  # its last page has room
        rows_written = _update(
            name, pk, page_sk, "SET #lots = list_append(#lots, :lots)", _aliases("#lots"), {":lots": rows}
        )
        head_written = _update(
            name, pk, head, "SET #lots_size = #lots_size + :size, " + latest, names, values
        )
    else:  # it starts the next page
        rows_written = {"Put": {"TableName": name, "Item": {"pk": pk, "sk": page_sk, "lots": rows}}}
        values[":pages"] = page
        expression = "SET #lots_size = :size, #pages = :pages, " + latest
        head_written = _update(name, pk, head, expression, names | _aliases("#pages"), values)
    return [rows_written, head_written]


def _update(
    name: str, pk: str, sk: str, expression: str, names: dict[str, str], values: dict[str, Any]
) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": name,
            "Key": {"pk": pk, "sk": sk},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


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
        found.extend(lots.MOVEMENTS.validate_json(item["movements"]))
    _READ.pop(organisation_id, None)
    if len(_READ) >= _READ_LIMIT:
        del _READ[next(iter(_READ))]
    _READ[organisation_id] = (version, found)
    return list(found)


def commit(
    organisation_id: str,
    *,
    head: LedgerHead,
    documents: Mapping[str, Sequence[AnyMovement]],
    records: list[RecordRow],
    extra: list[dict[str, Any]],
    stock: Mapping[str, Stock],
    added: Mapping[str, tuple[Tail, Stock]],
) -> None:
    """Writes the documents' movements, the records and ``extra`` items (new, never overwriting), the
    products' ``stock`` after them and the lots ``added`` after a product's stored ones (with its latest
    movement), and moves the ledger from ``head`` to its next version, all or nothing.
    When the stock does not fit in the transaction, none of it is stored and the ledger's ``recost`` moves to
    the new version instead (every stock item stored before is replayed again when next needed); it moves
    anyway when ``head`` was read after a write that stored no stock. Raises ``LedgerMoved`` when the ledger
    is no longer at ``head``'s version, ``Conflict`` when a record with the same id exists."""
    pk, version = org_pk(organisation_id), head.version
    keys = [checkpoints.sortable(order_key(m)) for moved in documents.values() for m in moved]
    latest, cuts = max([head.latest, *keys]), list(head.cuts)
    if keys and min(keys) <= head.latest:  # back-dated: the checkpoints after it no longer hold
        cuts = checkpoints.with_cut(cuts, (min(keys), version + 1))
    items = [
        {"pk": pk, "sk": moves_sk(document), "movements": lots.MOVEMENTS.dump_json(list(moved)).decode()}
        for document, moved in documents.items()
    ]
    items += checkpoints.index_items(pk, documents)
    items += [
        {
            "pk": pk,
            "sk": record_sk(r.kind, r.record_id),
            "kind": r.kind,
            "record_id": r.record_id,
            "body": r.body,
            "at": r.at,
            **r.listed,
        }
        for r in records
    ]
    items += extra
    for item in items:
        if sum(len(str(v)) for v in item.values()) > MAX_ITEM_BYTES:
            raise BadRequest("this record is too large to store in one piece; split it into smaller ones")
    name = table().name  # the resource's client takes and gives plain Python values (it serializes them)
    stored = [
        action for p, found in sorted(stock.items()) for action in _stock_put(name, pk, p, found, version + 1)
    ]
    stored += [
        action
        for p, tail_added in sorted(added.items())
        for action in _stock_append(name, pk, p, *tail_added, version + 1)
    ]
    size = sum(len(str(v)) for item in items for v in item.values()) + len(str(stored))
    fits = 1 + len(items) + len(stored) <= MAX_WRITE_ITEMS and size <= MAX_WRITE_BYTES
    # every write marks its version ``stocked`` (``LedgerHead``); the first of a ledger marks it complete;
    # stock left out (or stock items already not to be trusted) moves ``recost``
    # the write's own token on the ledger item tells a retried transaction whose first answer was lost (it
    # committed) from a write that lost the race
    token = uuid.uuid4().hex
    update = "SET #v = :next, #s = :next, #w = :token, #l = :latest, #x = :cuts, #m = :moved"
    names = {"#v": "version", "#s": "stocked", "#w": "write", "#l": "latest", "#x": "cuts", "#m": "moved"}
    values: dict[str, Any] = {
        ":next": version + 1, ":read": version, ":token": token, ":latest": latest,
        ":cuts": [list(cut) for cut in cuts], ":moved": head.moved + len(keys),
    }  # fmt: skip
    # a ledger is ``timed`` from its first write on, while every write indexed its documents (one by code from
    # before the index left ``stocked`` behind, as before stock items)
    names["#t"] = "timed"
    if head.stocked:
        update += ", #t = if_not_exists(#t, :first)"
        values[":first"] = version == 0
    else:
        update += ", #t = :untimed"
        values[":untimed"] = False
    if fits:
        update += ", #c = if_not_exists(#c, :opening)"
        names["#c"], values[":opening"] = "complete", version == 0
    if not head.stocked or not fits:
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


PAGE_BODY_BYTES = 2_000_000  # a page of records holds at most this much of their JSON (after its first):
# with their export references, well inside Lambda's 6 MB answer however large each record is


def record_page(
    organisation_id: str, kind: str, limit: int, after: ListPosition | None
) -> tuple[list[str], ListPosition | None]:
    """A page of the organisation's receipts or builds (their JSON), oldest first
    (``keys.records_list_index``): at most ``limit``, and fewer when their JSON passes PAGE_BODY_BYTES (the
    page then ends at the last one it holds, and the next page starts after it)."""
    rows, last = org_list_page(
        organisation_id,
        records_list_pk(organisation_id, kind),
        limit=limit,
        after=after,
        ProjectionExpression="sk, #b, gsi2sk",
        ExpressionAttributeNames={"#b": "body"},
    )
    bodies = [str(row["body"]) for row in rows]
    size = 0
    for n, body in enumerate(bodies):
        size += len(body)
        if n and size > PAGE_BODY_BYTES:  # the page ends with the one before: the next page starts after it
            return bodies[:n], ListPosition(str(rows[n - 1]["sk"]), str(rows[n - 1]["gsi2sk"]))
    return bodies, last
