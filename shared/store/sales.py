"""Sales tracking per connection (settings, cursor, pull lease, last pull) and sales documents as pulled.

Both live in the ``ORG#<org>`` partition: ``SALES#<provider>`` is one item holding the tracking settings,
the cursor and the lease, so the cursor can only move under the lease that read from it;
``SALEDOC#<document id>`` holds the latest version of each document as JSON text (exact decimals; the
services give it its shape)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from shared.aws import table
from shared.domain.connections import ProviderName
from shared.domain.sales import zone
from shared.errors import Conflict
from shared.model import Model
from shared.store.dynamo import conditional, org_batch_get, org_items, transact
from shared.store.keys import (
    BOOKS_ZONE_SK,
    DOCUMENT_PREFIX,
    TRACKING_PREFIX,
    document_sk,
    org_pk,
    tracking_sk,
)


class LastPull(Model):
    at: str
    ok: bool
    read: int = 0  # over every part of the pull so far
    stored: int = 0
    error: str = ""
    parts: int = 1  # queue messages the pull took (a large first pull goes on across several)
    more: bool = False  # stopped part way: the next part is queued and goes on from where this one stopped


class TrackingShown(Model):
    """What the API shows of a connection's sales tracking: the settings, the cursor, the last "pull now"
    and the last pull."""

    provider: ProviderName
    enabled: bool
    start_date: date  # the first pull reads documents dated from here
    home_currency: str
    time_zone: str | None = None  # IANA; None: UTC
    cursor: str | None = None
    requested_at: str | None = None
    last_pull: LastPull | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The time zone its documents' dates are local dates in."""
        try:
            return zone(self.time_zone or "UTC")
        except ValueError:  # a zone the time zone database no longer knows: UTC rather than no report
            return ZoneInfo("UTC")


class Tracking(TrackingShown):
    """A connection's sales tracking item as stored: also where a pull stopped part way and the lease of the
    pull under way."""

    organisation_id: str
    # the company pulled since the last switch of company; None: the only one ever connected
    tenant_id: str | None = None
    resume: str | None = None  # where the next part of a pull stopped part way goes on
    lease_owner: str | None = None
    lease_until: int = 0  # epoch seconds


def _tracking(item: dict[str, Any]) -> Tracking:
    return Tracking.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")})


def _update(
    organisation_id: str,
    provider: str,
    expression: str,
    values: dict[str, Any],
    *,
    condition: str | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """One conditional update of the tracking item: the item as it now stands, None when the condition does
    not hold."""
    kwargs: dict[str, Any] = {
        "Key": {"pk": org_pk(organisation_id), "sk": tracking_sk(provider)},
        "UpdateExpression": expression,
        "ReturnValues": "ALL_NEW",
    }
    if values:
        kwargs["ExpressionAttributeValues"] = values
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if condition:
        kwargs["ConditionExpression"] = condition
    answer = conditional(lambda: table().update_item(**kwargs))
    return None if answer is None else dict(answer["Attributes"])


# ---- tracking settings, cursor, lease ---------------------------------------------------------------------
def get_tracking(organisation_id: str, provider: str) -> Tracking | None:
    item: dict[str, Any] | None = (
        table()
        .get_item(Key={"pk": org_pk(organisation_id), "sk": tracking_sk(provider)}, ConsistentRead=True)
        .get("Item")
    )
    return None if item is None else _tracking(item)


def business_zone(organisation_id: str) -> ZoneInfo | None:
    """The organisation's time zone (``zone_of`` its sales tracking)."""
    return zone_of(tracked(organisation_id))


def zone_of(trackings: list[Tracking]) -> ZoneInfo | None:
    """The organisation's time zone: its enabled sales tracking's (set there, else the provider company's),
    else any one's; None when it has never set sales tracking up."""
    if not trackings:
        return None
    return next((t for t in trackings if t.enabled), trackings[0]).zone


def tracked(organisation_id: str) -> list[Tracking]:
    from boto3.dynamodb.conditions import Key  # on first use: keeps boto3 out of the handlers' import

    items: list[dict[str, Any]] = table().query(
        KeyConditionExpression=Key("pk").eq(org_pk(organisation_id)) & Key("sk").begins_with(TRACKING_PREFIX),
        ConsistentRead=True,
    )["Items"]
    return [_tracking(item) for item in items]


class ZoneFixed(Exception):
    """The books have been dated in another time zone (``zone``; "": each time as it was given) since the
    tracking was read: a plan committed in it."""

    def __init__(self, zone: str) -> None:
        super().__init__(zone)
        self.zone = zone


def save_tracking(
    organisation_id: str,
    provider: str,
    *,
    enabled: bool,
    start_date: str,
    home_currency: str,
    reset_cursor: bool,
    time_zone: str | None = None,
    aligned: Iterable[str] = (),
    read: Tracking | None = None,
) -> Tracking:
    """Sets the tracking settings; a new start date forgets the cursor, so the next pull starts over. With
    ``time_zone``, it and the ``aligned`` providers' trackings take that zone, in one transaction with the
    books' zone (``BOOKS-ZONE``), which refuses a zone other than the one a plan was dated in
    (``ZoneFixed``; a plan committed meanwhile). Returns the tracking ``read`` before with these settings
    (not read again: once the write is done, an outage of a read after it would answer "nothing changed")."""
    name, pk = table().name, org_pk(organisation_id)
    expression = "SET enabled = :e, start_date = :s, home_currency = :h, organisation_id = :o, provider = :p"
    values: dict[str, Any] = {
        ":e": enabled,
        ":s": start_date,
        ":h": home_currency,
        ":o": organisation_id,
        ":p": provider,
    }
    if time_zone is not None:
        expression += ", time_zone = :z"
        values[":z"] = time_zone
    update: dict[str, Any] = {
        "TableName": name,
        "Key": {"pk": pk, "sk": tracking_sk(provider)},
        "UpdateExpression": expression + (" REMOVE #c, #r" if reset_cursor else ""),
        "ExpressionAttributeValues": values,
    }
    if reset_cursor:
        update["ExpressionAttributeNames"] = {"#c": "cursor", "#r": "resume"}
    writes: list[dict[str, Any]] = [{"Update": update}]
    if time_zone is not None:
        writes += [
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": pk, "sk": tracking_sk(other)},
                    "UpdateExpression": "SET time_zone = :z",
                    "ConditionExpression": "attribute_exists(pk)",  # read just before: never a new item
                    "ExpressionAttributeValues": {":z": time_zone},
                }
            }
            for other in aligned
        ]
        writes.append(
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": pk, "sk": BOOKS_ZONE_SK},
                    "UpdateExpression": "SET #z = :z",
                    # a plan fixed it; one dated as each time was given ("") may take a zone from now on
                    "ConditionExpression": "attribute_not_exists(planned) OR #z IN (:z, :none)",
                    "ExpressionAttributeNames": {"#z": "zone"},
                    "ExpressionAttributeValues": {":z": time_zone, ":none": ""},
                }
            }
        )
    _transact(organisation_id, writes)
    written = {
        **(read.model_dump() if read else {}),
        "organisation_id": organisation_id,
        "provider": provider,
        "enabled": enabled,
        "start_date": start_date,
        "home_currency": home_currency,
        **({"time_zone": time_zone} if time_zone is not None else {}),
        **({"cursor": None, "resume": None} if reset_cursor else {}),
    }
    return Tracking.model_validate(written)


def _transact(organisation_id: str, writes: list[dict[str, Any]]) -> None:
    """Runs the transaction (``dynamo.transact``); the books' zone's failed condition (the last write's) is
    ``ZoneFixed``."""
    codes = transact(writes)
    if codes is None:
        return
    if codes[-1:] == ["ConditionalCheckFailed"] and writes[-1]["Update"]["Key"]["sk"] == BOOKS_ZONE_SK:
        raise ZoneFixed(books_zone(organisation_id) or "")
    raise Conflict("the sales tracking or the books changed as this was saved; save it again")


def books_zone(organisation_id: str) -> str | None:
    """The time zone the books are dated in once a plan was dated in it ("": each time as it was given);
    None until then."""
    item = table().get_item(Key={"pk": org_pk(organisation_id), "sk": BOOKS_ZONE_SK}, ConsistentRead=True)
    found = item.get("Item")
    return str(found["zone"]) if found and found.get("planned") else None


def zone_dated(organisation_id: str, zone: ZoneInfo | None) -> dict[str, Any]:
    """A plan's part of its transaction: it was dated in ``zone`` (None: each time as it was given), which
    the books keep from then on; it fails when the organisation's zone changed since the plan read it."""
    return {
        "Update": {
            "TableName": table().name,
            "Key": {"pk": org_pk(organisation_id), "sk": BOOKS_ZONE_SK},
            "UpdateExpression": "SET #z = :z, planned = :planned",
            "ConditionExpression": "attribute_not_exists(#z) OR #z = :z",
            "ExpressionAttributeNames": {"#z": "zone"},
            "ExpressionAttributeValues": {":z": zone.key if zone else "", ":planned": True},
        }
    }


def try_acquire_pull_lease(organisation_id: str, provider: str, *, owner: str, now: int, ttl_s: int) -> bool:
    """Pulls of one connection never overlap: one holder at a time; a lease that outlived its holder (a
    crashed pull) can be taken over, and that pull's work is simply read again."""
    return (
        _update(
            organisation_id,
            provider,
            "SET lease_owner = :o, lease_until = :until",
            {":o": owner, ":until": now + ttl_s, ":now": now},
            condition="attribute_exists(pk) AND (attribute_not_exists(lease_until) OR lease_until < :now)",
        )
        is not None
    )


def renew_pull_lease(organisation_id: str, provider: str, *, owner: str, now: int, ttl_s: int) -> bool:
    """Extends the lease while its holder still has it; False once another pull took it over."""
    return (
        _update(
            organisation_id,
            provider,
            "SET lease_until = :until",
            {":owner": owner, ":until": now + ttl_s},
            condition="lease_owner = :owner",
        )
        is not None
    )


def switch_company(organisation_id: str, provider: str, tenant_id: str) -> None:
    """Another company is connected: the next pull reads it from the start date, not from a cursor (and the
    place of a part-way pull) of the company before, and the documents read before are that company's (their
    lines map by its links: ``Product.former_links``)."""
    _update(
        organisation_id,
        provider,
        "SET tenant_id = :t REMOVE #c, #r",
        {":t": tenant_id},
        condition="attribute_exists(pk)",
        names={"#c": "cursor", "#r": "resume"},
    )


def advance_cursor(
    organisation_id: str, provider: str, *, owner: str, cursor: str | None, last_pull: LastPull
) -> bool:
    """Moves the cursor (called only once the documents read since the old one are stored) and releases
    the lease; refused when ``owner`` no longer holds it (a slower pull never moves a newer cursor back)."""
    expression = "SET last_pull = :l REMOVE lease_owner, lease_until, #r"
    values: dict[str, Any] = {":l": last_pull.model_dump(), ":owner": owner}
    names = {"#r": "resume"}
    if cursor is not None:
        expression = "SET last_pull = :l, #c = :c REMOVE lease_owner, lease_until, #r"
        values[":c"] = cursor
        names["#c"] = "cursor"
    return (
        _update(organisation_id, provider, expression, values, condition="lease_owner = :owner", names=names)
        is not None
    )


def save_progress(
    organisation_id: str, provider: str, *, owner: str, resume: str, last_pull: LastPull
) -> bool:
    """A pull that stopped part way (its time or page budget spent): where the next part goes on, the
    documents read so far being stored; the cursor stays until the last part. Releases the lease."""
    return (
        _update(
            organisation_id,
            provider,
            "SET last_pull = :l, #r = :r REMOVE lease_owner, lease_until",
            {":l": last_pull.model_dump(), ":r": resume, ":owner": owner},
            condition="lease_owner = :owner",
            names={"#r": "resume"},
        )
        is not None
    )


def mark_requested(organisation_id: str, provider: str, *, at: str, seen: str | None) -> bool:
    """'Pull now' queues a pull of this connection at ``at`` (shown until a pull ends after it), if the last
    request is still the one read (``seen``): of requests made at once, one queues a pull."""
    values = {":at": at, **({":seen": seen} if seen else {})}
    unchanged = "requested_at = :seen" if seen else "attribute_not_exists(requested_at)"
    condition = f"attribute_exists(pk) AND {unchanged}"
    marked = _update(organisation_id, provider, "SET requested_at = :at", values, condition=condition)
    return marked is not None


def unmark_requested(organisation_id: str, provider: str, *, at: str, back_to: str | None) -> None:
    """The pull marked at ``at`` was not queued after all (SQS refused it): the request before it stands."""
    expression = "SET requested_at = :back" if back_to else "REMOVE requested_at"
    values = {":at": at, **({":back": back_to} if back_to else {})}
    _update(organisation_id, provider, expression, values, condition="requested_at = :at")


def end_unpulled(
    organisation_id: str, provider: str, *, now: int, last_pull: LastPull, seen: str | None
) -> bool:
    """A pull that ended before it began (refused, or skipped: tracking turned off, the connection unusable):
    shown as the last pull, so the status stops saying a queued "pull now" is pulling and the next is
    accepted at once. Left alone while another pull holds the lease, or once one ended after the last pull
    ``seen`` (its time) was read: each records its own end."""
    unchanged = "last_pull.#at = :seen" if seen is not None else "attribute_not_exists(last_pull)"
    return (
        _update(
            organisation_id,
            provider,
            "SET last_pull = :l",
            {":l": last_pull.model_dump(), ":now": now, **({":seen": seen} if seen is not None else {})},
            condition="attribute_exists(pk) AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            f" AND {unchanged}",
            names={"#at": "at"} if seen is not None else None,
        )
        is not None
    )


def release_pull_lease(organisation_id: str, provider: str, *, owner: str, last_pull: LastPull) -> None:
    """Gives up the lease after a failed pull, keeping the cursor where it was."""
    _update(
        organisation_id,
        provider,
        "SET last_pull = :l REMOVE lease_owner, lease_until",
        {":l": last_pull.model_dump(), ":owner": owner},
        condition="lease_owner = :owner",
    )


# ---- documents ---------------------------------------------------------------------------------------------
def put_documents(organisation_id: str, documents: Mapping[str, str]) -> None:
    """Stores each document's latest version (document id -> JSON) over the one before; a repeated pull
    writes the same again."""
    with table().batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
        for document_id, body in documents.items():
            batch.put_item(Item={"pk": org_pk(organisation_id), "sk": document_sk(document_id), "body": body})


def get_documents(organisation_id: str, document_ids: Iterable[str]) -> list[str]:
    """The stored versions of these documents (those never stored are absent)."""
    return [str(row["body"]) for row in org_batch_get(organisation_id, map(document_sk, document_ids))]


def documents(organisation_id: str) -> list[str]:
    """Every stored sales document of the organisation."""
    return [str(row["body"]) for row in org_items(organisation_id, DOCUMENT_PREFIX)]
