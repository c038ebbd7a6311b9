"""Table plumbing every store module shares: paged queries, an organisation's items by sort-key prefix,
and recognising a failed condition (which the store turns into a plain False or None, never an error)."""

from __future__ import annotations

from typing import Any

from shared.aws import table
from shared.store.keys import org_pk


def conditional_failed(err: Exception) -> bool:
    return type(err).__name__ == "ConditionalCheckFailedException"


def query_all(**kwargs: Any) -> list[dict[str, Any]]:
    """Every item a query matches, following DynamoDB's pages."""
    items: list[dict[str, Any]] = []
    while True:
        page = table().query(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def org_items(organisation_id: str, prefix: str, **kwargs: Any) -> list[dict[str, Any]]:
    """The organisation's items whose sort key starts with ``prefix``."""
    from boto3.dynamodb.conditions import Key  # on first use: keeps boto3 out of the handlers' import

    condition = Key("pk").eq(org_pk(organisation_id)) & Key("sk").begins_with(prefix)
    return query_all(KeyConditionExpression=condition, **kwargs)
