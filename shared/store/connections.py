"""Connections (one per organisation and provider) and grants (the sealed tokens of one consent).

A grant row is versioned: every stored token set bumps ``version``, and writes are conditional on
the version read, so a refresh can never overwrite a newer token set. A short lease on the grant
lets exactly one worker refresh at a time; a lease that outlived its holder can be taken over."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any, Literal

from pydantic import Field

from shared.aws import table
from shared.domain.connections import IN_USE, ConnectionStatus, ProviderName
from shared.model import Model
from shared.store.dynamo import conditional, org_items, query_all, query_items, set_clause, transact
from shared.store.keys import (
    CONNECTION_PREFIX,
    CONNECTION_SHARDS,
    GRANT_SK,
    connection_index,
    connection_index_pks,
    connection_sk,
    grant_pk,
    org_pk,
    tenant_pk,
)
from shared.vault import Sealed


# ---- connections -----------------------------------------------------------------------------------
class Connection(Model):
    """An organisation's connection to one provider as stored. ``iter_connections`` may read only some
    fields: the others keep their defaults."""

    organisation_id: str
    provider: ProviderName
    status: ConnectionStatus
    grant_id: str | None = None  # None once disconnected
    tenant_id: str | None = None
    tenant_name: str | None = None
    xero_connection_id: str | None = None  # Xero's connection id of the tenant
    previous_tenant_ids: list[str] = Field(default=[])  # pydantic copies a mutable default per instance
    connected_at: str | None = None
    disconnected_at: str | None = None
    last_successful_sync_at: str | None = None
    last_checked_at: str | None = None
    last_error: dict[str, str] | None = None  # reason, detail and at, in plain words
    expired_reason: str | None = None  # the whole message of the error that expired it (names the provider)
    tenant_indexed: bool = False  # listed under its company's TENANT# partition (rows from before: not yet)
    switching_from: str | None = None  # a switch of company from this one has not finished (its retry does)
    resume_pending: bool = False  # the exports that waited for it are not resumed yet (the next check does)
    resume_mark: str | None = None  # new at each marking: a clear takes off only the mark it saw (below)


def _keyed(item: dict[str, Any]) -> Connection:
    """A connection's organisation and provider are those of the key it is stored under, whatever its
    attributes say: token reads build their encryption context from them."""
    return Connection.model_validate(
        {
            **item,
            "organisation_id": item["pk"].removeprefix(org_pk("")),
            "provider": item["sk"].removeprefix(connection_sk("")),
        }
    )


def get_connection(organisation_id: str, provider: str) -> Connection | None:
    item: dict[str, Any] | None = (
        table()
        .get_item(Key={"pk": org_pk(organisation_id), "sk": connection_sk(provider)}, ConsistentRead=True)
        .get("Item")
    )
    return _keyed(item) if item else None


def list_connections(organisation_id: str) -> list[Connection]:
    return [_keyed(item) for item in org_items(organisation_id, CONNECTION_PREFIX, ConsistentRead=True)]


def all_connections() -> list[Connection]:
    """Every connection of every organisation (for the scheduled jobs)."""
    return list(iter_connections())


SHARD_READERS = CONNECTION_SHARDS  # every index partition read at once: a pass waits one round trip


def iter_connections(*, fields: tuple[str, ...] = ()) -> Iterator[Connection]:
    """Every connection, its index partitions read concurrently; ``fields`` limits what each row carries (its
    keys and status always come)."""
    from concurrent.futures import ThreadPoolExecutor

    from boto3.dynamodb.conditions import Key

    extra: dict[str, Any] = {}
    if fields:
        wanted = ("pk", "sk", "status", *(f for f in fields if f != "status"))
        extra["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(wanted)))
        extra["ExpressionAttributeNames"] = {f"#p{i}": name for i, name in enumerate(wanted)}

    def partition(pk: str) -> list[dict[str, Any]]:
        return query_all(IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq(pk), **dict(extra))

    table()  # made once, before the readers share it (boto3's clients are thread-safe, its caches are not)
    with ThreadPoolExecutor(max_workers=SHARD_READERS) as readers:
        for items in readers.map(partition, connection_index_pks()):
            yield from map(_keyed, items)


class _Unread(Enum):
    UNREAD = "unread"


UNREAD = _Unread.UNREAD  # ``put_connection`` with no ``read``: written whatever the connection is now


def _still_as_read(read: Connection | None) -> dict[str, Any]:
    """The condition that the connection still names the consent it named when ``read`` (None: there was no
    connection): of two callbacks racing, the one that read before the other wrote writes nothing."""
    if read is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    if read.grant_id is None:  # disconnected: its grant_id is stored as NULL, or absent
        return {
            "ConditionExpression": "attribute_not_exists(grant_id) OR attribute_type(grant_id, :null)",
            "ExpressionAttributeValues": {":null": "NULL"},
        }
    return {
        "ConditionExpression": "grant_id = :grant",
        "ExpressionAttributeValues": {":grant": read.grant_id},
    }


def put_connection(
    organisation_id: str,
    provider: str,
    fields: dict[str, Any],
    *,
    claims: str | None = None,
    read: Connection | _Unread | None = UNREAD,
    alone: Sequence[str] = (),
) -> bool:
    """Writes the connection, listed under the company it reaches (``organisations_of_tenant``): only
    while it is still as ``read`` before (a connection, or None for none; ``_still_as_read``) and while none
    of the providers ``alone`` names is in use. With ``claims``, a consent's grant id: in one transaction
    with keeping that consent (its TTL removed), so no process that dies in between leaves a consent kept
    that no connection holds. False (nothing written) when the connection changed, another provider was
    connected meanwhile or the consent is gone (the consent is then left to the TTL)."""
    tenant_id = fields.get("tenant_id")
    item = {
        "pk": org_pk(organisation_id),
        "sk": connection_sk(provider),
        **connection_index(organisation_id, provider),
        "organisation_id": organisation_id,
        "provider": provider,
        **fields,
        "tenant_indexed": bool(tenant_id),
    }
    guard = {} if read is UNREAD else _still_as_read(read)
    if claims is None and not alone and not tenant_id:
        return conditional(lambda: table().put_item(Item=item, **guard)) is not None
    name = table().name
    writes: list[dict[str, Any]] = [{"Put": {"TableName": name, "Item": item, **guard}}]
    if tenant_id:  # listed in the same transaction: a write that fails leaves no listing behind
        listing = {"pk": tenant_pk(provider, tenant_id), "sk": org_pk(organisation_id)}
        writes.append({"Put": {"TableName": name, "Item": listing}})
    if claims is not None:
        claim = {
            "TableName": name,
            "Key": {"pk": grant_pk(claims), "sk": GRANT_SK},
            "UpdateExpression": "REMOVE expires_at",  # kept: no longer deleted by the TTL
            "ConditionExpression": "attribute_exists(pk)",
        }
        writes.append({"Update": claim})
    # an organisation uses one provider at a time: the other's callback may have connected since it was read
    in_use = {f":in_use{i}": status for i, status in enumerate(sorted(IN_USE))}
    not_in_use = f"attribute_not_exists(pk) OR NOT (#status IN ({', '.join(in_use)}))"
    for other in alone:
        check = {
            "TableName": name,
            "Key": {"pk": org_pk(organisation_id), "sk": connection_sk(other)},
            "ConditionExpression": not_in_use,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": in_use,
        }
        writes.append({"ConditionCheck": check})
    return transact(writes) is None


def _list_under_tenant(organisation_id: str, provider: str, tenant_id: str) -> None:
    table().put_item(Item={"pk": tenant_pk(provider, tenant_id), "sk": org_pk(organisation_id)})


def index_tenant(connection: Connection) -> None:
    """Lists a connection written before the tenant index under its company (a connected one's hourly
    message, an expired one's hourly pass, once per such row); listing it twice is harmless."""
    if connection.tenant_id and not connection.tenant_indexed:
        _list_under_tenant(connection.organisation_id, connection.provider, connection.tenant_id)
        update_connection(connection.organisation_id, connection.provider, {"tenant_indexed": True})


def organisations_of_tenant(provider: str, tenant_id: str) -> list[str]:
    """The organisations that connected this company at some time (its connection may have moved on since:
    read the connection to know)."""
    from boto3.dynamodb.conditions import Key

    # consistent: a connection stored a moment ago must stop another organisation's disconnect
    items = query_items(
        KeyConditionExpression=Key("pk").eq(tenant_pk(provider, tenant_id)), ConsistentRead=True
    )
    return [str(item["sk"]).removeprefix(org_pk("")) for item in items]


def update_connection(
    organisation_id: str,
    provider: str,
    fields: dict[str, Any],
    *,
    only_if_grant: str | None = None,
    only_if_status: ConnectionStatus | None = None,
) -> bool:
    """Sets ``fields``; with ``only_if_grant``, only while the connection still uses that grant, and with
    ``only_if_status``, only while it is still in that status."""
    assignments, names, values = set_clause(fields)
    condition = "attribute_exists(pk)"
    if only_if_grant is not None:
        condition += " AND grant_id = :grant"
        values[":grant"] = only_if_grant
    if only_if_status is not None:
        condition += " AND #status = :status"
        names["#status"] = "status"
        values[":status"] = only_if_status
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


def resume_mark() -> dict[str, Any]:
    """The fields that mark a connection's waiting exports for resuming (``resume_pending``), each marking
    with a mark of its own."""
    return {"resume_pending": True, "resume_mark": uuid.uuid4().hex}


def mark_resume_pending(organisation_id: str, provider: str, *, grant_id: str) -> bool:
    """Marks the connection for its next check to resume its waiting exports, while it uses ``grant_id``."""
    return update_connection(organisation_id, provider, resume_mark(), only_if_grant=grant_id)


def clear_resume_pending(organisation_id: str, provider: str, *, grant_id: str, seen: str | None) -> bool:
    """Takes the resume mark off only while it is still the one ``seen`` before the waiting exports were
    listed (None: a row marked before marks had their own): an export that settled as waiting and marked
    the connection after the list keeps its mark for the next check. False when it was kept."""
    values: dict[str, Any] = {":grant": grant_id, ":no": False}
    if seen is None:
        unchanged = "attribute_not_exists(resume_mark)"
    else:
        unchanged = "resume_mark = :seen"
        values[":seen"] = seen
    written = conditional(
        lambda: table().update_item(
            Key={"pk": org_pk(organisation_id), "sk": connection_sk(provider)},
            UpdateExpression="SET resume_pending = :no REMOVE resume_mark",
            ConditionExpression=f"grant_id = :grant AND {unchanged}",
            ExpressionAttributeValues=values,
        )
    )
    return written is not None


def disconnect(organisation_id: str, provider: str, fields: dict[str, Any], *, grant_id: str | None) -> bool:
    """Sets ``fields`` on the connection and deletes its consent's ciphertext in one transaction, only while
    the connection still names ``grant_id``: a failure leaves both as they were, never a connection that
    names tokens deleted. False when the connection changed meanwhile (nothing written)."""
    assignments, names, values = set_clause(fields)
    if grant_id is None:
        condition = "attribute_exists(pk)"
    else:
        condition = "grant_id = :grant"
        values[":grant"] = grant_id
    name = table().name
    writes: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": name,
                "Key": {"pk": org_pk(organisation_id), "sk": connection_sk(provider)},
                "UpdateExpression": f"SET {assignments}",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
    ]
    if grant_id is not None:
        writes.append({"Delete": {"TableName": name, "Key": {"pk": grant_pk(grant_id), "sk": GRANT_SK}}})
    return transact(writes) is None


def finish_switch(organisation_id: str, provider: str) -> None:
    """The switch of company the connection names is done: it is usable again."""
    table().update_item(
        Key={"pk": org_pk(organisation_id), "sk": connection_sk(provider)},
        UpdateExpression="REMOVE switching_from",
    )


# ---- grants ------------------------------------------------------------------------------------------
GrantStatus = Literal["active", "expired"]


class GrantRow(Model):
    """One consent's sealed tokens as stored (``shared.domain.connections.Grant`` is what a consent returns).
    The row's own organisation, provider and grant id: token reads check them against who asks. Expiry
    instants are epoch seconds; the sealed tokens never show in a repr."""

    grant_id: str
    organisation_id: str
    provider: ProviderName
    version: int
    status: GrantStatus
    status_reason: str | None = None  # the whole message of the error that expired it (names the provider)
    status_at: int | None = None
    created_at: int | None = None
    last_refreshed_at: int | None = None
    access_expires_at: int | None = None
    refresh_expires_at: int | None = None
    hard_expires_at: int | None = None
    lease_owner: str | None = None
    lease_until: int = 0
    sealed: Sealed = Field(repr=False)


def _sealed_fields(sealed: Sealed) -> dict[str, Any]:
    return {"wrapped_key": sealed.wrapped_key, "nonce": sealed.nonce, "ciphertext": sealed.ciphertext}


def _grant(item: dict[str, Any]) -> GrantRow:
    sealed = Sealed(
        wrapped_key=bytes(item["wrapped_key"]),
        nonce=bytes(item["nonce"]),
        ciphertext=bytes(item["ciphertext"]),
    )
    return GrantRow.model_validate({**item, "sealed": sealed})


def put_grant(
    grant_id: str,
    organisation_id: str,
    provider: str,
    sealed: Sealed,
    expiry: dict[str, int],
    now: int,
    *,
    unclaimed_until: int | None = None,
) -> None:
    """Stores a consent's sealed tokens; ``unclaimed_until``: deleted then (the table's TTL) unless the
    connection's write claims it first (``put_connection``; a consent waiting for a person's choice of
    organisation)."""
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
            **({"expires_at": unclaimed_until} if unclaimed_until is not None else {}),
        },
        ConditionExpression="attribute_not_exists(pk)",
    )


def get_grant(grant_id: str) -> GrantRow | None:
    item: dict[str, Any] | None = (
        table().get_item(Key={"pk": grant_pk(grant_id), "sk": GRANT_SK}, ConsistentRead=True).get("Item")
    )
    return _grant(item) if item else None


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


def mark_grant(grant_id: str, status: GrantStatus, *, reason: str, now: int) -> None:
    """Sets the grant's status; one deleted meanwhile (a disconnect) stays deleted, and that is no error."""
    conditional(
        lambda: table().update_item(
            Key={"pk": grant_pk(grant_id), "sk": GRANT_SK},
            UpdateExpression="SET #s = :s, status_reason = :r, status_at = :now"
            " REMOVE lease_owner, lease_until",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status, ":r": reason, ":now": now},
        )
    )


def delete_grant(grant_id: str) -> None:
    """Removes the ciphertext for good (disconnect); the connection row keeps its history."""
    table().delete_item(Key={"pk": grant_pk(grant_id), "sk": GRANT_SK})
