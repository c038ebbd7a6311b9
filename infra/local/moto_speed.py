"""Work that every test's moto stack repeated, done once a process or when first needed (about 0.26 s of CPU
a test, a fifth of the suite's).

- moto gives each ``mock_aws`` a new default boto3 session, and ``shared.aws`` makes a new botocore session
  for each test's clients: each session's loader parsed botocore's JSON data again (endpoints.json is
  1.2 MB, DynamoDB's and KMS's models about 550 KB each) and listed its 400-odd service folders. botocore's
  data files do not change while a process runs, and one session's loader already hands the same parsed
  models to all its clients, so loaders now share them across sessions too.
- moto makes an RSA key pair for every KMS key, a symmetric one too (used only by Sign, Verify and
  GetPublicKey, which the service never calls): now made when first used.
- moto's TransactWriteItems deep-copies the whole table once per item it writes, to roll back on a
  cancellation: its cost grew with everything the table holds (66 ms of a 4-item transaction in the
  cold-start benchmark, 15 GetItems' worth; DynamoDB's own cost does not grow with the table). Only the
  items the transaction names are copied now, and only they are put back when it is cancelled.
- moto's answers made with less work, moto's to the byte (``tests/integration/test_emulator_speed.py``):
  DynamoDB's JSON responses (``moto_wire``), its Query (``moto_query``), its values' comparisons, weights and
  projections (``moto_items``), its update expressions' checks (``moto_updates``), SQS's GetQueueAttributes
  (``moto_queues``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import botocore.loaders
import moto.dynamodb.models
import moto.kms.models
import moto.kms.utils
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from infra.local import moto_items, moto_query, moto_queues, moto_updates, moto_wire

_parsed: dict[str, Any] = {}
_listed: dict[tuple[tuple[str, ...], str], list[str]] = {}


class _KeyOnFirstUse(moto.kms.utils.AbstractPrivateKey):
    """A moto KMS key's private key, generated on its first use."""

    def __init__(self, generate: Callable[[], moto.kms.utils.AbstractPrivateKey]) -> None:
        self._generate = generate

    @cached_property
    def _key(self) -> moto.kms.utils.AbstractPrivateKey:
        return self._generate()

    def sign(self, message: bytes, signing_algorithm: str) -> bytes:
        return self._key.sign(message, signing_algorithm)

    def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
        return self._key.verify(message, signature, signing_algorithm)

    def public_key(self) -> bytes:
        return self._key.public_key()


class _TablesKept:
    """``copy`` as moto's DynamoDB backend sees it while a transaction runs: a table is not copied (its
    items are saved one by one by ``_rolled_back_by_item``), anything else is."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


Saved = tuple[Table, DynamoType, DynamoType | None, Item | None]


def _rolled_back_by_item(
    transact: Callable[[Any, list[dict[str, Any]]], None],
) -> Callable[[Any, list[dict[str, Any]]], None]:
    """moto's TransactWriteItems with only the items it names saved beforehand and put back if it fails."""

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = [entry for entry in map(lambda item: _saved(backend, item), transact_items) if entry]
        try:
            transact(backend, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                _restore(table, hash_value, range_value, item)
            raise

    return transact_write_items


def _saved(backend: Any, transact_item: dict[str, Any]) -> Saved | None:
    """The item one operation of a transaction names, as it is now (None: not there); None for an operation
    moto will refuse before it writes anything."""
    (operation, spec), *_ = transact_item.items()
    table = backend.tables.get(spec.get("TableName"))
    key = spec.get("Item" if operation == "Put" else "Key")
    if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
        return None
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
    if table.range_key_attr is not None and range_value is None:
        return None
    held = table.items.get(hash_value)
    current = (held or {}).get(range_value) if table.range_key_attr is not None else held
    return table, hash_value, range_value, copy.deepcopy(current)


def _restore(table: Table, hash_value: DynamoType, range_value: DynamoType | None, item: Item | None) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item  # type: ignore[assignment]  # a table without a sort key
    elif item is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item


@contextmanager
def set_up_once() -> Iterator[None]:
    """While open: botocore's data parsed and listed once a process, moto's key pairs made on first use, its
    transactions' roll-back saving only the items they name, its answers made with less work."""
    load_file = botocore.loaders.JSONFileLoader.load_file
    list_services = botocore.loaders.Loader.list_available_services
    private_key = moto.kms.utils.generate_private_key

    def parsed_once(self: botocore.loaders.JSONFileLoader, file_path: str) -> Any:
        if file_path not in _parsed:
            _parsed[file_path] = load_file(self, file_path)
        return _parsed[file_path]

    def listed_once(self: botocore.loaders.Loader, type_name: str) -> list[str]:
        key = (tuple(self.search_paths), type_name)
        if key not in _listed:
            _listed[key] = list_services(self, type_name)
        return _listed[key]

    botocore.loaders.JSONFileLoader.load_file = parsed_once
    botocore.loaders.Loader.list_available_services = listed_once

    def on_first_use(key_spec: str) -> moto.kms.utils.AbstractPrivateKey:
        return _KeyOnFirstUse(lambda: private_key(key_spec))

    moto.kms.models.generate_private_key = on_first_use  # type: ignore[attr-defined]
    backend = moto.dynamodb.models.DynamoDBBackend
    transact = backend.transact_write_items
    backend.transact_write_items = _rolled_back_by_item(transact)  # type: ignore[method-assign,assignment]
    moto.dynamodb.models.copy = _TablesKept  # type: ignore[attr-defined,assignment]
    moto_serializer = moto_wire.install()
    try:
        with moto_query.narrowed(), moto_items.lighter(), moto_queues.read_once(), moto_updates.mapped_once():
            yield
    finally:
        moto_serializer()
        backend.transact_write_items = transact  # type: ignore[method-assign]
        moto.dynamodb.models.copy = copy  # type: ignore[attr-defined]
        botocore.loaders.JSONFileLoader.load_file = load_file
        botocore.loaders.Loader.list_available_services = list_services
        moto.kms.models.generate_private_key = private_key  # type: ignore[attr-defined]
