"""Hostile product files, as the outside probe sent them: tiny on the wire, huge or endless to read."""

from __future__ import annotations

import io
import struct
import zipfile

import openpyxl


def workbook(rows: list[list[object]] | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows or [["SKU", "Name"], ["A-1", "Widget"]]:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def replaced(content: bytes, parts: dict[str, bytes]) -> bytes:
    """The workbook with some parts' XML replaced (compressed at the highest level, as a bomb is)."""
    source = zipfile.ZipFile(io.BytesIO(content))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for member in source.infolist():
            target.writestr(member.filename, parts.get(member.filename, source.read(member)))
        for name, data in parts.items():
            if name not in source.namelist():
                target.writestr(name, data)
    return buffer.getvalue()


def understated(content: bytes, part: str, declared: int) -> bytes:
    """The zip declares `declared` bytes for `part` (in both headers) whatever its data inflates to."""
    data = bytearray(content)
    name = part.encode()
    local = data.find(b"PK\x03\x04")
    while local >= 0:
        name_length = struct.unpack_from("<H", data, local + 26)[0]
        if bytes(data[local + 30 : local + 30 + name_length]) == name:
            struct.pack_into("<I", data, local + 22, declared)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        if bytes(data[central + 46 : central + 46 + name_length]) == name:
            struct.pack_into("<I", data, central + 24, declared)
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


STYLES_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)


def styles_bomb(megabytes: float = 95) -> bytes:
    """A workbook whose styles.xml inflates to ~95 MB of cell formats (the probe's was 288 KB)."""
    count = int(megabytes * 1024 * 1024 / 6)
    xml = STYLES_HEAD + b'<cellXfs count="%d">' % count + b"<xf/>\n" * count + b"</cellXfs></styleSheet>"
    return replaced(workbook(), {"xl/styles.xml": xml})


SST_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)


def shared_strings_bomb(megabytes: float = 95) -> bytes:
    """A workbook whose shared strings inflate to ~95 MB of tiny entries (the probe's was 241 KB)."""
    content = workbook([["SKU", "Name"], ["A-1", "Widget"]])
    entry = b"<si><t>x</t></si>"
    count = int(megabytes * 1024 * 1024 / len(entry))
    xml = SST_HEAD + entry * count + b"</sst>"
    return replaced(content, {"xl/sharedStrings.xml": xml, **_with_shared_strings(content)})


def _with_shared_strings(content: bytes) -> dict[str, bytes]:
    """openpyxl writes inline strings; Excel writes a shared strings part, declared in the manifest."""
    source = zipfile.ZipFile(io.BytesIO(content))
    types = source.read("[Content_Types].xml")
    if b"sharedStrings" not in types:
        types = types.replace(
            b"</Types>",
            b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
            b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        )
    return {"[Content_Types].xml": types}


SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>SKU</t></is></c>'
    b'<c r="B1" t="inlineStr"><is><t>Name</t></is></c></row>'
)


def sheet(rows: bytes) -> bytes:
    """A workbook whose sheet holds the header row, then these rows' XML as written."""
    xml = SHEET_HEAD + rows + b"</sheetData></worksheet>"
    return replaced(workbook(), {"xl/worksheets/sheet1.xml": xml})


def product_row(row: int, sku: bytes = b"A-1", cells: bytes = b"") -> bytes:
    """A row of SKU and Name (Widget) at `row`, with `cells` after them."""
    return (
        b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c>'
        b'<c r="B%d" t="inlineStr"><is><t>Widget</t></is></c>%s</row>' % (row, row, sku, row, cells)
    )


def far_row(row: int) -> bytes:
    """A 5 KB workbook with one product at row `row` (the probe used 10,000,000 and 2,000,000,000)."""
    return sheet(product_row(row))


def malformed_cell(cell: bytes, row: bytes = b'<row r="2">') -> bytes:
    """A workbook whose sheet's second row holds a cell (or is a row) no spreadsheet program writes:
    a number "NaN", a shared-string index past the end, a reference beyond column XFD, a row "abc"."""
    return sheet(row + b'<c r="A2" t="inlineStr"><is><t>A-1</t></is></c>' + cell + b"</row>")


def wide_csv_header(columns: int = 200_000) -> bytes:
    """A CSV whose header names `columns` columns besides SKU and Name (200,000: 1.4 MB)."""
    return (",".join(["SKU", "Name", *(f"c{n}" for n in range(columns))]) + "\nA-1,Widget\n").encode()


def blank_lines_csv(size: int = 5 * 1024 * 1024 - 64) -> bytes:
    """A 5 MB CSV: a header, millions of blank lines, then a product."""
    head, tail = b"SKU,Name\n", b"A-1,Widget\n"
    return head + b"\n" * (size - len(head) - len(tail)) + tail


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
        for n in range(1, 10)
    )
    + b"]>"
)


def billion_laughs(part: str) -> bytes:
    """`part` starts with the billion laughs entity expansion."""
    content = workbook()
    original = zipfile.ZipFile(io.BytesIO(content)).read(part)
    body = original.split(b"?>", 1)[1] if original.startswith(b"<?xml") else original
    return replaced(content, {part: LAUGHS + body.replace(b"<t>A-1</t>", b"<t>&lol9;</t>", 1)})


def external_entity(part: str) -> bytes:
    """`part` declares an external entity reading a local file (XXE)."""
    content = workbook()
    original = zipfile.ZipFile(io.BytesIO(content)).read(part)
    body = original.split(b"?>", 1)[1] if original.startswith(b"<?xml") else original
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return replaced(content, {part: doctype + body.replace(b"<t>A-1</t>", b"<t>&xxe;</t>", 1)})
