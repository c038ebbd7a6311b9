"""Product import speed and memory on a 10,000-row XLSX, against openpyxl reading the same file alone."""

from __future__ import annotations

import io
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import openpyxl

from shared.domain.product_import import parse_product_file

ROWS = 10_000
RUNS = 3
TARGET_RATIO = 2
HEADER = ["SKU", "Name", "Type", "Unit cost", "Unit", "Reorder point", "Sale price", "Barcode"]
TYPES = ["Finished good", "Component", "Raw material", "Sub-assembly"]


def build_workbook(path: Path) -> None:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Products")
    sheet.append(HEADER)
    for number in range(ROWS):
        cost = Decimal(number % 997) / 8
        sheet.append(
            [
                f"PART-{number:06d}",
                f"Part number {number}",
                TYPES[number % len(TYPES)],
                float(cost),
                "pcs",
                number % 50,
                float(cost * 2),
                f"{4000000000000 + number}",
            ]
        )
    workbook.save(path)


def read_with_openpyxl(content: bytes) -> object:
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        return sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()


def import_products(content: bytes) -> object:
    report = parse_product_file(content)
    if report.file_errors or report.valid_count != ROWS:
        raise SystemExit(f"the benchmark file should import cleanly: {report.file_errors or report.rows[0]}")
    return report


class Measure(NamedTuple):
    seconds: float
    peak: int  # bytes traced at the highest point of the run
    kept: int  # bytes still held by what the run returned (our report; openpyxl's row count)


def measure(run: Callable[[bytes], object], content: bytes) -> Measure:
    """Best wall time of a few untraced runs, then the memory of one traced run."""
    seconds = min(_timed(run, content) for _ in range(RUNS))
    tracemalloc.start()
    try:
        result = run(content)
        kept, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        tracemalloc.stop()
    return Measure(seconds, peak, kept)


def _timed(run: Callable[[bytes], object], content: bytes) -> float:
    started = time.perf_counter()
    run(content)
    return time.perf_counter() - started


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:6.1f} MiB"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "products.xlsx"
        build_workbook(path)
        content = path.read_bytes()
    ours = measure(import_products, content)
    alone = measure(read_with_openpyxl, content)
    print(f"product import of a {ROWS:,}-row XLSX ({len(content) / 1024:.0f} KiB), best of {RUNS}")
    print(f"  our import      {ours.seconds:6.3f} s   peak {_mib(ours.peak)}   report kept {_mib(ours.kept)}")
    print(f"  openpyxl alone  {alone.seconds:6.3f} s   peak {_mib(alone.peak)}")
    print(f"  time ratio      {ours.seconds / alone.seconds:6.2f} x (target <= {TARGET_RATIO} x)")
    overall, working = ours.peak / alone.peak, (ours.peak - ours.kept) / alone.peak
    print(f"  memory ratio    {overall:6.2f} x overall, {working:.2f} x beyond the report it returns")


if __name__ == "__main__":
    main()
