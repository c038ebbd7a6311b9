"""openpyxl's read-only workbook reader, opening a workbook without reading its sheets.

openpyxl opens each worksheet once while it loads a read-only workbook, to read its size from the
`<dimension>` element; a sheet without one (as programs rather than Excel write them, openpyxl's own
write-only mode included) is parsed to its end for it, every sheet, before a row is read. The import
reads the size from no sheet (it resets the dimensions, which may be wrong) and streams the one sheet
it imports under that sheet's caps, so here a sheet is only listed while the workbook opens.

A whole number shown through a format of zeros only ("00000", Excel's ZIP code format) is read as
shown: 123 formatted "00000" is the text "00123". A SKU typed as 00123 in such a column keeps the zeros a
person sees, and would otherwise become another product's code.

Imported on first use, with openpyxl: a CSV import and the API's cold start do without both.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.numbers import BUILTIN_FORMATS, BUILTIN_FORMATS_MAX_SIZE
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

_ZEROS = re.compile(r"0+")


class _UnsizedSheet(ReadOnlyWorksheet):  # type: ignore[misc]
    def _get_size(self) -> None:
        """No size: the rows are read until the sheet ends."""

    @cached_property
    def _zero_padded(self) -> dict[int, int]:
        """The width of each cell style whose number format is only zeros, by the style's index."""
        workbook = self.parent
        widths = {}
        for style_id, style in enumerate(workbook._cell_styles):
            format_id = style.numFmtId
            if format_id < BUILTIN_FORMATS_MAX_SIZE:
                code = BUILTIN_FORMATS.get(format_id)
            else:
                custom = format_id - BUILTIN_FORMATS_MAX_SIZE
                code = workbook._number_formats[custom] if custom < len(workbook._number_formats) else None
            if code and _ZEROS.fullmatch(code):
                widths[style_id] = len(code)
        return widths

    def _get_row(
        self,
        row: list[dict[str, Any]],
        min_col: int = 1,
        max_col: int | None = None,
        values_only: bool = False,
    ) -> tuple[Any, ...]:
        values: tuple[Any, ...] = super()._get_row(row, min_col, max_col, values_only)
        padded: list[Any] | None = None
        for cell in row:
            value, width = cell["value"], self._zero_padded.get(cell["style_id"] or 0)
            if width and type(value) in (int, float) and value >= 0 and value == int(value):
                padded = padded or list(values)
                padded[cell["column"] - min_col] = str(int(value)).zfill(width)
        return values if padded is None else tuple(padded)


class SheetListReader(ExcelReader):  # type: ignore[misc]
    """Reads the workbook's parts openpyxl needs (manifest, shared strings, styles...) and lists its
    worksheets, each read only when iterated. Chartsheets hold no rows and are not read."""

    def __init__(self, source: object) -> None:
        super().__init__(source, read_only=True, data_only=True)

    def read_worksheets(self) -> None:
        for sheet, relation in self.parser.find_sheets():
            if relation.target not in self.valid_files or "chartsheet" in relation.Type:
                continue
            worksheet = _UnsizedSheet(self.wb, sheet.name, relation.target, self.shared_strings)
            worksheet.sheet_state = sheet.state
            self.wb._sheets.append(worksheet)
