"""Reading an uploaded product file (CSV or XLSX) into validated product rows, one row at a time, with
limits that hold before the work is done (DESIGN.md, "Product files: reading"; SECURITY.md)."""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
import zlib
from array import array
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from time import monotonic
from typing import IO, Literal, NamedTuple

from shared.domain.catalog import sku_key
from shared.domain.product_rows import ProductRow, ProductType, RowProblem, RowResult, RowStatus
from shared.money import unsigned_zero

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_UNZIPPED_BYTES = 100 * 1024 * 1024  # a 5 MiB zip could otherwise expand to gigabytes of XML
_MIB = 1024 * 1024
MAX_SHEET_BYTES = 64 * _MIB  # the sheet is streamed: 50,000 rows of inline text fit
MAX_SHARED_STRINGS_BYTES = 16 * _MIB  # held in memory as a list of strings
MAX_SHARED_STRINGS = 250_000  # entries: 50,000 rows of 5 distinct texts
MAX_STYLES_BYTES = 2 * _MIB  # parsed into objects: Excel's 64,000 cell formats fit
MAX_STYLE_ELEMENTS = 150_000
MAX_PART_BYTES = 2 * _MIB  # any other part read whole (workbook, relationships, theme, properties)
MAX_PART_ELEMENTS = 100_000
MAX_ROW_XML_BYTES = 2 * _MIB  # one sheet row's XML
MAX_SHEET_ROW = 1_048_576  # Excel's last row
MAX_ROW_GAP = 1_000  # rows a sheet may skip between two rows it holds
MAX_READ_SECONDS = 10.0  # a dry run's pass and an apply's first (its writing pass ends at the deadline)
MAX_MEMORY_GROWTH = 200 * _MIB  # backstop: the caps keep a pass well under this
MAX_DECIMAL_PLACES = 4
MAX_AMOUNT = Decimal(1_000_000_000)
MAX_COLUMNS = 1_000  # named header cells: a product file uses 8, an export from a shop or ERP a few dozen
MAX_IGNORED_SHOWN = 50  # ignored columns named in the answer (with how many more)
MAX_SHOWN_TEXT = 60  # characters of a header or cell echoed in a message
_READ_CHUNK = 64 * 1024  # bytes of sheet XML or CSV checked at a time

TYPE_LABELS = {
    ProductType.FINISHED_GOOD: "finished good",
    ProductType.COMPONENT: "component",
    ProductType.RAW_MATERIAL: "raw material",
    ProductType.SUB_ASSEMBLY: "sub-assembly",
    ProductType.SERVICE: "service",
    ProductType.NON_INVENTORY: "non-inventory",
}

UNSAVED_FORMULA = "formula without a saved value: open the file in Excel and save it again"
_XERO_NAME_LENGTH = 50
_QBO_NAME_CHARACTERS = {":": "':'", "\t": "a tab", "\n": "a line break", "\r": "a line break"}
_EXCEL_ERRORS = frozenset(
    {"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!", "#SPILL!", "#CALC!"}
)

_XLS_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2: legacy .xls, and also password-protected .xlsx
_SCIENTIFIC = re.compile(r"\d(?:[.,]\d+)?E\+\d+", re.IGNORECASE)
_DOT_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d*)?")
_COMMA_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:[. \u00a0\u202f]\d{3})+|\d*)(?:,\d*)?")
# one thousands group after a point, as a decimal-comma locale shows 1250 ("0.125" groups nothing)
_THOUSANDS_POINT = re.compile(r"[+-]?[1-9]\d{0,2}\.\d{3}")
_CURRENCY_AND_SPACE = " \u00a0$€£"


def _header_key(text: str) -> str:
    """Headers compare without case, spaces, punctuation or a bracketed note: "Unit cost ($)" = "unitcost"."""
    return _NOT_IN_KEY.sub("", _without_notes(text.casefold()))


_NOT_IN_KEY = re.compile(r"[^0-9a-z]")


def _without_notes(text: str) -> str:
    """The text without its bracketed notes, each "(" to the next ")" on its line, in one pass: the regex
    `\\(.*?\\)` searched on from every "(", so a cell of "((((..." took time quadratic in its length."""
    parts: list[str] = []
    start = 0
    closing = -1  # the first ")" after the last "(" looked at
    while (opening := text.find("(", start)) >= 0:
        if closing < opening:
            closing = text.find(")", opening)
            if closing < 0:
                break  # no "(" from here on has a ")" after it
        newline = text.find("\n", opening, closing)
        if newline >= 0:  # no note closes on this line: its text stays
            parts.append(text[start : newline + 1])
            start = newline + 1
        else:
            parts.append(text[start:opening])
            start = closing + 1
    parts.append(text[start:])
    return "".join(parts)


_TYPES_BY_KEY = {_header_key(label): product_type for product_type, label in TYPE_LABELS.items()}
_TYPE_CHOICES = ", ".join(TYPE_LABELS.values())

Kind = Literal["code", "text", "type", "amount"]


@dataclass(frozen=True)
class _Field:
    name: str  # the ProductRow attribute
    label: str
    aliases: tuple[str, ...]
    kind: Kind
    required: bool = False
    max_length: int | None = None
    length_reason: str = ""


_FIELDS = (
    _Field(
        "sku",
        "SKU",
        ("SKU", "Item code", "Code", "Product code", "Part number"),
        "code",
        required=True,
        max_length=30,
        length_reason=" (Xero item codes)",
    ),
    _Field(
        "name",
        "Name",
        ("Name", "Product name", "Item name", "Product/Service name"),
        "text",
        required=True,
        max_length=100,
        length_reason=" (QuickBooks Online item names)",
    ),
    _Field("type", "Type", ("Type", "Product type", "Item type"), "type"),
    _Field(
        "unit_cost", "Unit cost", ("Unit cost", "Cost", "Purchase cost", "Purchases unit price"), "amount"
    ),
    _Field("unit", "Unit", ("Unit", "UOM", "Unit of measure"), "text", max_length=30),
    _Field("reorder_point", "Reorder point", ("Reorder point", "Reorder level", "Min stock"), "amount"),
    _Field("sale_price", "Sale price", ("Sale price", "Sales price", "Price", "Sales unit price"), "amount"),
    _Field("barcode", "Barcode", ("Barcode", "EAN", "UPC", "GTIN"), "code", max_length=50),
)
_FIELDS_BY_HEADER = {_header_key(alias): field for field in _FIELDS for alias in field.aliases}


class FileRefused(Exception):
    """The whole file is refused; the message is shown to the user as is."""


class HostileFile(FileRefused):
    """Refused as input the service will not take at all, rather than reported as a file error: the caller
    answers 400 naming the file."""


class FileTooCostly(HostileFile):
    """Refused by a limit on what reading it would cost (parts' sizes, row numbers, rows, columns, time,
    memory), before that cost is paid."""


class OutOfTime(FileTooCostly):
    """Refused as its reading pass ran out of time (ReadBudget's seconds, or its deadline)."""


class FileMalformed(HostileFile):
    """The workbook holds what no spreadsheet program writes: a value, cell reference or row number its
    reader cannot read (a number "NaN" or "0x1A", a shared-string index out of range, cell "ZZZZ2")."""


class ReadBudget:
    """How long (and, with a probe, how much memory growth) one reading pass may take: `seconds`, or less if
    `until` (a time on `clock`) comes sooner. `check` is called per row and per chunk of inflated XML; it
    raises FileRefused once the budget is spent."""

    def __init__(
        self,
        seconds: float | None = None,  # MAX_READ_SECONDS
        memory_growth: Callable[[], int] | None = None,
        max_growth: int = MAX_MEMORY_GROWTH,
        clock: Callable[[], float] = monotonic,
        until: float = float("inf"),
    ) -> None:
        now = clock()
        self._deadline = min(now + (MAX_READ_SECONDS if seconds is None else seconds), until)
        self.seconds = max(0.0, self._deadline - now)
        self._clock = clock
        self._memory_growth = memory_growth
        self._max_growth = max_growth
        self._calls = 0

    def check(self) -> None:
        self._calls += 1
        if self._clock() > self._deadline:
            raise OutOfTime(
                f"Reading the file took longer than {self.seconds:.3g} seconds, the most an import may take. "
                "Split it into smaller files or save it again as CSV UTF-8."
            )
        probe = self._memory_growth
        if probe is not None and self._calls % 512 == 0 and probe() > self._max_growth:
            raise FileTooCostly(
                "Reading the file needs more memory than an import may use. "
                "Split it into smaller files or save it again as CSV UTF-8."
            )


class _CellProblem(Exception):
    """One cell is refused; the message is shown next to its row and column."""


class _Row(NamedTuple):
    number: int
    values: Sequence[object]
    unsaved_formulas: frozenset[int]  # 0-based columns whose formula has no saved value


_NO_FORMULAS: frozenset[int] = frozenset()


class _Column(NamedTuple):
    position: int
    header: str
    field: _Field


@dataclass(frozen=True)
class ProductFile:
    """An open product file whose header has been read; `rows` reads the rest, one row at a time, and
    raises FileRefused if the file turns out to be unusable part way (too many rows, a damaged workbook)."""

    ignored_columns: list[str]  # the first MAX_IGNORED_SHOWN, as written (shortened past MAX_SHOWN_TEXT)
    ignored_columns_left_out: int
    rows: Iterator[RowResult]


@contextmanager
def open_product_file(content: bytes, budget: ReadBudget | None = None) -> Iterator[ProductFile]:
    """Raises FileRefused when the type, size, encoding, limits or header refuse the file before any row.
    Without a budget, a pass gets the default time budget and no memory probe."""
    budget = budget or ReadBudget()
    workbook = content.startswith(b"PK")
    if workbook:
        raw_rows, decimal_comma = _xlsx_rows(content, budget), False
    else:
        separator = _csv_separator(content)
        raw_rows, decimal_comma = _csv_rows(content, separator), separator == ";"
    try:
        header = None
        for row in raw_rows:
            budget.check()
            _check_row_limit(row.number, 0)
            if not _is_blank(row):
                header = row
                break
        if header is None:
            raise FileRefused("The file has no header row and no products.")
        columns, ignored, left_out = _columns(header, budget)
        # a CSV row's cell past the header's last was split off another by a separator it held unquoted
        # ("1,234.50"), so the cells before it may be cut short too; a sheet's cell is never split
        width = None if workbook else len(header.values)
        yield ProductFile(
            ignored, left_out, _results(raw_rows, header.number, columns, decimal_comma, width, budget)
        )
    finally:
        raw_rows.close()  # closes the workbook even when the caller stops part way


def _check_row_limit(number: int, header_number: int) -> None:
    """Every row after the header counts, blank or not: blank rows cost time to read too."""
    if number - header_number > MAX_ROWS:
        raise FileTooCostly(
            f"The file has more than {MAX_ROWS:,} rows after the header (empty rows count too). "
            "Delete empty rows, or split it into smaller files."
        )


def _check_size(content: bytes) -> None:
    if not content:
        raise FileRefused("The file is empty.")
    if len(content) > MAX_FILE_BYTES:
        size = len(content) / (1024 * 1024)
        raise FileRefused(
            f"The file is {size:.1f} MiB; the limit is {MAX_FILE_BYTES // (1024 * 1024)} MiB. "
            "Split it into smaller files."
        )


def _csv_separator(content: bytes) -> str:
    """Checks that the content is UTF-8 text (without keeping a decoded copy) and picks the separator."""
    _check_size(content)
    if content.startswith(_XLS_SIGNATURE):
        raise FileRefused(
            "This is an Excel 97-2003 (.xls) or password-protected workbook. "
            "Save it as an Excel Workbook (.xlsx) without a password, or as CSV UTF-8."
        )
    if content.startswith(b"%PDF"):
        raise FileRefused(
            "This is a PDF. Upload the product list as an Excel workbook (.xlsx) or a CSV file."
        )
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRefused("This is UTF-16 text (Excel's 'Unicode Text'). Save it as 'CSV UTF-8' instead.")
    if b"\x00" in content[:8192]:
        raise FileRefused("This is not a CSV file or an Excel workbook (.xlsx).")
    decoder = codecs.getincrementaldecoder("utf-8")()
    for start in range(0, len(content) + 1, _READ_CHUNK):
        end = min(start + _READ_CHUNK, len(content))
        try:
            decoder.decode(content[start:end], final=end == len(content))
        except UnicodeDecodeError as error:
            # the decoder also held back the unfinished character at the end of the previous chunk
            offset = end - len(error.object) + error.start
            line = content.count(b"\n", 0, offset) + 1
            raise FileRefused(
                f"The file is not UTF-8 text (line {line} has a character that is not UTF-8). "
                "In Excel, save it as 'CSV UTF-8 (Comma delimited)'."
            ) from None
    # the header is the first line that is not blank, as the reader finds it (it skips blank lines above)
    text = content.removeprefix(codecs.BOM_UTF8)
    first = _NOT_BLANK.search(text)
    start = 0 if first is None else text.rfind(b"\n", 0, first.start()) + 1
    end = text.find(b"\n", start)
    header_line = text[start:] if end < 0 else text[start:end]
    return ";" if header_line.count(b";") > header_line.count(b",") else ","


_NOT_BLANK = re.compile(rb"\S")


# A line given to the CSV reader after the file's last. A quoted cell still open at the end of the file takes
# it in (the reader is not strict, as Excel is not, and keeps the rest of the file as that one cell);
# otherwise it makes a row of its own.
_CSV_END = "\ufffe end of file"


def _csv_rows(content: bytes, separator: str) -> Generator[_Row, None, None]:
    text = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")  # decoded as read
    ended = False

    def lines() -> Iterator[str]:
        nonlocal ended
        yield from text
        ended = True  # the reader's next row holds _CSV_END: the rows before it ended with their lines
        yield _CSV_END

    reader = csv.reader(lines(), delimiter=separator)
    number = 0
    try:
        for number, values in enumerate(reader, start=1):
            if ended:
                if values != [_CSV_END]:
                    raise FileRefused(
                        f'Row {number} opens a quoted cell (with ") that is never closed, so the rest of the '
                        "file would be read as that one cell. Close the quote, or remove it."
                    )
                return
            yield _Row(number, values, _NO_FORMULAS)
    except csv.Error as error:
        raise FileRefused(f"Row {number + 1} cannot be read as CSV: {error}.") from None


def _xlsx_rows(content: bytes, budget: ReadBudget) -> Generator[_Row, None, None]:
    # on first use: a CSV import and the API's cold start do without openpyxl
    from defusedxml import DefusedXmlException  # openpyxl parses through defusedxml: entities are refused
    from openpyxl.utils.exceptions import InvalidFileException

    from shared.domain.product_workbook import SheetListReader

    _check_size(content)
    try:
        archive = _CappedZip(io.BytesIO(content), budget)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _not_a_workbook() from None
    try:
        archive.check_declared_sizes()
        reader = SheetListReader(io.BytesIO(content))
        reader.archive.close()
        reader.archive = archive  # every part openpyxl reads inflates through the caps
        reader.read()
        workbook = reader.wb
    except FileRefused:
        archive.close()
        raise
    except (
        zipfile.BadZipFile,
        KeyError,
        OSError,
        ValueError,
        InvalidFileException,
        SyntaxError,
        zlib.error,
        # openpyxl builds the styles as written: an empty <fill/> fails its type check (TypeError), a
        # numFmtId past 2**31 its array of style ids (OverflowError)
        TypeError,
        ArithmeticError,
    ) as error:
        archive.close()
        if isinstance(error, DefusedXmlException) or isinstance(error.__cause__, DefusedXmlException):
            raise _declares_entities() from None
        raise _not_a_workbook() from None
    title: str | None = None
    number: int | None = None  # the last row read, once rows are read
    try:
        if not workbook.worksheets:
            raise FileRefused("The workbook has no worksheet.")
        # the sheet named Products, else the first: of the sheets the person sees (a template may keep old
        # data on a hidden sheet), and of them all only when every sheet is hidden
        shown = [ws for ws in workbook.worksheets if ws.sheet_state == "visible"] or workbook.worksheets
        sheet = next((ws for ws in shown if ws.title.strip().casefold() == "products"), shown[0])
        title = sheet.title
        sheet.reset_dimensions()  # a wrong <dimension> would otherwise cut rows off silently
        # openpyxl names the sheet's part in the zip only in this attribute
        archive.sheet_path = sheet._worksheet_path
        unsaved = _scan_sheet(archive, sheet._worksheet_path, budget)
        rows = sheet.iter_rows(values_only=True)
        number = 0
        for number, values in enumerate(rows, start=1):
            yield _Row(number, values, unsaved.get(number, _NO_FORMULAS))
    except DefusedXmlException:
        raise _declares_entities() from None
    except (zipfile.BadZipFile, KeyError, EOFError, zlib.error, SyntaxError):
        raise FileRefused("The workbook is damaged. Open it in Excel and save it again.") from None
    except (ValueError, LookupError, TypeError, ArithmeticError, AttributeError):
        # openpyxl reads a cell's number with int()/float(), a shared string by its index, a cell reference
        # and a row number as written: what no spreadsheet program writes fails there, and only there
        raise _malformed_sheet(title, number) from None
    finally:
        workbook.close()
        archive.close()


def _malformed_sheet(title: str | None, last_row: int | None) -> FileMalformed:
    sheet = "The workbook" if title is None else f"The sheet {_quoted(title)}"
    where = "" if last_row is None else " in its first row" if last_row == 0 else f" after row {last_row:,}"
    return FileMalformed(
        f"{sheet} cannot be read{where}: a cell holds a value, cell reference or row number that Excel "
        "never writes (a number such as NaN or 0x1A, a missing shared text, a column beyond XFD). "
        "Open it in Excel and save it again, or save it as CSV UTF-8."
    )


def _declares_entities() -> FileTooCostly:
    return FileTooCostly(
        "The workbook's XML declares entities (a DTD), which Excel never writes and which can expand "
        "without end or read other files. Save it again from Excel, or as CSV UTF-8."
    )


def _not_a_workbook() -> FileRefused:
    return FileRefused(
        "This is a zip archive but not an Excel workbook (.xlsx). Save it from Excel as .xlsx or CSV UTF-8."
    )


_STYLES_PART = "xl/styles.xml"  # openpyxl reads the styles from this path, whatever the manifest says
_CONTENT_TYPES_PART = "[Content_Types].xml"
_SHARED_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_WORKSHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_OVERRIDE = re.compile(rb"<(?:[\w.-]+:)?Override\b([^>]*)>")
_ATTRIBUTE = re.compile(rb"""\b(PartName|ContentType)\s*=\s*["']([^"']*)["']""")
_SHARED_STRING = re.compile(rb"<(?:[\w.-]+:)?si[\s/>]")
_ELEMENT = re.compile(rb"<[^/?!]")


class _Cap(NamedTuple):
    what: str  # how the person reads the part's name
    max_bytes: int
    max_elements: int | None  # how many elements (shared strings: entries) the part may hold
    element: re.Pattern[bytes] = _ELEMENT


_STYLES_CAP = _Cap("styles part", MAX_STYLES_BYTES, MAX_STYLE_ELEMENTS)
_SHARED_STRINGS_CAP = _Cap(
    "shared strings part", MAX_SHARED_STRINGS_BYTES, MAX_SHARED_STRINGS, _SHARED_STRING
)
_SHEET_CAP = _Cap("worksheet", MAX_SHEET_BYTES, None)
_PART_CAP = _Cap("part", MAX_PART_BYTES, MAX_PART_ELEMENTS)


class _CappedZip(zipfile.ZipFile):
    """The workbook's zip, whose parts inflate through their caps and the read budget.

    A part's cap comes from what openpyxl does with it: the styles (always xl/styles.xml) and the part the
    manifest names as shared strings are parsed whole, with their own caps; the sheet being imported is
    streamed, with the largest cap, and only once it has been chosen; every other part gets the small cap,
    so naming a part a worksheet in the manifest earns it nothing while the workbook opens."""

    def __init__(self, file: IO[bytes], budget: ReadBudget) -> None:
        super().__init__(file)
        self.budget = budget
        self.sheet_path: str | None = None
        self._shared_strings: set[str] = set()
        self._worksheets: set[str] = set()

    def check_declared_sizes(self) -> None:
        """Refuses from the sizes the zip declares, before anything inflates (they are enforced again as
        the bytes inflate: a zip may declare less than it holds)."""
        members = self.infolist()
        if sum(member.file_size for member in members) > MAX_UNZIPPED_BYTES:
            raise FileTooCostly(
                f"The workbook unpacks to more than {MAX_UNZIPPED_BYTES // _MIB} MiB. "
                "Split it into smaller files."
            )
        if _CONTENT_TYPES_PART in self.NameToInfo:
            for attributes in _OVERRIDE.findall(self.read(_CONTENT_TYPES_PART)):
                found = {name.decode(): value.decode() for name, value in _ATTRIBUTE.findall(attributes)}
                part = found.get("PartName", "").lstrip("/")
                if found.get("ContentType") == _SHARED_STRINGS_TYPE:
                    self._shared_strings.add(part)
                elif found.get("ContentType") == _WORKSHEET_TYPE:
                    self._worksheets.add(part)
        for member in members:
            cap = self._cap(member.filename, loading=False)
            if cap is not None and member.file_size > cap.max_bytes:
                raise _over_cap(cap, member.filename, member.file_size)
        # the parts parsed whole are counted first, at the speed of inflating, rather than parsed to their cap
        for part in sorted({_STYLES_PART, *self._shared_strings} & set(self.NameToInfo)):
            with self.open(part) as source:
                while source.read(_READ_CHUNK):
                    pass

    def _cap(self, name: str, *, loading: bool = True) -> _Cap | None:
        if name == _STYLES_PART:
            return _STYLES_CAP
        if name in self._shared_strings:
            return _SHARED_STRINGS_CAP
        if name == self.sheet_path or (not loading and name in self._worksheets):
            return _SHEET_CAP
        if name.endswith((".xml", ".rels", ".vml")) or loading:
            return _PART_CAP
        return None  # pictures and other binaries openpyxl leaves alone: the total bounds them

    def open(
        self,
        name: str | zipfile.ZipInfo,
        mode: Literal["r", "w"] = "r",
        pwd: bytes | None = None,
        **kwargs: bool,
    ) -> IO[bytes]:
        source = super().open(name, mode, pwd, **kwargs)
        if mode != "r":
            return source
        part = name.filename if isinstance(name, zipfile.ZipInfo) else name
        cap = self._cap(part)
        assert cap is not None
        return _CappedPart(source, part, cap, self.budget)  # type: ignore[return-value]


def _over_cap(cap: _Cap, part: str, size: int) -> FileTooCostly:
    return FileTooCostly(
        f"The workbook's {cap.what} ({part}) unpacks to more than {cap.max_bytes // _MIB} MiB "
        f"(it is {size / _MIB:.1f} MiB or more), more than a product list needs. "
        "Copy the products into a new workbook, or save it as CSV UTF-8."
    )


class _CappedPart(io.RawIOBase):
    """One part as it inflates: counts bytes (and elements where they cost memory), checks the budget."""

    def __init__(self, source: IO[bytes], part: str, cap: _Cap, budget: ReadBudget) -> None:
        super().__init__()
        self._source, self._part, self._cap, self._budget = source, part, cap, budget
        self._bytes = 0
        self._elements = 0
        self._tail = b""  # the end of the previous chunk: an element split across two reads counts once

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(_READ_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        data = self._source.read(min(size, _READ_CHUNK))
        self._bytes += len(data)
        if self._bytes > self._cap.max_bytes:
            raise _over_cap(self._cap, self._part, self._bytes)
        if self._cap.max_elements is not None and data:
            window = self._tail + data
            self._elements += len(self._cap.element.findall(window)) - len(
                self._cap.element.findall(self._tail)
            )
            self._tail = window[-16:]
            if self._elements > self._cap.max_elements:
                raise FileTooCostly(
                    f"The workbook's {self._cap.what} ({self._part}) holds more than "
                    f"{self._cap.max_elements:,} entries, more than a product list needs. "
                    "Copy the products into a new workbook, or save it as CSV UTF-8."
                )
        self._budget.check()
        return data

    def close(self) -> None:
        self._source.close()
        super().close()


_ROW_TAG = re.compile(rb"<(?:[\w.-]+:)?row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb"""\br\s*=\s*["']\s*([0-9]+)""")
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.DOTALL)
_CELL_REF = re.compile(rb'\br="([A-Z]+)([0-9]+)"')
_FORMULA = re.compile(rb"<(?:\w+:)?f\b")
_SAVED_VALUE = re.compile(rb"<(?:\w+:)?v\b[^>]*>[^<]")


def _scan_sheet(archive: zipfile.ZipFile, sheet_path: str, budget: ReadBudget) -> dict[int, frozenset[int]]:
    """One streamed pass over the sheet's XML before any row is read: refuses row numbers beyond Excel's
    last row or far past the previous row, and finds the cells holding a formula but no saved value, which
    openpyxl (data_only) reads as empty."""
    found: dict[int, set[int]] = {}
    last_row = 0
    with archive.open(sheet_path) as source:
        pending = b""
        while chunk := source.read(_READ_CHUNK):
            data = pending + chunk
            cut = data.rfind(b"row>") + 4  # just after a row tag, never inside a cell
            if cut < 4:
                if len(data) > MAX_ROW_XML_BYTES:
                    raise FileTooCostly(
                        f"A row of the sheet is more than {MAX_ROW_XML_BYTES // _MIB} MiB of data, "
                        "more than a product list needs. Save it as CSV UTF-8."
                    )
                pending = data
                continue
            last_row = _check_row_numbers(data[:cut], last_row)
            _collect_unsaved(data[:cut], found)
            pending = data[cut:]
            budget.check()
        _check_row_numbers(pending, last_row)
        _collect_unsaved(pending, found)
    return {row: frozenset(columns) for row, columns in found.items()}


def _check_row_numbers(xml: bytes, last_row: int) -> int:
    for tag in _ROW_TAG.finditer(xml):
        number = _ROW_NUMBER.search(tag.group(1))
        row = int(number.group(1)) if number else last_row + 1
        if row > MAX_SHEET_ROW:
            raise FileTooCostly(
                f"The sheet has a row numbered {row:,}, beyond Excel's last row ({MAX_SHEET_ROW:,}). "
                "Open it in Excel and save it again."
            )
        if row <= last_row:  # openpyxl drops such a row without a word: its product would be lost
            raise FileMalformed(
                f"The sheet has row {row:,} after row {last_row:,}: its rows are out of order, as Excel "
                "never writes them. Open it in Excel and save it again, or save it as CSV UTF-8."
            )
        if row - last_row - 1 > MAX_ROW_GAP:
            raise FileTooCostly(
                f"The sheet jumps from row {last_row:,} to row {row:,}: "
                f"more than {MAX_ROW_GAP:,} empty rows. "
                "Delete the empty rows, or copy the products into a new sheet."
            )
        last_row = row
    return last_row


def _collect_unsaved(xml: bytes, found: dict[int, set[int]]) -> None:
    if not _FORMULA.search(xml):
        return
    from openpyxl.utils import column_index_from_string

    for cell in _CELL.finditer(xml):
        body = cell.group(2) or b""
        ref = _CELL_REF.search(cell.group(1))
        if ref and _FORMULA.search(body) and not _SAVED_VALUE.search(body):
            column = column_index_from_string(ref.group(1).decode()) - 1
            found.setdefault(int(ref.group(2)), set()).add(column)


def _results(
    rows: Iterator[_Row],
    header_number: int,
    columns: list[_Column],
    decimal_comma: bool,
    width: int | None,
    budget: ReadBudget,
) -> Iterator[RowResult]:
    first_row_of = _FirstRows()  # the only per-row memory
    previous = header_number
    for row in rows:
        budget.check()
        _check_row_limit(row.number, header_number)
        if _is_blank(row):
            continue
        # the blank rows between two products (a row missing from the sheet is blank in Excel too)
        for number in range(previous + 1, row.number):
            yield RowResult(row=number, status=RowStatus.SKIPPED)
        previous = row.number
        yield _check_row(row, columns, first_row_of, decimal_comma, width)


class _FirstRows:
    """The row each normalised SKU was first on, in 12 bytes a slot: the SKU's hash and the row number,
    in an open-addressing table kept at most 2/3 full (a dict of strings costs about 100 bytes a row).

    The hash is Python's 64-bit SipHash of the string, keyed afresh in every process, so no file can be
    made to collide on purpose; two different SKUs of a 50,000-row file share one with a probability
    below one in ten billion (n² / 2⁶⁵), where that row would be reported as a duplicate."""

    _EMPTY = 0  # a slot's hash when it holds nothing (a SKU whose hash is 0 is stored as 1)

    def __init__(self, slots: int = 1024) -> None:
        self._hashes = array("q", bytes(8 * slots))
        self._rows = array("i", bytes(4 * slots))  # row numbers stop at Excel's last row, 1,048,576
        self._count = 0

    def first(self, key: str, row: int) -> int:
        """The row `key` was first on: `row` itself when it is new (and is recorded)."""
        hashed = hash(key) or 1
        slot = self._slot(hashed)
        if self._hashes[slot] == hashed:
            return self._rows[slot]
        self._hashes[slot], self._rows[slot] = hashed, row
        self._count += 1
        if 3 * self._count > 2 * len(self._hashes):
            self._grow()
        return row

    def _slot(self, hashed: int) -> int:
        """The slot holding `hashed`, or the empty one where it would go (linear probing)."""
        mask = len(self._hashes) - 1
        slot = hashed & mask
        while (found := self._hashes[slot]) != self._EMPTY and found != hashed:
            slot = (slot + 1) & mask
        return slot

    def _grow(self) -> None:
        hashes, rows = self._hashes, self._rows
        self._hashes = array("q", bytes(16 * len(hashes)))
        self._rows = array("i", bytes(8 * len(rows)))
        for hashed, row in zip(hashes, rows, strict=True):
            if hashed != self._EMPTY:
                slot = self._slot(hashed)
                self._hashes[slot], self._rows[slot] = hashed, row


def _is_blank(row: _Row) -> bool:
    return not row.unsaved_formulas and all(
        value is None or (isinstance(value, str) and not value.strip()) for value in row.values
    )


def _columns(header: _Row, budget: ReadBudget) -> tuple[list[_Column], list[str], int]:
    """The recognised columns, the ignored ones to name (the first MAX_IGNORED_SHOWN, each once) and how
    many more were ignored. Linear in the header's width, and refused past MAX_COLUMNS named cells."""
    columns: dict[str, _Column] = {}
    ignored: list[str] = []
    seen: set[str] = set()
    named = 0
    for position, value in enumerate(header.values):
        if position % 1024 == 1023:
            budget.check()
        text = _text(value)
        if text is None:
            continue
        named += 1
        if named > MAX_COLUMNS:
            raise FileTooCostly(
                f"Row {header.number} names more than {MAX_COLUMNS:,} columns; a product file needs at most "
                f"{len(_FIELDS)}. Delete the columns Partsemble does not use, or save only the product "
                "columns as CSV UTF-8."
            )
        field = _FIELDS_BY_HEADER.get(_header_key(text))
        if field is None:
            if text not in seen:
                seen.add(text)
                ignored.append(text)
        elif field.name in columns:
            raise FileRefused(
                f"Columns {_quoted(columns[field.name].header)} and {_quoted(text)} both give the "
                f"{field.label}; keep one."
            )
        else:
            columns[field.name] = _Column(position, _shortened(text), field)
    for field in _FIELDS:
        if field.required and field.name not in columns:
            found = [text for value in header.values if (text := _text(value)) is not None]
            listed = ", ".join(_quoted(text) for text in found[:MAX_IGNORED_SHOWN])
            more = len(found) - MAX_IGNORED_SHOWN
            raise FileRefused(
                f"No {field.label} column. Row {header.number} should name the columns; "
                f"{field.label} may also be called {', '.join(field.aliases[1:])}. "
                f"Row {header.number} has: {listed}" + (f" and {more:,} more." if more > 0 else ".")
            )
    shown = [_shortened(text) for text in ignored[:MAX_IGNORED_SHOWN]]
    return list(columns.values()), shown, len(ignored) - len(shown)


def _shortened(text: str) -> str:
    """Text as echoed in an answer: at most MAX_SHOWN_TEXT characters, with an ellipsis where cut."""
    return text if len(text) <= MAX_SHOWN_TEXT else text[: MAX_SHOWN_TEXT - 1] + "\u2026"


def _quoted(text: str) -> str:
    return f"'{_shortened(text)}'"


def _check_row(
    row: _Row, columns: list[_Column], first_row_of: _FirstRows, decimal_comma: bool, width: int | None
) -> RowResult:
    errors: list[RowProblem] = [] if width is None else _split_cells(row, width, decimal_comma)
    warnings: list[RowProblem] = []
    parsed: dict[str, object] = {}
    for column in columns:
        field = column.field
        raw = row.values[column.position] if column.position < len(row.values) else None
        try:
            value = _parse_cell(raw, column.position in row.unsaved_formulas, field, decimal_comma)
            if isinstance(value, str) and field.kind in ("code", "text"):
                warnings.extend(
                    RowProblem(column=column.header, problem=w) for w in _text_warnings(value, field, raw)
                )
        except _CellProblem as problem:
            errors.append(RowProblem(column=column.header, problem=str(problem)))
            continue
        parsed[field.name] = value
    sku = parsed.get("sku")
    if isinstance(sku, str):
        key = sku_key(sku)
        first = first_row_of.first(key, row.number)
        if first != row.number:
            sku_header = next(column.header for column in columns if column.field.name == "sku")
            errors.append(
                RowProblem(column=sku_header, problem=f"duplicate SKU: row {first} has the same SKU")
            )
        parsed["key"] = key
    sku_text = sku if isinstance(sku, str) else None
    name_text = name if isinstance(name := parsed.get("name"), str) else None
    if errors:
        return RowResult(
            row.number, RowStatus.ERROR, sku_text, name_text, errors=tuple(errors), warnings=tuple(warnings)
        )
    product = ProductRow.model_validate(parsed)
    return RowResult(row.number, RowStatus.VALID, sku_text, name_text, product, warnings=tuple(warnings))


def _split_cells(row: _Row, width: int, decimal_comma: bool) -> list[RowProblem]:
    beyond = next((i for i in range(width, len(row.values)) if _text(row.values[i]) is not None), None)
    if beyond is None:
        return []
    separator, example = (";", "") if decimal_comma else (",", ' ("1,234.50")')
    problem = (
        f"the row has a value past the header's last column ({_quoted(_text(row.values[beyond]) or '')}): "
        f"a value holding '{separator}' must be in quotes{example}"
    )
    return [RowProblem(column=f"column {beyond + 1}", problem=problem)]


def _parse_cell(raw: object, unsaved_formula: bool, field: _Field, decimal_comma: bool) -> object:
    if unsaved_formula:
        raise _CellProblem(UNSAVED_FORMULA)
    if isinstance(raw, str) and raw.strip() in _EXCEL_ERRORS:
        raise _CellProblem(f"the cell shows the Excel error {raw.strip()}")
    value = _PARSERS[field.kind](raw, decimal_comma)
    if value is None and field.required:
        raise _CellProblem(f"missing {field.label}")
    if isinstance(value, str) and field.max_length is not None and len(value) > field.max_length:
        raise _CellProblem(
            f"too long: {len(value)} characters, the most is {field.max_length}{field.length_reason}"
        )
    if field.kind == "code" and isinstance(value, str) and _SCIENTIFIC.fullmatch(value):
        raise _CellProblem(f"'{value}' was shortened by Excel; format the column as Text and type it again")
    if isinstance(value, str) and field.kind in ("code", "text"):
        _refuse_unseen(value, field)
    return value


def _refuse_unseen(value: str, field: _Field) -> None:
    """A code (SKU, barcode) holds no control character, no invisible one (a tab, a zero-width space, a
    byte order mark) and no space but the plain one (a no-break space, as a SKU copied from a web page or a
    PDF holds, looks like a space and is another character): two SKUs that look the same would be different
    products, and the provider's item codes would not match what a person types. Text holds no control
    character but the line breaks and tabs a person can type in a cell (a name's are warned about:
    QuickBooks takes none)."""
    for position, char in enumerate(value, start=1):
        kind = unicodedata.category(char)
        typed = field.kind == "text" and char in "\t\n\r"
        unseen = kind == "Cf" or (kind[0] == "Z" and char != " ")  # Zs, Zl, Zp: spaces and line separators
        if (kind == "Cc" and not typed) or (field.kind == "code" and unseen):
            what = {"Cc": "a control character", "Cf": "an invisible character"}.get(
                kind, "a space other than the plain one"
            )
            name = unicodedata.name(char, "").lower()
            raise _CellProblem(
                f"{what} (U+{ord(char):04X}{' ' + name if name else ''}) at character {position}; remove it"
            )


def _text_warnings(value: str, field: _Field, raw: object) -> list[str]:
    warnings = []
    if isinstance(raw, date):
        warnings.append(f"Excel stored this as a date ({value}); check that this is what you meant")
    if field.name == "name":
        if len(value) > _XERO_NAME_LENGTH:
            warnings.append(f"longer than {_XERO_NAME_LENGTH} characters, the most a Xero item name can hold")
        unsupported = sorted({label for char, label in _QBO_NAME_CHARACTERS.items() if char in value})
        if unsupported:
            warnings.append(
                f"QuickBooks Online does not allow {' or '.join(unsupported)} in item names; "
                "this product will be skipped when syncing to QuickBooks Online"
            )
    return warnings


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, float):
        text = format(value, ".15g")
    elif isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    elif isinstance(value, date | time):
        text = value.isoformat()
    else:
        text = str(value)
    return text or None


def _parse_text(value: object, decimal_comma: bool) -> str | None:
    return _text(value)


def _parse_type(value: object, decimal_comma: bool) -> ProductType | None:
    text = _text(value)
    if text is None:
        return None
    product_type = _TYPES_BY_KEY.get(_header_key(text))
    if product_type is None:
        raise _CellProblem(f"unknown type {_quoted(text)}; use one of: {_TYPE_CHOICES}")
    return product_type


def _parse_amount(value: object, decimal_comma: bool) -> Decimal | None:
    if isinstance(value, bool | date | time):
        raise _CellProblem(f"not a number: {_text(value)}")
    if isinstance(value, float):
        amount = Decimal(format(value, ".15g"))
    elif isinstance(value, int | Decimal):
        amount = Decimal(value)
    else:
        text = _text(value)
        if text is None:
            return None
        amount = _number(text, decimal_comma)
    if not amount.is_finite():  # NaN compares with nothing, infinity is no amount
        raise _CellProblem(f"not a number: {_quoted(_text(value) or str(amount))}")
    # sign and size first: rounding 30 digits to 4 places would pass the context's 28-digit precision
    if amount < 0:
        raise _CellProblem(f"negative ({_shortened(str(amount))}); it must be 0 or more")
    amount = unsigned_zero(amount)
    if amount >= MAX_AMOUNT:
        raise _CellProblem(f"{_shortened(str(amount))} is too large; it must be below {MAX_AMOUNT:,}")
    exponent = amount.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) else 0
    if places > MAX_DECIMAL_PLACES:
        rounded = amount.quantize(Decimal(1).scaleb(-MAX_DECIMAL_PLACES))
        if rounded != amount:
            raise _CellProblem(
                f"{_shortened(str(amount))} has {places} decimal places; "
                f"at most {MAX_DECIMAL_PLACES} are allowed (round it in the file)"
            )
        amount = rounded
    return amount


def _number(text: str, decimal_comma: bool) -> Decimal:
    bare = text.strip(_CURRENCY_AND_SPACE)
    if decimal_comma and _THOUSANDS_POINT.fullmatch(bare):
        # Excel saves a CSV as shown: in a decimal-comma locale, 1250 shown with a thousands point is "1.250"
        whole, point = bare.replace(".", ""), format(Decimal(bare).normalize(), "f")
        raise _CellProblem(
            f"{_quoted(text)} may be {whole} (a thousands point) or {point}; "
            f"write {whole} or {point.replace('.', ',')}"
        )
    if decimal_comma and "," in bare:
        match = _COMMA_NUMBER.fullmatch(bare)
        digits = re.sub(r"[. \u00a0\u202f]", "", bare).replace(",", ".")
    else:
        match = _DOT_NUMBER.fullmatch(bare)
        digits = bare.replace(",", "")
    if match is None or not any(char.isdigit() for char in bare):
        raise _CellProblem(f"not a number: {_quoted(text)}")
    try:
        return Decimal(digits)
    except InvalidOperation:
        raise _CellProblem(f"not a number: {_quoted(text)}") from None


_PARSERS: dict[Kind, Callable[[object, bool], object]] = {
    "code": _parse_text,
    "text": _parse_text,
    "type": _parse_type,
    "amount": _parse_amount,
}
