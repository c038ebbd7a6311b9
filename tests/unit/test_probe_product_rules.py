"""Probes of the product file rules: zero-padded numbers under hostile or unusual styles, control and
invisible characters on both file paths, and a bundle's type across a dry run and an apply."""

from __future__ import annotations

import io
import resource
import unicodedata
import zipfile
from decimal import Decimal

import pytest
from openpyxl.utils import get_column_letter

from shared.domain.catalog import Component, Product
from shared.domain.product_changes import CatalogIndex, catalog_entry, merged
from shared.domain.product_import import FileMalformed, FileRefused
from shared.domain.product_rows import ProductRow, RowOutcome, RowStatus
from tests.unit.test_product_import import handmade_xlsx, parse, sheet_row, text_cell, value_cell, xlsx

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NO_FILL = '<fill><patternFill patternType="none"/></fill>'


def styles_xml(formats: dict[int, str], xf_format_ids: list[int | str], fill: str = _NO_FILL) -> str:
    """A styles part: custom number formats by id, and one cell style (xf) per numFmtId given."""
    codes = "".join(f'<numFmt numFmtId="{i}" formatCode="{code}"/>' for i, code in formats.items())
    xfs = "".join(f'<xf numFmtId="{i}" fontId="0" fillId="0" borderId="0" xfId="0"/>' for i in xf_format_ids)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="{_MAIN}">'
        f'<numFmts count="{len(formats)}">{codes}</numFmts>'
        f'<fonts count="1"><font/></fonts><fills count="1">{fill}</fills>'
        '<borders count="1"><border/></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xf_format_ids)}">{xfs}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
    )


def styled_xlsx(rows: list[list[str]], styles: str) -> bytes:
    """A handmade workbook (header SKU, Name, Unit cost) with the given styles part."""
    header = sheet_row(1, text_cell("A1", "SKU"), text_cell("B1", "Name"), text_cell("C1", "Unit cost"))
    body = "".join(sheet_row(number, *cells) for number, cells in enumerate(rows, start=2))
    source = zipfile.ZipFile(io.BytesIO(handmade_xlsx(header + body)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            target.writestr(member, source.read(member))
        target.writestr("xl/styles.xml", styles)
    return buffer.getvalue()


def styled(ref: str, value: object, style: int | str, kind: str = "n") -> str:
    return f'<c r="{ref}" s="{style}" t="{kind}"><v>{value}</v></c>'


ZIP_STYLE = styles_xml({170: "00000"}, [0, 170])  # style 1 is "00000"


def sku_read(value: object, style: int | str = 1, styles: str = ZIP_STYLE) -> str | None:
    rows = parse(styled_xlsx([[styled("A2", value, style), text_cell("B2", "Widget")]], styles)).rows
    assert len(rows) == 1
    return rows[0].sku


# Zero-padded numbers


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("123", "00123"),
        ("123.0", "00123"),
        ("-123", "-00123"),  # Excel shows the sign before the zeros
        ("123.00000000000001", "00123"),  # a float a hair off 123 shows, to 15 digits, as 123
        ("1234567", "1234567"),  # wider than the format: all its digits
        ("123.5", "123.5"),  # not whole: read as before
    ],
)
def test_a_zeros_format_reads_the_number_as_excel_shows_it(value: str, shown: str) -> None:
    assert sku_read(value) == shown


def test_a_float_past_2_to_the_53_keeps_the_digits_excel_shows_not_the_binary_ones() -> None:
    """1.23456789012345E+20 in format "0" shows as 123456789012345000000; the float's own integer ends in
    ...344995840, a code no person typed."""
    assert sku_read("1.23456789012345E+20", styles=styles_xml({}, [0, 1])) == "123456789012345000000"


@pytest.mark.parametrize("style", ["99", "-1"])
def test_a_style_index_out_of_range_reads_the_plain_number(style: str) -> None:
    assert sku_read("123", style) == "123"


def test_a_non_numeric_style_index_is_refused_as_malformed() -> None:
    with pytest.raises(FileRefused, match="cannot be read"):
        sku_read("123", "x")


@pytest.mark.parametrize(
    "styles",
    [
        styles_xml({170: "00000"}, [0, 2**40]),  # past the 32-bit array openpyxl keeps style ids in
        styles_xml({170: "00000"}, [0, 170], fill="<fill/>"),  # openpyxl's Fill type check fails
    ],
)
def test_styles_openpyxl_cannot_build_are_refused_not_a_server_error(styles: str) -> None:
    with pytest.raises(FileRefused, match="not an Excel workbook"):
        sku_read("123", styles=styles)


@pytest.mark.parametrize("code", ["0000;-0000", "00000\\-0000", "&quot;SKU&quot;0000", "@", "#0000"])
def test_formats_other_than_zeros_only_read_the_plain_number(code: str) -> None:
    assert sku_read("123", styles=styles_xml({170: code}, [0, 170])) == "123"


def test_booleans_and_text_in_a_zeros_format_are_not_padded() -> None:
    rows = parse(
        styled_xlsx(
            [
                [styled("A2", "1", 1, "b"), text_cell("B2", "Bool")],
                ['<c r="A3" s="1" t="inlineStr"><is><t>12</t></is></c>', text_cell("B3", "Text")],
            ],
            ZIP_STYLE,
        )
    ).rows
    assert [row.sku for row in rows] == ["TRUE", "12"]


def test_a_huge_zeros_format_is_refused_by_the_length_rule_within_bounded_memory() -> None:
    """A 1,000,000-zero format on 300 cells of one row made 300 MB of text out of a 4 KB file; Excel's
    format codes are under 255 characters, so no cell is padded past that."""
    cells = [styled("A2", 123, 1), text_cell("B2", "Widget"), styled("C2", 5, 1)]
    cells += [styled(f"{get_column_letter(column)}2", 5, 1) for column in range(4, 304)]
    content = styled_xlsx([cells], styles_xml({170: "0" * 1_000_000}, [0, 170]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    row = parse(content).rows[0]

    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert row.status is RowStatus.ERROR
    assert row.errors[0].column == "SKU"
    assert row.errors[0].problem.startswith("too long")
    assert grown_mib < 100


def test_a_duplicate_cell_refuses_the_sheet_padded_or_not() -> None:
    """Two cells of one column in a row, which Excel never writes: openpyxl kept the last, and the first's
    value was lost without a word."""
    row = sheet_row(2, styled("A2", 5, 1), '<c r="A2"><v>7</v></c>', text_cell("B2", "Widget"))
    header = sheet_row(1, text_cell("A1", "SKU"), text_cell("B1", "Name"))
    source = zipfile.ZipFile(io.BytesIO(handmade_xlsx(header + row)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for member in source.infolist():
            target.writestr(member, source.read(member))
        target.writestr("xl/styles.xml", ZIP_STYLE)

    with pytest.raises(FileMalformed, match="cannot be read after row 1"):
        parse(buffer.getvalue())


def test_amount_columns_in_a_zeros_format_keep_their_value() -> None:
    rows = parse(
        styled_xlsx(
            [
                [text_cell("A2", "A-1"), text_cell("B2", "Whole"), styled("C2", 5, 1)],
                [text_cell("A3", "A-2"), text_cell("B3", "Fraction"), styled("C3", "5.25", 1)],
                [text_cell("A4", "A-3"), text_cell("B4", "Negative"), styled("C4", -5, 1)],
            ],
            styles_xml({170: "000"}, [0, 170]),
        )
    ).rows
    costs = [row.product.unit_cost if row.product else row.errors[0].problem for row in rows]
    assert costs == [Decimal(5), Decimal("5.25"), "negative (-5); it must be 0 or more"]


# Control and invisible characters


def _csv_row(sku: str, name: str, unit: str) -> bytes:
    def quoted(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    return f"SKU,Name,Unit\n{quoted(sku)},{quoted(name)},{quoted(unit)}\n".encode()


_CC = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"]
_CF = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]


def test_every_control_character_inside_a_field_is_an_error() -> None:
    """Inside the text (not at its ends, which are trimmed like spaces), in every field but a tab or line
    break typed in a name or unit. (NUL makes the whole file one that is not text.)"""
    for char in _CC[1:]:
        for field in range(3):
            values = ["A-1", "Widget", "ea"]
            values[field] = values[field][:1] + char + values[field][1:]
            row = parse(_csv_row(*values)).rows[0]
            typed = field > 0 and char in "\t\n\r"
            assert (row.status is RowStatus.VALID) is typed, (hex(ord(char)), field, row)


def test_every_invisible_character_in_a_sku_is_an_error_and_stays_in_a_name() -> None:
    for char in _CF:
        row = parse(_csv_row(f"A{char}1", f"Wid{char}get", "ea")).rows[0]
        assert row.status is RowStatus.ERROR, hex(ord(char))
        assert [error.column for error in row.errors] == ["SKU"]
        assert f"U+{ord(char):04X}" in row.errors[0].problem


@pytest.mark.parametrize(
    "sku",
    [
        "A-\U0001f600",  # outside the BMP
        "Cafe\u0301",  # a combining accent (NFC makes it one character when matched)
        "\u0410-1",  # Cyrillic A
    ],
)
def test_visible_characters_are_kept(sku: str) -> None:
    row = parse(_csv_row(sku, "Widget", "ea")).rows[0]
    assert row.status is RowStatus.VALID
    assert row.sku == sku


@pytest.mark.parametrize(
    ("sku", "name"),
    [("A\u200b1", "Widget"), ("A-1", "Wid\u0085get"), ("A-1", "Two\nlines"), ("A\u00a01", "Widget")],
)
def test_csv_and_xlsx_give_the_same_answer_for_the_same_text(sku: str, name: str) -> None:
    from_csv = parse(_csv_row(sku, name, "ea")).rows[0]
    from_xlsx = parse(xlsx([["SKU", "Name", "Unit"], [sku, name, "ea"]])).rows[0]

    assert (from_xlsx.status, from_xlsx.sku, from_xlsx.errors, from_xlsx.warnings) == (
        from_csv.status,
        from_csv.sku,
        from_csv.errors,
        from_csv.warnings,
    )


@pytest.mark.parametrize("space", ["\u00a0", "\u2007", "\u202f", "\u3000", "\u2028"])
def test_a_sku_with_a_space_other_than_the_plain_one_is_an_error(space: str) -> None:
    """A SKU "A 1" typed with a no-break space looks like "A 1" and was a product of its own, whose code no
    person types again; in a name it stays."""
    rows = parse(f"SKU,Name\nA 1,Spaced\nA{space}2,Wid{space}get\n".encode()).rows

    assert rows[0].status is RowStatus.VALID
    assert [error.column for error in rows[1].errors] == ["SKU"]
    named = f"U+{ord(space):04X} {unicodedata.name(space).lower()}"
    problem = rows[1].errors[0].problem
    assert problem == f"a space other than the plain one ({named}) at character 2; remove it"


# Bundles


def _bundle() -> Product:
    return Product(
        product_id="p1",
        sku="A-1",
        name="Widget",
        type="kit",
        unit="ea",
        unit_cost=Decimal(2),
        components=(Component(ref="p2", quantity=Decimal(2)),),
    )


@pytest.mark.parametrize(
    "row",
    [
        {},
        {"type": "finished_good"},
        {"type": "component"},
        {"type": "service"},
        {"unit": "ea", "unit_cost": Decimal("2.00")},
        {"type": "raw_material", "name": "Widget set"},
        {"unit_cost": Decimal(3)},
        {"sku": "a-1"},
    ],
)
def test_a_dry_run_predicts_what_an_apply_does_to_a_bundle(row: dict[str, object]) -> None:
    values: dict[str, object] = {"sku": "A-1", "name": "Widget"} | row
    product_row = ProductRow.model_validate(values | {"key": "a-1"})
    bundle = _bundle()

    predicted = CatalogIndex([catalog_entry(bundle)]).outcome(product_row)
    applied = merged(product_row, bundle)

    assert applied.type == "kit"
    assert applied.components == bundle.components
    assert predicted is (RowOutcome.UNCHANGED if applied == bundle else RowOutcome.UPDATED)


def test_excel_escapes_in_shared_strings_read_as_the_characters_they_stand_for() -> None:
    """Excel writes a control character as "_x0001_" and a carriage return as "_x000D_" ([MS-OI29500]
    2.1.1747): a SKU holding one is an error as in a CSV, and a line break typed in a name is CR LF again.
    An underscore that would start an escape is written "_x005F_" and read back as the text typed."""
    rows_xml = "".join(
        sheet_row(
            number,
            value_cell(f"A{number}", str(2 * number - 2), "s"),
            value_cell(f"B{number}", str(2 * number - 1), "s"),
        )
        for number in range(1, 6)
    )
    strings = [
        "SKU",
        "Name",
        "A_x0001_1",
        "Bolt",
        "A-2",
        "Two_x000D_\nlines",
        "A_x005F_x0001_3",
        "Literal",
        "A-4_xD83D_",
        "Lone surrogate",
    ]
    rows = parse(handmade_xlsx(rows_xml, strings)).rows

    assert rows[0].errors[0].problem == "a control character (U+0001) at character 2; remove it"
    assert rows[1].product is not None
    assert rows[1].product.name == "Two\r\nlines"
    assert [row.sku for row in rows[2:]] == ["A_x0001_3", "A-4_xD83D_"]
    assert [row.status for row in rows[1:]] == [RowStatus.VALID] * 3
