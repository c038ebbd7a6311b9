"""moto's TransactWriteItems, with the whole-table copy replaced by a copy of the items it names
(``infra.local.moto_speed``), is still all or nothing, as DynamoDB's is."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local.stack import LocalStack


def _key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "ORG#emulator"}, "sk": {"S": sk}}


def _items(table: str) -> list[dict[str, Any]]:
    dynamodb = boto3.client("dynamodb")
    answer = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "ORG#emulator"}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = answer["Items"]
    return items


@pytest.fixture
def table(aws: LocalStack) -> str:
    name = aws.physical("Table")
    dynamodb = boto3.client("dynamodb")
    dynamodb.put_item(TableName=name, Item={**_key("A"), "count": {"N": "1"}, "note": {"S": "kept"}})
    dynamodb.put_item(TableName=name, Item={**_key("B"), "count": {"N": "5"}})
    dynamodb.put_item(TableName=name, Item={**_key("C"), "count": {"N": "7"}})
    return name


def _writes(table: str, last: dict[str, Any]) -> list[dict[str, Any]]:
    """A put of a new item, an update and a delete of existing ones, then ``last``."""
    return [
        {"Put": {"TableName": table, "Item": {**_key("NEW"), "count": {"N": "9"}}}},
        {
            "Update": {
                "TableName": table,
                "Key": _key("A"),
                "UpdateExpression": "ADD #c :one REMOVE note",
                "ExpressionAttributeNames": {"#c": "count"},
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {"Delete": {"TableName": table, "Key": _key("B")}},
        last,
    ]


def test_a_cancelled_transaction_leaves_every_item_as_it_was(table: str) -> None:
    before = _items(table)
    refused = {
        "ConditionCheck": {
            "TableName": table,
            "Key": _key("C"),
            "ConditionExpression": "#c > :ten",
            "ExpressionAttributeNames": {"#c": "count"},
            "ExpressionAttributeValues": {":ten": {"N": "10"}},
        }
    }
    with pytest.raises(ClientError) as raised:
        boto3.client("dynamodb").transact_write_items(TransactItems=_writes(table, refused))
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _items(table) == before


def test_a_transaction_naming_one_item_twice_changes_nothing(table: str) -> None:
    before = _items(table)
    again = {"Put": {"TableName": table, "Item": {**_key("A"), "count": {"N": "100"}}}}
    with pytest.raises(ClientError):
        boto3.client("dynamodb").transact_write_items(TransactItems=_writes(table, again))
    assert _items(table) == before


def test_a_transaction_that_passes_writes_every_item(table: str) -> None:
    allowed = {
        "ConditionCheck": {
            "TableName": table,
            "Key": _key("C"),
            "ConditionExpression": "attribute_exists(pk)",
        }
    }
    boto3.client("dynamodb").transact_write_items(TransactItems=_writes(table, allowed))
    after = {item["sk"]["S"]: item for item in _items(table)}
    assert set(after) == {"A", "C", "NEW"}
    assert after["A"]["count"] == {"N": "2"} and "note" not in after["A"]
    assert after["NEW"]["count"] == {"N": "9"}


def test_an_update_is_weighed_as_the_item_it_makes_not_with_the_value_it_replaces(table: str) -> None:
    """A 300 kB attribute replaced by a 350 kB one makes a 350 kB item, which DynamoDB takes (moto weighed
    both values together, ``infra.local.moto_fidelity``); a 420 kB one is still refused."""
    dynamodb = boto3.client("dynamodb")

    def set_note(size: int) -> None:
        dynamodb.update_item(
            TableName=table,
            Key=_key("A"),
            UpdateExpression="SET note = :note",
            ExpressionAttributeValues={":note": {"S": "x" * size}},
        )

    set_note(300_000)
    set_note(350_000)
    with pytest.raises(ClientError, match="exceeded the maximum allowed size"):
        set_note(420_000)
    (a,) = [item for item in _items(table) if item["sk"]["S"] == "A"]
    assert len(a["note"]["S"]) == 350_000
