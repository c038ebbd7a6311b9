"""A zero written with a minus sign (the JSON number -0.0, a file's cost "-0") equals 0, so it passes "at
least 0": it is recorded as 0, never as a negative figure kept in the record and shown in every answer."""

from __future__ import annotations

import base64
import json
from decimal import Decimal as D

from infra.local.stack import LocalStack
from shared.domain.catalog import Product
from shared.store import catalog as catalog_store
from tests.conftest import Api

DAY = "2026-12-01T09:00:00-05:00"


def test_a_negative_zero_in_a_receipt_is_recorded_and_costed_as_zero(api: Api, aws: LocalStack) -> None:
    catalog_store.put_products(
        "org-a", [Product(product_id=p, sku=p.upper(), name=f"Part {p}") for p in ("bolt", "nut", "bracket")]
    )
    lines = [
        {"product_id": "bolt", "quantity": 10, "rejected": -0.0, "unit_cost": -0.0},
        {"product_id": "nut", "quantity": 10, "line_cost": -0.0},
    ]
    body = json.dumps({"received_at": DAY, "lines": lines}).encode()
    assert b"-0.0" in body
    sent = api.call("POST", "/receipts", body=body, headers={"content-type": "application/json"})
    assert sent.status == 201, sent.body
    build = api.call(
        "POST",
        "/builds",
        json_body={
            "product_id": "bracket",
            "quantity": "1",
            "built_at": DAY,
            "components": [
                {"product_id": "bolt", "quantity_per_unit": "1"},
                {"product_id": "nut", "quantity_per_unit": "1"},
            ],
        },
    )
    assert build.status == 201, build.body
    receipt_id = sent.json()["receipt"]["receipt_id"]
    answers = {
        "the receipt's answer": sent.body,
        "the receipt read again": api.call("GET", f"/receipts/{receipt_id}").body,
        "the build's answer": build.body,
        "the bolts' lots": api.call("GET", "/products/bolt/lots").body,
    }
    for what, answer in answers.items():
        assert b'"-0' not in answer, (what, answer)
    recorded = api.call("GET", f"/receipts/{receipt_id}").json()["receipt"]["lines"]
    assert [(D(line["accepted"]), D(line["rejected"])) for line in recorded] == [(10, 0), (10, 0)]


def test_a_cost_of_minus_zero_in_a_product_file_is_imported_as_zero(api: Api, aws: LocalStack) -> None:
    content = b"SKU,Name,Unit cost\nA-1,Alpha,-0\nA-2,Beta,-0.00\nA-3,Gamma,$-0.0\n"
    upload = {"filename": "products.csv", "content_base64": base64.b64encode(content).decode()}
    applied = api.call("POST", "/products/import?mode=apply", json_body=upload)
    assert applied.status == 200, applied.body
    assert applied.json()["created"] == 3, applied.body
    products = api.call("GET", "/products").json()["items"]
    assert {p["sku"]: p["unit_cost"] for p in products} == {"A-1": "0", "A-2": "0.00", "A-3": "0.0"}
