"""Where moto answers otherwise than DynamoDB, put right for every local stack (imported by
``infra.local.stack``, so the tests, the benchmarks and ``make run`` all have it).

- An item's size on an update: moto's ``LimitedSizeDict`` adds an attribute's new value to the item's size
  *with* the value it replaces (moto issue #1874's check), so an update that grows a 300 KB list to 350 KB
  counts 650 KB and is refused with "Item size to update has exceeded the maximum allowed size". DynamoDB
  weighs the item as it is after the update ("The maximum item size in DynamoDB is 400 KB", Developer Guide,
  Service quotas: Items); so does this check, with moto's own limit.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
from moto.dynamodb.models.utilities import bytesize

MOTO_ITEM_LIMIT = 405_000  # moto's own: "the actual limit is between 409 and 410KB" (dynamo_type.py)


def _size(key: str, value: Any) -> int:
    return bytesize(key) + (value.size() if type(value) is DynamoType else bytesize(str(value)))


def _set_as_dynamodb_weighs(self: LimitedSizeDict, key: str, value: Any) -> None:
    """Sets the attribute unless the item it makes, its old value of ``key`` left out, passes the limit."""
    after = sum(_size(k, v) for k, v in self.items() if k != key) + _size(key, value)
    if after > MOTO_ITEM_LIMIT:
        raise ItemSizeTooLarge
    dict.__setitem__(self, key, value)


dynamo_type.LimitedSizeDict.__setitem__ = _set_as_dynamodb_weighs  # type: ignore[method-assign]
