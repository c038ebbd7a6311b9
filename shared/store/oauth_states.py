"""One-time OAuth artefacts: the pending `state` of a connect, and a pending organisation choice
(a Xero consent that covered several organisations). Both are consumed by a conditional delete, so
each can be used once; DynamoDB's TTL removes the ones nobody used."""

from __future__ import annotations

from typing import Any

from shared.aws import table
from shared.store.dynamo import conditional
from shared.store.keys import pending_key


def put_pending(kind: str, nonce: str, item: dict[str, Any], *, expires_at: int) -> None:
    table().put_item(
        Item={**pending_key(kind, nonce), "expires_at": expires_at, **item},
        ConditionExpression="attribute_not_exists(pk)",
    )


def take_pending(kind: str, nonce: str) -> dict[str, Any] | None:
    """Deletes and returns the item, or None when it does not exist (never issued, or already used)."""
    old = conditional(
        lambda: table().delete_item(
            Key=pending_key(kind, nonce),
            ConditionExpression="attribute_exists(pk)",
            ReturnValues="ALL_OLD",
        )
    )
    item: dict[str, Any] | None = old["Attributes"] if old is not None else None
    return item
