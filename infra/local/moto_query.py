"""moto's DynamoDB Query with the work that does not decide its answer left out.

- Candidates: moto's ``Table.query`` starts from ``all_items()``, the whole table sorted by its primary key
  (``DynamoType`` comparisons, each making a ``Decimal`` or a string), and then keeps the items of the queried
  partition (a table query) or those the index's key condition names (an index query), and sorts what it kept
  again: by the range key (table) or by the index's keys and then the table's (index). Here a table query
  starts from its partition's items (``table.items[hash_key]``: moto files each item under its own hash
  key, so that partition is exactly the items ``item.hash_key == hash_key`` keeps) and an index query from
  every item unsorted. The first order cannot show through the second sort: in a partition the range keys are
  distinct values of the schema's one type (moto refuses another type on a write), and an index's sort key
  ends with the table's primary key, distinct for every item; a sort with no ties has one answer, whatever
  order it starts from.
- Item sizes: moto weighs each candidate up to three times (``Item.size``, for the 1 MB page: once to check
  the limit, again when it is added, each a walk of every attribute that re-wraps nested values). An item does
  not change while a query reads it, so its first weight is kept for the rest of that query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from unittest.mock import patch

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

_moto_query = Table.query
_moto_all_items = Table.all_items
_moto_size = Item.size

# the query running in this thread: its table, the items it starts from, the weights found so far
_running: ContextVar[tuple[Table, Callable[[], list[Item]], dict[int, tuple[Item, int]]] | None] = ContextVar(
    "moto_query_running", default=None
)


def _partition(table: Table, hash_key: DynamoType | None) -> list[Item]:
    if hash_key is None:  # never from a valid key condition; moto's own walk answers (or fails) as it does
        return _moto_all_items(table)
    held = table.items.get(hash_key)
    if held is None:
        return []
    return list(held.values()) if table.range_key_attr else [held]  # type: ignore[list-item]


def _every_item(table: Table) -> list[Item]:
    if table.range_key_attr:
        return [item for partition in table.items.values() for item in partition.values()]
    return list(table.items.values())  # type: ignore[arg-type]


def _query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
    """moto's ``Table.query``, starting from the candidates named above, each item weighed once."""
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    start = (lambda: _every_item(self)) if index_name else (lambda: _partition(self, hash_key))
    token = _running.set((self, start, {}))
    try:
        return _moto_query(self, hash_key, *args, **kwargs)
    finally:
        _running.reset(token)


def _all_items(self: Table) -> list[Item]:
    running = _running.get()
    if running is not None and running[0] is self:
        return running[1]()
    return _moto_all_items(self)


def _size(self: Item) -> int:
    running = _running.get()
    if running is None:
        return _moto_size(self)
    weights = running[2]
    if id(self) not in weights:  # the item is kept with its weight, so its id names no other while kept
        weights[id(self)] = (self, _moto_size(self))
    return weights[id(self)][1]


@contextmanager
def narrowed() -> Iterator[None]:
    """While open: moto's Query starting from its partition (or index), each item weighed once."""
    with patch.multiple(Table, query=_query, all_items=_all_items), patch.object(Item, "size", _size):
        yield
