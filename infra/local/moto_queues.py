"""moto's SQS GetQueueAttributes with its queue's attributes worked out once a call.

moto's ``get_queue_attributes`` reads ``queue.attributes`` (a property that works out every attribute of the
queue, walking its messages for the counts and converting each name with ``camelcase_to_underscores``) once
for the request, and three more times for each name asked for (is it there, is it None, its value): the
two counts a drain loop asks for cost seven full walks. Here the property is worked out once a call and
read from there, and ``camelcase_to_underscores`` (a pure function of its string) remembers its answers. The
answer is the one moto gives at that instant (moto's own readings are microseconds apart, and a message's
visibility can only change with the clock between them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any
from unittest.mock import patch

import moto.core.utils
import moto.sqs.models
from moto.sqs.models import Queue, SQSBackend

_moto_get_queue_attributes = SQSBackend.get_queue_attributes
_moto_attributes: property = Queue.__dict__["attributes"]
_moto_camelcase_to_underscores = moto.core.utils.camelcase_to_underscores  # the function sqs.models imported

# the attributes worked out in this thread's running GetQueueAttributes, by queue
_worked_out: ContextVar[dict[int, tuple[Queue, dict[str, Any]]] | None] = ContextVar(
    "moto_queue_attributes", default=None
)


def _attributes(self: Queue) -> dict[str, Any]:
    worked_out = _worked_out.get()
    if worked_out is None:
        return _moto_attributes.fget(self)  # type: ignore[misc,no-any-return]
    if id(self) not in worked_out:  # the queue is kept with them, so its id names no other while kept
        worked_out[id(self)] = (self, _moto_attributes.fget(self))  # type: ignore[misc]
    return worked_out[id(self)][1]


def _get_queue_attributes(self: SQSBackend, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    token = _worked_out.set({})
    try:
        return _moto_get_queue_attributes(self, queue_name, attribute_names)
    finally:
        _worked_out.reset(token)


_cached_camelcase_to_underscores = lru_cache(maxsize=1024)(_moto_camelcase_to_underscores)


@contextmanager
def read_once() -> Iterator[None]:
    """While open: a queue's attributes worked out once a GetQueueAttributes."""
    with (
        patch.object(SQSBackend, "get_queue_attributes", _get_queue_attributes),
        patch.object(Queue, "attributes", property(_attributes)),
        patch.object(moto.sqs.models, "camelcase_to_underscores", _cached_camelcase_to_underscores),
    ):
        yield
