"""Product import: CSV and XLSX files become valid product rows and a per-row report a user can act on."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest

from shared.domain import product_import
from shared.domain.product_import import MAX_FILE_BYTES, UNSAVED_FORMULA, parse_product_file
from shared.domain.product_rows import ImportReport, ProductType, RowProblem, RowResult, RowStatus


def xlsx(rows: list[list[object]], *, title: str = "Sheet", before: str | None = None) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    if before is not None:  # another sheet in front of the one holding the rows
        workbook.create_sheet(before, 0).append(["Nothing", "here"])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def patched(content: bytes, old: str, new: str) -> bytes:
    """Edit the first sheet's XML, to write what Excel saves but openpyxl does not."""
    source = zipfile.ZipFile(io.BytesIO(content))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                assert old.encode() in data
                data = data.replace(old.encode(), new.encode())
            target.writestr(member, data)
    return buffer.getvalue()


def only_row(report: ImportReport) -> RowResult:
    assert report.file_errors == []
    assert len(report.rows) == 1, report.rows
    return report.rows[0]


def errors_of(report: ImportReport) -> list[RowProblem]:
    return only_row(report).errors


# CSV reading


def test_csv_with_bom_and_crlf_reads_the_first_header_as_written() -> None:
    report = parse_product_file("\ufeffSKU,Name\r\nA-1,Widget\r\n,Nameless\r\n".encode())

    assert [row.row for row in report.rows] == [2, 3]
    assert report.products[0].model_dump(include={"sku", "name"}) == {"sku": "A-1", "name": "Widget"}
    assert report.rows[1].errors == [RowProblem(column="SKU", problem="missing SKU")]


def test_semicolon_csv_takes_a_decimal_comma() -> None:
    content = b"SKU;Name;Unit cost;Sale price;Reorder point\nA-1;Widget;12,5;1.234,50;7.5\n"

    product = only_row(parse_product_file(content)).product

    assert product is not None
    assert (product.unit_cost, product.sale_price, product.reorder_point) == (
        Decimal("12.5"),
        Decimal("1234.50"),
        Decimal("7.5"),
    )


def test_comma_csv_takes_thousands_commas_but_not_a_decimal_comma() -> None:
    content = b'SKU,Name,Unit cost,Sale price\nA-1,Widget,"1,234.50","12,5"\n'

    row = only_row(parse_product_file(content))

    assert row.status is RowStatus.ERROR
    assert row.errors == [RowProblem(column="Sale price", problem="not a number: '12,5'")]


def test_quoted_fields_keep_their_separators_and_line_breaks_without_shifting_row_numbers() -> None:
    content = b'SKU,Name\nA-1,"Widget, large"\nA-2,"Two\nlines"\nA-3,Plain\n'

    report = parse_product_file(content)

    assert [row.row for row in report.rows] == [2, 3, 4]
    assert [row.product.name for row in report.rows if row.product] == [
        "Widget, large",
        "Two\nlines",
        "Plain",
    ]


def test_blank_rows_between_products_are_skipped_and_trailing_ones_vanish() -> None:
    content = b"SKU,Name\nA-1,One\n\n , \nA-2,Two\n,\n\n"

    report = parse_product_file(content)

    assert [(row.row, row.status) for row in report.rows] == [
        (2, RowStatus.VALID),
        (3, RowStatus.SKIPPED),
        (4, RowStatus.SKIPPED),
        (5, RowStatus.VALID),
    ]
    assert (report.valid_count, report.error_count) == (2, 0)


def test_non_utf8_csv_is_refused_naming_the_line() -> None:
    content = "SKU,Name\nA-1,Widget\nA-2,Crème brûlée\n".encode("cp1252")

    report = parse_product_file(content)

    assert report.rows == []
    assert len(report.file_errors) == 1
    assert "not UTF-8" in report.file_errors[0]
    assert "line 3" in report.file_errors[0]


# Headers


def test_headers_match_aliases_whatever_their_case_spacing_or_notes() -> None:
    content = (
        b" item CODE ,PRODUCT NAME,UnitCost,Cost Price,uom,Reorder Level,Sales Price ($),barcode,"
        b"Notes,notes\n"
        b"A-1,Widget,2.50,3,pcs,10,4.99,0123456789012,x,y\n"
    )

    report = parse_product_file(content)

    assert report.ignored_columns == ["Cost Price", "Notes", "notes"]
    product = only_row(report).product
    assert product is not None
    assert product.model_dump(exclude={"key", "type"}) == {
        "sku": "A-1",
        "name": "Widget",
        "unit_cost": Decimal("2.50"),
        "unit": "pcs",
        "reorder_point": Decimal("10"),
        "sale_price": Decimal("4.99"),
        "barcode": "0123456789012",
    }


@pytest.mark.parametrize(
    ("header", "missing"),
    [(b"Code,Description\n", "No Name column"), (b"Product,Name\n", "No SKU column")],
)
def test_a_missing_required_column_refuses_the_whole_file(header: bytes, missing: str) -> None:
    report = parse_product_file(header + b"A-1,Widget\n")

    assert report.rows == []
    assert len(report.file_errors) == 1
    assert report.file_errors[0].startswith(missing)
    assert "Row 1 has: " in report.file_errors[0]


def test_two_columns_for_the_same_field_refuse_the_file() -> None:
    report = parse_product_file(b"SKU,Code,Name\nA,B,Widget\n")

    assert report.rows == []
    assert report.file_errors == ["Columns 'SKU' and 'Code' both give the SKU; keep one."]


# Row validation


def test_duplicate_sku_points_at_the_first_row_and_the_first_stays_valid() -> None:
    content = b"SKU,Name\nab-1,First\nA-2,Other\n AB-1 ,Second\nAb-1,Third\n"

    report = parse_product_file(content)

    assert [row.status for row in report.rows] == [
        RowStatus.VALID,
        RowStatus.VALID,
        RowStatus.ERROR,
        RowStatus.ERROR,
    ]
    assert report.rows[2].errors == [
        RowProblem(column="SKU", problem="duplicate SKU: row 2 has the same SKU")
    ]
    assert report.rows[3].errors == report.rows[2].errors


def test_valid_rows_carry_a_stable_key_for_an_idempotent_apply() -> None:
    first = parse_product_file(b"SKU,Name\n Ab-1 ,Widget\n").products
    again = parse_product_file(b"SKU,Name\nAB-1,Widget\n").products

    assert [product.key for product in first] == [product.key for product in again] == ["ab-1"]
    assert first[0].sku == "Ab-1"


@pytest.mark.parametrize(
    ("cost", "problem"),
    [
        ("abc", "not a number: 'abc'"),
        ("-1.50", "negative (-1.50); it must be 0 or more"),
        ("1.23456", "1.23456 has 5 decimal places; at most 4 are allowed (round it in the file)"),
        ("2000000000", "2000000000 is too large; it must be below 1,000,000,000"),
        ("#DIV/0!", "the cell shows the Excel error #DIV/0!"),
    ],
)
def test_a_bad_cost_makes_the_row_an_error_naming_the_column_as_written(cost: str, problem: str) -> None:
    row = only_row(parse_product_file(f"SKU,Name,Purchase Cost\nA-1,Widget,{cost}\n".encode()))

    assert row.status is RowStatus.ERROR
    assert row.product is None
    assert row.errors == [RowProblem(column="Purchase Cost", problem=problem)]


def test_money_with_trailing_zeros_past_four_places_is_kept() -> None:
    product = only_row(parse_product_file(b"SKU,Name,Cost\nA-1,Widget,$12.500000\n")).product

    assert product is not None
    assert product.unit_cost == Decimal("12.5000")


def test_types_accept_case_and_spacing_variants_and_refuse_others_listing_the_allowed_ones() -> None:
    types = ["Finished Good", "SUB ASSEMBLY", "raw-material", "non inventory", "Widget"]
    content = (
        "SKU,Name,Type\n" + "".join(f"{sku},{sku},{kind}\n" for sku, kind in zip("ABCDE", types, strict=True))
    ).encode()

    report = parse_product_file(content)

    assert [product.type for product in report.products] == [
        ProductType.FINISHED_GOOD,
        ProductType.SUB_ASSEMBLY,
        ProductType.RAW_MATERIAL,
        ProductType.NON_INVENTORY,
    ]
    assert report.rows[4].errors == [
        RowProblem(
            column="Type",
            problem="unknown type 'Widget'; use one of: "
            "finished good, component, raw material, sub-assembly, service, non-inventory",
        )
    ]


def test_sku_longer_than_a_xero_code_is_refused() -> None:
    content = f"SKU,Name\n{'S' * 30},Fits\n{'S' * 31},Too long\n".encode()

    report = parse_product_file(content)

    assert report.rows[0].status is RowStatus.VALID
    assert report.rows[1].errors == [
        RowProblem(column="SKU", problem="too long: 31 characters, the most is 30 (Xero item codes)")
    ]


def test_a_row_without_sku_is_an_error_and_keeps_its_other_problems() -> None:
    errors = errors_of(parse_product_file(b"SKU,Name,Cost\n  ,Widget,x\n"))

    assert errors == [
        RowProblem(column="SKU", problem="missing SKU"),
        RowProblem(column="Cost", problem="not a number: 'x'"),
    ]


def test_sku_excel_turned_into_scientific_notation_is_refused() -> None:
    errors = errors_of(parse_product_file(b"SKU,Name\n1.23457E+12,Widget\n"))

    assert errors == [
        RowProblem(
            column="SKU",
            problem="'1.23457E+12' was shortened by Excel; format the column as Text and type it again",
        )
    ]


def test_names_quickbooks_or_xero_cannot_take_are_warnings_and_over_100_characters_an_error() -> None:
    content = f"SKU,Name\nA,Bolt: M8\nB,{'n' * 51}\nC,{'n' * 101}\n".encode()

    report = parse_product_file(content)

    assert [row.status for row in report.rows] == [RowStatus.VALID, RowStatus.VALID, RowStatus.ERROR]
    assert "QuickBooks Online does not allow ':'" in report.rows[0].warnings[0].problem
    assert "the most a Xero item name can hold" in report.rows[1].warnings[0].problem
    assert report.rows[2].errors[0].problem.startswith("too long: 101 characters, the most is 100")


# XLSX reading


def test_xlsx_numbers_become_exact_decimals_and_number_skus_become_text() -> None:
    written = xlsx(
        [["SKU", "Name", "Unit cost", "Sale price", "Reorder point"], [1001, "Widget", 0.1, 0.3, 5]]
    )
    content = patched(written, "<v>0.3</v>", "<v>0.30000000000000004</v>")  # how Excel saves =0.1+0.2

    product = only_row(parse_product_file(content)).product

    assert product is not None
    assert product.sku == "1001"
    assert (product.unit_cost, product.sale_price, product.reorder_point) == (
        Decimal("0.1"),
        Decimal("0.3"),
        Decimal("5"),
    )


def test_xlsx_dates_are_not_numbers_and_warn_in_text_columns() -> None:
    content = xlsx([["SKU", "Name", "Cost"], ["A-1", datetime(2024, 3, 1), date(2024, 3, 2)]])

    row = only_row(parse_product_file(content))

    assert row.errors == [RowProblem(column="Cost", problem="not a number: 2024-03-02")]
    assert row.warnings == [
        RowProblem(
            column="Name",
            problem="Excel stored this as a date (2024-03-01); check that this is what you meant",
        )
    ]


def test_xlsx_skips_blank_rows_and_prefers_a_sheet_named_products() -> None:
    content = xlsx(
        [["SKU", "Name"], ["A-1", "One"], [None, None], ["A-2", "Two"]], title="Products", before="Notes"
    )

    report = parse_product_file(content)

    assert [(row.row, row.status) for row in report.rows] == [
        (2, RowStatus.VALID),
        (3, RowStatus.SKIPPED),
        (4, RowStatus.VALID),
    ]


def test_xlsx_formula_without_a_saved_value_is_an_error() -> None:
    content = xlsx([["SKU", "Name", "Cost"], ["A-1", "Widget", "=1+2"]])

    assert errors_of(parse_product_file(content)) == [RowProblem(column="Cost", problem=UNSAVED_FORMULA)]


def test_xlsx_formula_gives_its_saved_value() -> None:
    written = xlsx([["SKU", "Name", "Cost"], ["A-1", "Widget", "=1+2"]])
    content = patched(written, "<f>1+2</f><v />", "<f>1+2</f><v>3.25</v>")

    product = only_row(parse_product_file(content)).product

    assert product is not None
    assert product.unit_cost == Decimal("3.25")


# Refused files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "Excel 97-2003 (.xls)"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "This is a PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV file or an Excel workbook"),
        ("SKU,Name\n".encode("utf-16"), "UTF-16"),
        (b"", "The file is empty."),
    ],
)
def test_files_that_are_not_csv_or_xlsx_are_refused(content: bytes, message: str) -> None:
    report = parse_product_file(content)

    assert report.rows == []
    assert len(report.file_errors) == 1
    assert message in report.file_errors[0]


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")

    report = parse_product_file(buffer.getvalue())

    assert report.file_errors == [
        "This is a zip archive but not an Excel workbook (.xlsx). Save it from Excel as .xlsx or CSV UTF-8."
    ]


def test_a_file_over_the_size_limit_is_refused_stating_the_limit() -> None:
    content = b"SKU,Name\n" + b"A,B\n" * (MAX_FILE_BYTES // 4)

    report = parse_product_file(content)

    assert report.rows == []
    assert "the limit is 5 MiB" in report.file_errors[0]


def test_a_file_over_the_row_limit_is_refused_without_any_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(product_import, "MAX_ROWS", 3)

    within = parse_product_file(b"SKU,Name\nA,a\nB,b\n\nC,c\n\n\n")
    over = parse_product_file(b"SKU,Name\nA,a\nB,b\nC,c\nD,d\n")

    assert within.valid_count == 3
    assert over.rows == []
    assert over.file_errors == ["The file has more than 3 products. Split it into smaller files."]
