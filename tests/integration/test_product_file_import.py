"""Importing products from CSV and XLSX files through the API: dry run, exact row errors, idempotent apply."""

from __future__ import annotations

import base64
import io

import openpyxl

from tests.conftest import Api

CSV = (
    "\ufeffSKU;Name;Type;Unit cost;Unit\n"
    "BR-20;Bracket 20 mm;component;1,25;each\n"
    "BR-20;Bracket again;component;1,30;each\n"
    "PL-1;Plate;raw material;abc;kg\n"
    "\n"
    "FG-7;Finished widget;finished good;12,50;each\n"
)


def _upload(api: Api, content: bytes, mode: str, filename: str = "products.csv") -> dict:  # type: ignore[type-arg]
    response = api.call(
        "POST",
        f"/products/import?mode={mode}",
        json_body={"filename": filename, "content_base64": base64.b64encode(content).decode()},
    )
    assert response.status == 200, response.body
    return response.json()  # type: ignore[no-any-return]


def test_dry_run_reports_every_row_and_writes_nothing(api: Api) -> None:
    result = _upload(api, CSV.encode(), "dry_run")
    rows = {r["row"]: r for r in result["report"]["rows"]}
    assert rows[2]["status"] == "valid" and rows[2]["product"]["unit_cost"] == "1.25"
    assert rows[3]["status"] == "error"
    assert rows[3]["errors"][0]["column"] == "SKU" and "row 2" in rows[3]["errors"][0]["problem"]
    assert rows[4]["errors"] == [{"column": "Unit cost", "problem": rows[4]["errors"][0]["problem"]}]
    assert "number" in rows[4]["errors"][0]["problem"]
    assert (result["report"]["valid_count"], result["report"]["error_count"]) == (2, 2)
    assert api.call("GET", "/products").json() == []


def test_apply_writes_valid_rows_and_a_second_apply_changes_nothing(api: Api) -> None:
    first = _upload(api, CSV.encode(), "apply")
    assert (first["created"], first["updated"], first["unchanged"]) == (2, 0, 0)
    products = {p["sku"]: p for p in api.call("GET", "/products").json()}
    assert set(products) == {"BR-20", "FG-7"}
    assert products["FG-7"]["unit_cost"] == "12.50" and products["FG-7"]["type"] == "finished_good"
    again = _upload(api, CSV.encode(), "apply")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert api.call("GET", "/products", organisation="org-b").json() == []  # another organisation sees none


def test_xlsx_upload_as_multipart_with_numbers_and_a_bad_row(api: Api) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["sku", "product name", "unit cost"])
    sheet.append(["A-1", "Axle", 0.1])
    sheet.append(["A-2", "Axle long", -3])
    buffer = io.BytesIO()
    workbook.save(buffer)
    boundary = "partsemble-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.xlsx"\r\n'
        "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
    ).encode()
    body += buffer.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    response = api.call(
        "POST",
        "/products/import?mode=apply",
        body=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 200, response.body
    result = response.json()
    assert result["created"] == 1
    bad = next(r for r in result["report"]["rows"] if r["row"] == 3)
    assert bad["errors"][0]["column"] == "unit cost" and "negative" in bad["errors"][0]["problem"]
    assert [p["unit_cost"] for p in api.call("GET", "/products").json()] == ["0.1"]


def test_upload_without_a_file_is_a_clear_400(api: Api) -> None:
    response = api.call("POST", "/products/import?mode=dry_run", json_body={"filename": "x.csv"})
    assert response.status == 400
    assert "content_base64" in response.json()["message"]
    refused = api.call(
        "POST", "/products/import?mode=dry_run", body=b"a,b", headers={"content-type": "text/csv"}
    )
    assert refused.status == 415
