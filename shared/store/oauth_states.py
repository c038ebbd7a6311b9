"""One-time OAuth artefacts: the pending `state` of a connect, and a pending organisation choice
(a Xero consent that covered several organisations). Both are consumed by a conditional delete, so
each can be used once; DynamoDB's TTL removes the ones nobody used."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from shared.aws import table
from shared.store.dynamo import conditional
from shared.store.keys import pending_key


def put_pending(kind: str, nonce: str, item: dict[str, Any], *, expires_at: int) -> None:
    table().put_item(
        Item={**pending_key(kind, nonce), "expires_at": expires_at, **item},
        ConditionExpression="attribute_not_exists(pk)",
    )


class Taken(NamedTuple):
    """What taking a pending item found: the item, deleted now, or why it was left (``None``: it does not
    exist, never issued or already used; ``"browser"``: another browser's, still there for its own)."""

    item: dict[str, Any] | None
    refused: Literal["browser"] | None = None


def take_pending(kind: str, nonce: str, browser: str) -> Taken:
    """Deletes and returns the item if ``browser`` (the binding cookie's hash) is the one that asked for it.
    Another browser's callback must not spend it: whoever holds a forwarded link could cancel the flow."""
    old = conditional(
        lambda: table().delete_item(
            Key=pending_key(kind, nonce),
            ConditionExpression="attribute_exists(pk) AND browser = :browser",
            ExpressionAttributeValues={":browser": browser},
            ReturnValues="ALL_OLD",
        )
    )
    if old is not None:
        return Taken(old["Attributes"])
    there = table().get_item(Key=pending_key(kind, nonce), ConsistentRead=True).get("Item")
    return Taken(None, "browser" if there is not None else None)
