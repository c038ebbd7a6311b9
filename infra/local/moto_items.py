"""moto's DynamoDB values, weighed, compared and projected with less work and the same results.

- ``DynamoType.cast_value`` (what every ``==``, ``<`` and hash of a key compares) asks five ``is_*`` questions
  before it hands back a string's value as it is; a string's value is now handed back first.
- ``DynamoType.size`` (the 1 MB page, the 400 KB item) weighs a map's members through ``DynamoType(member)``,
  a deep re-wrap of each member (a copy of the same types and values, so of the same weight); the copy is
  no longer made, and strings and numbers are weighed first, by moto's own formulas.
- ``Item.project`` (index projections, ``ProjectionExpression``) converted the whole item to Python values
  once for every projected path; for paths that are plain top-level names (no ``.``, no ``[n]``) only the
  named attributes are converted, each as moto converts it (its value the same for a name given twice), and
  the item is built as moto builds it. Any other path is projected by moto.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.utilities import bytesize

_moto_cast_value = DynamoType.cast_value
_moto_size = DynamoType.size
_moto_project = Item.project
_LIST_ELEMENT = re.compile(r"(.+)\[(\d+)\]$")  # moto's find_nested_key reads "name[n]" as a list element


def _cast_value(self: DynamoType) -> Any:
    if self.type == "S":
        return self.value
    return _moto_cast_value.fget(self)  # type: ignore[attr-defined]


def _size(self: DynamoType) -> int:
    kind, value = self.type, self.value
    if kind == "S" and type(value) is str:
        return len(value.encode("utf-8"))
    if kind == "N":
        return len(str(value))
    if kind == "L":
        return sum([member.size() for member in value])
    if kind == "M":
        return sum([bytesize(key) + _rewrapped_size(member) for key, member in value.items()])
    return _moto_size(self)


def _rewrapped_size(value: Any) -> int:
    """``DynamoType(value).size()``, without the deep copy: the copy holds the same types and values."""
    if type(value) is not DynamoType:
        return DynamoType(value).size()
    kind, inner = value.type, value.value
    if kind == "L":
        return sum([_rewrapped_size(member) for member in inner])
    if kind == "M":
        return sum([bytesize(key) + _rewrapped_size(member) for key, member in inner.items()])
    return value.size()


def _project(self: Item, projection_expressions: list[list[str]]) -> Item:
    names = [path[0] for path in projection_expressions if len(path) == 1]
    if len(names) != len(projection_expressions) or any(_LIST_ELEMENT.match(name) for name in names):
        return _moto_project(self, projection_expressions)
    result = {
        name: dynamo_type.deserializer.deserialize(self.attrs[name].to_regular_json())
        for name in dict.fromkeys(names)
        if name in self.attrs
    }
    return Item(
        hash_key=self.hash_key,
        range_key=self.range_key,
        attrs=dynamo_type.serializer.serialize(result)["M"],
    )


@contextmanager
def lighter() -> Iterator[None]:
    """While open: moto's values compared, weighed and projected as above."""
    with (
        patch.multiple(DynamoType, cast_value=property(_cast_value), size=_size),
        patch.object(Item, "project", _project),
    ):
        yield
