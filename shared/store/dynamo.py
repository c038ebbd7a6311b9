"""Table plumbing every store module shares: paged queries, an organisation's items by sort-key prefix or by
key, conditional writes (a failed condition is a plain None, never an error) and SET clauses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

from shared.aws import table
from shared.config import settings
from shared.store.keys import LIST_INDEX, org_pk

T = TypeVar("T")


def conditional(write: Callable[[], T]) -> T | None:
    """Runs a conditional write: its answer, or None when its condition did not hold. Any other error
    (an outage, a bad request) is raised."""
    try:
        return write()
    except table().meta.client.exceptions.ConditionalCheckFailedException:
        return None


def transact(
    writes: list[dict[str, Any]], tries: int = 3, conditions_only: bool = False
) -> list[str | None] | None:
    """Runs a transaction, again after a short pause while another transaction on one of its items cancels
    it (``TransactionConflict``): None once it commits, else the last cancellation's code of each write
    (``ConditionalCheckFailed`` where a condition did not hold), in the writes' order. ``conditions_only``:
    a cancellation without a failed condition (still busy after the tries, throttled) is raised instead, an
    outage (``is_outage``)."""
    import random  # on first use: the handlers that never transact don't load them at a cold start
    import time
    import uuid

    client = table().meta.client
    codes: list[str | None] = []
    for attempt in range(tries):
        try:
            # one token for botocore's own retries of this attempt: a committed one is not cancelled again
            client.transact_write_items(TransactItems=writes, ClientRequestToken=uuid.uuid4().hex)
            return None
        except client.exceptions.TransactionCanceledException as cancelled:
            codes = [r.get("Code") for r in cancelled.response.get("CancellationReasons", [])]
            last = "TransactionConflict" not in codes or attempt + 1 == tries
            if conditions_only and last and "ConditionalCheckFailed" not in codes:
                raise
        if "TransactionConflict" not in codes or attempt + 1 == tries:
            break
        time.sleep(random.uniform(0.01, 0.05))
    return codes


def set_clause(fields: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``#f0 = :v0, #f1 = :v1, ...`` assigning ``fields`` in an UpdateExpression's SET, with the attribute
    names and values it uses."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())}
    return ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))), names, values


def query_all(**kwargs: Any) -> list[dict[str, Any]]:
    """Every item a query matches, following DynamoDB's pages."""
    return list(query_items(**kwargs))


def query_items(**kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item a query matches, one DynamoDB page (at most 1 MB) held at a time."""
    while True:
        page = table().query(**kwargs)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


BATCH_GET = 100  # DynamoDB's most keys in one BatchGetItem


def org_batch_get(organisation_id: str, sort_keys: Iterable[str], **read: Any) -> list[dict[str, Any]]:
    """The organisation's items with these sort keys (absent ones are left out), 100 to a BatchGetItem,
    unprocessed keys asked again; ``read`` adds to each request (a ProjectionExpression, its names). The
    table's client converts values as the resource does."""
    client, name = table().meta.client, settings().table_name
    keys = [{"pk": org_pk(organisation_id), "sk": sk} for sk in dict.fromkeys(sort_keys)]
    rows: list[dict[str, Any]] = []
    while keys:
        request: dict[str, Any] = {name: {"Keys": keys[:BATCH_GET], "ConsistentRead": True, **read}}
        keys = keys[BATCH_GET:]
        while request:
            answer = client.batch_get_item(RequestItems=request)
            rows.extend(answer["Responses"].get(name, []))
            request = answer.get("UnprocessedKeys") or {}
    return rows


def org_items(organisation_id: str, prefix: str, **kwargs: Any) -> list[dict[str, Any]]:
    """The organisation's items whose sort key starts with ``prefix``."""
    return list(iter_org_items(organisation_id, prefix, **kwargs))


def iter_org_items(organisation_id: str, prefix: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """As ``org_items``, read page by page as the caller goes."""
    from boto3.dynamodb.conditions import Key  # on first use: keeps boto3 out of the handlers' import

    condition = Key("pk").eq(org_pk(organisation_id)) & Key("sk").begins_with(prefix)
    return query_items(KeyConditionExpression=condition, **kwargs)


class ListPosition(NamedTuple):
    """Where a page of a paged list ended: the last item's sort key and its sort key in the list's index. The
    partition keys are not part of it: they are the organisation's, rebuilt from the caller each time."""

    sk: str
    index_sk: str


def org_list_page(
    organisation_id: str,
    list_pk: str,
    *,
    limit: int,
    after: ListPosition | None,
    backwards: bool = False,
    **read: Any,
) -> tuple[list[dict[str, Any]], ListPosition | None]:
    """One page of an organisation's list in gsi2 (``keys.*_list_index``): at most ``limit`` items, in the
    index's order (``backwards``: last first), each read from the table itself (consistently, with ``read``'s
    projection: the index holds keys only), and where the page ended (None when the list ends with it).

    The index is asked for one key more than the page holds, so a page that ends the list says so: DynamoDB's
    own LastEvaluatedKey would send the client after an empty page whenever the list ends on a page's edge.
    """
    from boto3.dynamodb.conditions import Key  # on first use: keeps boto3 out of the handlers' import

    pk = org_pk(organisation_id)
    request: dict[str, Any] = {
        "IndexName": LIST_INDEX,
        "KeyConditionExpression": Key(f"{LIST_INDEX}pk").eq(list_pk),
        "ScanIndexForward": not backwards,
    }
    if after is not None:
        request["ExclusiveStartKey"] = {
            "pk": pk,
            "sk": after.sk,
            f"{LIST_INDEX}pk": list_pk,
            f"{LIST_INDEX}sk": after.index_sk,
        }
    keys: list[dict[str, Any]] = []
    while len(keys) <= limit:  # one Query unless DynamoDB cut it at 1 MB (a keys-only page never nears it)
        answer = table().query(**request, Limit=limit + 1 - len(keys))
        keys.extend(answer["Items"])
        if "LastEvaluatedKey" not in answer:
            break
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    page = keys[:limit]
    last = ListPosition(str(page[-1]["sk"]), str(page[-1][f"{LIST_INDEX}sk"])) if len(keys) > limit else None
    order = {str(k["sk"]): n for n, k in enumerate(page)}
    items = org_batch_get(organisation_id, order, **read)
    return sorted(items, key=lambda item: order[str(item["sk"])]), last
