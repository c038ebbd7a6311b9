"""Importing products from CSV and XLSX files through the API: dry run, exact row errors, idempotent apply,
and nothing written when the file turns out to be unusable part way."""

from __future__ import annotations

import base64
import io
import zipfile
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from infra.local.stack import LocalStack
from shared.aws import table
from shared.domain import product_import
from shared.domain.catalog import Component, Product
from shared.domain.product_changes import catalog_entry
from shared.domain.product_summary import CHUNK_ROWS
from shared.store import catalog as store
from shared.store import dynamo
from shared.store.keys import org_pk, product_sk
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


def _counts(result: dict) -> tuple[int, ...]:  # type: ignore[type-arg]
    keys = ("rows_read", "valid_count", "error_count", "skipped_count", "created", "updated", "unchanged")
    return tuple(result[key] for key in keys)


def test_dry_run_reports_every_row_and_writes_nothing(api: Api, written: list[str]) -> None:
    result = _upload(api, CSV.encode(), "dry_run")
    assert result["mode"] == "dry_run" and result["file_errors"] == []
    assert _counts(result) == (5, 2, 2, 1, 2, 0, 0)
    assert result["row_ranges"] == {
        "created": [[2, 2], [6, 6]],
        "updated": [],
        "unchanged": [],
        "error": [[3, 4]],
        "skipped": [[5, 5]],
    }
    details = {d["row"]: d for d in result["details"]}
    assert set(details) == {3, 4}
    assert details[3]["outcome"] == "error" and details[3]["sku"] == "BR-20"
    assert details[3]["errors"] == [{"column": "SKU", "problem": "duplicate SKU: row 2 has the same SKU"}]
    assert details[4]["errors"] == [{"column": "Unit cost", "problem": "not a number: 'abc'"}]
    assert result["details_left_out"] == 0
    assert api.call("GET", "/products").json()["items"] == []
    assert written == []


def test_apply_writes_valid_rows_and_a_second_apply_changes_nothing(api: Api, written: list[str]) -> None:
    first = _upload(api, CSV.encode(), "apply")
    assert (first["created"], first["updated"], first["unchanged"]) == (2, 0, 0)
    assert first["row_ranges"]["created"] == [[2, 2], [6, 6]] and first["error_count"] == 2
    products = {p["sku"]: p for p in api.call("GET", "/products").json()["items"]}
    assert set(products) == {"BR-20", "FG-7"}
    assert products["BR-20"]["unit_cost"] == "1.25"  # a decimal comma, with ';' as the separator
    assert products["FG-7"]["unit_cost"] == "12.50" and products["FG-7"]["type"] == "finished_good"
    assert sorted(written) == ["BR-20", "FG-7"]
    written.clear()

    again = _upload(api, CSV.encode(), "apply")

    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert again["row_ranges"]["unchanged"] == [[2, 2], [6, 6]]
    assert written == []  # the second apply writes nothing at all
    assert api.call("GET", "/products").json()["items"] == list(products.values())
    assert (
        api.call("GET", "/products", organisation="org-b").json()["items"] == []
    )  # another organisation sees none


def test_a_dry_run_counts_what_the_apply_then_does(api: Api, written: list[str]) -> None:
    _upload(api, b"SKU,Name,Unit cost,Unit\nA-1,Axle,1.50,pcs\nA-2,Bolt,0.10,pcs\n", "apply")
    store.put_products(  # a product linked to a provider item keeps its link and components when updated
        "org-a",
        [Product(product_id="kept", sku="K-9", name="Kit", unit="box", provider_links={"qbo": "77"})],
    )
    written.clear()
    content = b"SKU,Name,Unit cost,Unit\na-1 ,Axle,1.5,\nA-2,Bolt,0.12,\nK-9,Kit of 2,,\nN-1,New,3,kg\n"

    dry = _upload(api, content, "dry_run")
    applied = _upload(api, content, "apply")

    assert _counts(dry) == _counts(applied) == (4, 4, 0, 0, 1, 3, 0)
    assert dry["row_ranges"] == applied["row_ranges"]
    assert dry["row_ranges"]["updated"] == [[2, 4]]  # 'a-1 ' rewrites the SKU's spelling
    assert sorted(written) == ["A-2", "K-9", "N-1", "a-1"]
    products = {p["sku"]: p for p in api.call("GET", "/products").json()["items"]}
    assert (products["a-1"]["unit_cost"], products["a-1"]["unit"]) == ("1.5", "pcs")
    assert products["A-2"]["unit_cost"] == "0.12"
    assert products["K-9"]["name"] == "Kit of 2" and products["K-9"]["product_id"] == "kept"
    assert products["K-9"]["provider_links"] == {"qbo": "77"} and products["K-9"]["unit"] == "box"
    assert Decimal(products["N-1"]["unit_cost"]) == 3 and products["N-1"]["unit"] == "kg"


def test_reorder_points_sale_prices_and_barcodes_are_stored_and_a_blank_keeps_them(
    api: Api, written: list[str]
) -> None:
    header = b"SKU,Name,Unit cost,Reorder point,Sale price,Barcode\n"
    _upload(api, header + b"A-1,Axle,1.50,10,12.5,0123456789012\nA-2,Bolt,0.10,,,\n", "apply")
    store.put_products(
        "org-a", [Product(product_id="kept", sku="K-9", name="Kit", provider_links={"qbo": "77"})]
    )
    old = {"pk": org_pk("org-a"), "sk": product_sk("kept")}  # stored before products held these fields
    table().update_item(Key=old, UpdateExpression="REMOVE reorder_point, sale_price, barcode")
    assert "barcode" not in table().get_item(Key=old)["Item"]
    products = {p["sku"]: p for p in api.call("GET", "/products").json()["items"]}
    assert (products["A-1"]["reorder_point"], products["A-1"]["sale_price"]) == ("10", "12.5")
    assert products["A-1"]["barcode"] == "0123456789012"
    assert (products["A-2"]["reorder_point"], products["A-2"]["sale_price"], products["A-2"]["barcode"]) == (
        None,
        None,
        "",
    )
    written.clear()
    # a sale price alone changes A-1; a blank cell keeps the product's value, as it does a unit cost's
    content = header + b"A-1,Axle,,,13.00,\nA-2,Bolt,,,,\nK-9,Kit,,5,,4006381333931\n"

    dry = _upload(api, content, "dry_run")
    applied = _upload(api, content, "apply")

    assert _counts(dry) == _counts(applied) == (3, 3, 0, 0, 0, 2, 1)
    assert dry["row_ranges"] == applied["row_ranges"]
    assert applied["row_ranges"]["unchanged"] == [[3, 3]]  # every cell blank but SKU and name: kept
    assert sorted(written) == ["A-1", "K-9"]
    products = {p["sku"]: p for p in api.call("GET", "/products").json()["items"]}
    assert products["A-1"]["sale_price"] == "13.00"
    assert (products["A-1"]["reorder_point"], products["A-1"]["barcode"]) == ("10", "0123456789012")
    assert products["A-1"]["unit_cost"] == "1.50"
    assert (products["K-9"]["reorder_point"], products["K-9"]["barcode"]) == ("5", "4006381333931")
    assert products["K-9"]["provider_links"] == {"qbo": "77"}
    written.clear()

    same = header + b"A-1,Axle,1.5,10.0,13,0123456789012\nK-9,Kit,,5.00,,4006381333931\n"
    assert _counts(_upload(api, same, "dry_run")) == (2, 2, 0, 0, 0, 0, 2)  # equal amounts, as unit cost
    assert _counts(_upload(api, same, "apply")) == (2, 2, 0, 0, 0, 0, 2)
    assert written == []
    other = header + b"A-1,Axle,,,,0123456789013\n"
    dry, applied = _upload(api, other, "dry_run"), _upload(api, other, "apply")
    assert _counts(dry)[4:] == _counts(applied)[4:] == (0, 1, 0)  # a barcode alone changes it
    assert store.get_products("org-a", [products["A-1"]["product_id"]])[0].barcode == "0123456789013"


def test_a_file_over_the_row_limit_writes_nothing_though_its_first_chunks_were_valid(
    api: Api, written: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(product_import, "MAX_ROWS", 3 * CHUNK_ROWS)
    content = b"SKU,Name\n" + b"".join(f"A-{n},Part\n".encode() for n in range(3 * CHUNK_ROWS + 1))

    response = api.call(
        "POST",
        "/products/import?mode=apply",
        json_body={"filename": "products.csv", "content_base64": base64.b64encode(content).decode()},
    )

    assert response.status == 400
    assert response.json()["details"] == [
        {
            "field": "file",
            "problem": f"The file has more than {3 * CHUNK_ROWS} rows after the header (empty rows count "
            "too). Delete empty rows, or split it into smaller files.",
        }
    ]
    assert written == []
    assert api.call("GET", "/products").json()["items"] == []


def test_a_workbook_damaged_part_way_writes_nothing(api: Api, written: list[str]) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["SKU", "Name"])
    for number in range(2, 3 * CHUNK_ROWS):
        sheet.append([f"A-{number}", "Part"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    damaged = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":  # broken XML two chunks into the rows
                cell = f'<c r="A{2 * CHUNK_ROWS + 50}"'.encode()
                assert cell in data
                data = data.replace(cell, b"<c <")
            target.writestr(member, data)

    result = _upload(api, damaged.getvalue(), "apply", filename="products.xlsx")

    assert result["file_errors"] == ["The workbook is damaged. Open it in Excel and save it again."]
    assert written == []
    assert api.call("GET", "/products").json()["items"] == []


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
    assert result["details"] == [
        {
            "row": 3,
            "outcome": "error",
            "sku": "A-2",
            "name": "Axle long",
            "errors": [{"column": "unit cost", "problem": "negative (-3); it must be 0 or more"}],
            "warnings": [],
        }
    ]
    assert [p["unit_cost"] for p in api.call("GET", "/products").json()["items"]] == ["0.1"]


def test_a_wide_header_names_the_first_ignored_columns_and_counts_the_rest(
    api: Api, written: list[str]
) -> None:
    extras = [f"Extra {n}" for n in range(300)]
    content = (",".join(["SKU", "Name", *extras]) + "\nA-1,Widget\n").encode()

    result = _upload(api, content, "apply")

    assert result["ignored_columns"] == extras[:50] and result["ignored_columns_left_out"] == 250
    assert result["created"] == 1 and written == ["A-1"]


def test_upload_without_a_file_is_a_clear_400(api: Api) -> None:
    response = api.call("POST", "/products/import?mode=dry_run", json_body={"filename": "x.csv"})
    assert response.status == 400
    assert "content_base64" in response.json()["message"]
    refused = api.call(
        "POST", "/products/import?mode=dry_run", body=b"a,b", headers={"content-type": "text/csv"}
    )
    assert refused.status == 415


def test_an_upload_of_too_many_parts_or_bytes_is_refused_before_it_is_parsed(
    api: Api, written: list[str]
) -> None:
    """The MIME parser's time grows with parts and headers: a body of 170,000 empty parts took 19 s of CPU."""
    many = b"".join(
        b'--zz\r\nContent-Disposition: form-data; name="x%d"\r\n\r\ny\r\n' % n for n in range(50_000)
    )
    file = b'--zz\r\nContent-Disposition: form-data; name="file"\r\n\r\nSKU,Name\r\nA-1,Axle\r\n--zz--\r\n'
    many += file
    multipart = {"content-type": "multipart/form-data; boundary=zz"}
    refused = api.call("POST", "/products/import?mode=apply", body=many, headers=multipart)
    assert refused.status == 400 and "more than 16 parts" in refused.json()["message"], refused.body
    huge = (
        b'--zz\r\nContent-Disposition: form-data; name="file"\r\n\r\n'
        + b"A,b\r\n" * 2_000_000
        + b"--zz--\r\n"
    )
    refused = api.call("POST", "/products/import?mode=apply", body=huge, headers=multipart)
    assert refused.status == 400 and "at most 5 MiB" in refused.json()["message"], refused.body
    nested = b"--zz\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n" + b"--X\r\n\r\n\r\n" * 50_000 + file
    refused = api.call("POST", "/products/import?mode=apply", body=nested, headers=multipart)
    assert refused.status == 400 and "more than 16 parts" in refused.json()["message"], refused.body
    assert written == []
    few = b'--zz\r\nContent-Disposition: form-data; name="note"\r\n\r\nmine\r\n' + file
    assert api.call("POST", "/products/import?mode=apply", body=few, headers=multipart).status == 200


def test_the_catalog_is_indexed_from_pages_of_250_products_holding_only_what_the_import_compares(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    products = [
        Product(
            product_id=f"{number:08x}-0000-4000-8000-000000000000" if number % 3 else f"p-{number}",
            sku=f"A-{number}",
            name=f"Part {number}",
            type="kit" if number % 7 == 0 else "raw_material",
            unit_cost=Decimal(number) / 8 if number % 5 else None,
            unit="pcs" if number % 2 else "each",
            provider_links={"qbo": str(number)},
            components=(Component(ref="p-1", quantity=Decimal(2)),),
        )
        for number in range(2 * store.CATALOG_PAGE + 101)
    ]
    store.put_products("org-a", products)
    store.put_products("org-b", products[:3])
    pages: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []  # each Query's arguments and items
    real = dynamo.table()

    class Recording:
        def query(self, **kwargs: Any) -> dict[str, Any]:
            page: dict[str, Any] = real.query(**kwargs)
            pages.append((kwargs, page["Items"]))
            return page

    monkeypatch.setattr(dynamo, "table", Recording)

    entries = store.iter_catalog_entries("org-a")
    assert pages == []  # nothing is read until the caller asks
    read = list(entries)

    assert sorted(read) == sorted(catalog_entry(p) for p in products)
    assert [len(items) for _, items in pages] == [250, 250, 101]
    assert all(query["Limit"] == store.CATALOG_PAGE for query, _ in pages)
    assert {key for _, items in pages for item in items for key in item} == {
        "product_id",
        "sku",
        "name",
        "type",
        "unit",
        "unit_cost",
        "reorder_point",
        "sale_price",
        "barcode",
    }
