"""moto's JSON response serializer for DynamoDB's item operations, compiled once an operation.

moto (5.2) turns an operation's result dict into its JSON body by walking the botocore output shape: for
each member of a structure it asks an attribute picker for the value, and the picker builds six alias
providers and runs ``xform_name`` on each candidate key, for every member of every attribute value of every
item (about a fifth of a long test's time). Here the walk is the same, but each member's candidate keys are
worked out once, by moto's own picker, from the shape alone; they depend on nothing else when the value is a
plain ``dict`` (the class-name alias sees ``dict``, which has no ``Meta`` aliases). Each leaf is converted as
moto converts it (strings, integers, floats, blobs, timestamps), members come out in the shape's order, None
left out, and the body is made by moto's own ``_serialized_result_to_response``: the bytes are moto's.
Anything outside that (a value that is not a plain dict or list where the shape wants one, a response
transformer, a shape feature this walk does not mirror) is serialized by moto itself.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, MutableMapping
from enum import Enum
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from moto.core.serialize import (
    AttributePickerContext,
    BaseJSONSerializer,
    JSONSerializer,
    ResponseDict,
    ResponseSerializer,
    TimestampSerializer,
    XFormedAttributePicker,
)

ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)

Convert = Callable[[Any], Any]
_SKIPPED = object()  # what moto leaves out: a structure member whose structure value is None


class NotPlain(Exception):
    """A value this walk does not take as moto's would; moto's own serializer answers."""


class NotMirrored(Exception):
    """A shape feature this walk does not mirror; the operation keeps moto's own serializer."""


def _structure(shape: StructureShape, compiled: dict[str, Convert]) -> Convert:
    if shape.is_document_type:
        raise NotMirrored(shape.name)
    members = []
    for key, member in shape.members.items():
        member.parent = shape  # as moto sets it before picking
        picker_context = AttributePickerContext(obj={}, key=key, shape=member)
        candidates = tuple(dict.fromkeys(XFormedAttributePicker().get_possible_keys(picker_context)))
        if any("." in candidate for candidate in candidates):
            raise NotMirrored(f"{shape.name}.{key}")  # moto would read a dotted key as a path
        members.append((candidates, member.serialization.get("name", key), _compiled(member, compiled)))

    def convert(value: Any) -> Any:
        if value is None:
            return _SKIPPED
        if type(value) is not dict:
            raise NotPlain(shape.name)
        out = {}
        for candidates, name, convert_member in members:
            picked = None
            for candidate in candidates:
                if candidate in value:
                    picked = value[candidate]
                    break
            if picked is not None:
                converted = convert_member(picked)
                if converted is not _SKIPPED:
                    out[name] = converted
        return out

    return convert


def _list(shape: ListShape, compiled: dict[str, Convert]) -> Convert:
    if "name" in shape.member.serialization:
        raise NotMirrored(shape.name)
    convert_member = _compiled(shape.member, compiled)

    def convert(value: Any) -> Any:
        if type(value) is not list:
            raise NotPlain(shape.name)
        out = []
        for element in value:
            converted = convert_member(element)
            out.append(element if converted is _SKIPPED else converted)
        return out

    return convert


def _map(shape: MapShape, compiled: dict[str, Convert]) -> Convert:
    if "name" in shape.value.serialization:
        raise NotMirrored(shape.name)
    convert_value = _compiled(shape.value, compiled)

    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise NotPlain(shape.name)
        out = {}
        for key, element in value.items():
            if key == "" and isinstance(shape.value, StructureShape):
                raise NotPlain(shape.name)  # moto writes such a member's fields into the map itself
            converted = convert_value(element)
            if converted is not _SKIPPED:
                out[key] = converted
        return out

    return convert


def _string(value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in [None, {}, []] else value


def _blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode(ResponseSerializer.DEFAULT_ENCODING)
    return base64.b64encode(value).strip().decode(ResponseSerializer.DEFAULT_ENCODING)


def _timestamp(shape: Shape, _: dict[str, Convert]) -> Convert:
    timestamps = TimestampSerializer(BaseJSONSerializer.DEFAULT_TIMESTAMP_FORMAT)

    def convert(value: Any) -> Any:
        wrapper: dict[str, Any] = {}
        timestamps.serialize(wrapper, value, shape, "timestamp")
        return wrapper["timestamp"]

    return convert


# moto's method for each shape type, and the walk that mirrors it (checked when compiling, so a moto that
# serializes a type otherwise keeps its own serializer)
_MIRRORED: dict[str, tuple[Any, Callable[[Any, dict[str, Convert]], Convert]]] = {
    "structure": (BaseJSONSerializer._serialize_type_structure, _structure),
    "list": (BaseJSONSerializer._serialize_type_list, _list),
    "map": (BaseJSONSerializer._serialize_type_map, _map),
    "string": (BaseJSONSerializer._serialize_type_string, lambda *_: _string),
    "integer": (ResponseSerializer._serialize_type_integer, lambda *_: int),
    "long": (ResponseSerializer._serialize_type_integer, lambda *_: int),
    "float": (ResponseSerializer._serialize_type_float, lambda *_: float),
    "double": (ResponseSerializer._serialize_type_float, lambda *_: float),
    "blob": (ResponseSerializer._serialize_type_blob, lambda *_: _blob),
    "timestamp": (ResponseSerializer._serialize_type_timestamp, _timestamp),
}


def _compiled(shape: Shape, compiled: dict[str, Convert] | None = None) -> Convert:
    """The walk for ``shape``; ``compiled`` holds the containers already begun (AttributeValue holds maps and
    lists of itself), by name: a container's walk depends on its own definition only."""
    moto_method = getattr(JSONSerializer, f"_serialize_type_{shape.type_name}", None)
    if moto_method is None:  # moto's default: the value as it is (booleans)
        return lambda value: value
    mirrored = _MIRRORED.get(shape.type_name)
    if mirrored is None or mirrored[0] is not moto_method:
        raise NotMirrored(f"{shape.name}: {shape.type_name}")
    if shape.type_name not in ("structure", "list", "map"):
        return mirrored[1](shape, {})
    compiled = {} if compiled is None else compiled
    if shape.name not in compiled:
        begun: list[Convert] = []
        compiled[shape.name] = lambda value: begun[0](value)
        begun.append(mirrored[1](shape, compiled))
        compiled[shape.name] = begun[0]
    return compiled[shape.name]


_outputs: dict[str, Convert | None] = {}


def _output(operation_model: OperationModel) -> Convert | None:
    name = str(operation_model.name)
    if name not in _outputs:
        try:
            shape = operation_model.output_shape
            _outputs[name] = _compiled(shape) if isinstance(shape, StructureShape) else None
        except NotMirrored:
            _outputs[name] = None
    return _outputs[name]


_moto_serialize_result = JSONSerializer._serialize_result


def _serialize_result(self: ResponseSerializer, resp: ResponseDict, result: Any) -> ResponseDict:
    """moto's ``_serialize_result`` for DynamoDB's item operations, through the compiled walk."""
    picker = self._value_picker
    convert = (
        _output(self.operation_model)
        if type(self) is JSONSerializer
        and self.service_model.service_name == "dynamodb"
        and self.operation_name in ITEM_OPERATIONS
        and type(picker) is XFormedAttributePicker
        and not picker.response_transformers
        else None
    )
    if convert is None:
        return _moto_serialize_result(self, resp, result)
    try:
        serialized: MutableMapping[str, Any] = convert(result)
    except NotPlain:
        return _moto_serialize_result(self, resp, result)
    if serialized is _SKIPPED:
        serialized = self.MAP_TYPE()
    return self._serialized_result_to_response(resp, result, self.operation_model.output_shape, serialized)


def install() -> Callable[[], None]:
    """Puts the compiled walk in place; returns what puts moto's back."""
    JSONSerializer._serialize_result = _serialize_result  # type: ignore[method-assign]

    def uninstall() -> None:
        del JSONSerializer._serialize_result  # the inherited method again

    return uninstall
