"""Spreadsheet downloads (CSV and XLSX) that never carry a live formula.

Exported text comes from people outside Partsemble's control: product names, invoice numbers and customer
details typed into QuickBooks Online, Xero or an import file. A spreadsheet reads a text cell that starts
with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before one) as a formula, which can run
commands (DDE) or send the sheet's data to a web address. So:

- CSV: such a text cell gets a leading ``'``, which Excel, LibreOffice and Google Sheets show as text and
  do not evaluate (OWASP's CSV injection advice). Numbers are written as numbers, untouched.
- XLSX: every text cell is written as a string cell, never a formula cell, and keeps its text, but for the
  control characters XML cannot hold (openpyxl refuses them), each written as U+FFFD.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

# the ASCII starts, and their full-width forms, which some spreadsheets also read as a formula start
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def reads_as_formula(value: object) -> bool:
    """Text that starts like a formula, also after spaces (a spreadsheet that trims a cell on import, as some
    do, would read " =1+1" or a no-break space before "=" as one)."""
    return isinstance(value, str) and (
        value.startswith(FORMULA_STARTS) or value.lstrip().startswith(FORMULA_STARTS)
    )


def neutralised(value: Any) -> Any:
    """The value as a CSV cell: text a spreadsheet would read as a formula gets a leading ``'``."""
    return "'" + value if reads_as_formula(value) else value


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    for row in rows:
        writer.writerow([neutralised(value) for value in row])
    return text.getvalue().encode()


def xlsx_bytes(rows: Iterable[Sequence[Any]], sheet_title: str) -> bytes:
    from openpyxl import Workbook  # on first use: only an XLSX download needs it
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)
    sheet = book.create_sheet(sheet_title)
    for row in rows:
        cells: list[Any] = []
        for value in row:
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
                cell.data_type = "s"  # openpyxl makes text starting with "=" a formula: keep it text
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
