"""A provider's answer read as untrusted input: a body that is not the shape the provider documents, or a
record that can't be made a catalog value, is a ``ProviderError`` (a 502 that changes nothing), never an
exception the service did not expect (a 500) nor an empty list (which a whole read would take as every
record deleted)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from shared.errors import ProviderError

T = TypeVar("T")
# The pages one whole read of a catalog list (items, vendors, contacts, the chart) takes at most: 200,000
# records at both providers' 1,000 a page, far past any company's. An answer that pages on past it is not
# the provider's, and would hold the function until it runs out of time or memory.
MAX_PAGES = 200


def bounded_pages(provider: str, pages: Iterable[T]) -> Iterator[T]:
    for number, page in enumerate(pages, 1):
        if number > MAX_PAGES:
            raise ProviderError(provider, f"the provider's list went on past {MAX_PAGES} pages")
        yield page


def json_object(body: Any, provider: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ProviderError(provider, "the provider answered with JSON that is not an object")
    return body


def records(body: dict[str, Any], key: str, provider: str, *, required: bool) -> list[dict[str, Any]]:
    """The list of records under ``key``. ``required``: the provider always sends the key (an empty list
    when nothing matches), so an answer without it is broken, not empty."""
    value = body.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ProviderError(provider, f"the provider's answer holds no readable list of {key}")
    return value


def written(body: Any, key: str, provider: str) -> dict[str, Any]:
    """The record a write's answer holds under ``key`` (the first of a list, or the object itself). A write's
    answer without it is broken: a ``ProviderError``, the write's outcome unknown (an export searches for its
    marker before it posts again), never a crash."""
    value = json_object(body, provider).get(key)
    record = value[0] if isinstance(value, list) and value else value
    if not isinstance(record, dict):
        raise ProviderError(provider, f"the provider answered a write without the {key} it made")
    return record


def written_id(record: dict[str, Any], field: str, provider: str) -> str:
    """The id of the record a write made (see ``written``)."""
    value = record.get(field)
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value):
        raise ProviderError(provider, f"the provider's answer names no {field} for the record")
    return str(value)


def converted(
    provider: str, what: str, convert: Callable[[dict[str, Any]], T | None], raw: Iterable[dict[str, Any]]
) -> tuple[T, ...]:
    """Each record as a value (``convert`` answers None for records that are not wanted); a record that is
    missing its id or holds a value of the wrong kind or beyond the provider's documented bounds is refused
    with the provider named, so nothing read with it is kept."""
    values: list[T] = []
    for record in raw:
        try:
            value = convert(record)
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError):  # pydantic's: ValueError
            raise ProviderError(provider, f"the provider answered with {what} that can't be read") from None
        if value is not None:
            values.append(value)
    return tuple(values)
