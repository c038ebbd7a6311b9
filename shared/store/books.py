"""What has been planned for posting to each company's general ledger, per account, in cents
(``BOOKS#<provider>#<company>`` under the organisation), and the plans themselves on the export rows.
Each company (QBO realm, Xero tenant) has books of its own: after a switch of company, what was posted
to the one before is in that one's books and never trued up into the new one's accounts.

A plan (the journal an export will post, with the exact values it was computed from) is written in one
transaction with the books' new balances, conditioned on the version read, so two exports planned at once
can never both build on the same balances: the loser reads again and plans on the newer ones.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field

from shared.aws import table
from shared.model import Model
from shared.store.dynamo import transact
from shared.store.keys import books_check_sk, books_sk, export_sk, org_pk
from shared.store.sales import zone_dated


class Books(Model):
    model_config = ConfigDict(frozen=True)
    provider: str
    company: str  # the QBO realm or Xero tenant these books are of ("": not known)
    version: int = 0
    posted: dict[str, Decimal] = Field(default_factory=dict)  # account id -> cents planned (debits positive)
    # export id -> what the next true-up takes back of the corrections earlier true-ups made to that export
    # (exact, per account): it was re-planned on new values, and those corrections are posted all the same
    taken_back: dict[str, dict[str, Decimal]] = Field(default_factory=dict)


class PlanWrite(Model):
    """A plan to store on an export: on an existing row (claimed by ``owner``) or on a new row."""

    model_config = ConfigDict(frozen=True)
    export_id: str
    plan: str  # the Journal's JSON ("" when there is nothing to post)
    exact: str  # the exact values per account it was planned from (JSON)
    owner: str | None = None  # the lease holder of the existing row
    new_row: dict[str, Any] | None = None  # a row to create (a true-up) instead


class BooksMoved(Exception):
    """Another plan committed since the books were read: read them again and plan anew."""


def _key(organisation_id: str, provider: str, company: str) -> dict[str, str]:
    return {"pk": org_pk(organisation_id), "sk": books_sk(provider, company)}


def get_books(organisation_id: str, provider: str, company: str) -> Books:
    item = table().get_item(Key=_key(organisation_id, provider, company), ConsistentRead=True).get("Item")
    if not item:
        return Books(provider=provider, company=company)
    taken_back = item.get("taken_back") or {}
    return Books(
        provider=provider,
        company=company,
        version=int(item["version"]),
        posted={a: Decimal(str(v)) for a, v in (item.get("posted") or {}).items()},
        taken_back={e: {a: Decimal(v) for a, v in change.items()} for e, change in taken_back.items()},
    )


def _books_put(
    organisation_id: str, books: Books, posted: dict[str, Decimal], taken_back: dict[str, dict[str, Decimal]]
) -> dict[str, Any]:
    """The books' next version, only over the version read."""
    return {
        "Put": {
            "TableName": table().name,
            "Item": {
                **_key(organisation_id, books.provider, books.company),
                "version": books.version + 1,
                "posted": {a: v for a, v in posted.items() if v},
                # exact values as text: a re-costed value can hold more digits than a DynamoDB number
                "taken_back": {e: {a: str(v) for a, v in c.items() if v} for e, c in taken_back.items() if c},
            },
            "ConditionExpression": "attribute_not_exists(pk) OR version = :read",
            "ExpressionAttributeValues": {":read": books.version},
        }
    }


MAX_RESTATED = 80  # exports one true-up restates: DynamoDB takes 100 actions in a transaction


def commit_plans(
    organisation_id: str,
    books: Books,
    posted: dict[str, Decimal],
    plans: list[PlanWrite],
    restated: dict[str, str] | None = None,
    taken_back: dict[str, dict[str, Decimal]] | None = None,
    *,
    zone: ZoneInfo | None,
) -> None:
    """Moves the books from ``books.version`` to the next with ``posted`` and stores the plans, each marked
    as planned for the books' company (and, for a true-up, the values now of the exports it corrects, as
    ``restated``: at most ``MAX_RESTATED``), all or nothing. ``taken_back`` replaces the books' pending
    take-backs (None: they stay). ``zone``: the time zone the plans are dated in (``zone_dated``). Raises
    ``BooksMoved`` when the books, a plan's row or the organisation's time zone changed meanwhile."""
    if len(restated or {}) > MAX_RESTATED:
        raise ValueError(f"a transaction restates at most {MAX_RESTATED} exports, not {len(restated or {})}")
    name, pk = table().name, org_pk(organisation_id)
    writes = [
        _books_put(organisation_id, books, posted, books.taken_back if taken_back is None else taken_back),
        zone_dated(organisation_id, zone),
    ]
    for export_id, exact in (restated or {}).items():
        writes.append(
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": pk, "sk": export_sk(export_id)},
                    "UpdateExpression": "SET plan_exact = :exact",
                    "ExpressionAttributeValues": {":exact": exact},
                }
            }
        )
    for plan in plans:
        fields = {
            "plan": plan.plan,
            "plan_exact": plan.exact,
            "plan_provider": books.provider,
            "plan_tenant": books.company,
        }
        if plan.new_row is not None:
            writes.append(
                {
                    "Put": {
                        "TableName": name,
                        "Item": {**plan.new_row, **fields},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            continue
        writes.append(
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": pk, "sk": export_sk(plan.export_id)},
                    "UpdateExpression": (
                        "SET #p = :plan, plan_exact = :exact, plan_provider = :provider, "
                        "plan_tenant = :tenant"
                    ),
                    "ConditionExpression": "attribute_not_exists(#p) AND lease_owner = :owner",
                    "ExpressionAttributeNames": {"#p": "plan"},
                    "ExpressionAttributeValues": {
                        ":plan": plan.plan,
                        ":exact": plan.exact,
                        ":provider": books.provider,
                        ":tenant": books.company,
                        ":owner": plan.owner,
                    },
                }
            }
        )
    client = table().meta.client
    try:
        # one token for botocore's retries: a retry of a committed plan is not refused as a lost race
        # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html)
        client.transact_write_items(TransactItems=writes, ClientRequestToken=uuid.uuid4().hex)
    except client.exceptions.TransactionCanceledException:
        raise BooksMoved() from None


def drop_plan(
    organisation_id: str,
    books: Books,
    posted: dict[str, Decimal],
    export_id: str,
    taken_back: dict[str, Decimal],
    requeue: dict[str, Any],
) -> bool:
    """Takes a failed export's plan back out of the books (before its retry plans it anew), with what the
    next true-up takes back of the corrections made to it, and makes it pending again with ``requeue``
    (``store.exports.requeue_write``, dropping its plan): all or nothing, so that an outage leaves both as
    they were. False when the export was not failed with a plan (another retry took it meanwhile); raises
    ``BooksMoved`` when the books changed since they were read."""
    pending = {e: c for e, c in books.taken_back.items() if e != export_id}
    codes = transact(
        [
            _books_put(organisation_id, books, posted, pending | {export_id: taken_back}),
            {"Update": {"TableName": table().name, **requeue}},
        ],
        conditions_only=True,  # busy or throttled past its tries: an outage
    )
    if codes is None:
        return True
    if codes[1:2] == ["ConditionalCheckFailed"]:
        return False
    raise BooksMoved()


def last_check(organisation_id: str, provider: str) -> str | None:
    """The day (ISO) of the last scheduled reconciliation."""
    key = {"pk": org_pk(organisation_id), "sk": books_check_sk(provider)}
    item = table().get_item(Key=key).get("Item")
    return str(item["day"]) if item else None


def put_check(organisation_id: str, provider: str, day: str, status: str) -> None:
    key = {"pk": org_pk(organisation_id), "sk": books_check_sk(provider)}
    table().put_item(Item={**key, "day": day, "status": status})
