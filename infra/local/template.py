"""Reads template.yaml (CloudFormation short-form tags included) and resolves the intrinsics the
local stack needs: Ref, Fn::GetAtt, Fn::Sub. The template stays the single definition of resources."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
_TAGS = {
    "Ref": "Ref",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Select": "Fn::Select",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "GetAZs": "Fn::GetAZs",
}


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml: ~10x faster
    pass


def _construct(tag: str) -> Any:
    def build(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {tag: value}

    return build


for _short, _long in _TAGS.items():
    _Loader.add_constructor(f"!{_short}", _construct(_long))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain values, a copy of its own for each caller (every test's stack reads it)."""
    return copy.deepcopy(_parsed(path, path.stat().st_mtime_ns))


@cache
def _parsed(path: Path, modified: int) -> dict[str, Any]:
    with path.open() as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_Loader)
    return loaded


@dataclass
class Resolver:
    """Resolves intrinsics against parameter values and the physical attributes of created resources."""

    parameters: dict[str, str]
    pseudo: dict[str, str]
    attributes: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # logical id -> {"Ref": .., "Arn": ..}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg
                return self.attributes[logical][attribute]
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), arg)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.resolve(parts))
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.attributes[name]["Ref"]

    def _sub(self, expression: str) -> str:
        if "." in expression and not expression.startswith("AWS::"):
            logical, attribute = expression.split(".", 1)
            return self.attributes[logical][attribute]
        return self.ref(expression)
