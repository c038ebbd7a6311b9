"""moto's update expressions checked with less work and the same results.

moto checks an ``UpdateExpression`` by walking its tree once for each of ten processors; at every node of
every walk a processor rebuilt its map of node types to handlers (``_processing_map``, a new dict of bound
methods each time) and a tuple of its keys, twice. A processor's map is fixed for its life (each maps
constant node classes to its own methods), so it is built once a processor now, and the walks visit the
same nodes in the same order with the same handlers. Our writes carry long ``SET`` lists, so this was about a
tenth of a books test's time (``tests/integration/test_emulator_speed.py`` compares the answers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]  # untyped module

_MAP, _TYPES = "_moto_speed_map", "_moto_speed_types"


def _map(traverser: Any) -> dict[type, Callable[[Any], Any]]:
    held: dict[type, Callable[[Any], Any]] | None = traverser.__dict__.get(_MAP)
    if held is None:
        held = traverser.__dict__[_MAP] = traverser._processing_map()
    return held


def _nodes_to_be_processed(self: Any) -> tuple[type, ...]:
    held: tuple[type, ...] | None = self.__dict__.get(_TYPES)
    if held is None:
        held = self.__dict__[_TYPES] = tuple(_map(self))
    return held


def _process(self: Any, node: Any) -> Any:
    """moto's ``process``: the first handler whose class the node is an instance of."""
    for class_key, processor in _map(self).items():
        if isinstance(node, class_key):
            return processor(node)
    return None


@contextmanager
def mapped_once() -> Iterator[None]:
    """While open: each update-expression processor builds its map of handlers once."""
    with patch.multiple(DepthFirstTraverser, nodes_to_be_processed=_nodes_to_be_processed, process=_process):
        yield
