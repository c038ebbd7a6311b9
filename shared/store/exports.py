"""Posting records, one per export (``EXPORT#<export id>`` under the organisation), moved between states by
conditional writes only:

    pending --claim--> posting --> posted | failed | waiting | pending (a retry is due)
    failed --retry--> pending;  waiting --reconnected--> pending;  posting (lease run out) --claim--> posting

A claim takes a lease: while it lasts no other worker may post the same export, and the outcome can only be
written by the lease's holder. ``unsure`` is set by every claim and cleared once the provider's answer is
known, so a claim that finds it set (a crash, a timeout, a lost response) searches before posting again.
Also here: each company's home currency, read from the provider once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from shared.aws import table
from shared.contracts import ExportKind
from shared.model import Model
from shared.store.dynamo import (
    ListPosition,
    conditional,
    org_batch_get,
    org_items,
    org_list_page,
    query_all,
    set_clause,
    transact,
)
from shared.store.keys import (
    EXPORT_PREFIX,
    OUTBOX_INDEX_PK,
    export_sk,
    exports_list_index,
    exports_list_pk,
    home_currency_sk,
    org_pk,
    outbox_index,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

ExportStatus = Literal["pending", "posting", "posted", "failed", "waiting", "skipped"]


class ExportView(Model):
    """What the API shows of an export (``provider`` None when no attempt found a connection)."""

    export_id: str
    kind: ExportKind
    record_id: str
    status: ExportStatus  # skipped: nothing to post; waiting: for a reconnect
    provider: str | None = None
    document_type: str | None = None
    document_id: str | None = None
    document_link: str | None = None
    adopted: bool = False  # found in the provider by its marker after an unknown outcome, not posted again
    attempts: int = 0
    last_error: str | None = None
    happened_at: str = ""
    created_at: str = ""
    updated_at: str = ""


class ExportRow(ExportView):
    """One export as stored. ``plan_index`` reads only the planning fields: the others keep their defaults.
    ``provider`` is the provider of the last attempt ("none": not connected then)."""

    organisation_id: str = ""
    unsure: bool = False
    plan: str | None = None  # the document fixed at planning: a journal or a QBO adjustment (JSON)
    plan_provider: str | None = None
    plan_tenant: str | None = None  # the company planned for ("": not known, planned before it was recorded)
    plan_type: Literal["journal", "adjustment"] = "journal"
    plan_exact: str | None = None  # the exact values the plan stood for, or a true-up's corrected exports
    lease_until: int = 0
    dead_lettered: bool = False
    orphaned: int = 0  # times the outbox sweep queued it anew, its worker stopped each time, since it settled
    post_on: str | None = None  # a later date a person chose for a document whose own date is locked

    def view(self) -> ExportView:
        shown = self.model_dump(include=set(ExportView.model_fields))
        return ExportView.model_validate(
            {**shown, "provider": None if self.provider == "none" else self.provider}
        )

    @property
    def attempted_provider(self) -> str | None:
        """The provider an attempt reached or planned for, if any."""
        return self.plan_provider or (self.provider if self.provider != "none" else None)


def _row(item: dict[str, Any]) -> ExportRow:
    return ExportRow.model_validate(item)


def _key(organisation_id: str, export_id: str) -> dict[str, str]:
    return {"pk": org_pk(organisation_id), "sk": export_sk(export_id)}


def new_export(
    organisation_id: str, export_id: str, *, kind: str, record_id: str, at: str, now: str
) -> dict[str, Any]:
    """A pending export's item, to be written in the same transaction as its record. It stays in the
    outbox index until its message is queued, so a queue outage delays the export and never loses it."""
    return {
        **_key(organisation_id, export_id),
        **outbox_index(now, organisation_id, export_id),
        **exports_list_index(organisation_id, now, export_id),
        "export_id": export_id,
        "organisation_id": organisation_id,
        "kind": kind,
        "record_id": record_id,
        "status": "pending",
        "attempts": 0,
        "unsure": False,
        "happened_at": at,
        "created_at": now,
        "updated_at": now,
    }


def store_plan(
    organisation_id: str,
    export_id: str,
    *,
    owner: str,
    plan: str,
    provider: str,
    company: str,
    zone: ZoneInfo | None,
) -> bool:
    """Fixes the document an export posts (outside the books: a QBO inventory adjustment) at its first claim,
    so a retry after a crash posts and searches for that same document whatever the settings say by then.
    False when the lease was lost. ``zone``: the time zone it is dated in (``zone_dated``); raises
    ``PlanAgain`` when the organisation's changed since it was read, or other plans kept the books' zone
    item busy."""
    from shared.store.sales import zone_dated  # on first use: only QuickBooks inventory mode plans here

    writes = [
        {
            "Update": {
                "TableName": table().name,
                "Key": _key(organisation_id, export_id),
                "UpdateExpression": "SET #p = :plan, plan_provider = :provider, plan_tenant = :tenant, "
                "plan_type = :adjustment",
                "ConditionExpression": "attribute_not_exists(#p) AND lease_owner = :owner",
                "ExpressionAttributeNames": {"#p": "plan"},
                "ExpressionAttributeValues": {
                    ":plan": plan,
                    ":provider": provider,
                    ":tenant": company,
                    ":adjustment": "adjustment",
                    ":owner": owner,
                },
            }
        },
        zone_dated(organisation_id, zone),
    ]
    codes = transact(writes, tries=5)
    if codes is None:
        return True
    zone_moved = codes[1:2] == ["ConditionalCheckFailed"] and codes[0] != "ConditionalCheckFailed"
    if zone_moved or "TransactionConflict" in codes:
        raise PlanAgain()
    return False


class PlanAgain(Exception):
    """The organisation's time zone changed since the plan read it, or other plans' transactions kept the
    books' zone item busy: plan again."""


def mark_queued(organisation_id: str, export_id: str) -> None:
    """Out of the outbox: its message is in the queue; unless a worker claimed it meanwhile (its message
    was received at once), whose claim keeps it there until it is settled (``claim``)."""
    conditional(
        lambda: table().update_item(
            Key=_key(organisation_id, export_id),
            UpdateExpression="REMOVE gsi1pk, gsi1sk",
            ConditionExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":pending": "pending"},
        )
    )


def mark_orphan_queued(organisation_id: str, export_id: str, lease_until: int) -> None:
    """Out of the outbox, and counted: a claim (its lease ``lease_until``) whose worker was stopped before it
    settled is queued anew; unless another claim took the export over meanwhile (the outbox place is its)."""
    conditional(
        lambda: table().update_item(
            Key=_key(organisation_id, export_id),
            UpdateExpression="REMOVE gsi1pk, gsi1sk ADD orphaned :one",
            ConditionExpression="#s = :posting AND lease_until = :lease",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":posting": "posting", ":lease": lease_until, ":one": 1},
        )
    )


def give_up_orphan(organisation_id: str, export_id: str, *, lease_until: int, reason: str, at: str) -> bool:
    """Settles failed, with ``reason``, an export whose claim (its lease ``lease_until``) was never settled,
    and out of the outbox; ``unsure`` stays as the claim left it (set: a retry searches first). False when
    another claim took it over meanwhile."""
    written = conditional(
        lambda: table().update_item(
            Key=_key(organisation_id, export_id),
            UpdateExpression="SET #s = :failed, last_error = :reason, dead_lettered = :false, "
            "updated_at = :at REMOVE lease_owner, lease_until, gsi1pk, gsi1sk, orphaned",
            ConditionExpression="#s = :posting AND lease_until = :lease",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":failed": "failed",
                ":reason": reason,
                ":false": False,
                ":at": at,
                ":posting": "posting",
                ":lease": lease_until,
            },
        )
    )
    return written is not None


def unqueued(before: str) -> list[ExportRow]:
    """Exports written before ``before`` (ISO time) whose message was never queued."""
    from boto3.dynamodb.conditions import Key  # on first use: keeps boto3 out of the handlers' import

    condition = Key("gsi1pk").eq(OUTBOX_INDEX_PK) & Key("gsi1sk").lt(before)
    return [_row(item) for item in query_all(IndexName="gsi1", KeyConditionExpression=condition)]


def put_new(row: dict[str, Any]) -> bool:
    """Writes a new export row; False when it exists already."""
    written = conditional(lambda: table().put_item(Item=row, ConditionExpression="attribute_not_exists(pk)"))
    return written is not None


def get_export(organisation_id: str, export_id: str) -> ExportRow | None:
    item = table().get_item(Key=_key(organisation_id, export_id), ConsistentRead=True).get("Item")
    return None if item is None else _row(item)


PLAN_FIELDS = (
    "export_id",
    "kind",
    "record_id",
    "status",
    "plan_provider",
    "plan_tenant",
    "plan_type",
    "plan_exact",
)


def plan_index(organisation_id: str) -> list[ExportRow]:
    """Every export's planning fields (what the books need to know which events are planned), without the
    plans themselves."""
    names = {f"#a{i}": name for i, name in enumerate(PLAN_FIELDS)}
    items = org_items(
        organisation_id,
        EXPORT_PREFIX,
        ConsistentRead=True,
        ProjectionExpression=", ".join(names),
        ExpressionAttributeNames=names,
    )
    return [_row(item) for item in items]


def plans_of(organisation_id: str, export_ids: list[str]) -> dict[str, str]:
    """The plan (a journal's JSON, "" for none) of each of these exports, by id: read only for the few the
    books need them of (``plan_index`` leaves plans out)."""
    items = org_batch_get(
        organisation_id,
        (export_sk(e) for e in export_ids),
        ProjectionExpression="export_id, #p",
        ExpressionAttributeNames={"#p": "plan"},
    )
    return {str(item["export_id"]): str(item.get("plan") or "") for item in items}


def list_exports(organisation_id: str, status: ExportStatus | None = None) -> list[ExportRow]:
    from boto3.dynamodb.conditions import Attr  # on first use: keeps boto3 out of the handlers' import

    extra: dict[str, Any] = {"FilterExpression": Attr("status").eq(status)} if status else {}
    return [_row(item) for item in org_items(organisation_id, EXPORT_PREFIX, ConsistentRead=True, **extra)]


_VIEW_NAMES = {f"#v{i}": name for i, name in enumerate(["sk", *ExportView.model_fields])}


def export_page(
    organisation_id: str, limit: int, after: ListPosition | None
) -> tuple[list[ExportView], ListPosition | None]:
    """A page of the organisation's exports, newest first, as the API shows them (only those fields are
    read: an export's plan can be many times its view)."""
    items, last = org_list_page(
        organisation_id,
        exports_list_pk(organisation_id),
        limit=limit,
        after=after,
        backwards=True,
        ProjectionExpression=", ".join(_VIEW_NAMES),
        ExpressionAttributeNames=_VIEW_NAMES,
    )
    return [_row(item).view() for item in items], last


def claim(
    organisation_id: str, export_id: str, *, owner: str, now: int, lease_s: int, at: str, orphaned_at: str
) -> ExportRow | None:
    """Takes the export for posting; returns it as it was before (None when it isn't claimable now:
    posted, failed, or another worker's lease still runs). Until it is settled it sits in the outbox from
    ``orphaned_at`` (ISO time): should its worker die at every delivery (Lambda's timeout), SQS moves the
    message to its DLQ by itself, and the outbox sweep queues the export anew."""
    orphaned = outbox_index(orphaned_at, organisation_id, export_id)
    answer = conditional(
        lambda: table().update_item(
            Key=_key(organisation_id, export_id),
            UpdateExpression="SET #s = :posting, lease_owner = :o, lease_until = :until, unsure = :true, "
            "updated_at = :at, gsi1pk = :outbox, gsi1sk = :orphaned ADD attempts :one",
            ConditionExpression="attribute_exists(pk) AND (#s IN (:pending, :waiting) "
            "OR (#s = :posting AND lease_until < :now))",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":posting": "posting",
                ":pending": "pending",
                ":waiting": "waiting",
                ":o": owner,
                ":until": now + lease_s,
                ":now": now,
                ":true": True,
                ":at": at,
                ":outbox": orphaned["gsi1pk"],
                ":orphaned": orphaned["gsi1sk"],
                ":one": 1,
            },
            ReturnValues="ALL_OLD",
        )
    )
    return _row(answer["Attributes"]) if answer is not None else None


def settle(organisation_id: str, export_id: str, *, owner: str, status: str, fields: dict[str, Any]) -> bool:
    """Records the outcome of a claim and ends its lease (and its place in the outbox: a message that should
    come back is the worker's to defer); only the lease's holder may (False otherwise)."""
    assignments, names, values = set_clause(fields)
    sets = "#s = :status" + (f", {assignments}" if fields else "")
    written = conditional(
        lambda: table().update_item(
            Key=_key(organisation_id, export_id),
            UpdateExpression=f"SET {sets} REMOVE lease_owner, lease_until, gsi1pk, gsi1sk, orphaned",
            ConditionExpression="#s = :posting AND lease_owner = :owner",
            ExpressionAttributeNames={"#s": "status", **names},
            ExpressionAttributeValues={":status": status, ":posting": "posting", ":owner": owner, **values},
        )
    )
    return written is not None


class Gone(NamedTuple):
    """A posted document the provider no longer has (``requeue``), and why it is posted again."""

    document_id: str
    why: str


PLAN_ATTRIBUTES = ("#p", "plan_exact", "plan_provider", "plan_tenant", "plan_type")


def requeue_write(
    organisation_id: str,
    export_id: str,
    *,
    from_statuses: tuple[str, ...],
    at: str,
    post_on: str | None = None,
    gone: Gone | None = None,
    plan: str | None = None,
    forget: bool = False,
) -> dict[str, Any]:
    """The update making an export pending again (``requeue`` runs it alone; ``store.books.drop_plan`` in
    the transaction taking its plan out of the books), only from one of ``from_statuses``, and back in the
    outbox until its message is queued (``queue.deliver``), so that it is queued however the queue answers
    then. ``post_on`` dates its document later (its own date is locked in the provider). ``gone``: a posted
    export whose document the provider no longer has, still that document (another retry did not post it
    again meanwhile), posted again as planned: its document is forgotten and it is marked unsure, so its
    worker searches for the marker before it posts. ``plan``: the kept plan, dated ``post_on`` (a true-up's:
    it is not planned anew). ``forget``: its plan is dropped (it never reached the provider; it is planned,
    or its adjustment built, anew), only while it has one."""
    names = {f":from{i}": s for i, s in enumerate(from_statuses)}
    dated = {":post_on": post_on} if post_on else {}
    outbox = outbox_index(at, organisation_id, export_id)
    sets = "#s = :pending, dead_lettered = :false, updated_at = :at, gsi1pk = :outbox, gsi1sk = :outbox_at"
    if post_on:
        sets = f"post_on = :post_on, {sets}"
    removes: tuple[str, ...] = ()
    condition = f"#s IN ({', '.join(names)})"
    again: dict[str, Any] = {}
    names_of = {"#s": "status"}
    if plan is not None or forget:
        names_of["#p"] = "plan"
    if plan is not None:
        sets += ", #p = :plan"
        again[":plan"] = plan
    if forget:
        removes = PLAN_ATTRIBUTES
        condition += " AND attribute_exists(#p)"
    if gone is not None:
        sets += ", unsure = :true, adopted = :false, last_error = :why"
        removes = ("document_id", "document_type", "document_link", "posted_at")
        condition += " AND document_id = :gone"
        again |= {":true": True, ":why": gone.why, ":gone": gone.document_id}
    return {
        "Key": _key(organisation_id, export_id),
        "UpdateExpression": f"SET {sets}" + (f" REMOVE {', '.join(removes)}" if removes else ""),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names_of,
        "ExpressionAttributeValues": {
            ":pending": "pending",
            ":false": False,
            ":at": at,
            ":outbox": outbox["gsi1pk"],
            ":outbox_at": outbox["gsi1sk"],
            **names,
            **dated,
            **again,
        },
    }


def requeue(organisation_id: str, export_id: str, **write: Any) -> ExportRow | None:
    """Makes the export pending again (``requeue_write``'s arguments): the export as written, or None when
    it was in none of ``from_statuses`` (nothing written)."""
    update = requeue_write(organisation_id, export_id, **write)
    written = conditional(lambda: table().update_item(**update, ReturnValues="ALL_NEW"))
    return _row(written["Attributes"]) if written is not None else None


def requeued(row: ExportRow, *, at: str, post_on: str | None) -> ExportRow:
    """``row`` as ``requeue_write`` with ``forget`` leaves it, for a transaction that wrote it (which answers
    with nothing)."""
    fields: dict[str, Any] = {"status": "pending", "dead_lettered": False, "updated_at": at}
    fields |= dict.fromkeys(("plan", "plan_exact", "plan_provider", "plan_tenant")) | {"plan_type": "journal"}
    return row.model_copy(update=fields | ({"post_on": post_on} if post_on else {}))


def mark_dead_lettered(organisation_id: str, export_id: str) -> None:
    """Notes that the failed export's message is in the DLQ (unless it was retried meanwhile)."""
    conditional(
        lambda: table().update_item(
            Key=_key(organisation_id, export_id),
            UpdateExpression="SET dead_lettered = :true",
            ConditionExpression="#s = :failed",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":true": True, ":failed": "failed"},
        )
    )


# ---- the company's home currency -------------------------------------------------------------------
def _currency_key(organisation_id: str, provider: str, tenant_id: str) -> dict[str, str]:
    return {"pk": org_pk(organisation_id), "sk": home_currency_sk(provider, tenant_id)}


def home_currency(organisation_id: str, provider: str, tenant_id: str) -> str | None:
    item = table().get_item(Key=_currency_key(organisation_id, provider, tenant_id)).get("Item")
    return str(item["currency"]) if item else None


def put_home_currency(organisation_id: str, provider: str, tenant_id: str, currency: str) -> None:
    table().put_item(Item={**_currency_key(organisation_id, provider, tenant_id), "currency": currency})
