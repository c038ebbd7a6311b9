"""The outside probe's hostile product files, through the API: each is refused with a 400 naming the file,
in under 2 s, with the process growing by under 100 MiB, and nothing is written."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from shared.domain import product_import
from shared.services.product_files import resident_bytes
from tests.conftest import Api
from tests.integration import hostile_files as hostile

MAX_SECONDS = 2.0
MAX_GROWTH = 100 * 1024 * 1024


@dataclass
class Cost:
    seconds: float = 0.0
    growth: int = 0


@contextmanager
def measured() -> Iterator[Cost]:
    """Wall time and the peak growth of this process's resident memory, sampled every 2 ms."""
    cost = Cost()
    start = resident_bytes()
    assert start is not None, "these tests read /proc/self/statm (Linux)"
    peak = start
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, resident_bytes() or 0)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.process_time()  # CPU time, the sampler's included: the machine's load does not count
    try:
        yield cost
    finally:
        cost.seconds = time.process_time() - began
        done.set()
        sampler.join()
        cost.growth = max(peak, resident_bytes() or 0) - start


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "styles.xml inflating to 95 MB (288 KB on the wire)": (
        hostile.styles_bomb,
        "The workbook's styles part (xl/styles.xml) unpacks to more than 2 MiB",
    ),
    "shared strings inflating to 95 MB (241 KB on the wire)": (
        hostile.shared_strings_bomb,
        "The workbook's shared strings part (xl/sharedStrings.xml) unpacks to more than 16 MiB",
    ),
    "styles under the byte cap but with 300,000 elements": (
        lambda: hostile.styles_bomb(1.9),
        "The workbook's styles part (xl/styles.xml) holds more than 150,000 entries",
    ),
    "shared strings under the byte cap but with 900,000 entries": (
        lambda: hostile.shared_strings_bomb(15),
        "The workbook's shared strings part (xl/sharedStrings.xml) holds more than 250,000 entries",
    ),
    "styles.xml declaring 1 KB in the zip but inflating to 95 MB": (
        lambda: hostile.understated(hostile.styles_bomb(), "xl/styles.xml", 1000),
        "This is a zip archive but not an Excel workbook",  # the inflated bytes stop at the declared size
    ),
    "one row at r=10,000,000": (
        lambda: hostile.far_row(10_000_000),
        "The sheet has a row numbered 10,000,000, beyond Excel's last row (1,048,576)",
    ),
    "one row at r=2,000,000,000": (
        lambda: hostile.far_row(2_000_000_000),
        "The sheet has a row numbered 2,000,000,000, beyond Excel's last row",
    ),
    "a gap of 5,000 empty rows": (
        lambda: hostile.far_row(5_000),
        "The sheet jumps from row 1 to row 5,000: more than 1,000 empty rows",
    ),
    "5 MB of blank CSV lines": (
        hostile.blank_lines_csv,
        "The file has more than 50,000 rows after the header (empty rows count too)",
    ),
    "a number NaN in a cell": (
        lambda: hostile.malformed_cell(b'<c r="B2"><v>NaN</v></c>'),
        "The sheet 'Sheet' cannot be read after row 1: a cell holds a value, cell reference or row number",
    ),
    "a number 0x1A in a cell": (
        lambda: hostile.malformed_cell(b'<c r="B2"><v>0x1A</v></c>'),
        "The sheet 'Sheet' cannot be read after row 1",
    ),
    "a shared-string index past the end": (
        lambda: hostile.malformed_cell(b'<c r="B2" t="s"><v>99999</v></c>'),
        "The sheet 'Sheet' cannot be read after row 1",
    ),
    "a shared-string index that is not a number": (
        lambda: hostile.malformed_cell(b'<c r="B2" t="s"><v>abc</v></c>'),
        "The sheet 'Sheet' cannot be read after row 1",
    ),
    "cell reference ZZZZ2": (
        lambda: hostile.malformed_cell(b'<c r="ZZZZ2" t="inlineStr"><is><t>W</t></is></c>'),
        "The sheet 'Sheet' cannot be read after row 1",
    ),
    'row r="abc"': (
        lambda: hostile.malformed_cell(b"", row=b'<row r="abc">'),
        "The sheet 'Sheet' cannot be read after row 1",
    ),
    # openpyxl drops a row numbered at or before the one above it, and sizes a row by its last cell: the
    # product, or its cost, was lost with the answer counting the file's every row read
    "row 3 after row 4": (
        lambda: hostile.sheet(b"".join(hostile.product_row(n, b"A-%d" % n) for n in (2, 4, 3))),
        "The sheet has row 3 after row 4: its rows are out of order",
    ),
    "row 2 twice": (
        lambda: hostile.sheet(hostile.product_row(2) + hostile.product_row(2, b"A-2")),
        "The sheet has row 2 after row 2",
    ),
    "a cost before the SKU in its row": (
        lambda: hostile.malformed_cell(b"", row=b'<row r="2"><c r="C2"><v>2.5</v></c>'),
        "The sheet 'Sheet' cannot be read after row 1",
    ),
    "a row's SKU cell twice": (
        lambda: hostile.malformed_cell(b'<c r="A2" t="inlineStr"><is><t>A-2</t></is></c>'),
        "The sheet 'Sheet' cannot be read after row 1",
    ),
    "a CSV header of 200,000 columns (1.4 MB)": (
        hostile.wide_csv_header,
        "Row 1 names more than 1,000 columns; a product file needs at most 8.",
    ),
    "billion laughs in the sheet": (
        lambda: hostile.billion_laughs("xl/worksheets/sheet1.xml"),
        "The workbook's XML declares entities (a DTD)",
    ),
    "billion laughs in the workbook part": (
        lambda: hostile.billion_laughs("xl/workbook.xml"),
        "The workbook's XML declares entities (a DTD)",
    ),
    "an external entity (XXE) in the sheet": (
        lambda: hostile.external_entity("xl/worksheets/sheet1.xml"),
        "The workbook's XML declares entities (a DTD)",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_file_is_refused_quickly_within_memory_and_writes_nothing(
    api: Api, written: list[str], name: str
) -> None:
    make, message = HOSTILE[name]
    content = make()
    assert len(content) <= product_import.MAX_FILE_BYTES
    filename = "products.xlsx" if content.startswith(b"PK") else "products.csv"
    body = {"filename": filename, "content_base64": base64.b64encode(content).decode()}
    api.call("GET", "/products")  # the route's code is loaded before measuring

    with measured() as cost:
        response = api.call("POST", "/products/import?mode=apply", json_body=body)

    if message.startswith("This is a zip archive"):  # a file error, reported as such
        assert response.status == 200 and response.json()["file_errors"][0].startswith(message)
    else:
        assert response.status == 400, response.body
        [detail] = response.json()["details"]
        assert detail["field"] == "file" and detail["problem"].startswith(message), detail
    assert cost.seconds < MAX_SECONDS, f"{name}: {cost.seconds:.2f} s"
    assert cost.growth < MAX_GROWTH, f"{name}: grew {cost.growth / 2**20:.0f} MiB"
    assert written == []
    assert api.call("GET", "/products").json()["items"] == []


def test_a_pass_that_runs_out_of_time_is_refused_with_nothing_written(
    api: Api, written: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(product_import, "MAX_READ_SECONDS", 0.0)
    content = b"SKU,Name\n" + b"".join(f"A-{n},Part\n".encode() for n in range(500))
    body = {"filename": "products.csv", "content_base64": base64.b64encode(content).decode()}

    response = api.call("POST", "/products/import?mode=apply", json_body=body)

    assert response.status == 400
    assert response.json()["details"][0]["problem"].startswith("Reading the file took longer than 0 seconds")
    assert written == []


def test_a_pass_that_outgrows_its_memory_budget_is_refused() -> None:
    budget = product_import.ReadBudget(memory_growth=lambda: 10**12)
    with pytest.raises(product_import.FileTooCostly, match="needs more memory than an import may use"):
        for _ in range(512):
            budget.check()


def test_an_ordinary_workbook_still_imports(api: Api, written: list[str]) -> None:
    content = hostile.workbook([["SKU", "Name"], *([f"A-{n}", "Widget"] for n in range(1, 2001))])
    body = {"filename": "products.xlsx", "content_base64": base64.b64encode(content).decode()}

    response = api.call("POST", "/products/import?mode=apply", json_body=body)

    assert response.status == 200 and response.json()["created"] == 2000
    assert len(written) == 2000
