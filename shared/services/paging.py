"""Pages of the API's long lists (exports, products, receipts, builds, a provider's items): a bounded page
and an opaque cursor to the next one.

A cursor is ``<position>.<signature>``: where the page ended (base64url JSON) and an HMAC over the list's
name, the organisation and that position, keyed by a key derived from the deployment's signing secret. A
cursor edited, made up, or answered to another organisation or for another list is refused (400 naming the
field) before anything is read. The position names no partition either: a page is read from the caller's
own."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from functools import cache
from typing import Literal

from pydantic import Field

from shared.errors import InvalidFields, query_field
from shared.model import Model
from shared.services import credentials
from shared.store.dynamo import ListPosition

Listing = Literal["exports", "products", "receipts", "builds", "items:qbo", "items:xero"]
CURSOR_FIELD = query_field("cursor")


class Page(Model):
    """One page of a list: the cursor that asks for the next page; a subclass declares its ``items``, in the
    list's order. Not a generic ``Page[T]``: pydantic builds a parametrised model's class at import, about 18
    ms of the export worker's cold start for a page only the API answers."""

    next_cursor: str | None = Field(
        description="send it back as `cursor` for the next page; null: this page ends the list"
    )


@cache
def _key() -> bytes:
    # a key of its own, derived from the OAuth states' secret: a cursor's signature never passes for a state's
    return hmac.new(credentials.state_signing_key(), b"partsemble list cursor", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(listing: Listing, organisation_id: str, position: str) -> str:
    message = json.dumps([listing, organisation_id, position]).encode()
    return _b64(hmac.new(_key(), message, hashlib.sha256).digest())


def next_cursor(listing: Listing, organisation_id: str, last: ListPosition | None) -> str | None:
    """The cursor of the page after the one that ended at ``last`` (None: the list ended)."""
    if last is None:
        return None
    position = _b64(json.dumps(list(last), separators=(",", ":")).encode())
    return f"{position}.{_signature(listing, organisation_id, position)}"


def position_of(listing: Listing, organisation_id: str, cursor: str | None) -> ListPosition | None:
    """Where the page ``cursor`` asks for starts after (None: the first page)."""
    if cursor is None:
        return None
    position, _, signature = cursor.partition(".")
    # as bytes: compare_digest refuses str holding anything but ASCII, and any text can arrive
    if not hmac.compare_digest(signature.encode(), _signature(listing, organisation_id, position).encode()):
        raise _refused(f"not a cursor this organisation was given for its {listing}; send the next_cursor of "
                       "the previous page as it is, or none for the first page")  # fmt: skip
    try:
        sk, index_sk = json.loads(base64.urlsafe_b64decode(position + "=" * (-len(position) % 4)))
        return ListPosition(str(sk), str(index_sk))
    except (ValueError, TypeError, binascii.Error):  # signed by this service, so never: still not a 500
        raise _refused("the cursor could not be read; ask for the first page again") from None


def _refused(problem: str) -> InvalidFields:
    return InvalidFields(
        f"invalid request: {CURSOR_FIELD}: {problem}", [{"field": CURSOR_FIELD, "problem": problem}]
    )
