"""openpyxl's read-only workbook reader, opening a workbook without reading its sheets.

openpyxl opens each worksheet once while it loads a read-only workbook, to read its size from the
`<dimension>` element; a sheet without one (as programs rather than Excel write them, openpyxl's own
write-only mode included) is parsed to its end for it, every sheet, before a row is read. The import
reads the size from no sheet (it resets the dimensions, which may be wrong) and streams the one sheet
it imports under that sheet's caps, so here a sheet is only listed while the workbook opens.

A whole number shown through a format of zeros only ("00000", Excel's ZIP code format) is read as
shown: 123 formatted "00000" is the text "00123" (and -123 "-00123"). A SKU typed as 00123 in such a column
keeps the zeros a person sees, and would otherwise become another product's code. A number is whole as
Excel shows it, to 15 significant digits (as `_text` in product_import reads one): 123.00000000000001 shows
as 00123, and 1.23456789012345E+20 as 123456789012345000000, not the binary float's 123456789012344995840.

A shared string is read as Excel wrote it: Excel writes a character XML cannot hold (a control character)
and a carriage return as an escape, "_x0001_" and "_x000D_", and an underscore that would start one as
"_x005F_"; openpyxl keeps the escapes as text, so a SKU holding a control character would be read as
"A_x0001_" and pass the control-character rule, and a name's line break typed in Excel as "_x000D_\n".

Imported on first use, with openpyxl: a CSV import and the API's cold start do without both.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cached_property
from itertools import pairwise
from typing import Any

from openpyxl.cell.text import Text
from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.numbers import BUILTIN_FORMATS, BUILTIN_FORMATS_MAX_SIZE
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.xml.constants import SHARED_STRINGS, SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse  # through defusedxml, as openpyxl's own reading

_ZEROS = re.compile(r"0+")
# Excel's format codes are shorter than 255 characters ([MS-OI29500] 2.1.712, numFmt): a longer run of zeros
# is no format Excel writes, and padding to it would cost a file's every cell that many characters (one of
# 2 MiB in the styles part, on a row of 16,384 cells, 32 GiB). Padded to this width, a SKU is still too long.
_MAX_FORMAT_CODE = 255


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
                widths[style_id] = min(len(code), _MAX_FORMAT_CODE)
        return widths

    def _get_row(
        self,
        row: list[dict[str, Any]],
        min_col: int = 1,
        max_col: int | None = None,
        values_only: bool = False,
    ) -> tuple[Any, ...]:
        columns = [cell["column"] for cell in row]
        if any(later <= earlier for earlier, later in pairwise(columns)):
            # Excel writes a row's cells left to right, once each; openpyxl sizes the row by its last cell
            # and keeps the last of a column, so a cell before another of its row, or twice, would be lost
            # without a word. A ValueError: the import refuses the sheet as malformed (FileMalformed).
            raise ValueError("cells out of order")
        values: tuple[Any, ...] = super()._get_row(row, min_col, max_col, values_only)
        widths = self._zero_padded
        if not widths or not values_only:
            return values
        last = min_col + len(values) - 1  # the cells openpyxl kept: those in range
        padded: list[Any] | None = None
        for cell in row:
            column = cell["column"]
            if not min_col <= column <= last:
                continue
            width = widths.get(cell["style_id"] or 0)
            shown = _padded(cell["value"], width) if width else None
            if shown is not None:
                padded = padded or list(values)
                padded[column - min_col] = shown
        return values if padded is None else tuple(padded)


def _padded(value: object, width: int) -> str | None:
    """The whole number as a zeros format of `width` shows it, or None if it is no whole number."""
    if type(value) is int:
        number = Decimal(value)
    elif type(value) is float:
        number = Decimal(format(value, ".15g"))  # Excel shows 15 significant digits
    else:
        return None  # text, a boolean, a date: no number to pad
    if not number.is_finite() or number != number.to_integral_value():
        return None
    digits = str(abs(int(number))).zfill(width)
    return "-" + digits if number < 0 else digits


# ST_Xstring's escape, "_x" and four hex digits and "_" (ECMA-376 Part 1, 22.9.2.19; [MS-OI29500] 2.1.1747:
# Excel escapes a carriage return, and "_x005F_" only the underscore that would start an escape). A
# surrogate is left as written: a lone one can't be encoded later, and Excel writes no character as a pair.
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_STRING_ITEM = f"{{{SHEET_MAIN_NS}}}si"


def _unescaped(text: str) -> str:
    if "_x" not in text:
        return text
    return _ESCAPE.sub(lambda found: _character(found.group(0), int(found.group(1), 16)), text)


def _character(escape: str, code: int) -> str:
    return escape if 0xD800 <= code <= 0xDFFF else chr(code)


class SheetListReader(ExcelReader):  # type: ignore[misc]
    """Reads the workbook's parts openpyxl needs (manifest, shared strings, styles...) and lists its
    worksheets, each read only when iterated. Chartsheets hold no rows and are not read."""

    def __init__(self, source: object) -> None:
        super().__init__(source, read_only=True, data_only=True)

    def read_strings(self) -> None:
        """openpyxl's `read_string_table` with the escapes decoded in one pass, left to right ("_x005F_x0001_"
        is the text "_x0001_"), where openpyxl deletes each "x005F_" and keeps the other escapes as text."""
        part = self.package.find(SHARED_STRINGS)
        if part is None:
            return
        strings = []
        with self.archive.open(part.PartName[1:]) as source:
            for _, node in iterparse(source):
                if node.tag == _STRING_ITEM:
                    strings.append(_unescaped(Text.from_tree(node).content))
                    node.clear()
        self.shared_strings = strings

    def read_worksheets(self) -> None:
        for sheet, relation in self.parser.find_sheets():
            if relation.target not in self.valid_files or "chartsheet" in relation.Type:
                continue
            worksheet = _UnsizedSheet(self.wb, sheet.name, relation.target, self.shared_strings)
            worksheet.sheet_state = sheet.state
            self.wb._sheets.append(worksheet)
