"""Product import speed and memory on XLSX files of 2,500, 10,000 and 40,000 rows, each against openpyxl
reading the same file alone (read-only, values only) in the same run: the memory ratio must stay flat as
the file grows, and within 2x at 40,000 rows.

What is measured is the whole domain pipeline of a dry run (read, validate, summarise, classify each valid
row against the catalog), with an in-memory catalog standing in for the store: empty (the target: a first
import), then holding every product of the file (a re-import, every row unchanged). The catalog's index
(CatalogIndex) is built inside the measured run, from entries made one at a time as the store's pages
give them (`iter_catalog_entries`), so its memory counts (about 81 bytes a product: it grows with the
catalog, not the file). Last, the service's whole apply of a re-import that changes every product's cost
(`import_file`: a dry-run pass, then a pass that reads each chunk's products and writes them), with the
store's three calls answered in memory (products made from their ids, writes dropped).
The reading passes get no deadline here: the figures are the pipeline's, on a machine that may be busy."""

from __future__ import annotations

import io
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple
from unittest.mock import patch

import openpyxl

from shared.domain import product_import
from shared.domain.catalog import Product
from shared.domain.product_changes import CatalogEntry, CatalogIndex, catalog_entry
from shared.domain.product_import import ReadBudget
from shared.domain.product_rows import ImportSummary, RowOutcome
from shared.domain.product_summary import summarise_file
from shared.services import product_files
from shared.store import catalog as store

SIZES = (2_500, 10_000, 40_000)
RUNS = 2
TARGET_RATIO = 2
HEADER = ["SKU", "Name", "Type", "Unit cost", "Unit", "Reorder point", "Sale price", "Barcode"]
TYPES = ["Finished good", "Component", "Raw material", "Sub-assembly"]


def _cost(number: int) -> Decimal:
    return Decimal(number % 997) / 8


def build_workbook(path: Path, rows: int) -> None:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Products")
    sheet.append(HEADER)
    for number in range(rows):
        sheet.append(
            [
                f"PART-{number:06d}",
                f"Part number {number}",
                TYPES[number % len(TYPES)],
                float(_cost(number)),
                "pcs",
                number % 50,
                float(_cost(number) * 2),
                f"{4000000000000 + number}",
            ]
        )
    workbook.save(path)


def stored_product(number: int, cost_offset: int = 0) -> Product:
    """The product the benchmark file's row `number` made (with its cost moved by `cost_offset`)."""
    return Product(
        product_id=f"{number:08x}-0000-4000-8000-000000000000",
        sku=f"PART-{number:06d}",
        name=f"Part number {number}",
        type=TYPES[number % len(TYPES)].lower().replace(" ", "_").replace("-", "_"),
        unit_cost=_cost(number) + cost_offset,
        unit="pcs",
        reorder_point=Decimal(number % 50),
        sale_price=_cost(number) * 2,
        barcode=f"{4000000000000 + number}",
    )


def stored_entries(rows: int, cost_offset: int = 0) -> Iterator[CatalogEntry]:
    """The catalog after importing the benchmark file, one entry at a time as the store's pages give them."""
    for number in range(rows):
        yield catalog_entry(stored_product(number, cost_offset))


def read_with_openpyxl(content: bytes) -> object:
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        return sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()


def _check(summary: ImportSummary, rows: int, expected: RowOutcome) -> None:
    if summary.file_errors or summary.valid_count != rows or getattr(summary, expected.value) != rows:
        raise SystemExit(
            f"the benchmark file should import cleanly: {summary.file_errors or summary.details}"
        )


def dry_run(
    content: bytes, rows: int, entries: Iterator[CatalogEntry], expected: RowOutcome
) -> ImportSummary:
    """The service's dry run without its I/O: index the catalog, then summarise the file against it."""
    index = CatalogIndex(entries)
    summary = summarise_file(content, index.outcomes, budget=ReadBudget(seconds=float("inf")))
    _check(summary, rows, expected)
    return summary


def first_import(rows: int) -> Callable[[bytes], object]:
    return lambda content: dry_run(content, rows, iter(()), RowOutcome.CREATED)


def re_import(rows: int) -> Callable[[bytes], object]:
    return lambda content: dry_run(content, rows, stored_entries(rows), RowOutcome.UNCHANGED)


@contextmanager
def _store_in_memory(rows: int, cost_offset: int) -> Iterator[list[int]]:
    """The store's calls of an import answered in memory; yields the count of products written."""
    written = [0]

    def entries(organisation_id: str) -> Iterator[CatalogEntry]:
        return stored_entries(rows, cost_offset)

    def get_products(organisation_id: str, product_ids: Iterable[str]) -> list[Product]:
        return [stored_product(int(product_id[:8], 16), cost_offset) for product_id in product_ids]

    def write_products(
        organisation_id: str, new: Sequence[Product], changed: Sequence[store.ProductChange] = ()
    ) -> list[str]:
        written[0] += len(new) + len(changed)
        return []

    with (
        patch.object(store, "iter_catalog_entries", entries),
        patch.object(store, "get_products", get_products),
        patch.object(store, "write_products", write_products),
        patch.object(product_import, "MAX_READ_SECONDS", float("inf")),
    ):
        yield written


def re_import_apply(rows: int) -> Callable[[bytes], object]:
    """The service's apply of the file over a catalog whose every cost differs: every row is written."""

    def run(content: bytes) -> object:
        with _store_in_memory(rows, cost_offset=1) as written:
            summary = product_files.import_file("bench-org", content, "apply")
        _check(summary, rows, RowOutcome.UPDATED)
        if written[0] != rows:
            raise SystemExit(f"the apply should write every row: {written[0]} of {rows}")
        return summary

    return run


class Measure(NamedTuple):
    seconds: float
    peak: int  # bytes traced at the highest point of the run
    kept: int  # bytes still held by what the run returned (our summary; openpyxl's row count)


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
    print(
        "product import dry run (and an apply) against openpyxl alone on the same XLSX; "
        f"time best of {RUNS}, peak traced"
    )
    print(
        f"  target: memory <= {TARGET_RATIO} x openpyxl's at {SIZES[-1]:,} rows (empty catalog), "
        "flat as rows grow"
    )
    for rows in SIZES:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "products.xlsx"
            build_workbook(path, rows)
            content = path.read_bytes()
        alone = measure(read_with_openpyxl, content)
        print(
            f"  {rows:6,} rows ({len(content) / 1024:5.0f} KiB)  openpyxl alone              "
            f"{alone.seconds:6.3f} s   peak {_mib(alone.peak)}"
        )
        runs = (
            ("empty catalog (target)", first_import),
            ("re-import, all known", re_import),
            ("re-import apply, all costs", re_import_apply),
        )
        for label, run in runs:
            ours = measure(run(rows), content)
            print(
                f"  {'':23} {label:26}  {ours.seconds:6.3f} s   peak {_mib(ours.peak)}"
                f"   time {ours.seconds / alone.seconds:4.2f} x   memory {ours.peak / alone.peak:4.2f} x"
                f"   summary kept {_mib(ours.kept)}"
            )


if __name__ == "__main__":
    main()
