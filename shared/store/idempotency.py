"""Idempotency keys of API writes (``IDEMPOTENCY#<route>#<key>`` under the organisation): the request's
fingerprint and, once answered, the answer; DynamoDB's TTL removes them after a day."""

from __future__ import annotations

from typing import Literal

from shared.aws import table
from shared.model import Model
from shared.store.dynamo import conditional
from shared.store.keys import idempotency_sk, org_pk

TTL_SECONDS = 86_400


class KeyUse(Model):
    """What an earlier request with the key left: its body's fingerprint and, once answered, the answer."""

    fingerprint: str = ""
    state: Literal["running", "done"] = "running"
    answer_status: int | None = None
    answer_body: str | None = None
    answer_type: str | None = None


def _key(organisation_id: str, scope: str, key: str) -> dict[str, str]:
    return {"pk": org_pk(organisation_id), "sk": idempotency_sk(scope, key)}


def claim(
    organisation_id: str, scope: str, key: str, fingerprint: str, now: int, running_s: int
) -> KeyUse | None:
    """Takes the key for this request (None), or returns what an earlier request with it left. A key is
    free when it was never used, when its day is over, or when the request holding it ``running`` with
    this same body is past ``running_s`` (it was killed before it could answer or free the key). A key
    freed between the attempt and the read-back (a 5xx, DynamoDB's TTL) is tried again."""
    item = {
        **_key(organisation_id, scope, key),
        "fingerprint": fingerprint,
        "state": "running",
        "running_until": now + running_s,
        "expires_at": now + TTL_SECONDS,
    }
    while True:
        taken = conditional(
            lambda: table().put_item(
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR "
                "(#s = :running AND running_until < :now AND fingerprint = :fp)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":now": now, ":running": "running", ":fp": fingerprint},
            )
        )
        if taken is not None:
            return None
        found = table().get_item(Key=_key(organisation_id, scope, key), ConsistentRead=True).get("Item")
        if found is not None and int(found.get("expires_at", 0)) >= now:
            return KeyUse.model_validate(found)


def answer(organisation_id: str, scope: str, key: str, status: int, body: str, content_type: str) -> None:
    table().update_item(
        Key=_key(organisation_id, scope, key),
        UpdateExpression="SET #s = :done, answer_status = :status, answer_body = :body, answer_type = :type",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":done": "done", ":status": status, ":body": body, ":type": content_type},
    )


def release(organisation_id: str, scope: str, key: str) -> None:
    table().delete_item(Key=_key(organisation_id, scope, key))
