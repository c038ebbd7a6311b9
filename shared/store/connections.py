"""Connections (one per organisation and provider) and grants (the sealed tokens of one consent).

A grant row is versioned: every stored token set bumps ``version``, and writes are conditional on
the version read, so a refresh can never overwrite a newer token set. A short lease on the grant
lets exactly one worker refresh at a time; a lease that outlived its holder can be taken over."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.aws import table
from shared.store.dynamo import conditional, org_items, query_items, set_clause
from shared.store.keys import (
    CONNECTION_PREFIX,
    GRANT_SK,
    connection_index,
    connection_index_pks,
    connection_sk,
    connections_shard_pk,
    grant_pk,
    org_pk,
)
from shared.vault import Sealed


# ---- connections -----------------------------------------------------------------------------------
def _keyed(item: dict[str, Any]) -> dict[str, Any]:
    """A connection's organisation and provider are those of the key it is stored under, whatever its
    attributes say: token reads build their encryption context from them."""
    return {
        **item,
        "organisation_id": item["pk"].removeprefix(org_pk("")),
        "provider": item["sk"].removeprefix(connection_sk("")),
    }


def get_connection(organisation_id: str, provider: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        table()
        .get_item(Key={"pk": org_pk(organisation_id), "sk": connection_sk(provider)}, ConsistentRead=True)
        .get("Item")
    )
    return _keyed(item) if item else None


def list_connections(organisation_id: str) -> list[dict[str, Any]]:
    return [_keyed(item) for item in org_items(organisation_id, CONNECTION_PREFIX, ConsistentRead=True)]


def all_connections() -> list[dict[str, Any]]:
    """Every connection of every organisation (for the scheduled jobs)."""
    return list(iter_connections())


def iter_connections(
    *, provider: str | None = None, fields: tuple[str, ...] = ()
) -> Iterator[dict[str, Any]]:
    """Every connection (of one provider), read shard by shard and page by page (one DynamoDB page held at a
    time), then the rows still under the unsharded key; ``fields`` limits what each row carries (its keys
    always come). A row being moved to its shard may be read twice: it is yielded once."""
    from boto3.dynamodb.conditions import Key

    extra: dict[str, Any] = {}
    if fields:
        wanted = ("pk", "sk", *fields)
        extra["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(wanted)))
        extra["ExpressionAttributeNames"] = {f"#p{i}": name for i, name in enumerate(wanted)}
    seen: set[tuple[str, str]] = set()
    for partition in connection_index_pks():
        condition = Key("gsi1pk").eq(partition)
        if provider is not None:
            condition = condition & Key("gsi1sk").begins_with(f"{provider}#")
        for item in query_items(IndexName="gsi1", KeyConditionExpression=condition, **extra):
            key = (item["pk"], item["sk"])
            if key not in seen:
                seen.add(key)
                yield _keyed(item)


def connections_of(provider: str) -> list[dict[str, Any]]:
    """Every organisation's connection to one provider."""
    return list(iter_connections(provider=provider))


def put_connection(organisation_id: str, provider: str, fields: dict[str, Any]) -> None:
    table().put_item(
        Item={
            "pk": org_pk(organisation_id),
            "sk": connection_sk(provider),
            **connection_index(organisation_id, provider),
            "organisation_id": organisation_id,
            "provider": provider,
            **fields,
        }
    )


def update_connection(
    organisation_id: str, provider: str, fields: dict[str, Any], *, only_if_grant: str | None = None
) -> bool:
    """Sets ``fields``; with ``only_if_grant``, only while the connection still uses that grant. A row
    still under the unsharded index key moves to its shard here."""
    fields = {**fields, "gsi1pk": connections_shard_pk(organisation_id)}
    assignments, names, values = set_clause(fields)
    condition = "attribute_exists(pk)"
    if only_if_grant is not None:
        condition += " AND grant_id = :grant"
        values[":grant"] = only_if_grant
    written = conditional(
        lambda: table().update_item(
            Key={"pk": org_pk(organisation_id), "sk": connection_sk(provider)},
            UpdateExpression=f"SET {assignments}",
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    )
    return written is not None


# ---- grants ------------------------------------------------------------------------------------------
def _sealed_fields(sealed: Sealed) -> dict[str, Any]:
    return {"wrapped_key": sealed.wrapped_key, "nonce": sealed.nonce, "ciphertext": sealed.ciphertext}


def sealed_of(item: dict[str, Any]) -> Sealed:
    return Sealed(
        wrapped_key=bytes(item["wrapped_key"]),
        nonce=bytes(item["nonce"]),
        ciphertext=bytes(item["ciphertext"]),
    )


def put_grant(
    grant_id: str, organisation_id: str, provider: str, sealed: Sealed, expiry: dict[str, int], now: int
) -> None:
    table().put_item(
        Item={
            "pk": grant_pk(grant_id),
            "sk": GRANT_SK,
            "grant_id": grant_id,
            "organisation_id": organisation_id,
            "provider": provider,
            "version": 1,
            "status": "active",
            "created_at": now,
            "last_refreshed_at": now,
            **expiry,
            **_sealed_fields(sealed),
        },
        ConditionExpression="attribute_not_exists(pk)",
    )


def get_grant(grant_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        table().get_item(Key={"pk": grant_pk(grant_id), "sk": GRANT_SK}, ConsistentRead=True).get("Item")
    )
    return item


def try_acquire_refresh_lease(grant_id: str, *, version: int, owner: str, now: int, ttl_s: int) -> bool:
    """Only one worker may refresh a grant; the lease is tied to the version it will replace."""
    written = conditional(
        lambda: table().update_item(
            Key={"pk": grant_pk(grant_id), "sk": GRANT_SK},
            UpdateExpression="SET lease_owner = :o, lease_until = :until",
            ConditionExpression="#v = :v AND #s = :active"
            " AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            ExpressionAttributeNames={"#v": "version", "#s": "status"},
            ExpressionAttributeValues={
                ":o": owner,
                ":until": now + ttl_s,
                ":now": now,
                ":v": version,
                ":active": "active",
            },
        )
    )
    return written is not None


def store_refreshed(
    grant_id: str, *, version: int, owner: str, sealed: Sealed, expiry: dict[str, int], now: int
) -> bool:
    """Stores a new token set over ``version``, only while ``owner`` still holds the lease."""
    fields = {**_sealed_fields(sealed), **expiry, "last_refreshed_at": now}
    assignments, names, values = set_clause(fields)
    written = conditional(
        lambda: table().update_item(
            Key={"pk": grant_pk(grant_id), "sk": GRANT_SK},
            UpdateExpression=f"SET {assignments}, #version = #version + :one REMOVE lease_owner, lease_until",
            ConditionExpression="#version = :expected AND lease_owner = :owner",
            ExpressionAttributeNames={**names, "#version": "version"},
            ExpressionAttributeValues={**values, ":one": 1, ":expected": version, ":owner": owner},
        )
    )
    return written is not None


def release_lease(grant_id: str, *, owner: str) -> None:
    conditional(
        lambda: table().update_item(
            Key={"pk": grant_pk(grant_id), "sk": GRANT_SK},
            UpdateExpression="REMOVE lease_owner, lease_until",
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeValues={":owner": owner},
        )
    )


def mark_grant(grant_id: str, status: str, *, reason: str, now: int) -> None:
    table().update_item(
        Key={"pk": grant_pk(grant_id), "sk": GRANT_SK},
        UpdateExpression="SET #s = :s, status_reason = :r, status_at = :now REMOVE lease_owner, lease_until",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": status, ":r": reason, ":now": now},
    )


def delete_grant(grant_id: str) -> None:
    """Removes the ciphertext for good (disconnect); the connection row keeps its history."""
    table().delete_item(Key={"pk": grant_pk(grant_id), "sk": GRANT_SK})
