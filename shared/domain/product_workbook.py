"""openpyxl's read-only workbook reader, opening a workbook without reading its sheets.

openpyxl opens each worksheet once while it loads a read-only workbook, to read its size from the
`<dimension>` element; a sheet without one (as programs rather than Excel write them, openpyxl's own
write-only mode included) is parsed to its end for it, every sheet, before a row is read. The import
reads the size from no sheet (it resets the dimensions, which may be wrong) and streams the one sheet
it imports under that sheet's caps, so here a sheet is only listed while the workbook opens.

Imported on first use, with openpyxl: a CSV import and the API's cold start do without both.
"""

from __future__ import annotations

from openpyxl.reader.excel import ExcelReader
from openpyxl.worksheet._read_only import ReadOnlyWorksheet


class _UnsizedSheet(ReadOnlyWorksheet):  # type: ignore[misc]
    def _get_size(self) -> None:
        """No size: the rows are read until the sheet ends."""


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
