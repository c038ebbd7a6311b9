"""Adversarial probes of receipts, QA rejections, builds and their reads (lots, exports) over the HTTP API:
idempotent retries (sequential and overlapping), builds racing for the last lots, hostile figures and dates,
another organisation's ids, and DynamoDB failing at every call of a write."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.local.stack import LocalStack
from shared import aws as shared_aws
from shared.domain.catalog import Product
from shared.money import COST_CONTEXT
from shared.store import catalog as catalog_store
from tests.conftest import Api

D = Decimal
DAY = "2026-11-02T09:00:00-08:00"
LATER = "2026-11-03T09:00:00-08:00"


@pytest.fixture(autouse=True)
def cost_arithmetic() -> Iterator[None]:
    with localcontext(COST_CONTEXT):
        yield


def products(*ids: str, organisation: str = "org-a") -> None:
    catalog_store.put_products(
        organisation, [Product(product_id=p, sku=p.upper(), name=f"Part {p}") for p in ids]
    )


def post(
    api: Api, path: str, body: Any, key: str | None = None, organisation: str = "org-a", raw: bytes = b""
) -> Any:
    headers = {"idempotency-key": key} if key else {}
    if raw:
        headers["content-type"] = "application/json"
        return api.call("POST", path, body=raw, headers=headers, organisation=organisation)
    return api.call("POST", path, json_body=body, headers=headers, organisation=organisation)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, response.body
    return response.json()


def receipt(*lines: dict[str, Any], at: Any = DAY, **extra: Any) -> dict[str, Any]:
    return {"supplier_id": "sup-1", "received_at": at, "lines": list(lines), **extra}


def build_body(product: str, quantity: str, components: dict[str, str], at: Any = LATER) -> dict[str, Any]:
    return {
        "product_id": product,
        "quantity": quantity,
        "built_at": at,
        "components": [{"product_id": p, "quantity_per_unit": q} for p, q in components.items()],
    }


def lots(api: Api, product: str, organisation: str = "org-a") -> list[tuple[Decimal, Decimal]]:
    found = ok(api.call("GET", f"/products/{product}/lots", organisation=organisation))
    return [(D(lot["quantity"]), D(lot["value"])) for lot in found["lots"]]


def exported(api: Api, organisation: str = "org-a") -> list[tuple[str, str]]:
    return sorted(
        (e["kind"], e["record_id"])
        for e in ok(api.call("GET", "/exports", organisation=organisation))["items"]
    )


def refused(response: Any, field: str, status: int = 400) -> None:
    assert response.status == status, response.body
    fields = [d["field"] for d in response.json().get("details", [])]
    assert field in fields, response.body


# ---- Idempotency-Key -----------------------------------------------------------------------------------
def test_same_key_same_body_sequentially_records_one_receipt_and_one_export_each(
    api: Api, aws: LocalStack
) -> None:
    products("bolt")
    body = receipt({"product_id": "bolt", "quantity": "10", "rejected": "3", "unit_cost": "0.333333"})
    answers = [post(api, "/receipts", body, "k-1") for _ in range(3)]
    assert [a.status for a in answers] == [201, 201, 201]
    assert answers[1].json() == answers[0].json() == answers[2].json()
    receipt_id = answers[0].json()["receipt"]["receipt_id"]
    assert exported(api) == [("receipt", receipt_id), ("rejection", f"{receipt_id}/rejected")]
    assert lots(api, "bolt") == [(D(7), D("2.333331"))]
    # a different key for the same content is another receipt (the client said so)
    assert post(api, "/receipts", body, "k-2").status == 201
    assert lots(api, "bolt") == [(D(7), D("2.333331")), (D(7), D("2.333331"))]


def test_same_key_overlapping_threads_records_once(api: Api, aws: LocalStack) -> None:
    products("bolt", "bracket")
    body = receipt({"product_id": "bolt", "quantity": "4", "unit_cost": "1.10"})
    answers: list[Any] = []
    threads = [
        threading.Thread(target=lambda: answers.append(post(api, "/receipts", body, "k-t"))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a.status in (201, 409) for a in answers), [a.body for a in answers]
    assert any(a.status == 201 for a in answers)
    assert len(ok(api.call("GET", "/receipts"))["items"]) == 1 and lots(api, "bolt") == [(D(4), D("4.40"))]
    assert len(exported(api)) == 1

    made: list[Any] = []
    build = build_body("bracket", "2", {"bolt": "1"})
    threads = [
        threading.Thread(target=lambda: made.append(post(api, "/builds", build, "b-t"))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a.status in (201, 409) for a in made) and any(a.status == 201 for a in made)
    assert len(ok(api.call("GET", "/builds"))["items"]) == 1 and lots(api, "bolt") == [(D(2), D("2.20"))]
    assert len(exported(api)) == 2


def test_same_key_with_another_body_is_422_even_when_the_figures_differ_past_a_float(
    api: Api, aws: LocalStack
) -> None:
    """Two bodies whose figures differ only in a digit a binary float cannot hold (18 significant digits,
    within the bounds) are two requests: the second must be refused (422), not answered with the first's
    receipt."""
    products("bolt")
    line = b'{"received_at": "%s", "lines": [{"product_id": "bolt", "quantity": 10.5, "unit_cost": %s}]}'
    first, second = line % (b"%s", b"99999.123456"), line % (b"%s", b'"99999.123456"')
    assert post(api, "/receipts", None, "k-f", raw=first % DAY.encode()).status == 201
    # the same figures as a string are the same request in the service's eyes or a 422: never a 2nd lot
    again = post(api, "/receipts", None, "k-f", raw=second % DAY.encode())
    assert again.status in (201, 422), again.body
    assert len(lots(api, "bolt")) == 1

    line = b'{"received_at": "%s", "lines": [{"product_id": "bolt", "quantity": %s, "unit_cost": 0}]}'
    a, b = line % (b"%s", b"123456789012.123456"), line % (b"%s", b"123456789012.123457")
    assert post(api, "/receipts", None, "k-g", raw=a % DAY.encode()).status == 201
    other = post(api, "/receipts", None, "k-g", raw=b % DAY.encode())
    assert other.status == 422, other.body


def test_a_json_number_is_recorded_exactly_as_sent(api: Api, aws: LocalStack) -> None:
    """A figure sent as a JSON number within the bounds (12 digits before the point, 6 after) is the figure
    recorded: never silently rounded through a binary float."""
    products("bolt")
    raw = (
        b'{"received_at": "%s", "lines": [{"product_id": "bolt", "quantity": 123456789012.123456, '
        b'"unit_cost": 0}, {"product_id": "bolt", "quantity": 1.000001, "line_cost": 99999999999.99}]}'
    ) % DAY.encode()
    answer = post(api, "/receipts", None, raw=raw)
    if answer.status == 400:  # refusing what it cannot hold exactly would be fine too
        return
    view = ok(answer, 201)
    assert [D(line["accepted"]) for line in view["receipt"]["lines"]] == [
        D("123456789012.123456"),
        D("1.000001"),
    ]
    assert D(view["receipt"]["lines"][1]["line_cost"]) == D("99999999999.99")


# ---- builds racing, FIFO to the cent -------------------------------------------------------------------
def test_two_builds_racing_for_the_last_lot_one_gets_it(api: Api, aws: LocalStack) -> None:
    products("blank", "bracket")
    ok(
        post(
            api,
            "/receipts",
            receipt({"product_id": "blank", "quantity": "1.000001", "unit_cost": "0.333333"}),
        ),
        201,
    )
    answers: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(post(api, "/builds", build_body("bracket", "1", {"blank": "1"})))
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status for a in answers) == [201, 409, 409], [a.body for a in answers]
    for a in answers:
        if a.status == 409:
            assert a.json()["shortages"][0]["product_id"] == "blank"
    assert lots(api, "blank") == [(D("0.000001"), D("0.000001") * D("0.333333"))]
    assert lots(api, "bracket") == [(D(1), D("0.333333"))]
    assert len(exported(api)) == 2


def test_fifo_across_odd_lots_is_exact(api: Api, aws: LocalStack) -> None:
    products("blank", "bracket")
    ok(
        post(
            api,
            "/receipts",
            receipt({"product_id": "blank", "quantity": "2.333333", "unit_cost": "0.333333"}),
        ),
        201,
    )
    ok(
        post(
            api,
            "/receipts",
            receipt(
                {"product_id": "blank", "quantity": "3", "line_cost": "1.00"}, at="2026-11-02T10:00:00-08:00"
            ),
        ),
        201,
    )
    ok(
        post(
            api,
            "/receipts",
            receipt(
                {"product_id": "blank", "quantity": "0.000007", "unit_cost": "999999.999999"},
                at="2026-11-02T11:00:00-08:00",
            ),
        ),
        201,
    )
    made = ok(post(api, "/builds", build_body("bracket", "3", {"blank": "1.111111"})), 201)
    used = D("3.333333")  # 3 x 1.111111
    expected = D("2.333333") * D("0.333333") + (used - D("2.333333")) * D("1.00") / 3
    assert D(made["cost"]) == expected
    assert [D(draw[1]) for draw in made["components"][0]["lots"]] == [D("2.333333"), D("1.000000")]
    assert lots(api, "blank") == [
        (D(2), D("1.00") - D("1.00") / 3),
        (D("0.000007"), D("0.000007") * D("999999.999999")),
    ]
    assert lots(api, "bracket") == [(D(3), expected)]


def test_duplicate_components_and_self_component_are_refused(api: Api, aws: LocalStack) -> None:
    products("blank", "bracket")
    dup = {"product_id": "bracket", "quantity": "1", "built_at": LATER,
           "components": [{"product_id": "blank", "quantity_per_unit": "1"},
                          {"product_id": "blank", "quantity_per_unit": "2"}]}  # fmt: skip
    refused(post(api, "/builds", dup), "components")
    itself = build_body("bracket", "1", {"bracket": "1"})
    refused(post(api, "/builds", itself), "components")


# ---- QA rejections -----------------------------------------------------------------------------------------
def test_rejecting_more_than_received_is_refused_naming_the_line(api: Api, aws: LocalStack) -> None:
    products("bolt")
    answer = post(
        api,
        "/receipts",
        receipt({"product_id": "bolt", "quantity": "5", "rejected": "5.000001", "unit_cost": "1"}),
    )
    refused(answer, "lines.0")
    assert ok(api.call("GET", "/receipts"))["items"] == [] and exported(api) == []


def test_a_receipt_wholly_rejected_goes_to_waste_and_leaves_no_lot(api: Api, aws: LocalStack) -> None:
    products("bolt", "bracket")
    view = ok(
        post(
            api,
            "/receipts",
            receipt({"product_id": "bolt", "quantity": "5", "rejected": "5", "unit_cost": "0.333333"}),
        ),
        201,
    )
    assert D(view["accepted_cost"]) == 0 and D(view["rejected_cost"]) == D("1.666665")
    assert lots(api, "bolt") == []
    rid = view["receipt"]["receipt_id"]
    assert exported(api) == [("receipt", rid), ("rejection", f"{rid}/rejected")]
    # nothing to build from
    assert post(api, "/builds", build_body("bracket", "1", {"bolt": "1"})).status == 409


def test_a_back_dated_build_cannot_take_stock_later_builds_used(api: Api, aws: LocalStack) -> None:
    products("blank", "bracket")
    ok(post(api, "/receipts", receipt({"product_id": "blank", "quantity": "3", "unit_cost": "0.10"})), 201)
    ok(post(api, "/builds", build_body("bracket", "3", {"blank": "1"}, at="2026-11-05T09:00:00-08:00")), 201)
    back = post(api, "/builds", build_body("bracket", "1", {"blank": "1"}, at="2026-11-04T09:00:00-08:00"))
    assert back.status == 409, back.body
    before = post(api, "/builds", build_body("bracket", "1", {"blank": "1"}, at="2026-11-01T09:00:00-08:00"))
    assert before.status == 409, before.body  # before the receipt: no stock at its time
    assert lots(api, "blank") == [] and lots(api, "bracket") == [(D(3), D("0.30"))]
    assert len(exported(api)) == 2


# ---- hostile figures and dates --------------------------------------------------------------------------
BAD_FIGURES: list[Any] = [
    0, "0", -1, "-1", "1e-30", 1e-30, 1e30, "1e30", "NaN", "Infinity", "-Infinity", "1E2", " 5", "5 ",
    "\u0661\u0662", "\uff15", "12345678901234567890123", 12345678901234567890123, "1.0000001", "0x10", "",
    None, True, [], {}, "1_000", "+5", ".5", "5.", "1,5",
]  # fmt: skip


def test_hostile_figures_are_refused_naming_the_field(api: Api, aws: LocalStack) -> None:
    products("bolt")
    for value in BAD_FIGURES:
        answer = post(api, "/receipts", receipt({"product_id": "bolt", "quantity": value, "unit_cost": "1"}))
        if answer.status == 201:  # only a plain positive number may pass
            assert value in ("5.", ".5"), (value, answer.body)
            continue
        refused(answer, "lines.0.quantity")
    for value in ["-0.01", "1e400", "NaN", "1234567890123.5", "0.0000001", "\u0661", 1e400, -0.0001]:
        answer = post(api, "/receipts", receipt({"product_id": "bolt", "quantity": "1", "unit_cost": value}))
        refused(answer, "lines.0.unit_cost")
    for value in ["0.001", "-1", "1e3", 1e13, "12345678901234"]:
        answer = post(api, "/receipts", receipt({"product_id": "bolt", "quantity": "1", "line_cost": value}))
        refused(answer, "lines.0.line_cost")
    # a line's value (quantity x unit cost) is bounded as a line_cost is: refused naming the line
    huge = {"product_id": "bolt", "quantity": "999999999999", "unit_cost": "1.000001"}
    refused(post(api, "/receipts", receipt(huge)), "lines.0")


def test_raw_nan_and_infinity_tokens_are_a_400(api: Api, aws: LocalStack) -> None:
    products("bolt")
    for token in (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-0"):
        raw = b'{"received_at": "%s", "lines": [{"product_id": "bolt", "quantity": %s, "unit_cost": 1}]}' % (
            DAY.encode(),
            token,
        )
        answer = post(api, "/receipts", None, raw=raw)
        assert answer.status == 400, (token, answer.body)
    assert ok(api.call("GET", "/receipts"))["items"] == []


def _shifted(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


HOSTILE_DATES: list[Any] = [
    "2026-11-02T09:00:00", "2026-11-02", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
    "2026-13-01T00:00:00Z", "2026-11-02T25:00:00Z", "2026-11-02T09:00:00+25:00", "", "now", 1e20, -1,
    "1900-01-01T00:00:00Z", None, "2026-11-02T09:00:00\u00a0Z",
]  # fmt: skip


def test_hostile_dates_are_refused_naming_the_field(api: Api, aws: LocalStack) -> None:
    products("bolt", "bracket")
    for when in HOSTILE_DATES:
        line = {"product_id": "bolt", "quantity": "1", "unit_cost": "1"}
        refused(post(api, "/receipts", receipt(line, at=when)), "received_at")
        refused(post(api, "/builds", build_body("bracket", "1", {"bolt": "1"}, at=when)), "built_at")


def test_dates_at_the_edges_of_the_window(api: Api, aws: LocalStack) -> None:
    products("bolt")
    line = {"product_id": "bolt", "quantity": "1", "unit_cost": "1"}
    refused(post(api, "/receipts", receipt(line, at=_shifted(-3660))), "received_at")
    refused(post(api, "/receipts", receipt(line, at=_shifted(370))), "received_at")
    assert post(api, "/receipts", receipt(line, at=_shifted(-3600))).status == 201
    assert post(api, "/receipts", receipt(line, at=_shifted(360))).status == 201
    # the same instant in two offsets orders as one instant
    ok(post(api, "/receipts", receipt({**line, "unit_cost": "2"}, at="2026-11-02T23:30:00+14:00")), 201)
    ok(post(api, "/receipts", receipt({**line, "unit_cost": "3"}, at="2026-11-01T22:00:00-12:00")), 201)
    first = ok(api.call("GET", "/products/bolt/lots"))["lots"]
    assert [D(lot["unit_cost"]) for lot in first][:3] == [1, 2, 3]


def test_line_count_bounds_and_duplicate_products_in_a_receipt(api: Api, aws: LocalStack) -> None:
    products("bolt")
    line = {"product_id": "bolt", "quantity": "0.000001", "unit_cost": "0.000001"}
    refused(post(api, "/receipts", receipt(*[line] * 501)), "lines")
    view = ok(post(api, "/receipts", receipt(*[line] * 500)), 201)
    assert len(view["receipt"]["lines"]) == 500
    found = ok(api.call("GET", "/products/bolt/lots"))
    assert D(found["on_hand"]) == D("0.0005") and D(found["value"]) == D("0.0000000005")
    assert len(found["lots"]) == 500 and len(exported(api)) == 1


# ---- another organisation --------------------------------------------------------------------------------
def test_another_organisations_ids_are_404_or_unknown(api: Api, aws: LocalStack) -> None:
    products("bolt", "bracket")
    products("other", organisation="org-b")
    rid = ok(
        post(
            api,
            "/receipts",
            receipt(
                {"product_id": "bolt", "quantity": "2", "rejected": "1", "unit_cost": "1"}, receipt_id="PO-1"
            ),
        ),
        201,
    )["receipt"]["receipt_id"]
    bid = ok(post(api, "/builds", {**build_body("bracket", "1", {"bolt": "1"}), "build_id": "B-1"}), 201)[
        "build"
    ]["build_id"]
    for path in (f"/receipts/{rid}", f"/builds/{bid}", "/products/bolt/lots", "/products/bracket/lots"):
        answer = api.call("GET", path, organisation="org-b")
        assert answer.status == 404, (path, answer.body)
    assert ok(api.call("GET", "/receipts", organisation="org-b"))["items"] == []
    assert ok(api.call("GET", "/builds", organisation="org-b"))["items"] == []
    assert exported(api, "org-b") == []
    for export in ok(api.call("GET", "/exports"))["items"]:
        answer = api.call("POST", f"/exports/{export['export_id']}/retry", organisation="org-b")
        assert answer.status == 404, answer.body
    refused(
        post(
            api,
            "/receipts",
            receipt({"product_id": "bolt", "quantity": "1", "unit_cost": "1"}),
            organisation="org-b",
        ),
        "lines.0.product_id",
    )
    refused(
        post(api, "/builds", build_body("other", "1", {"bolt": "1"}), organisation="org-b"),
        "components.0.product_id",
    )
    # org-b may use the same record ids: its own
    assert (
        post(
            api,
            "/receipts",
            receipt({"product_id": "other", "quantity": "1", "unit_cost": "1"}, receipt_id="PO-1"),
            organisation="org-b",
        ).status
        == 201
    )
    assert D(ok(api.call("GET", "/products/bolt/lots"))["on_hand"]) == 0
    odd = ["/receipts/..%2F..", "/receipts/" + "x" * 5000, "/builds/%00", "/products/%E2%80%AE/lots",
           "/receipts/RCV-1%2Frejected", "/products/bolt%23x/lots", "/builds/%F0%9F%92%A9"]  # fmt: skip
    for path in odd:
        answer = api.call("GET", path)
        assert answer.status in (400, 404), (path, answer.body)


# ---- DynamoDB failing at every call ------------------------------------------------------------------------
def _throttle() -> Exception:
    return ClientError(  # type: ignore[no-any-return]
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"},
         "ResponseMetadata": {"HTTPStatusCode": 400}}, "Any")  # fmt: skip


def _fail_nth(n: int) -> tuple[Callable[[], None], list[int]]:
    """DynamoDB's ``n``th call of the request (and every retry of it) throttles."""
    client = shared_aws.table().meta.client
    calls = [0]

    def handler(**_: Any) -> None:
        calls[0] += 1
        if calls[0] == n:
            raise _throttle()

    client.meta.events.register("before-call.dynamodb", handler)
    return lambda: client.meta.events.unregister("before-call.dynamodb", handler), calls


@pytest.mark.parametrize("back_dated", [False, True], ids=["in-order", "back-dated"])
def test_dynamodb_failing_at_any_call_of_a_receipt_or_build_leaves_all_or_nothing(
    api: Api, aws: LocalStack, back_dated: bool
) -> None:
    """Each DynamoDB call of the request fails in turn: 503 and nothing, or 201 and everything (the record,
    its rejection, its exports, its lots); a retry with the same key records it once. Back-dated: each write
    is dated before the ones already recorded (the whole ledger replayed)."""
    products("blank", "bracket")
    ok(
        post(api, "/receipts", receipt({"product_id": "blank", "quantity": "100", "unit_cost": "0.333333"})),
        201,
    )
    receipts, builds, tried = 1, 0, 0
    body = receipt({"product_id": "blank", "quantity": "2", "rejected": "1", "unit_cost": "0.1"})
    made = build_body("bracket", "1", {"blank": "1"})
    for n in range(1, 60):
        if back_dated:  # each before the last: a minute earlier every time
            at = (datetime(2026, 11, 5, 9, tzinfo=UTC) - timedelta(minutes=n)).isoformat()
            body, made = {**body, "received_at": at}, {**made, "built_at": at}
        undo, calls = _fail_nth(n)
        try:
            path, sent, key = ("/receipts", body, f"r-{n}") if n % 2 else ("/builds", made, f"b-{n}")
            answer = post(api, path, sent, key)
        finally:
            undo()
        assert answer.status in (201, 503), (n, answer.body)
        if answer.status == 201:
            if n % 2:
                receipts += 1
            else:
                builds += 1
        stored_r = ok(api.call("GET", "/receipts"))["items"]
        stored_b = ok(api.call("GET", "/builds"))["items"]
        assert (len(stored_r), len(stored_b)) == (receipts, builds), (n, answer.status)
        kinds = [k for k, _ in exported(api)]
        assert kinds.count("receipt") == receipts and kinds.count("rejection") == receipts - 1
        assert kinds.count("build") == builds
        on_hand = D(ok(api.call("GET", "/products/blank/lots"))["on_hand"])
        assert on_hand == 100 + (receipts - 1) - builds, n
        if calls[0] < n:  # the request made fewer calls than n: every point of it was tried
            tried += 1
            if tried == 2:
                break
            continue
        if answer.status == 503:  # a retry with the same key records it, once
            again = post(api, "/receipts", body, f"r-{n}") if n % 2 else post(api, "/builds", made, f"b-{n}")
            assert again.status == 201, again.body
            receipts, builds = receipts + n % 2, builds + 1 - n % 2


# ---- builds from a bill of materials the catalog holds ---------------------------------------------------
def _bom(*parts: tuple[str, str]) -> None:
    from shared.domain.catalog import Component as Part

    catalog_store.put_products(
        "org-a",
        [Product(product_id="kit", sku="KIT", name="Kit", type="kit",
                 components=tuple(Part(ref=p, quantity=D(q)) for p, q in parts))],
    )  # fmt: skip


@pytest.mark.parametrize(
    "parts",
    [(("blank", "1"), ("blank", "2")), (("kit", "1"), ("blank", "1")), (("blank", "0"),),
     (("blank", "0.0000001"),), (("blank", "-1"),)],
    ids=["repeated", "itself", "zero", "seven-places", "negative"],
)  # fmt: skip
def test_a_build_from_a_hostile_bill_of_materials_is_refused_or_exact(
    api: Api, aws: LocalStack, parts: tuple[tuple[str, str], ...]
) -> None:
    products("blank")
    ok(
        post(api, "/receipts", receipt({"product_id": "blank", "quantity": "10", "unit_cost": "0.333333"})),
        201,
    )
    _bom(*parts)
    answer = post(api, "/builds", {"product_id": "kit", "quantity": "1", "built_at": LATER})
    assert answer.status in (201, 400, 409), answer.body
    if answer.status == 201:
        used = sum(D(q) for _, q in parts)
        assert lots(api, "blank") == [(10 - used, (10 - used) * D("0.333333"))]
    else:
        refused(answer, "product_id")
        assert lots(api, "blank") == [(D(10), D("3.33333"))] and len(exported(api)) == 1


def test_fifo_values_after_a_back_dated_receipt_are_exact(api: Api, aws: LocalStack) -> None:
    """Receipts priced by line (a third of a cent), partial draws of odd quantities, a receipt back-dated
    before the builds that already ran: the lots left are valued as an exact FIFO replay in date order."""
    products("blank", "bolt", "bracket")
    per_unit = {"blank": "1.5", "bolt": "0.333333"}

    def rcv(line: dict[str, Any], at: str) -> None:
        ok(post(api, "/receipts", receipt(line, at=at)), 201)

    def bld(quantity: str, at: str) -> Any:
        return ok(post(api, "/builds", build_body("bracket", quantity, per_unit, at=at)), 201)

    rcv({"product_id": "blank", "quantity": "10", "line_cost": "10.00"}, "2026-11-02T09:00:00-08:00")
    rcv({"product_id": "bolt", "quantity": "7.777777", "unit_cost": "0.333333"}, "2026-11-02T10:00:00-08:00")
    first = bld("2.5", "2026-11-03T09:00:00-08:00")
    rcv(
        {"product_id": "blank", "quantity": "3", "rejected": "1", "line_cost": "1.00"}, "2026-11-03T10:00:00Z"
    )
    bld("4", "2026-11-04T09:00:00-08:00")
    rcv({"product_id": "blank", "quantity": "1.000001", "unit_cost": "0.999999"}, "2026-11-02T16:00:00Z")
    bld("1", "2026-11-05T09:00:00-08:00")
    assert D(first["cost"]) == D("3.75") + D("0.8333325") * D("0.333333")  # as recorded, before r4

    third = D("1.00") * 2 / 3  # the accepted share of the line
    bolt_left = D("7.777777") - D("0.8333325") - D("1.333332") - D("0.333333")
    expected = {
        "blank": [(D("1.750001"), third * D("1.750001") / 2)],
        "bolt": [(bolt_left, bolt_left * D("0.333333"))],
        "bracket": [
            (D("2.5"), D("1.000001") * D("0.999999") + D("2.749999") + D("0.8333325") * D("0.333333")),
            (D(4), D(6) + D("1.333332") * D("0.333333")),
            (D(1), D("1.250001") + third * D("0.249999") / 2 + D("0.333333") * D("0.333333")),
        ],
    }
    exact = D("1e-20")
    for product, wanted in expected.items():
        found = lots(api, product)
        assert [(q, v.quantize(exact)) for q, v in found] == [(q, v.quantize(exact)) for q, v in wanted], (
            product
        )
    kinds = [k for k, _ in exported(api)]
    assert (kinds.count("receipt"), kinds.count("rejection"), kinds.count("build")) == (4, 1, 3)


def _together(*calls: Callable[[], Any]) -> list[Any]:
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda c=c: answers.append(c())) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_overlapping_requests_that_must_not_both_record(api: Api, aws: LocalStack) -> None:
    products("bolt")
    one = receipt({"product_id": "bolt", "quantity": "1", "unit_cost": "1"})
    two = receipt({"product_id": "bolt", "quantity": "2", "unit_cost": "1"})
    # the same key with two bodies at once: one is recorded, the other refused (422, or 409 while it runs)
    answers = _together(
        lambda: post(api, "/receipts", one, "k-x"), lambda: post(api, "/receipts", two, "k-x")
    )
    assert sorted(a.status for a in answers)[0] == 201 and sorted(a.status for a in answers)[1] in (409, 422)
    # one receipt id under two keys at once: one is recorded, the other is a 409
    named = {**one, "receipt_id": "PO-7"}
    answers = _together(
        lambda: post(api, "/receipts", named, "k-y"), lambda: post(api, "/receipts", named, "k-z")
    )
    assert sorted(a.status for a in answers) == [201, 409], [a.body for a in answers]
    assert len(ok(api.call("GET", "/receipts"))["items"]) == 2 and len(exported(api)) == 2
    assert sum(q for q, _ in lots(api, "bolt")) in (D(2), D(3))


def test_a_build_id_equal_to_a_receipt_id_leaves_the_receipts_lots_alone(api: Api, aws: LocalStack) -> None:
    """Receipt and build ids are the caller's own, of two kinds: a build named like a receipt must neither
    take that receipt's lots out of the ledger nor be refused for a shortage it does not have."""
    products("blank", "bracket")
    ok(
        post(
            api,
            "/receipts",
            receipt({"product_id": "blank", "quantity": "2", "unit_cost": "0.50"}, receipt_id="D-1"),
        ),
        201,
    )
    ok(post(api, "/receipts", receipt({"product_id": "blank", "quantity": "3", "unit_cost": "0.70"},
                                      at="2026-11-02T10:00:00-08:00")), 201)  # fmt: skip
    answer = post(api, "/builds", {**build_body("bracket", "1", {"blank": "1"}), "build_id": "D-1"})
    assert answer.status in (201, 409), answer.body
    if answer.status == 201:  # FIFO: the first lot (D-1's) gives the unit
        assert D(answer.json()["cost"]) == D("0.50")
        assert lots(api, "blank") == [(D(1), D("0.50")), (D(3), D("2.10"))]
    else:
        refused(answer, "build_id", 409)
        assert lots(api, "blank") == [(D(2), D("1.00")), (D(3), D("2.10"))]
    # the stock a later build is costed on still holds both lots
    later = ok(
        post(api, "/builds", build_body("bracket", "2", {"blank": "1"}, at="2026-11-04T09:00:00-08:00")), 201
    )
    assert D(later["cost"]) == (D("1.20") if answer.status == 201 else D("1.00"))


def test_a_back_dated_build_named_like_a_receipt_is_refused_for_its_id(api: Api, aws: LocalStack) -> None:
    products("blank", "bracket")
    ok(
        post(
            api,
            "/receipts",
            receipt({"product_id": "blank", "quantity": "1", "unit_cost": "0.50"}, receipt_id="D-1"),
        ),
        201,
    )
    ok(post(api, "/builds", build_body("bracket", "1", {"blank": "1"}, at="2026-11-06T09:00:00-08:00")), 201)
    ok(post(api, "/receipts", receipt({"product_id": "blank", "quantity": "3", "unit_cost": "0.70"},
                                      at="2026-11-02T10:00:00-08:00")), 201)  # fmt: skip
    # dated before the build that took D-1's unit: the whole ledger is replayed
    answer = post(api, "/builds", {**build_body("bracket", "1", {"blank": "1"}), "build_id": "D-1"})
    refused(answer, "build_id", 409)
    assert "D-1" in answer.json()["message"], answer.body
    # 3 would leave the later build short only without D-1's lot: still the id is what is refused
    answer = post(api, "/builds", {**build_body("bracket", "3", {"blank": "1"}), "build_id": "D-1"})
    refused(answer, "build_id", 409)
    assert lots(api, "blank") == [(D(3), D("2.10"))]


# ---- a random history against an independent FIFO replay -------------------------------------------------
def _replay(events: list[dict[str, Any]]) -> tuple[dict[str, list[list[Decimal]]], bool]:
    """Each product's lots ([quantity, cost]) after the events in date order, FIFO, each part of a lot at its
    share of the lot's remaining cost; and whether every build found its components."""
    lots_of: dict[str, list[list[Decimal]]] = {}
    covered = True
    for event in sorted(events, key=lambda e: e["at"]):
        if event["kind"] == "receipt":
            lots_of.setdefault(event["product"], []).append([event["quantity"], event["cost"]])
            continue
        spent = D(0)
        for product, per in event["uses"].items():
            wanted, layers = per * event["quantity"], lots_of.setdefault(product, [])
            while wanted and layers:
                quantity, cost = layers[0]
                if quantity <= wanted:
                    layers.pop(0)
                    wanted, spent = wanted - quantity, spent + cost
                else:
                    part = cost * wanted / quantity
                    layers[0] = [quantity - wanted, cost - part]
                    wanted, spent = D(0), spent + part
            covered = covered and not wanted
        lots_of.setdefault(event["product"], []).append([event["quantity"], spent])
    return lots_of, covered


def test_a_random_history_with_back_dated_records_matches_an_exact_fifo_replay(
    api: Api, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receipts and builds dated at random across three weeks (many before records already made), with a
    checkpoint of the ledger every 8 movements (500 in production): each build is accepted exactly when the
    replay covers it, and the lots left are the replay's to 20 decimal places."""
    import random

    from shared.services import inventory as service

    monkeypatch.setattr(service, "CHECKPOINT_EVERY", 8)
    rng = random.Random(7)
    products("blank", "bolt", "bracket")
    start = datetime(2026, 11, 2, 8, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    minutes = rng.sample(range(1, 60 * 24 * 21), 28)
    for n, minute in enumerate(minutes):
        at = start + timedelta(minutes=minute)
        if n % 3 != 2:
            product = rng.choice(["blank", "bolt"])
            quantity = D(rng.randint(1, 9_000_000)) / 1_000_000
            if rng.random() < 0.5:
                unit = D(rng.randint(0, 3_000_000)) / 1_000_000
                sent = {"product_id": product, "quantity": str(quantity), "unit_cost": str(unit)}
                cost = quantity * unit
            else:
                amount = D(rng.randint(1, 10_000)) / 100
                sent = {"product_id": product, "quantity": str(quantity), "line_cost": str(amount)}
                cost = amount * quantity / quantity
            ok(post(api, "/receipts", receipt(sent, at=at.isoformat())), 201)
            events.append(
                {"kind": "receipt", "product": product, "at": at, "quantity": quantity, "cost": cost}
            )
        else:
            quantity = D(rng.randint(1, 3_000_000)) / 1_000_000
            uses = {"blank": D("1.333333"), "bolt": D("0.5")}
            build = {"kind": "build", "product": "bracket", "at": at, "quantity": quantity, "uses": uses}
            _, covered = _replay([*events, build])
            per_unit = {p: str(q) for p, q in uses.items()}
            answer = post(api, "/builds", build_body("bracket", str(quantity), per_unit, at=at.isoformat()))
            assert answer.status == (201 if covered else 409), (n, answer.body)
            if covered:
                events.append(build)
    expected, _ = _replay(events)
    exact = D("1e-20")
    for product in ("blank", "bolt", "bracket"):
        found = [(q, v.quantize(exact)) for q, v in lots(api, product)]
        wanted = [(q, v.quantize(exact)) for q, v in expected.get(product, []) if q]
        assert found == wanted, product
    from shared.store import inventory as stored

    assert stored.ledger_head("org-a").checkpointed > 0  # the back-dated writes met checkpoints


def test_two_back_dated_builds_racing_for_the_same_lot_one_gets_it(api: Api, aws: LocalStack) -> None:
    """Dated before a receipt already recorded (the whole ledger replayed), two builds want the only unit
    there is at their time: one is made, the other refused; the later receipt's lot is untouched."""
    products("blank", "bracket")
    ok(
        post(api, "/receipts", receipt({"product_id": "blank", "quantity": "1", "unit_cost": "0.333333"})),
        201,
    )
    later = receipt({"product_id": "blank", "quantity": "5", "unit_cost": "9.99"}, at="2026-11-09T09:00:00Z")
    ok(post(api, "/receipts", later), 201)
    body = build_body("bracket", "1", {"blank": "1"}, at="2026-11-04T09:00:00Z")
    answers = _together(lambda: post(api, "/builds", body), lambda: post(api, "/builds", body))
    assert sorted(a.status for a in answers) == [201, 409], [a.body for a in answers]
    assert lots(api, "blank") == [(D(5), D("49.95"))]
    assert lots(api, "bracket") == [(D(1), D("0.333333"))]
    assert [k for k, _ in exported(api)].count("build") == 1
