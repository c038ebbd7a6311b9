"""Product import: CSV and XLSX files become valid product rows, read one at a time, each with what a user
needs to act on it; the file's summary keeps every row's outcome as ranges and the problem rows' details."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise

import openpyxl
import pytest

from shared.domain import product_import
from shared.domain.catalog import Component, Product
from shared.domain.product_changes import CatalogIndex, catalog_entry, merged
from shared.domain.product_import import (
    MAX_COLUMNS,
    MAX_FILE_BYTES,
    MAX_IGNORED_SHOWN,
    MAX_READ_SECONDS,
    MAX_SHOWN_TEXT,
    UNSAVED_FORMULA,
    FileMalformed,
    FileRefused,
    FileTooCostly,
    OutOfTime,
    ReadBudget,
    open_product_file,
)
from shared.domain.product_rows import (
    ImportSummary,
    ProductRow,
    ProductType,
    RowOutcome,
    RowProblem,
    RowResult,
    RowStatus,
)
from shared.domain.product_summary import CHUNK_ROWS, summarise_file


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


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOCUMENT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_SPREADSHEETML = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def handmade_xlsx(rows_xml: str, shared_strings: list[str] | None = None) -> bytes:
    """A workbook whose parts are written by hand, as no spreadsheet program writes them: one sheet,
    "Products", holding `rows_xml`, and the shared strings if given."""
    shared = ""
    shared_relationship = ""
    if shared_strings is not None:
        shared = (
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_SPREADSHEETML}.sharedStrings+xml"/>'
        )
        shared_relationship = (
            f'<Relationship Id="rId2" Type="{_DOCUMENT}/sharedStrings" Target="sharedStrings.xml"/>'
        )
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_SPREADSHEETML}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_SPREADSHEETML}.worksheet+xml"/>'
            f"{shared}</Types>"
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_RELATIONSHIPS}">'
            f'<Relationship Id="rId1" Type="{_DOCUMENT}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_MAIN}" xmlns:r="{_DOCUMENT}">'
            '<sheets><sheet name="Products" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_RELATIONSHIPS}">'
            f'<Relationship Id="rId1" Type="{_DOCUMENT}/worksheet" Target="worksheets/sheet1.xml"/>'
            f"{shared_relationship}</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}">'
            f"<sheetData>{rows_xml}</sheetData></worksheet>"
        ),
    }
    if shared_strings is not None:
        entries = "".join(f"<si><t>{text}</t></si>" for text in shared_strings)
        parts["xl/sharedStrings.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN}">{entries}</sst>'
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in parts.items():
            archive.writestr(name, xml)
    return buffer.getvalue()


def text_cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def value_cell(ref: str, value: str, kind: str = "n") -> str:
    return f'<c r="{ref}" t="{kind}"><v>{value}</v></c>'


def sheet_row(number: int | str, *cells: str) -> str:
    return f'<row r="{number}">' + "".join(cells) + "</row>"


HEADER_ROW = sheet_row(1, text_cell("A1", "SKU"), text_cell("B1", "Name"), text_cell("C1", "Unit cost"))


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


class Parsed:
    """A whole file read into a list, as only a test does."""

    def __init__(self, content: bytes) -> None:
        with open_product_file(content) as product_file:
            self.ignored_columns = product_file.ignored_columns
            self.rows = list(product_file.rows)

    @property
    def products(self) -> list[ProductRow]:
        return [row.product for row in self.rows if row.product is not None]


def parse(content: bytes) -> Parsed:
    return Parsed(content)


def refusal(content: bytes) -> str:
    with pytest.raises(FileRefused) as refused:
        parse(content)
    return str(refused.value)


def only_row(parsed: Parsed) -> RowResult:
    assert len(parsed.rows) == 1, parsed.rows
    return parsed.rows[0]


def errors_of(parsed: Parsed) -> tuple[RowProblem, ...]:
    return only_row(parsed).errors


def all_created(rows: list[ProductRow]) -> list[RowOutcome]:
    return [RowOutcome.CREATED] * len(rows)


def summary_of(content: bytes, max_details: int = 1_000) -> ImportSummary:
    return summarise_file(content, all_created, max_details)


# CSV reading


def test_csv_with_bom_and_crlf_reads_the_first_header_as_written() -> None:
    report = parse("\ufeffSKU,Name\r\nA-1,Widget\r\n,Nameless\r\n".encode())

    assert [row.row for row in report.rows] == [2, 3]
    assert report.products[0].model_dump(include={"sku", "name"}) == {"sku": "A-1", "name": "Widget"}
    assert report.rows[1].errors == (RowProblem(column="SKU", problem="missing SKU"),)


def test_semicolon_csv_takes_a_decimal_comma() -> None:
    content = b"SKU;Name;Unit cost;Sale price;Reorder point\nA-1;Widget;12,5;1.234,50;7.5\n"

    product = only_row(parse(content)).product

    assert product is not None
    assert (product.unit_cost, product.sale_price, product.reorder_point) == (
        Decimal("12.5"),
        Decimal("1234.50"),
        Decimal("7.5"),
    )


def test_semicolon_csv_refuses_a_point_that_may_group_thousands() -> None:
    """Excel in a decimal-comma locale saves a CSV as shown, separated by ';': 1250 shown as "1.250" with a
    thousands point. It read as 1.25, a thousandth of the cost, without a word."""
    content = b"SKU;Name;Unit cost;Sale price\nA-1;Widget;1.250;\xe2\x82\xac 3.000\nA-2;Plate;0.125;12.50\n"

    first, second = parse(content).rows

    assert first.errors == (
        RowProblem(
            column="Unit cost", problem="'1.250' may be 1250 (a thousands point) or 1.25; write 1250 or 1,25"
        ),
        RowProblem(
            column="Sale price",
            problem="'\u20ac 3.000' may be 3000 (a thousands point) or 3; write 3000 or 3",
        ),
    )
    assert second.product is not None
    assert (second.product.unit_cost, second.product.sale_price) == (Decimal("0.125"), Decimal("12.50"))


def test_comma_csv_takes_thousands_commas_but_not_a_decimal_comma() -> None:
    content = b'SKU,Name,Unit cost,Sale price\nA-1,Widget,"1,234.50","12,5"\n'

    row = only_row(parse(content))

    assert row.status is RowStatus.ERROR
    assert row.errors == (RowProblem(column="Sale price", problem="not a number: '12,5'"),)


def test_quoted_fields_keep_their_separators_and_line_breaks_without_shifting_row_numbers() -> None:
    content = b'SKU,Name\nA-1,"Widget, large"\nA-2,"Two\nlines"\nA-3,Plain\n'

    report = parse(content)

    assert [row.row for row in report.rows] == [2, 3, 4]
    assert [row.product.name for row in report.rows if row.product] == [
        "Widget, large",
        "Two\nlines",
        "Plain",
    ]


def test_blank_rows_between_products_are_skipped_and_trailing_ones_vanish() -> None:
    content = b"SKU,Name\nA-1,One\n\n , \nA-2,Two\n,\n\n"

    report = parse(content)

    assert [(row.row, row.status) for row in report.rows] == [
        (2, RowStatus.VALID),
        (3, RowStatus.SKIPPED),
        (4, RowStatus.SKIPPED),
        (5, RowStatus.VALID),
    ]
    summary = summary_of(content)
    assert (summary.valid_count, summary.error_count, summary.skipped_count) == (2, 0, 2)


def test_non_utf8_csv_is_refused_naming_the_line() -> None:
    content = "SKU,Name\nA-1,Widget\nA-2,Crème brûlée\n".encode("cp1252")

    summary = summary_of(content)

    assert summary.rows_read == 0
    assert len(summary.file_errors) == 1
    assert "not UTF-8" in summary.file_errors[0]
    assert "line 3" in summary.file_errors[0]


def test_non_utf8_far_into_a_csv_names_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(product_import, "_READ_CHUNK", 7)  # the bad character straddles two chunks
    content = "SKU,Name\nA-1,Widget\nA-2,Crème\n".encode() + b"A-3,Cr\xe8me\n"

    assert "line 4 has a character that is not UTF-8" in refusal(content)


# Headers


def test_headers_match_aliases_whatever_their_case_spacing_or_notes() -> None:
    content = (
        b" item CODE ,PRODUCT NAME,UnitCost,Cost Price,uom,Reorder Level,Sales Price ($),barcode,"
        b"Notes,notes\n"
        b"A-1,Widget,2.50,3,pcs,10,4.99,0123456789012,x,y\n"
    )

    report = parse(content)

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
    summary = summary_of(header + b"A-1,Widget\n")

    assert summary.rows_read == 0
    assert len(summary.file_errors) == 1
    assert summary.file_errors[0].startswith(missing)
    assert "Row 1 has: " in summary.file_errors[0]


def test_two_columns_for_the_same_field_refuse_the_file() -> None:
    summary = summary_of(b"SKU,Code,Name\nA,B,Widget\n")

    assert summary.rows_read == 0
    assert summary.file_errors == ["Columns 'SKU' and 'Code' both give the SKU; keep one."]


# Row validation


def test_duplicate_sku_points_at_the_first_row_and_the_first_stays_valid() -> None:
    content = b"SKU,Name\nab-1,First\nA-2,Other\n AB-1 ,Second\nAb-1,Third\n"

    report = parse(content)

    assert [row.status for row in report.rows] == [
        RowStatus.VALID,
        RowStatus.VALID,
        RowStatus.ERROR,
        RowStatus.ERROR,
    ]
    assert report.rows[2].errors == (
        RowProblem(column="SKU", problem="duplicate SKU: row 2 has the same SKU"),
    )
    assert report.rows[3].errors == report.rows[2].errors


def test_duplicates_are_found_across_thousands_of_skus() -> None:
    """The table of SKUs seen grows three times over 3,000 rows; every repeat still names its first row."""
    lines = [f"P-{n},Part {n}" for n in range(3_000)]
    lines += [f" p-{n} ,Again {n}" for n in range(0, 3_000, 299)]
    report = parse(("SKU,Name\n" + "\n".join(lines) + "\n").encode())

    errors = {row.row: row.errors for row in report.rows if row.status is RowStatus.ERROR}
    assert len(report.products) == 3_000
    assert errors == {
        3_002 + index: (RowProblem(column="SKU", problem=f"duplicate SKU: row {n + 2} has the same SKU"),)
        for index, n in enumerate(range(0, 3_000, 299))
    }


def test_valid_rows_carry_a_stable_key_for_an_idempotent_apply() -> None:
    first = parse(b"SKU,Name\n Ab-1 ,Widget\n").products
    again = parse(b"SKU,Name\nAB-1,Widget\n").products

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
    row = only_row(parse(f"SKU,Name,Purchase Cost\nA-1,Widget,{cost}\n".encode()))

    assert row.status is RowStatus.ERROR
    assert row.product is None
    assert row.errors == (RowProblem(column="Purchase Cost", problem=problem),)


def test_money_with_trailing_zeros_past_four_places_is_kept() -> None:
    product = only_row(parse(b"SKU,Name,Cost\nA-1,Widget,$12.500000\n")).product

    assert product is not None
    assert product.unit_cost == Decimal("12.5000")


def test_types_accept_case_and_spacing_variants_and_refuse_others_listing_the_allowed_ones() -> None:
    types = ["Finished Good", "SUB ASSEMBLY", "raw-material", "non inventory", "Widget"]
    content = (
        "SKU,Name,Type\n" + "".join(f"{sku},{sku},{kind}\n" for sku, kind in zip("ABCDE", types, strict=True))
    ).encode()

    report = parse(content)

    assert [product.type for product in report.products] == [
        ProductType.FINISHED_GOOD,
        ProductType.SUB_ASSEMBLY,
        ProductType.RAW_MATERIAL,
        ProductType.NON_INVENTORY,
    ]
    assert report.rows[4].errors == (
        RowProblem(
            column="Type",
            problem="unknown type 'Widget'; use one of: "
            "finished good, component, raw material, sub-assembly, service, non-inventory",
        ),
    )


def test_sku_longer_than_a_xero_code_is_refused() -> None:
    content = f"SKU,Name\n{'S' * 30},Fits\n{'S' * 31},Too long\n".encode()

    report = parse(content)

    assert report.rows[0].status is RowStatus.VALID
    assert report.rows[1].errors == (
        RowProblem(column="SKU", problem="too long: 31 characters, the most is 30 (Xero item codes)"),
    )


def test_a_row_without_sku_is_an_error_and_keeps_its_other_problems() -> None:
    errors = errors_of(parse(b"SKU,Name,Cost\n  ,Widget,x\n"))

    assert errors == (
        RowProblem(column="SKU", problem="missing SKU"),
        RowProblem(column="Cost", problem="not a number: 'x'"),
    )


def test_sku_excel_turned_into_scientific_notation_is_refused() -> None:
    errors = errors_of(parse(b"SKU,Name\n1.23457E+12,Widget\n"))

    assert errors == (
        RowProblem(
            column="SKU",
            problem="'1.23457E+12' was shortened by Excel; format the column as Text and type it again",
        ),
    )


def test_names_quickbooks_or_xero_cannot_take_are_warnings_and_over_100_characters_an_error() -> None:
    content = f"SKU,Name\nA,Bolt: M8\nB,{'n' * 51}\nC,{'n' * 101}\n".encode()

    report = parse(content)

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

    product = only_row(parse(content)).product

    assert product is not None
    assert product.sku == "1001"
    assert (product.unit_cost, product.sale_price, product.reorder_point) == (
        Decimal("0.1"),
        Decimal("0.3"),
        Decimal("5"),
    )


def test_xlsx_dates_are_not_numbers_and_warn_in_text_columns() -> None:
    content = xlsx([["SKU", "Name", "Cost"], ["A-1", datetime(2024, 3, 1), date(2024, 3, 2)]])

    row = only_row(parse(content))

    assert row.errors == (RowProblem(column="Cost", problem="not a number: 2024-03-02"),)
    assert row.warnings == (
        RowProblem(
            column="Name",
            problem="Excel stored this as a date (2024-03-01); check that this is what you meant",
        ),
    )


def test_xlsx_skips_blank_rows_and_prefers_a_sheet_named_products() -> None:
    content = xlsx(
        [["SKU", "Name"], ["A-1", "One"], [None, None], ["A-2", "Two"]], title="Products", before="Notes"
    )

    report = parse(content)

    assert [(row.row, row.status) for row in report.rows] == [
        (2, RowStatus.VALID),
        (3, RowStatus.SKIPPED),
        (4, RowStatus.VALID),
    ]


def test_xlsx_formula_without_a_saved_value_is_an_error() -> None:
    content = xlsx([["SKU", "Name", "Cost"], ["A-1", "Widget", "=1+2"]])

    assert errors_of(parse(content)) == (RowProblem(column="Cost", problem=UNSAVED_FORMULA),)


def test_xlsx_formula_gives_its_saved_value() -> None:
    written = xlsx([["SKU", "Name", "Cost"], ["A-1", "Widget", "=1+2"]])
    content = patched(written, "<f>1+2</f><v />", "<f>1+2</f><v>3.25</v>")

    product = only_row(parse(content)).product

    assert product is not None
    assert product.unit_cost == Decimal("3.25")


def test_a_workbook_whose_dimension_understates_its_rows_reads_them_all() -> None:
    """A <dimension> written before rows were added by another program: its A1:B2 would cut rows off."""
    content = xlsx([["SKU", "Name"], *([f"P-{n}", "Part"] for n in range(4))])

    rows = parse(patched(content, '<dimension ref="A1:B5"', '<dimension ref="A1:B2"')).rows

    assert [row.sku for row in rows] == ["P-0", "P-1", "P-2", "P-3"]


def test_a_large_workbook_without_a_dimension_element_imports() -> None:
    """Programs (openpyxl's write-only mode here) write no <dimension>; opening the workbook must not read
    the whole sheet for one under the small cap of the parts read while it opens. (No deadline: the caps
    are under test, not the speed of a busy machine.)"""
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Products")
    sheet.append(["SKU", "Name", "Unit cost"])
    for n in range(15_000):
        sheet.append([f"P-{n}", f"Part {n}", n % 90 + 0.5])
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert b"<dimension" not in zipfile.ZipFile(buffer).read("xl/worksheets/sheet1.xml")

    summary = summarise_file(buffer.getvalue(), all_created, budget=ReadBudget(seconds=float("inf")))

    assert (summary.file_errors, summary.created, summary.error_count) == ([], 15_000, 0)


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
    summary = summary_of(content)

    assert summary.rows_read == 0
    assert len(summary.file_errors) == 1
    assert message in summary.file_errors[0]


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")

    assert refusal(buffer.getvalue()) == (
        "This is a zip archive but not an Excel workbook (.xlsx). Save it from Excel as .xlsx or CSV UTF-8."
    )


def test_a_file_over_the_size_limit_is_refused_stating_the_limit() -> None:
    content = b"SKU,Name\n" + b"A,B\n" * (MAX_FILE_BYTES // 4)

    summary = summary_of(content)

    assert summary.rows_read == 0
    assert "the limit is 5 MiB" in summary.file_errors[0]


def test_a_file_over_the_row_limit_is_refused_without_any_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(product_import, "MAX_ROWS", 5)

    within = summary_of(b"SKU,Name\nA,a\nB,b\n\nC,c\n\n")
    assert within.valid_count == 3

    message = (
        "The file has more than 5 rows after the header (empty rows count too). "
        "Delete empty rows, or split it into smaller files."
    )
    with pytest.raises(FileTooCostly) as over:
        summary_of(b"SKU,Name\nA,a\nB,b\nC,c\nD,d\nE,e\nF,f\n")
    assert str(over.value) == message
    with pytest.raises(FileTooCostly, match="empty rows count too"):
        summary_of(b"SKU,Name\nA,a\n" + b"\n" * 5 + b"B,b\n")


@pytest.mark.parametrize(
    ("seconds", "until", "budget"),
    [
        (None, float("inf"), MAX_READ_SECONDS),  # no deadline: a reading pass's own limit
        (None, 100.0 + MAX_READ_SECONDS + 1, MAX_READ_SECONDS),  # a deadline after it
        (None, 104.0, 4.0),  # a deadline before it
        (float("inf"), 104.0, 4.0),  # an apply's writing pass: the deadline only
    ],
)
def test_a_read_budget_ends_at_its_seconds_or_its_deadline_whichever_comes_first(
    seconds: float | None, until: float, budget: float
) -> None:
    now = [100.0]
    read = ReadBudget(seconds, clock=lambda: now[0], until=until)

    assert read.seconds == budget
    now[0] += budget
    read.check()  # the last moment it holds
    now[0] += 0.001
    with pytest.raises(OutOfTime, match=f"took longer than {budget:g} seconds"):
        read.check()


def test_a_read_budget_whose_deadline_has_passed_is_spent_at_once() -> None:
    read = ReadBudget(clock=lambda: 100.0, until=90.0)

    assert read.seconds == 0.0
    with pytest.raises(OutOfTime, match="took longer than 0 seconds"):
        read.check()


def test_a_writing_pass_without_a_deadline_has_no_end() -> None:
    now = [100.0]
    read = ReadBudget(float("inf"), clock=lambda: now[0])

    now[0] += 1e12
    read.check()
    assert read.seconds == float("inf")


def test_a_workbook_damaged_part_way_is_refused_after_its_first_rows_were_read() -> None:
    written = xlsx([["SKU", "Name"], *([f"A-{n}", "Widget"] for n in range(2, 302))])
    content = patched(written, '<c r="A250"', '<c r="A250"<')  # broken XML at row 250 only

    with open_product_file(content) as product_file:
        read: list[int] = []
        with pytest.raises(FileRefused, match="The workbook is damaged"):
            read.extend(row.row for row in product_file.rows)

    assert read[:2] == [2, 3] and len(read) > CHUNK_ROWS  # the damage came to light part way
    assert summary_of(content).file_errors == ["The workbook is damaged. Open it in Excel and save it again."]


# Workbooks holding what no spreadsheet program writes: refused whole, naming the sheet and row


def _product_row(cost_cell: str, *, sku_cell: str | None = None, number: int | str = 2) -> str:
    return sheet_row(number, sku_cell or text_cell("A2", "A-1"), text_cell("B2", "Widget"), cost_cell)


MALFORMED_SHEETS = {
    "a number NaN": (_product_row(value_cell("C2", "NaN")), None),
    "a number inf": (_product_row(value_cell("C2", "inf")), None),
    "a number nan.0": (_product_row(value_cell("C2", "nan.0")), None),
    "a number 0x1A": (_product_row(value_cell("C2", "0x1A")), None),
    "a shared text out of range": (_product_row("", sku_cell=value_cell("A2", "99", "s")), ["A-1"]),
    "a shared text index not a number": (_product_row("", sku_cell=value_cell("A2", "abc", "s")), ["A-1"]),
    "cell reference ZZZZ2": (_product_row(text_cell("ZZZZ2", "1")), None),
    "row number abc": (_product_row(value_cell("C2", "1"), number="abc"), None),
    "a boolean abc": (_product_row(value_cell("C2", "abc", "b")), None),
    "a date abc": (_product_row(value_cell("C2", "abc", "d")), None),
}


@pytest.mark.parametrize("case", list(MALFORMED_SHEETS))
def test_a_value_no_spreadsheet_program_writes_refuses_the_workbook_naming_sheet_and_row(case: str) -> None:
    rows_xml, shared_strings = MALFORMED_SHEETS[case]
    content = handmade_xlsx(HEADER_ROW + rows_xml, shared_strings)

    with pytest.raises(FileMalformed) as refused:
        summary_of(content)  # refused outright (the API answers 400), not a file error in a summary

    assert str(refused.value).startswith(
        "The sheet 'Products' cannot be read after row 1: a cell holds a value, cell reference or row "
        "number that Excel never writes"
    )


def test_a_malformed_cell_part_way_names_the_last_row_read_and_a_malformed_header_the_first_row() -> None:
    good = "".join(
        sheet_row(n, text_cell(f"A{n}", f"A-{n}"), text_cell(f"B{n}", "Widget"), value_cell(f"C{n}", "1.5"))
        for n in range(2, 6)
    )
    content = handmade_xlsx(HEADER_ROW + good + sheet_row(6, value_cell("A6", "0x1A")))

    with open_product_file(content) as product_file:
        read: list[int] = []
        with pytest.raises(FileMalformed, match="The sheet 'Products' cannot be read after row 5: "):
            read.extend(row.row for row in product_file.rows)
    assert read == [2, 3, 4, 5]

    header = sheet_row(1, text_cell("A1", "SKU"), value_cell("B1", "NaN"))
    with pytest.raises(FileMalformed, match="The sheet 'Products' cannot be read in its first row: "):
        summary_of(handmade_xlsx(header))


@pytest.mark.parametrize("value", ["1e400", "-1e400", "1e309"])
def test_an_xlsx_number_beyond_a_float_is_not_a_number_naming_the_column(value: str) -> None:
    content = handmade_xlsx(HEADER_ROW + _product_row(value_cell("C2", value)))

    row = only_row(parse(content))  # openpyxl reads these as float infinities

    assert row.status is RowStatus.ERROR and row.product is None
    assert [error.column for error in row.errors] == ["Unit cost"]
    assert row.errors[0].problem.startswith("not a number: ")


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), float("-inf"), Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity")],
)
def test_a_non_finite_number_never_gets_through_as_an_amount(
    monkeypatch: pytest.MonkeyPatch, value: object
) -> None:
    def rows(content: bytes, separator: str) -> Iterator[product_import._Row]:
        yield product_import._Row(1, ["SKU", "Name", "Unit cost", "Reorder point"], frozenset())
        yield product_import._Row(2, ["A-1", "Widget", value, value], frozenset())

    monkeypatch.setattr(product_import, "_csv_rows", rows)  # a reader that hands over such a number

    row = only_row(parse(b"SKU,Name\n"))

    assert row.status is RowStatus.ERROR and row.product is None
    assert [error.column for error in row.errors] == ["Unit cost", "Reorder point"]
    assert all(error.problem.startswith("not a number: ") for error in row.errors)


# Wide headers: linear work, a cap, and a bounded answer


def test_a_csv_header_of_200000_columns_is_refused_at_once() -> None:
    content = (",".join(["SKU", "Name", *(f"c{n}" for n in range(200_000))]) + "\nA-1,Widget\n").encode()
    assert len(content) < MAX_FILE_BYTES

    began = time.process_time()  # CPU time: the machine's load does not count
    with pytest.raises(FileTooCostly) as refused:
        summary_of(content)

    assert time.process_time() - began < 2.0  # it took minutes, checking each column against a list
    assert str(refused.value) == (
        f"Row 1 names more than {MAX_COLUMNS:,} columns; a product file needs at most 8. "
        "Delete the columns Partsemble does not use, or save only the product columns as CSV UTF-8."
    )


def test_a_header_at_the_column_cap_reads_and_its_answer_names_only_the_first_ignored_columns() -> None:
    others = [f"Extra {n}" for n in range(MAX_COLUMNS - 2)]
    content = (",".join(["SKU", "Name", *others]) + "\nA-1,Widget\n").encode()

    summary = summary_of(content)

    assert summary.file_errors == [] and summary.created == 1
    assert summary.ignored_columns == others[:MAX_IGNORED_SHOWN]
    assert summary.ignored_columns_left_out == MAX_COLUMNS - 2 - MAX_IGNORED_SHOWN


def test_an_xlsx_header_over_the_column_cap_is_refused() -> None:
    content = xlsx([["SKU", "Name", *(f"Extra {n}" for n in range(MAX_COLUMNS - 1))], ["A-1", "Widget"]])

    with pytest.raises(FileTooCostly, match=f"Row 1 names more than {MAX_COLUMNS:,} columns"):
        summary_of(content)


def test_an_xlsx_header_of_40000_cells_without_references_is_refused_by_the_column_cap() -> None:
    """Refused for its width (the column cap), not after the reading budget's seconds: how fast is measured
    in bench_import, not asserted here against the wall clock."""
    cells = "".join(f'<c t="inlineStr"><is><t>c{n}</t></is></c>' for n in range(40_000))
    content = handmade_xlsx(f'<row r="1">{text_cell("A1", "SKU")}{text_cell("B1", "Name")}{cells}</row>')

    with pytest.raises(FileTooCostly, match="names more than"):
        summary_of(content)


def test_a_header_or_type_cell_of_100000_open_brackets_reads_at_once() -> None:
    brackets = "(" * 100_000  # stripping bracketed notes searched on from every "(": ~50 s for this cell
    content = f"SKU,Name,Type,{brackets}\nA-1,Widget,{brackets}\n".encode()

    began = time.process_time()  # CPU time: the machine's load does not count
    summary = summary_of(content)

    assert time.process_time() - began < 2.0
    [detail] = summary.details
    assert detail.errors[0].column == "Type"
    assert detail.errors[0].problem.startswith("unknown type '" + "(" * (MAX_SHOWN_TEXT - 1) + "\u2026'; ")
    assert summary.ignored_columns == ["(" * (MAX_SHOWN_TEXT - 1) + "\u2026"]


def test_long_headers_are_shortened_where_an_answer_echoes_them() -> None:
    note = "x" * 100_000
    content = f"SKU,Name,Unit cost ({note}),Notes {note}\nA-1,Widget,abc\n".encode()

    summary = summary_of(content)

    [detail] = summary.details
    [error] = detail.errors
    assert len(error.column) == MAX_SHOWN_TEXT and error.column.startswith("Unit cost (xxx")
    assert error.column.endswith("\u2026") and error.problem == "not a number: 'abc'"
    assert [len(column) for column in summary.ignored_columns] == [MAX_SHOWN_TEXT]

    row = only_row(parse(f"SKU,Name,Cost\nA-1,Widget,{'9' * 100_000}\n".encode()))
    shown = "9" * (MAX_SHOWN_TEXT - 1) + "\u2026"
    assert row.errors[0].problem == f"{shown} is too large; it must be below 1,000,000,000"

    headers = [f"Column {n} {note[:10_000]}" for n in range(MAX_IGNORED_SHOWN + 10)]
    missing = summary_of((",".join(["Name", *headers]) + "\nWidget\n").encode()).file_errors[0]
    assert missing.startswith("No SKU column.") and missing.endswith(" and 11 more.")  # Name is listed too
    assert len(missing) < 100 * MAX_IGNORED_SHOWN


# The summary


def test_ranges_hold_every_row_read_exactly_once() -> None:
    lines = ["SKU,Name,Cost"]
    for number in range(2, 2 + 3 * CHUNK_ROWS):
        if number % 7 == 0:
            lines.append(",")  # blank
        elif number % 11 == 0:
            lines.append(f"S-{number},Widget,abc")  # error
        else:
            lines.append(f"S-{number},Widget,1")
    lines.append(f"S-{len(lines) + 1},Last,2")
    last = len(lines)
    content = ("\n".join(lines) + "\n,\n").encode()  # the trailing blank row is not read

    summary = summarise_file(
        content, lambda rows: [RowOutcome.UPDATED if int(r.sku[2:]) % 2 else RowOutcome.CREATED for r in rows]
    )

    covered: list[int] = []
    by_outcome: dict[str, set[int]] = {}
    for outcome, ranges in summary.row_ranges.model_dump().items():
        rows = [n for first, final in ranges for n in range(first, final + 1)]
        assert all(a[1] + 1 < b[0] for a, b in pairwise(ranges))  # merged, ordered
        by_outcome[outcome] = set(rows)
        covered.extend(rows)
    assert sorted(covered) == list(range(2, last + 1))
    assert summary.rows_read == last - 1
    assert by_outcome["skipped"] == {n for n in range(2, last) if n % 7 == 0}
    assert by_outcome["error"] == {n for n in range(2, last) if n % 7 and n % 11 == 0}
    assert by_outcome["updated"] == {n for n in covered if n % 7 and n % 11 and n % 2}
    counts = (summary.created, summary.updated, summary.error_count, summary.skipped_count)
    assert counts == tuple(len(by_outcome[o]) for o in ("created", "updated", "error", "skipped"))
    assert summary.valid_count == summary.created + summary.updated + summary.unchanged


def test_consecutive_rows_of_one_outcome_make_one_range() -> None:
    content = b"SKU,Name\n" + b"".join(f"A-{n},a\n".encode() for n in range(250)) + b"\nB,\nC,c\n"

    ranges = summary_of(content).row_ranges

    assert ranges.created == [(2, 251), (254, 254)]
    assert (ranges.skipped, ranges.error) == ([(252, 252)], [(253, 253)])


def test_details_name_the_row_column_and_problem_of_rows_with_errors_or_warnings_only() -> None:
    summary = summary_of(b"SKU,Name,Cost\nA,Fine,1\nB,Bolt: M8,2\nC,Widget,-3\n")

    assert [(d.row, d.outcome, d.sku, d.name) for d in summary.details] == [
        (3, RowOutcome.CREATED, "B", "Bolt: M8"),
        (4, RowOutcome.ERROR, "C", "Widget"),
    ]
    assert summary.details[0].errors == [] and "':'" in summary.details[0].warnings[0].problem
    assert summary.details[1].errors == [
        RowProblem(column="Cost", problem="negative (-3); it must be 0 or more")
    ]


def test_details_stop_at_the_cap_and_count_the_rows_left_out() -> None:
    content = b"SKU,Name,Cost\n" + b"".join(f"A-{n},a,x\n".encode() for n in range(25)) + b"B,b,1\n"

    summary = summary_of(content, max_details=10)

    assert [d.row for d in summary.details] == list(range(2, 12))
    assert summary.details_left_out == 15
    assert summary.error_count == 25 and summary.row_ranges.error == [(2, 26)]  # every row still counted
    assert summary.row_ranges.created == [(27, 27)]


# Changes against the catalog


def _row(**fields: object) -> ProductRow:
    return ProductRow.model_validate({"key": "a-1", "sku": "A-1", "name": "Widget", **fields})


def test_a_row_changes_a_known_product_only_in_the_fields_it_gives() -> None:
    stored = Product(
        product_id="p1", sku="A-1", name="Widget", type="component", unit_cost=Decimal("1.50"), unit="pcs"
    )
    known = CatalogIndex([catalog_entry(stored)])

    assert CatalogIndex().outcome(_row()) is RowOutcome.CREATED
    assert known.outcome(_row()) is RowOutcome.UNCHANGED  # blank fields keep the product's values
    assert known.outcome(_row(unit_cost=Decimal("1.5"), unit="pcs", type="component")) is (
        RowOutcome.UNCHANGED
    )
    for changed in ({"unit_cost": Decimal("1.51")}, {"unit": "kg"}, {"type": "service"}, {"name": "Widge"}):
        row = _row(**changed)
        assert known.outcome(row) is RowOutcome.UPDATED
        assert merged(row, stored) != stored
    assert known.outcome(_row(sku="a-1")) is RowOutcome.UPDATED  # the SKU's spelling is written too
    assert merged(_row(unit_cost=Decimal("2")), stored) == stored.model_copy(
        update={"unit_cost": Decimal("2")}
    )


def test_a_rows_type_leaves_a_bundle_a_bundle() -> None:
    """A product made from a QuickBooks bundle is costed by its components: a file's Type (say Finished good)
    does not make it a product of its own, whose sales would look for lots it has none of. Its other fields
    change as any product's do."""
    bundle = Product(
        product_id="p1",
        sku="A-1",
        name="Widget",
        type="kit",
        components=(Component(ref="p2", quantity=Decimal(2)),),
    )
    known = CatalogIndex([catalog_entry(bundle)])

    assert known.outcome(_row(type="finished_good")) is RowOutcome.UNCHANGED
    assert merged(_row(type="finished_good"), bundle) == bundle
    renamed = _row(type="finished_good", name="Widget set")
    assert known.outcome(renamed) is RowOutcome.UPDATED
    assert merged(renamed, bundle) == bundle.model_copy(update={"name": "Widget set"})


def test_xlsx_whole_numbers_in_a_zeros_format_keep_the_zeros_shown() -> None:
    """Excel shows 123 formatted "00000" (its ZIP code format) as 00123: the SKU is read as shown, not as
    another product's 123. Other formats, and numbers that are not whole, are read as before."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["SKU", "Name", "Unit cost", "Reorder point"])
    sheet.append([123, "Zip-coded", 2.5, 7])
    sheet.append([45, "Plain", 1, 3])
    sheet.append([4.5, "Not whole", 1, 3])
    for ref in ("A2", "A4", "D2"):
        sheet[ref].number_format = "00000"
    sheet["C2"].number_format = "0.00"
    buffer = io.BytesIO()
    workbook.save(buffer)

    products = parse(buffer.getvalue()).products

    assert [p.sku for p in products] == ["00123", "45", "4.5"]
    assert (products[0].unit_cost, products[0].reorder_point) == (Decimal("2.5"), Decimal("7"))


def test_control_and_invisible_characters_are_refused_naming_the_character() -> None:
    """A zero-width space or a tab in a SKU makes two SKUs that look alike different products, and a control
    character has no place in any field: the row is an error saying which character and where. A line
    break typed in a name stays (a warning says QuickBooks takes none)."""
    rows = [
        "A\u200b1,Bolt,ea",
        "A\t2,Nut,ea",
        "A-3,Washer\x01,ea",
        "A-4,Spring,e\x7fa",
        'A-5,"Two\nlines",ea',
    ]
    report = parse(("SKU,Name,Unit\n" + "\n".join(rows) + "\n").encode())

    assert [row.errors for row in report.rows[:4]] == [
        (
            RowProblem(
                column="SKU",
                problem="an invisible character (U+200B zero width space) at character 2; remove it",
            ),
        ),
        (RowProblem(column="SKU", problem="a control character (U+0009) at character 2; remove it"),),
        (RowProblem(column="Name", problem="a control character (U+0001) at character 7; remove it"),),
        (RowProblem(column="Unit", problem="a control character (U+007F) at character 2; remove it"),),
    ]
    assert report.rows[4].status is RowStatus.VALID
    assert "a line break" in report.rows[4].warnings[0].problem
