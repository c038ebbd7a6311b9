"""The emulator's speed-ups (``infra.local.moto_speed``) give moto's own answers: the same requests, made to
two copies of one table, one through moto as it ships and one through the speed-ups, answer alike to the
byte (the bodies' CRC32, which moto sends with each answer) and leave the copies alike."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from infra.local.moto_speed import set_up_once
from infra.local.stack import FAKE_AWS_ENV
from infra.local.testbed import environment

REGIONS = ("us-east-1", "eu-west-1")  # moto as it ships, moto with the speed-ups
_tables = itertools.count()

KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRIBUTES = ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"]
INDEXES = [
    {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": f"{name}pk", "KeyType": "HASH"},
            {"AttributeName": f"{name}sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": projection},
    }
    for name, projection in (("gsi1", "ALL"), ("gsi2", "KEYS_ONLY"))
]


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[Any, Any]]:
    with environment(FAKE_AWS_ENV, drop=("AWS_ENDPOINT_URL",)), mock_aws():
        yield tuple(boto3.client("dynamodb", region_name=region) for region in REGIONS)


def _answer(client: Any, operation: str, request: dict[str, Any], sped_up: bool) -> dict[str, Any]:
    speed_ups: AbstractContextManager[None] = set_up_once() if sped_up else nullcontext()
    with speed_ups:
        try:
            answer = getattr(client, operation)(**request)
        except ClientError as error:
            answer = error.response
    metadata = answer.pop("ResponseMetadata")
    return {
        "answer": answer,
        "status": metadata["HTTPStatusCode"],
        "crc32": metadata["HTTPHeaders"].get("x-amz-crc32"),
    }


def _same(clients: tuple[Any, Any], operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """Makes the request of both copies; asserts they answer alike, and returns moto's answer."""
    shipped, sped_up = (_answer(client, operation, request, i == 1) for i, client in enumerate(clients))
    assert sped_up == shipped, (operation, request)
    answer: dict[str, Any] = shipped["answer"]
    return answer


text = st.text(alphabet="ab~", min_size=1, max_size=3)
numbers = st.sampled_from(["0", "-0", "1", "1.50", "-2.5", "10", "1e3", "99999999999999999999", "0.000001"])
blobs = st.binary(max_size=4)
scalars = st.one_of(
    text.map(lambda v: {"S": v}),
    st.just({"S": ""}),
    numbers.map(lambda v: {"N": v}),
    blobs.map(lambda v: {"B": v}),
    st.booleans().map(lambda v: {"BOOL": v}),
    st.just({"NULL": True}),
    st.lists(text, min_size=1, max_size=3, unique=True).map(lambda v: {"SS": v}),
    st.lists(st.sampled_from(["1", "2.5", "-3"]), min_size=1, max_size=3, unique=True).map(
        lambda v: {"NS": v}
    ),
    st.lists(st.binary(min_size=1, max_size=3), min_size=1, max_size=3, unique=True).map(lambda v: {"BS": v}),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(text, inner, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=6,
)


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    item = {"pk": {"S": draw(st.sampled_from(["P0", "P1", "P2"]))}, "sk": {"S": draw(text)}}
    for index in ("gsi1", "gsi2"):
        if draw(st.booleans()):
            item[f"{index}pk"] = {"S": draw(st.sampled_from(["G0", "G1"]))}
            if draw(st.integers(0, 3)):
                item[f"{index}sk"] = {"S": draw(text)}
    for name in draw(st.lists(st.sampled_from(["a", "b", "n"]), max_size=3, unique=True)):
        item[name] = draw(values)
    weight = draw(st.sampled_from([0, 0, 0, 0, 2_000, 300_000]))  # a few items fill a 1 MB page
    if weight:
        item["big"] = {"S": "x" * weight}
    return item


KEY_CONDITIONS = {
    "=": "{k} = :v",
    "<": "{k} < :v",
    "<=": "{k} <= :v",
    ">": "{k} > :v",
    ">=": "{k} >= :v",
    "between": "{k} BETWEEN :v AND :w",
    "begins_with": "begins_with({k}, :v)",
}


# a short update, and one as long as the service's (a SET list with functions and arithmetic), each with the
# values it names besides :a and :one (DynamoDB refuses a value an expression does not use)
UPDATES: dict[str, dict[str, Any]] = {
    "SET a = :a ADD c :one REMOVE b": {},
    "SET a = :a, b = if_not_exists(b, :one), n = if_not_exists(n, :one) + :one, "
    "l = list_append(if_not_exists(l, :empty), :list) REMOVE big": {
        ":empty": {"L": []},
        ":list": {"L": [{"S": "x"}]},
    },
}


@st.composite
def queries(draw: st.DrawFn, table: str) -> dict[str, Any]:
    index = draw(st.sampled_from([None, "gsi1", "gsi2"]))
    hash_name, range_name = ("pk", "sk") if index is None else (f"{index}pk", f"{index}sk")
    hash_value = draw(st.sampled_from(["P0", "P1", "P2", "P3"] if index is None else ["G0", "G1", "G2"]))
    condition = "#h = :h"
    names = {"#h": hash_name}
    attribute_values: dict[str, Any] = {":h": {"S": hash_value}}
    range_condition = draw(st.sampled_from([None, *KEY_CONDITIONS]))
    if range_condition:
        low, high = sorted([draw(text), draw(text)])
        condition += " AND " + KEY_CONDITIONS[range_condition].format(k="#r")
        names["#r"] = range_name
        attribute_values[":v"] = {"S": low}
        if range_condition == "between":
            attribute_values[":w"] = {"S": high}
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": condition,
        "ScanIndexForward": draw(st.booleans()),
    }
    if index:
        request["IndexName"] = index
    if draw(st.integers(0, 2)) == 0:
        request["Limit"] = draw(st.integers(1, 4))
    choice = draw(st.sampled_from(["all", "filter", "projection", "count"]))
    if choice == "filter":
        # moto fails size() of a missing attribute, a number, a boolean or a NULL
        request["FilterExpression"] = "(attribute_type(#a, :S) OR attribute_type(#a, :L)) AND size(#a) > :s"
        names["#a"] = "a"
        attribute_values.update({":s": {"N": "1"}, ":S": {"S": "S"}, ":L": {"S": "L"}})
    elif choice == "projection" and index != "gsi2":
        request["ProjectionExpression"] = "#h, b, n"
    elif choice == "count":
        request["Select"] = "COUNT"
    request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = attribute_values
    if draw(st.booleans()):
        request["ReturnConsumedCapacity"] = draw(st.sampled_from(["TOTAL", "INDEXES", "NONE"]))
    return request


def _create(clients: tuple[Any, Any], table: str) -> None:
    """The same table in both regions (moto's answer names its region, so it is not compared)."""
    for client in clients:
        client.create_table(
            TableName=table,
            KeySchema=KEY_SCHEMA,
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ATTRIBUTES],
            GlobalSecondaryIndexes=INDEXES,
            BillingMode="PAY_PER_REQUEST",
        )


def _pages(clients: tuple[Any, Any], operation: str, request: dict[str, Any]) -> None:
    for _ in range(6):
        answer = _same(clients, operation, request)
        if "LastEvaluatedKey" not in answer:
            return
        request = {**request, "ExclusiveStartKey": answer["LastEvaluatedKey"]}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), stored=st.lists(items(), max_size=14))
def test_reads_answer_as_moto_does(
    clients: tuple[Any, Any], data: st.DataObject, stored: list[dict[str, Any]]
) -> None:
    table = f"speed-{next(_tables)}"
    _create(clients, table)
    for item in stored:
        _same(clients, "put_item", {"TableName": table, "Item": item, "ReturnValues": "ALL_OLD"})
    for _ in range(data.draw(st.integers(1, 4))):
        _pages(clients, "query", data.draw(queries(table)))
    _pages(clients, "scan", {"TableName": table, "Limit": data.draw(st.integers(1, 5))})
    keys = [{"pk": item["pk"], "sk": item["sk"]} for item in stored[:3]] + [
        {"pk": {"S": "P9"}, "sk": {"S": "a"}}
    ]
    unique_keys = list({repr(key): key for key in keys}.values())
    for key in unique_keys:
        _same(clients, "get_item", {"TableName": table, "Key": key})
        _same(clients, "get_item", {"TableName": table, "Key": key, "ProjectionExpression": "a, n"})
    _same(clients, "batch_get_item", {"RequestItems": {table: {"Keys": unique_keys}}})
    _same(
        clients,
        "transact_get_items",
        {"TransactItems": [{"Get": {"TableName": table, "Key": k}} for k in unique_keys]},
    )


@st.composite
def writes(draw: st.DrawFn, table: str) -> tuple[str, dict[str, Any]]:
    key = {"pk": {"S": draw(st.sampled_from(["P0", "P1"]))}, "sk": {"S": draw(st.sampled_from(["a", "b"]))}}
    returns = draw(st.sampled_from(["NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"]))
    condition = draw(st.sampled_from([None, "attribute_exists(pk)", "attribute_not_exists(pk)"]))
    guarded = {"ConditionExpression": condition} if condition else {}
    operation = draw(st.sampled_from(["put", "update", "delete", "batch", "transact"]))
    if operation == "put":
        item = {**draw(items()), **key}
        return "put_item", {
            "TableName": table,
            "Item": item,
            "ReturnValues": returns if returns in ("NONE", "ALL_OLD") else "NONE",
            **guarded,
        }
    if operation == "update":
        expression = draw(st.sampled_from(sorted(UPDATES)))
        request = {
            "TableName": table,
            "Key": key,
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {
                ":a": draw(values),
                ":one": {"N": "1"},
                **UPDATES[expression],
            },
            "ReturnValues": returns,
            **guarded,
        }
        return "update_item", request
    if operation == "delete":
        return "delete_item", {
            "TableName": table,
            "Key": key,
            "ReturnValues": returns if returns in ("NONE", "ALL_OLD") else "NONE",
            **guarded,
        }
    if operation == "batch":
        other = {**draw(items()), "pk": {"S": "P2"}}
        requests = [{"PutRequest": {"Item": other}}, {"DeleteRequest": {"Key": key}}]
        return "batch_write_item", {"RequestItems": {table: requests}}
    transaction = [
        {"Put": {"TableName": table, "Item": {**draw(items()), "pk": {"S": "P3"}}}},
        {
            "Update": {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "ADD c :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
                **guarded,
            }
        },
    ]
    return "transact_write_items", {"TransactItems": transaction}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_writes_answer_as_moto_does(clients: tuple[Any, Any], data: st.DataObject) -> None:
    table = f"speed-{next(_tables)}"
    _create(clients, table)
    for _ in range(data.draw(st.integers(1, 8))):
        _same(clients, *data.draw(writes(table)))
    _pages(clients, "scan", {"TableName": table})


def test_queue_attributes_answer_as_moto_does() -> None:
    names = [
        ["All"],
        ["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
        ["RedrivePolicy"],
        ["ApproximateNumberOfMessages", "QueueArn", "VisibilityTimeout", "FifoQueue"],
        ["Nonsense"],
    ]
    with environment(FAKE_AWS_ENV, drop=("AWS_ENDPOINT_URL",)), mock_aws():
        sqs = boto3.client("sqs", region_name=REGIONS[0])
        dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        policy = f'{{"deadLetterTargetArn": "{dead_arn}", "maxReceiveCount": 3}}'
        url = sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
        for delay in (0, 0, 0, 60):
            sqs.send_message(QueueUrl=url, MessageBody="m", DelaySeconds=delay)
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)
        for queue in (url, dead):
            for asked in names:
                request = {"QueueUrl": queue, "AttributeNames": asked}
                assert _answer(sqs, "get_queue_attributes", request, True) == _answer(
                    sqs, "get_queue_attributes", request, False
                )
