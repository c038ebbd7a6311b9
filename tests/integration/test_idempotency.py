"""``Idempotency-Key`` on API writes: a client that retries a receipt or a build after a lost answer gets the
first answer again and nothing is recorded twice; the same key with another body is refused."""

from __future__ import annotations

from typing import Any

from infra.local.stack import LocalStack
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
    assert len(ok(api.call("GET", "/receipts"))) == 1  # no receipt id in the body: still one receipt
    assert len(ok(api.call("GET", f"/products/{parts['blank']}/lots"))["lots"]) == 1

    components = [{"product_id": parts["blank"], "quantity_per_unit": "1"}]
    build = {"product_id": parts["bracket"], "quantity": "4", "built_at": "2026-11-03T09:00:00Z",
             "components": components}  # fmt: skip
    made = [post(api, "/builds", build, "bld-1") for _ in range(3)]
    assert [m.status for m in made] == [201, 201, 201] and made[0].json() == made[2].json()
    assert len(ok(api.call("GET", "/builds"))) == 1

    other = post(api, "/receipts", {**receipt, "received_at": "2026-11-04T09:00:00Z"}, "rcv-2026-11-02-a")
    assert other.status == 422 and "another request body" in other.json()["message"]
    assert post(api, "/receipts", receipt, "bad key with spaces").status == 400
    # keys belong to their organisation: another organisation's same key is its own
    assert (
        post(api, "/receipts", receipt, "rcv-2026-11-02-a", organisation="org-b").status == 400
    )  # no product
    assert len(ok(api.call("GET", "/receipts"))) == 1


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
