"""Figures and dates outside their bounds are refused at the door (400 naming the field), never stored to fail
later at export; a build that names itself or a component twice is refused the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.stack import LocalStack
from shared.domain.catalog import Product
from shared.store import catalog as catalog_store
from tests.conftest import Api

DAY = "2026-11-02T09:00:00-08:00"


@pytest.fixture
def stocked(aws: LocalStack) -> None:
    catalog_store.put_products(
        "org-a", [Product(product_id=p, sku=p.upper(), name=f"Part {p}") for p in ("bolt", "bracket")]
    )


def refusal(response: Any) -> list[dict[str, str]]:
    assert response.status == 400, (response.status, response.body)
    answer = response.json()
    assert answer["error"] == "InvalidRequest"
    return answer["details"]  # type: ignore[no-any-return]


def receipt(api: Api, line: dict[str, Any] | None = None, **body: Any) -> Any:
    lines = [{"product_id": "bolt", "quantity": "1", "unit_cost": "0.10", **(line or {})}]
    return api.call("POST", "/receipts", json_body={"received_at": DAY, "lines": lines, **body})


def nothing_recorded(api: Api) -> None:
    assert api.call("GET", "/receipts").json()["items"] == []
    assert api.call("GET", "/builds").json()["items"] == []
    assert api.call("GET", "/exports").json()["items"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "1e999999"),  # once a decimal overflow (500)
        ("quantity", "1e400"),
        ("quantity", 1e300),
        ("quantity", "12345678901234567890123456789012345678"),  # 38 digits
        ("quantity", "1000000000000"),  # 13 digits before the point
        ("quantity", "0.0000001"),  # 7 after it
        ("quantity", "1e-999999"),
        ("rejected", "1e999999"),
        ("unit_cost", "1e999999"),
        ("unit_cost", "0.0000001"),
        ("line_cost", "10.001"),  # a line amount is in cents
        ("line_cost", "1e400"),
        # text is written as the schema's pattern says, though Decimal would read these
        ("quantity", "1e9"),
        ("quantity", " 5 "),
        ("quantity", "\u0661\u0662"),  # Arabic-Indic digits: 12
        ("unit_cost", "5e-1"),
    ],
)
def test_figures_outside_their_bounds_are_refused_naming_the_field(
    api: Api, stocked: None, field: str, value: Any
) -> None:
    line: dict[str, Any] = {field: value}
    if field == "line_cost":
        line["unit_cost"] = None
    details = refusal(receipt(api, line))
    assert [d["field"] for d in details] == [f"lines.0.{field}"], details
    nothing_recorded(api)


def test_a_line_whose_value_passes_the_bound_of_an_amount_is_refused(api: Api, stocked: None) -> None:
    """Each figure within its bounds, their product not: 1e24 would reach the journals."""
    huge = receipt(api, {"quantity": "999999999999.999999", "unit_cost": "999999999999.999999"})
    details = refusal(huge)
    assert [d["field"] for d in details] == ["lines.0"], details
    assert "a line's value has at most 12 digits" in details[0]["problem"]
    nothing_recorded(api)
    assert receipt(api, {"quantity": "1000000", "unit_cost": "999999.999999"}).status == 201  # just below


def test_figures_at_their_bounds_are_recorded(api: Api, stocked: None) -> None:
    largest = receipt(api, {"quantity": "999999999999.999999", "unit_cost": "0.000001"})
    assert largest.status == 201, largest.body
    cents = receipt(api, {"quantity": "3", "unit_cost": None, "line_cost": "999999999999.99"})
    assert cents.status == 201, cents.body


@pytest.mark.parametrize(
    "moment", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00+05:00", "1990-01-01T00:00:00Z", "far"]
)
def test_receipt_dates_outside_the_window_are_refused(api: Api, stocked: None, moment: str) -> None:
    details = refusal(api.call("POST", "/receipts", json_body={"received_at": moment, "lines": []}))
    assert "received_at" in [d["field"] for d in details]
    nothing_recorded(api)


def test_the_date_window_is_ten_years_back_and_one_ahead(api: Api, stocked: None) -> None:
    now = datetime.now(UTC)
    assert receipt(api, received_at=(now - timedelta(days=3600)).isoformat()).status == 201
    assert receipt(api, received_at=(now + timedelta(days=300)).isoformat()).status == 201
    too_late = refusal(receipt(api, received_at=(now + timedelta(days=400)).isoformat()))
    assert too_late[0]["field"] == "received_at" and too_late[0]["problem"].startswith("must be between ")
    refusal(receipt(api, received_at=(now - timedelta(days=3700)).isoformat()))


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"supplier_name": "Acme\x00Ltd"}, "supplier_name"),
        ({"supplier_id": "7\n8"}, "supplier_id"),
        ({"supplier_email": "a@b.example\u2028x"}, "supplier_email"),  # a line separator breaks a line too
        ({"lines": [{"product_id": "bolt", "quantity": "1", "unit_cost": "1", "lot_code": "L-1\r\nX"}]},
         "lines.0.lot_code"),
    ],
)  # fmt: skip
def test_text_copied_into_provider_documents_is_one_line(
    api: Api, stocked: None, extra: dict[str, Any], field: str
) -> None:
    """A NUL or a line break would reach the provider's document (QBO's PrivateNote, a line's description)."""
    details = refusal(receipt(api, **extra))
    assert details == [
        {"field": field, "problem": "must be one line of text, without tabs or other control characters"}
    ]
    nothing_recorded(api)


def build_body(**body: Any) -> dict[str, Any]:
    return {"product_id": "bracket", "quantity": "1", "built_at": DAY, **body}


def test_a_build_of_itself_is_refused_naming_components(api: Api, stocked: None) -> None:
    itself = [{"product_id": "bracket", "quantity_per_unit": "1"}]
    details = refusal(api.call("POST", "/builds", json_body=build_body(components=itself)))
    assert details == [
        {"field": "components", "problem": "component 0 is the product being built (bracket) itself"}
    ]
    nothing_recorded(api)


def test_a_build_that_repeats_a_component_is_refused_naming_components(api: Api, stocked: None) -> None:
    twice = [
        {"product_id": "bolt", "quantity_per_unit": "1"},
        {"product_id": "bolt", "quantity_per_unit": "2"},
    ]
    details = refusal(api.call("POST", "/builds", json_body=build_body(components=twice)))
    assert (
        details[0]["field"] == "components"
        and "component 1 repeats bolt (component 0)" in details[0]["problem"]
    )
    nothing_recorded(api)


@pytest.mark.parametrize(("field", "value"), [("quantity", "1e999999"), ("built_at", "9999-12-31T00:00:00Z")])
def test_build_figures_and_dates_are_bounded_too(api: Api, stocked: None, field: str, value: str) -> None:
    details = refusal(api.call("POST", "/builds", json_body=build_body(**{field: value})))
    assert [d["field"] for d in details] == [field]


@pytest.mark.parametrize("start", ["9999-12-31", "1900-01-01"])
def test_a_sales_tracking_start_outside_the_window_is_refused(api: Api, aws: LocalStack, start: str) -> None:
    response = api.call(
        "PUT", "/integrations/qbo/sales-tracking", json_body={"enabled": True, "start_date": start}
    )
    details = refusal(response)
    assert [d["field"] for d in details] == ["start_date"]
    assert api.call("GET", "/sales/status").json() == []


@pytest.mark.parametrize("value", ["true", "yes", 1, 0, "false", None])
@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("PUT", "/integrations/qbo/sales-tracking", "enabled"),
        ("POST", "/integrations/qbo/connect", "switch_company"),
    ],
)
def test_a_switch_is_json_true_or_false_only(
    api: Api, aws: LocalStack, method: str, path: str, field: str, value: Any
) -> None:
    """A string or number where a switch goes is refused naming it, not read as whatever it looks like."""
    details = refusal(api.call(method, path, json_body={field: value}))
    assert [d["field"] for d in details] == [field]
    assert api.call("GET", "/sales/status").json() == []


@pytest.mark.parametrize("as_of", ["0001-01-01", "2099-12-31"])
def test_a_books_check_date_outside_the_window_is_refused_before_the_provider_is_asked(
    api: Api, aws: LocalStack, as_of: str
) -> None:
    refused = api.call("GET", f"/reconciliation?as_of={as_of}")
    assert refused.status == 400, refused.body
    assert [d["field"] for d in refused.json()["details"]] == ["query.as_of"]


def test_the_openapi_document_states_the_bounds(api: Api) -> None:
    document = api.call("GET", "/docs?format=json").json()
    line = document["components"]["schemas"]["ReceiptLineRequest"]["properties"]
    number, text = line["quantity"]["anyOf"]
    assert number["exclusiveMinimum"] == 0 and number["maximum"] <= 10**12
    assert text["pattern"] == r"^\d{1,12}(\.\d{0,6})?$"
    assert r"\d{0,2}" in line["line_cost"]["anyOf"][0]["anyOf"][1]["pattern"]
    assert (
        "10 years"
        in document["components"]["schemas"]["ReceiptRequest"]["properties"]["received_at"]["description"]
    )


def test_an_unknown_product_is_404_and_margins_refuse_a_backwards_period(api: Api, stocked: None) -> None:
    missing = api.call("GET", "/products/NOPE/lots")
    assert missing.status == 404 and missing.json()["message"] == "no product NOPE"
    backwards = api.call("GET", "/margins?from=2026-10-01&to=2026-09-01")
    assert backwards.status == 400, backwards.body
    assert "from (2026-10-01) is after to (2026-09-01)" in backwards.json()["message"]
    # named as the API names any refused query parameter, so a client maps both to the same input
    not_a_date = api.call("GET", "/margins?from=2026-13-01")
    assert [d["field"] for d in not_a_date.json()["details"]] == ["query.from"], not_a_date.body
    assert [d["field"] for d in backwards.json()["details"]] == ["query.from"]
    exported = api.call("GET", "/margins/export?from=2026-10-01&to=2026-09-01")
    assert exported.status == 400 and [d["field"] for d in exported.json()["details"]] == ["query.from"]


def test_a_wrong_method_is_405_naming_the_allowed_ones(api: Api, stocked: None) -> None:
    wrong = api.call("DELETE", "/receipts")
    assert wrong.status == 405, wrong.body
    assert wrong.headers["allow"] == "GET, POST" and wrong.json()["error"] == "MethodNotAllowed"
    assert api.call("GET", "/no/such/path").status == 404


def test_the_openapi_document_declares_each_answer_with_the_error_shape(api: Api, aws: LocalStack) -> None:
    document = api.call("GET", "/docs?format=json", organisation=None).json()
    receipts = document["paths"]["/receipts"]["post"]["responses"]
    assert {"201", "400", "401", "409", "415", "422", "503"} <= set(receipts) and "200" not in receipts
    assert "404" in document["paths"]["/products/{product_id}/lots"]["get"]["responses"]
    refusal = receipts["409"]["content"]["application/json"]["schema"]
    assert refusal["required"] == ["error", "message"] and "details" in refusal["properties"]
