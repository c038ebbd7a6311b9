"""``Idempotency-Key`` on API writes: a client that retries a receipt or a build after a lost answer gets the
first answer again and nothing is recorded twice; the same key with another body is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared import aws as shared_aws
from shared.domain.catalog import ProviderItem
from shared.errors import Conflict
from shared.services import idempotency
from shared.store import catalog as catalog_store
from shared.store import idempotency as key_store
from shared.web import same_json
from tests.conftest import Api, Sandboxes
from tests.integration.test_exports import ok, setup_xero


def post(api: Api, path: str, body: dict[str, Any], key: str | None, organisation: str = "org-a") -> Any:
    headers = {"idempotency-key": key} if key else {}
    return api.call("POST", path, json_body=body, headers=headers, organisation=organisation)


def test_a_retried_receipt_and_build_are_recorded_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    parts = setup_xero(api, sandboxes)
    line = {"product_id": parts["blank"], "quantity": "10", "unit_cost": "1.25"}
    receipt = {"received_at": "2026-11-02T09:00:00Z", "lines": [line]}
    first = post(api, "/receipts", receipt, "rcv-2026-11-02-a")
    again = post(api, "/receipts", receipt, "rcv-2026-11-02-a")
    assert (first.status, again.status) == (201, 201)
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    assert len(ok(api.call("GET", "/receipts"))["items"]) == 1  # no receipt id in the body: still one receipt
    assert len(ok(api.call("GET", f"/products/{parts['blank']}/lots"))["lots"]) == 1

    components = [{"product_id": parts["blank"], "quantity_per_unit": "1"}]
    build = {"product_id": parts["bracket"], "quantity": "4", "built_at": "2026-11-03T09:00:00Z",
             "components": components}  # fmt: skip
    made = [post(api, "/builds", build, "bld-1") for _ in range(3)]
    assert [m.status for m in made] == [201, 201, 201] and made[0].json() == made[2].json()
    assert len(ok(api.call("GET", "/builds"))["items"]) == 1

    # the same body serialised anew (other spacing, other key order) is the same request
    respelt = json.dumps(dict(reversed(list(receipt.items()))), indent=2).encode()
    headers = {"idempotency-key": "rcv-2026-11-02-a", "content-type": "application/json"}
    again = api.call("POST", "/receipts", body=respelt, headers=headers)
    assert again.status == 201 and again.headers.get("idempotent-replayed") == "true", again.body

    other = post(api, "/receipts", {**receipt, "received_at": "2026-11-04T09:00:00Z"}, "rcv-2026-11-02-a")
    assert other.status == 422 and "another request body" in other.json()["message"]
    assert post(api, "/receipts", receipt, "bad key with spaces").status == 400
    empty = api.call("POST", "/receipts", json_body=receipt, headers={"idempotency-key": ""})
    assert empty.status == 400 and "Idempotency-Key" in empty.json()["message"]  # not "no key"
    # keys belong to their organisation: another organisation's same key is its own
    assert (
        post(api, "/receipts", receipt, "rcv-2026-11-02-a", organisation="org-b").status == 400
    )  # no product
    assert len(ok(api.call("GET", "/receipts"))["items"]) == 1


def test_a_refused_request_keeps_its_answer_and_a_new_key_can_succeed(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    parts = setup_xero(api, sandboxes)
    components = [{"product_id": parts["blank"], "quantity_per_unit": "1"}]
    build = {"product_id": parts["bracket"], "quantity": "4", "built_at": "2026-11-03T09:00:00Z",
             "components": components}  # fmt: skip
    short = post(api, "/builds", build, "bld-short")
    assert short.status == 409
    line = {"product_id": parts["blank"], "quantity": "10", "unit_cost": "1.25"}
    ok(post(api, "/receipts", {"received_at": "2026-11-02T09:00:00Z", "lines": [line]}, None), 201)
    assert post(api, "/builds", build, "bld-short").status == 409  # the first answer, kept
    assert post(api, "/builds", build, "bld-short-2").status == 201


def _claim_as_the_api_does(body: dict[str, Any], key: str, at: datetime) -> None:
    """What the API's middleware writes when a request with ``key`` begins (scope, query and body as sent)."""
    sent = b"\n" + same_json(json.dumps(body)).encode()
    assert idempotency.begin("org-a", "POST /receipts", key, sent, at) is None


def test_a_request_killed_by_the_function_timeout_frees_its_key_for_a_retry(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """Lambda's timeout (30 s for the API, template.yaml) kills a request before it can answer or free its
    key: once that time (and a margin) has passed, a retry with the same key and body takes the key over."""
    parts = setup_xero(api, sandboxes)
    line = {"product_id": parts["blank"], "quantity": "10", "unit_cost": "1.25"}
    receipt = {"received_at": "2026-11-02T09:00:00Z", "lines": [line]}
    now = datetime.now(UTC)
    _claim_as_the_api_does(receipt, "rcv-killed", now - timedelta(seconds=90))  # began, then was killed
    retried = post(api, "/receipts", receipt, "rcv-killed")
    assert retried.status == 201, retried.body
    assert post(api, "/receipts", receipt, "rcv-killed").json() == retried.json()  # its answer, kept
    assert len(ok(api.call("GET", "/receipts"))["items"]) == 1

    _claim_as_the_api_does(receipt, "rcv-live", now - timedelta(seconds=5))  # still within its 30 s
    assert post(api, "/receipts", receipt, "rcv-live").status == 409
    other = {**receipt, "received_at": "2026-11-03T09:00:00Z"}
    _claim_as_the_api_does(receipt, "rcv-dead", now - timedelta(seconds=90))
    assert post(api, "/receipts", other, "rcv-dead").status == 422  # a dead claim is still its body's


def test_a_key_freed_between_the_claim_and_its_read_back_is_taken_not_refused(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim finds the key held; before it reads the holder back, the holder frees it (a 5xx) or
    DynamoDB's TTL removes it. The request then takes the key: never a 422 for a body nobody else sent."""
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert idempotency.begin("org-a", "POST /builds", "bld-race", b"body", now) is None  # the holder
    real = key_store.conditional
    freed: list[bool] = []

    def then_freed(write: Any) -> Any:
        answer = real(write)
        if answer is None and not freed:
            freed.append(True)
            key_store.release("org-a", "POST /builds", "bld-race")  # the holder's 5xx frees it now
        return answer

    monkeypatch.setattr(key_store, "conditional", then_freed)
    assert idempotency.begin("org-a", "POST /builds", "bld-race", b"body", now) is None
    assert freed
    with pytest.raises(Conflict):  # and this request holds it now
        idempotency.begin("org-a", "POST /builds", "bld-race", b"body", now)


def test_a_record_whose_answer_could_not_be_kept_is_answered_and_never_made_twice(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receipt (and the build) commits, then DynamoDB throttles the write of the key's answer: the client
    is told 201 (what happened), not an outage's "nothing was changed"; a retry once the claim has lapsed
    takes the key over and gets the same record again, and one journal is posted for it."""
    parts = setup_xero(api, sandboxes)
    line = {"product_id": parts["blank"], "quantity": "10", "unit_cost": "1.25"}
    receipt = {"received_at": "2026-11-02T09:00:00Z", "lines": [line]}
    components = [{"product_id": parts["blank"], "quantity_per_unit": "1"}]
    build = {"product_id": parts["bracket"], "quantity": "4", "built_at": "2026-11-03T09:00:00Z",
             "components": components}  # fmt: skip

    def throttled(*args: Any, **kwargs: Any) -> None:
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeded"}
        raise ClientError({"Error": error}, "UpdateItem")

    for path, body, key, named in (
        ("/receipts", receipt, "rcv-lost", ("receipt", "receipt_id")),
        ("/builds", build, "bld-lost", ("build", "build_id")),
    ):
        with monkeypatch.context() as patched:
            patched.setattr(key_store, "answer", throttled)
            patched.setattr(idempotency, "RUNNING_SECONDS", -1)  # its claim lapses at once, as after 45 s
            first = post(api, path, body, key)
        assert first.status == 201, first.body
        again = post(api, path, body, key)  # takes the lapsed key over and runs again
        assert again.status == 201, again.body
        recorded, field = named
        assert again.json()[recorded][field] == first.json()[recorded][field]
        assert post(api, path, body, key).headers.get("idempotent-replayed") == "true"
    assert len(ok(api.call("GET", "/receipts"))["items"]) == 1
    assert len(ok(api.call("GET", "/builds"))["items"]) == 1
    Poller(aws).drain()
    exports = ok(api.call("GET", "/exports"))["items"]
    assert sorted(e["kind"] for e in exports) == ["build", "receipt"]
    assert all(e["status"] == "posted" for e in exports), exports
    journals = sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
    assert len(journals) == 2  # one for the receipt, one for the build


def test_a_retried_import_of_provider_items_cut_short_answers_its_own_products_as_created(
    api: Api, aws: LocalStack
) -> None:
    """DynamoDB throttles the import's second transaction: its first one made 99 products, and the client
    is told 503. The retry with the same key makes the other 21 and answers all 120 as created, as an
    uncut import does (before, the first 99 came back as updated: the retry found them made)."""
    items = [
        ProviderItem(provider="qbo", item_id=str(n), name=f"Item {n}", sku=f"P-{n}", kind="inventory")
        for n in range(120)
    ]
    catalog_store.put_provider_items("org-a", items)
    body = {"provider": "qbo", "item_ids": [i.item_id for i in items]}
    client = shared_aws.table().meta.client
    calls = [0]

    def throttled_after_the_first_transaction(**_: Any) -> None:
        calls[0] += 1
        if calls[0] > 1:
            error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
            raise ClientError(
                {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "TransactWriteItems"
            )

    event = "before-call.dynamodb.TransactWriteItems"
    client.meta.events.register(event, throttled_after_the_first_transaction)
    try:
        cut = post(api, "/products/import-from-provider", body, "import-120")
    finally:
        client.meta.events.unregister(event, throttled_after_the_first_transaction)
    assert cut.status == 503, cut.body
    assert len(ok(api.call("GET", "/products?limit=500"))["items"]) == 99

    retried = ok(post(api, "/products/import-from-provider", body, "import-120"))

    assert (len(retried["created"]), retried["updated"]) == (120, [])
    assert sorted(p["sku"] for p in retried["created"]) == sorted(i.sku or "" for i in items)
    again = post(api, "/products/import-from-provider", body, "import-120")
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == retried
    # another request (a new key) importing them again finds them made: updated, none created
    other = ok(post(api, "/products/import-from-provider", body, "import-120-again"))
    assert (len(other["created"]), len(other["updated"])) == (0, 120)
    assert len(ok(api.call("GET", "/products?limit=500"))["items"]) == 120
