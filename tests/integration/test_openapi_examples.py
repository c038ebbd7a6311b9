"""The OpenAPI document's example request bodies (what Swagger UI shows beside each main write): each is
there, each validates against the schema the document gives its body, and each is accepted when sent."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from functions.api import app as api_app
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect

DOCUMENT = json.loads(api_app.with_docs().get_openapi_json_schema())
MAIN_WRITES = [
    ("post", "/integrations/{provider}/connect"),
    ("put", "/integrations/{provider}/export-settings"),
    ("put", "/integrations/{provider}/sales-tracking"),
    ("post", "/integrations/{provider}/suppliers"),
    ("post", "/products/import-from-provider"),
    ("post", "/products/import"),
    ("post", "/receipts"),
    ("post", "/builds"),
]


def example_of(method: str, path: str) -> tuple[dict[str, Any], Any]:
    """The JSON body's (schema, example value) of an operation in the served document."""
    media = DOCUMENT["paths"][path][method]["requestBody"]["content"]["application/json"]
    (example,) = media["examples"].values()
    assert example["summary"], (method, path)
    return media["schema"], example["value"]


@pytest.mark.parametrize(("method", "path"), MAIN_WRITES)
def test_each_main_write_has_an_example_that_its_schema_accepts(method: str, path: str) -> None:
    schema, example = example_of(method, path)
    # the schema's $refs point into the document's components
    validator = Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    assert [e.message for e in validator.iter_errors(example)] == []


def test_an_example_that_breaks_its_schema_is_caught() -> None:
    """The check above can fail: a receipt line without a quantity does not validate."""
    schema, example = example_of("post", "/receipts")
    broken = {**example, "lines": [{"product_id": "p", "unit_cost": "1"}]}
    validator = Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    assert any("'quantity' is a required property" in e.message for e in validator.iter_errors(broken))


def test_the_served_document_carries_the_examples(api: Api) -> None:
    served = api.call("GET", "/docs?format=json", organisation=None).json()
    for method, path in MAIN_WRITES:
        assert served["paths"][path][method]["requestBody"] == DOCUMENT["paths"][path][method]["requestBody"]


def test_every_example_is_accepted_when_sent_in_order(api: Api, sandboxes: Sandboxes) -> None:
    """From an empty organisation: connect, export settings, tracking, a supplier, products, a receipt and
    a build, each body exactly the example's (the product ids in the receipt and build made this
    organisation's)."""

    def send(method: str, path: str, body: Any, query: str = "") -> Any:
        target = path.replace("{provider}", "qbo") + query
        response = api.call(method.upper(), target, json_body=body)
        assert response.status in (200, 201), (method, target, response.status, response.body)
        return response.json()

    connect_path = "/integrations/{provider}/connect"
    send("post", connect_path, example_of("post", connect_path)[1])
    connect(api, sandboxes, "qbo")
    send("post", "/integrations/{provider}/sync/accounts", None)
    send("post", "/integrations/{provider}/sync/items", None)
    for method, path in MAIN_WRITES[1:5]:
        send(method, path, example_of(method, path)[1])
    _, upload = example_of("post", "/products/import")
    dry_run = send("post", "/products/import", upload)  # a dry run by default
    assert (dry_run["mode"], dry_run["valid_count"], dry_run["created"]) == ("dry_run", 1, 1)

    # the receipt's and the build's products: the example's ids stand for these
    catalog = "SKU,Name,Unit cost\nSH-1,Shelf,0\nBR-1,Bracket,1.90\nSC-1,Screw,0.07\n"
    file = {"filename": "products.csv", "content_base64": base64.b64encode(catalog.encode()).decode()}
    send("post", "/products/import", file, "?mode=apply")
    ids = {p["sku"]: p["product_id"] for p in send("get", "/products", None)["items"]}
    ours = {api_app.SHELF: ids["SH-1"], api_app.BRACKET: ids["BR-1"], api_app.SCREW: ids["SC-1"]}

    def with_our_ids(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: with_our_ids(v) for k, v in value.items()}
        if isinstance(value, list):
            return [with_our_ids(v) for v in value]
        return ours.get(value, value)

    receipt = send("post", "/receipts", with_our_ids(example_of("post", "/receipts")[1]))
    assert receipt["receipt"]["receipt_id"] == "RCV-1001"
    build = send("post", "/builds", with_our_ids(example_of("post", "/builds")[1]))
    assert build["build"]["build_id"] == "B-1002"
