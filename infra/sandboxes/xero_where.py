"""Xero's ``where`` query filter: a small parser turning the expression into a record predicate."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.sandboxes.common import lex

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|>=|<=|&&|\|\||[<>!(),.=])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_METHODS = {"contains", "startswith", "endswith"}
_CASE_METHODS = {"tolower", "toupper"}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    # a single "=" is equality too: Xero's own pages write their optimised filters with it
    # (where=Status="AUTHORISED", where=Contact.ContactID=guid("..."): Invoices page; where=Narration=
    # "narrationtext": Manual Journals page; developer.xero.com/documentation/api/accounting/...)
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a is not None and b is not None and a > b,
    ">=": lambda a, b: a is not None and b is not None and a >= b,
    "<": lambda a, b: a is not None and b is not None and a < b,
    "<=": lambda a, b: a is not None and b is not None and a <= b,
}


class WhereError(ValueError):
    """The expression cannot be parsed (Xero answers 400 QueryParseException)."""


SPEC = Path(__file__).parent / "specs" / "xero_accounting.yaml"


@cache
def _schemas() -> dict[str, Any]:
    with SPEC.open() as handle:
        schemas: dict[str, Any] = yaml.load(handle, Loader=yaml.CSafeLoader)["components"]["schemas"]
    return schemas


@cache
def properties(schema: str) -> frozenset[str] | None:
    """The lower-cased names of a schema's own properties in Xero's OpenAPI spec (None: no such schema)."""
    found = _schemas().get(schema, {}).get("properties")
    return frozenset(name.lower() for name in found) if found else None


@cache
def enum(schema: str) -> frozenset[str]:
    """The values of an enum schema of Xero's OpenAPI spec (``TaxType``: the tax types Xero knows)."""
    return frozenset(str(v) for v in _schemas().get(schema, {}).get("enum", ()))


def parse_where(text: str, element: str | None = None) -> Predicate:
    """Parses e.g. ``Status=="ACTIVE" AND Type=="BANK"`` or ``Narration.Contains("abc")``. With the
    ``element`` type of the list read (``Invoice``), a field the spec does not give that type is refused as
    Xero refuses it: 400 QueryParseException "No property or field 'paymentsOnly' exists in type Journal"
    (freakboy3742/pyxero#272; XeroAPI/Xero-Net#251 quotes the type). Only a path's first name is checked:
    which nested fields Xero filters on is not in the spec (Xero-Net#251 was refused one it lists)."""
    parser = _Parser(_tokenize(text), properties(element) if element else None, element or "")
    predicate = parser.expression()
    if parser.peek() is not None:
        raise WhereError(f"unexpected '{parser.peek()}' in where clause")
    return predicate


_ORDER_CLAUSE = re.compile(r"\s*([A-Za-z_]\w*)(?:\.[A-Za-z_]\w*)*(?:\s+(?:ASC|DESC))?\s*", re.IGNORECASE)


def check_order(text: str, element: str) -> None:
    """Refuses an ``order`` Xero cannot sort by: each comma-separated clause is a field, then ASC or DESC
    or nothing (the spec's examples: ``order=UpdatedDateUTC ASC``, ``Date DESC``; Linx's Xero filter docs:
    "EmailAddress DESC"), and, as for ``where``, a field the element type lacks is a 400 QueryParseException
    "No property or field ... exists in type ...". UNSURE: Xero documents no refused order. Its refusals of a
    ``where`` are System.Linq.Dynamic's words ("Expression expected", xero-php-oauth2#307; "Character literal
    must contain exactly one character", xeroizer#454; "No property or field ... exists in type", pyxero#272),
    and that library refuses an unknown OrderBy field in the same words (zzzprojects/System.Linq.Dynamic.Core
    #895), so Xero refusing it is an inference, not a quotation."""
    fields = properties(element)
    for clause in text.split(","):
        match = _ORDER_CLAUSE.fullmatch(clause)
        if match is None:
            raise WhereError(f"cannot parse order clause '{clause.strip()}'")
        if fields is not None and match.group(1).lower() not in fields:
            raise WhereError(f"No property or field '{match.group(1)}' exists in type '{element}'")


def _tokenize(text: str) -> list[tuple[str, str]]:
    return lex(
        _TOKEN, text, lambda pos: WhereError(f"cannot parse where clause near '{text[pos : pos + 20]}'")
    )


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], fields: frozenset[str] | None, element: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.fields, self.element = fields, element

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise WhereError("where clause ends unexpectedly")
        token = self.tokens[self.pos]
        if expected is not None and token[1].upper() != expected.upper():
            raise WhereError(f"expected '{expected}' but found '{token[1]}'")
        self.pos += 1
        return token

    def expression(self) -> Predicate:
        parts = [self.conjunction()]
        while (self.peek() or "").upper() in ("OR", "||"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while (self.peek() or "").upper() in ("AND", "&&"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def unary(self) -> Predicate:
        if (self.peek() or "").upper() in ("!", "NOT"):
            self.take()
            inner = self.unary()
            return lambda r: not inner(r)
        if self.peek() == "(":
            self.take("(")
            inner = self.expression()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        path = [self._word()]
        if self.fields is not None and path[0].lower() not in self.fields:
            raise WhereError(f"No property or field '{path[0]}' exists in type '{self.element}'")
        while self.peek() == ".":
            self.take(".")
            path.append(self._word())
            if self.peek() == "(" and path[-1].lower() in _CASE_METHODS:
                # Name.ToLower()=="abc": accepted (Xero's Contacts page says its optimised filters "are case-
                # and accent-insensitive and should not be appended with ToLower() or ToUpper()"); string
                # comparisons here ignore case already, so the call changes nothing
                path.pop()
                self.take("(")
                self.take(")")
        if self.peek() == "(" and path[-1].lower() in _METHODS:
            method = path.pop().lower()
            self.take("(")
            needle = str(self.literal()).lower()
            self.take(")")
            return _method_predicate(path, method, needle)
        op = self.peek()
        if op not in _COMPARE:
            return lambda r: bool(lookup(r, path))
        self.take()
        value = self.literal()
        compare = _COMPARE[op]
        return lambda r: compare(*_comparable(lookup(r, path), value))

    def _word(self) -> str:
        kind, text = self.take()
        if kind != "word":
            raise WhereError(f"expected a field name but found '{text}'")
        return text

    def literal(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "number":
            return Decimal(text)
        word = text.lower()
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        if word == "guid":
            self.take("(")
            value = str(self.literal()).lower()
            self.take(")")
            return value
        if word == "datetime":
            self.take("(")
            numbers = [int(self.literal())]
            while self.peek() == ",":
                self.take(",")
                numbers.append(int(self.literal()))
            self.take(")")
            if len(numbers) < 3:
                raise WhereError("DateTime needs at least year, month and day")
            year, month, day, hour, minute, second = [*numbers, 0, 0, 0][:6]
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        raise WhereError(f"unexpected '{text}' in where clause")


def lookup(record: Record, path: list[str]) -> Any:
    """A dotted field value, matching field names case-insensitively as Xero does."""
    value: Any = record
    for part in path:
        if not isinstance(value, dict):
            return None
        key = next((k for k in value if k.lower() == part.lower()), None)
        value = value.get(key) if key is not None else None
    return value


def _method_predicate(path: list[str], method: str, needle: str) -> Predicate:
    def check(record: Record) -> bool:
        value = lookup(record, path)
        if value is None:
            return False
        text = str(value).lower()
        if method == "contains":
            return needle in text
        return text.startswith(needle) if method == "startswith" else text.endswith(needle)

    return check


def _comparable(field: Any, literal: Any) -> tuple[Any, Any]:
    """Brings a stored value and a literal to one type; string comparisons ignore case."""
    if field is None or literal is None:
        return field, literal
    if isinstance(literal, datetime):
        if isinstance(field, datetime):
            return field, literal
        if isinstance(field, date):
            return datetime(field.year, field.month, field.day, tzinfo=UTC), literal
    if isinstance(literal, bool) or isinstance(field, bool):
        return field, literal
    if isinstance(literal, Decimal) and isinstance(field, (int, Decimal)):
        return Decimal(field), literal
    return str(field).lower(), str(literal).lower()
