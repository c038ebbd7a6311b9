"""Receipts with QA rejections, multi-level builds, lots and FIFO costs, refusals: through the HTTP API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal, localcontext
from typing import Any

import pytest

from infra.local.stack import LocalStack
from shared.domain.catalog import Product
from shared.money import COST_CONTEXT
from shared.store import catalog as catalog_store
from tests.conftest import Api, Sandboxes

D = Decimal
DAY = "2026-11-02T09:00:00-08:00"
LATER = "2026-11-03T09:00:00-08:00"


@pytest.fixture(autouse=True)
def cost_arithmetic() -> Iterator[None]:
    """Expected figures computed as the ledger computes them (34 significant digits)."""
    with localcontext(COST_CONTEXT):
        yield


def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, response.body
    return response.json()


def products(*ids: str, organisation: str = "org-a") -> None:
    catalog_store.put_products(
        organisation, [Product(product_id=p, sku=p.upper(), name=f"Part {p}") for p in ids]
    )


def receive(api: Api, *lines: dict[str, Any], at: str = DAY, **extra: Any) -> dict[str, Any]:
    body = {"supplier_id": "sup-1", "received_at": at, "lines": list(lines), **extra}
    return ok(api.call("POST", "/receipts", json_body=body), 201)  # type: ignore[no-any-return]


def build(api: Api, product: str, quantity: str, components: dict[str, str], at: str = LATER) -> Any:
    return api.call(
        "POST",
        "/builds",
        json_body={
            "product_id": product,
            "quantity": quantity,
            "built_at": at,
            "components": [{"product_id": p, "quantity_per_unit": q} for p, q in components.items()],
        },
    )


def lots(api: Api, product: str) -> list[tuple[Decimal, Decimal]]:
    """(quantity on hand, unit cost) per lot, oldest first."""
    return [
        (D(lot["quantity"]), D(lot["unit_cost"]))
        for lot in ok(api.call("GET", f"/products/{product}/lots"))["lots"]
    ]


def test_receipt_accepts_into_lots_and_writes_rejected_units_off_at_their_cost(
    api: Api, aws: LocalStack
) -> None:
    products("bolt", "blank")
    view = receive(
        api,
        {"product_id": "bolt", "quantity": "100", "rejected": "4", "unit_cost": "0.08", "lot_code": "B-7"},
        {"product_id": "blank", "quantity": "3", "rejected": "1", "line_cost": "10.00"},
    )
    assert [(line["accepted"], line["rejected"]) for line in view["receipt"]["lines"]] == [
        ("96", "4"),
        ("2", "1"),
    ]
    assert D(view["accepted_cost"]) == D("7.68") + D("10.00") * 2 / 3
    assert D(view["rejected_cost"]) == D("0.32") + (
        D("10.00") - D("10.00") * 2 / 3
    )  # the line adds up exactly
    assert [(line["product_id"], D(line["quantity"])) for line in view["rejection"]["lines"]] == [
        ("bolt", 4),
        ("blank", 1),
    ]

    bolt_lots = ok(api.call("GET", "/products/bolt/lots"))
    assert (D(bolt_lots["on_hand"]), D(bolt_lots["value"])) == (96, D("7.68"))
    assert bolt_lots["lots"][0]["lot_code"] == "B-7" and bolt_lots["lots"][0]["source"] == "receipt"
    assert lots(api, "blank") == [(2, D("10.00") * 2 / 3 / 2)]  # the lot holds exactly its share of the line

    exported = {(e["kind"], e["record_id"]): e["status"] for e in ok(api.call("GET", "/exports"))["items"]}
    receipt_id = view["receipt"]["receipt_id"]
    assert exported == {
        ("receipt", receipt_id): "pending",
        ("rejection", f"{receipt_id}/rejected"): "pending",
    }
    assert (
        ok(api.call("GET", f"/receipts/{receipt_id}"))["rejection"]["rejection_id"]
        == f"{receipt_id}/rejected"
    )


def test_multi_level_builds_consume_fifo_and_carry_exact_costs(api: Api, aws: LocalStack) -> None:
    products("blank", "bolt", "bracket", "shelf")
    first = receive(
        api,
        {"product_id": "blank", "quantity": "2", "unit_cost": "1.00"},
        {"product_id": "bolt", "quantity": "10", "line_cost": "1.00"},
    )["receipt"]["receipt_id"]
    second = receive(
        api, {"product_id": "blank", "quantity": "5", "unit_cost": "1.30"}, at="2026-11-02T10:00:00-08:00"
    )["receipt"]["receipt_id"]

    # 3 brackets take 3 blanks (2 at 1.00 from the older lot, then 1 at 1.30) and 6 bolts at 0.10
    bracket = ok(build(api, "bracket", "3", {"blank": "1", "bolt": "2"}), 201)
    assert D(bracket["cost"]) == D("3.30") + D("0.60")
    assert D(bracket["unit_cost"]) == D("3.90") / 3
    blank_use = next(c for c in bracket["components"] if c["product_id"] == "blank")
    assert [(lot[0], D(lot[1])) for lot in blank_use["lots"]] == [(f"{first}/1", 2), (f"{second}/1", 1)]
    assert lots(api, "blank") == [(4, D("1.30"))]

    # a shelf takes 2 brackets and 3 bolts: its cost is exactly what it consumed, not a rounded unit cost
    shelf = ok(build(api, "shelf", "1", {"bracket": "2", "bolt": "3"}, at="2026-11-04T09:00:00-08:00"), 201)
    assert D(shelf["cost"]) == D("3.90") * 2 / 3 + D("0.30")
    assert lots(api, "bracket") == [(1, D("3.90") / 3)]
    assert lots(api, "shelf") == [(1, D("3.90") * 2 / 3 + D("0.30"))]
    assert lots(api, "bolt") == [(1, D("0.10"))]
    assert [b["build"]["product_id"] for b in ok(api.call("GET", "/builds"))["items"]] == ["bracket", "shelf"]


def test_a_short_build_is_refused_per_component_and_writes_nothing(api: Api, aws: LocalStack) -> None:
    products("blank", "bolt", "bracket")
    receive(
        api,
        {"product_id": "blank", "quantity": "2", "unit_cost": "1.00"},
        {"product_id": "bolt", "quantity": "5", "unit_cost": "0.10"},
    )

    refused = build(api, "bracket", "3", {"blank": "1", "bolt": "2"})
    assert refused.status == 409, refused.body
    shortages = {
        s["product_id"]: (D(s["required"]), D(s["available"]), D(s["short"]))
        for s in refused.json()["shortages"]
    }
    assert shortages == {"blank": (3, 2, 1), "bolt": (6, 5, 1)}
    # named by SKU and name, not by id
    assert "BLANK Part blank short 1" in refused.json()["message"]
    assert {s["product"] for s in refused.json()["shortages"]} == {"BLANK Part blank", "BOLT Part bolt"}
    assert lots(api, "blank") == [(2, D("1.00"))] and lots(api, "bracket") == []
    assert ok(api.call("GET", "/builds"))["items"] == []
    assert {e["kind"] for e in ok(api.call("GET", "/exports"))["items"]} == {"receipt"}


def test_a_build_of_many_components_commits_whole_or_not_at_all(api: Api, aws: LocalStack) -> None:
    parts = [f"p{i:03}" for i in range(150)]
    products(*parts, "robot")
    receive(
        api,
        *({"product_id": p, "quantity": "2", "unit_cost": "0.50"} for p in parts[:-1]),
        {"product_id": parts[-1], "quantity": "1", "unit_cost": "0.50"},
    )

    refused = build(api, "robot", "2", dict.fromkeys(parts, "1"))  # the last part is one short
    assert refused.status == 409 and [s["product_id"] for s in refused.json()["shortages"]] == [parts[-1]]
    assert lots(api, parts[0]) == [(2, D("0.50"))]  # the 149 parts in stock were not consumed either

    made = ok(build(api, "robot", "1", dict.fromkeys(parts, "1")), 201)
    assert len(made["components"]) == 150 and D(made["cost"]) == D("75.00")
    assert lots(api, parts[0]) == [(1, D("0.50"))] and lots(api, parts[-1]) == []


def test_concurrent_builds_never_consume_the_same_stock_twice(api: Api, aws: LocalStack) -> None:
    products("blank", "bracket")
    receive(api, {"product_id": "blank", "quantity": "5", "unit_cost": "1.00"})
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(build(api, "bracket", "3", {"blank": "1"}).status))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]
    assert lots(api, "blank") == [(2, D("1.00"))] and lots(api, "bracket") == [(3, D("1.00"))]


def test_a_repeated_receipt_id_is_refused_not_doubled(api: Api, aws: LocalStack) -> None:
    products("bolt")
    line = {"product_id": "bolt", "quantity": "10", "unit_cost": "0.10"}
    receive(api, line, receipt_id="PO-1001")
    again = api.call(
        "POST", "/receipts", json_body={"received_at": DAY, "lines": [line], "receipt_id": "PO-1001"}
    )
    assert again.status == 409, again.body
    assert lots(api, "bolt") == [(10, D("0.10"))]
    assert len(ok(api.call("GET", "/receipts"))["items"]) == 1


def test_receipts_name_known_products_and_consistent_quantities(api: Api, aws: LocalStack) -> None:
    products("bolt")
    unknown = api.call(
        "POST",
        "/receipts",
        json_body={"received_at": DAY, "lines": [{"product_id": "nut", "quantity": "1", "unit_cost": "1"}]},
    )
    assert unknown.status == 400 and "unknown product(s): nut" in unknown.json()["message"]
    assert unknown.json()["details"] == [{"field": "lines.0.product_id", "problem": "unknown product nut"}]
    uses = [{"product_id": "bolt", "quantity_per_unit": "1"}]
    for build, field in (
        ({"product_id": "gear", "components": uses}, "product_id"),  # builds a product it does not know
        ({"product_id": "bolt", "components": [{**uses[0], "product_id": "nut"}]}, "components.0.product_id"),
        ({"product_id": "bolt"}, "components"),  # neither components nor a bill of materials
        ({"product_id": "gear"}, "product_id"),  # unknown, whatever else is missing
    ):
        refused = api.call("POST", "/builds", json_body={"quantity": "1", "built_at": LATER, **build})
        assert refused.status == 400 and refused.json()["details"][0]["field"] == field, refused.body
    too_many = api.call(
        "POST",
        "/receipts",
        json_body={
            "received_at": DAY,
            "lines": [{"product_id": "bolt", "quantity": "1", "rejected": "2", "unit_cost": "1"}],
        },
    )
    assert too_many.status == 400 and "rejected cannot exceed" in too_many.body.decode()
    other_org = api.call("GET", "/products/bolt/lots", organisation="org-b")
    assert other_org.status == 404  # org-b has no such product: nothing of org-a shows


def test_receipts_match_the_supplier_by_provider_id_then_email_then_exact_name(
    api: Api, sandboxes: Sandboxes
) -> None:
    from infra.sandboxes.qbo_demo import VENDORS
    from tests.integration.connect_flow import connect

    connect(api, sandboxes, "qbo")
    ok(api.call("POST", "/integrations/qbo/sync/suppliers"))
    vendors = {v["name"]: v for v in ok(api.call("GET", "/suppliers"))}
    (first_name, first_email), (second_name, _) = VENDORS[0], VENDORS[1]
    products("p1")
    line = {"product_id": "p1", "quantity": "1", "unit_cost": "1.00"}

    def supplier_of(**named: str) -> str:
        receipt = receive(api, line, **{"supplier_id": "", **named})
        return str(receipt["receipt"]["supplier_id"])

    assert supplier_of(supplier_id=vendors[second_name]["supplier_id"]) == vendors[second_name]["supplier_id"]
    assert first_email is not None
    assert supplier_of(supplier_email=first_email.upper()) == vendors[first_name]["supplier_id"]
    assert supplier_of(supplier_name=second_name) == vendors[second_name]["supplier_id"]
    assert supplier_of(supplier_name="Nobody & Sons") == "Nobody & Sons"  # kept as written, unmatched


def test_builds_cost_from_each_products_stored_stock_and_a_back_dated_receipt_re_costs_it(
    api: Api, aws: LocalStack
) -> None:
    """Builds after the history cost from the products' stored stock; a receipt dated before them re-costs
    the lots they made, and a later build of those lots pays the re-costed figures (as the replay does)."""
    products("blank", "bolt", "bracket", "shelf")
    receive(
        api,
        {"product_id": "blank", "quantity": "3", "unit_cost": "1.00"},
        {"product_id": "bolt", "quantity": "10", "line_cost": "1.00"},
    )
    for hour in ("09", "10"):  # each bracket: a blank at 1.00 and 2 bolts at 0.10
        made = ok(
            build(api, "bracket", "1", {"blank": "1", "bolt": "2"}, at=f"2026-11-03T{hour}:00:00-08:00"), 201
        )
        assert D(made["cost"]) == D("1.20")
    # a shelf of one bolt: the shelf has stock stored, so the last build below costs from stored stock only
    ok(build(api, "shelf", "1", {"bolt": "1"}, at="2026-11-03T10:30:00-08:00"), 201)
    receive(
        api, {"product_id": "blank", "quantity": "2", "unit_cost": "4.00"}, at="2026-11-02T08:00:00-08:00"
    )
    assert lots(api, "bracket") == [(1, D("4.20")), (1, D("4.20"))]  # both now took a blank at 4.00
    third = ok(build(api, "bracket", "1", {"blank": "1", "bolt": "2"}, at="2026-11-03T11:00:00-08:00"), 201)
    assert D(third["cost"]) == D("1.20")  # the first blank lot's, the back-dated one is used up
    shelf = ok(build(api, "shelf", "1", {"bracket": "3"}, at="2026-11-03T12:00:00-08:00"), 201)
    assert D(shelf["cost"]) == D("4.20") + D("4.20") + D("1.20")
    assert lots(api, "bracket") == [] and lots(api, "shelf") == [(1, D("0.10")), (1, D("9.60"))]
    assert lots(api, "blank") == [(2, D("1.00"))]
