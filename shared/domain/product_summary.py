"""A product file's summary, built as the file is read: the tally of row outcomes, and the one pipeline
(read, validate, classify in chunks, tally) that a dry run, an apply and the benchmark all run."""

from __future__ import annotations

from collections.abc import Callable

from shared.domain.product_import import FileRefused, HostileFile, ReadBudget, open_product_file
from shared.domain.product_rows import (
    MAX_DETAILS,
    ImportSummary,
    ProductRow,
    RowDetail,
    RowOutcome,
    RowRanges,
    RowResult,
    RowStatus,
)

# valid rows classified (and, in an apply, written) together; at most the products one transaction writes
# (store.catalog.WRITE_AT_ONCE): an apply writes a chunk in one
CHUNK_ROWS = 100
_MAX_PENDING = 10 * CHUNK_ROWS  # rows held before a chunk is handled, when most rows are not valid

ChunkHandler = Callable[[list[ProductRow]], list[RowOutcome]]
"""Takes a chunk of valid rows, returns each one's outcome (CREATED, UPDATED or UNCHANGED), in order."""


class ImportTally:
    """Receives every row's outcome, in row order, and keeps only counts, ranges and capped details."""

    def __init__(
        self, ignored_columns: list[str], max_details: int = MAX_DETAILS, ignored_columns_left_out: int = 0
    ) -> None:
        self.ignored_columns = ignored_columns
        self.ignored_columns_left_out = ignored_columns_left_out
        self.max_details = max_details
        self.counts = dict.fromkeys(RowOutcome, 0)
        self.ranges: dict[RowOutcome, list[list[int]]] = {outcome: [] for outcome in RowOutcome}
        self.details: list[RowDetail] = []
        self.details_left_out = 0

    def add(self, result: RowResult, outcome: RowOutcome) -> None:
        self.counts[outcome] += 1
        ranges = self.ranges[outcome]
        if ranges and ranges[-1][1] == result.row - 1:
            ranges[-1][1] = result.row
        else:
            ranges.append([result.row, result.row])
        if not (result.errors or result.warnings):
            return
        if len(self.details) >= self.max_details:
            self.details_left_out += 1
            return
        self.details.append(
            RowDetail(
                row=result.row,
                outcome=outcome,
                sku=result.sku,
                name=result.name,
                errors=list(result.errors),
                warnings=list(result.warnings),
            )
        )

    def summary(self) -> ImportSummary:
        counts = self.counts
        ranges = {outcome.value: [(first, last) for first, last in r] for outcome, r in self.ranges.items()}
        return ImportSummary(
            ignored_columns=self.ignored_columns,
            ignored_columns_left_out=self.ignored_columns_left_out,
            rows_read=sum(counts.values()),
            valid_count=counts[RowOutcome.CREATED]
            + counts[RowOutcome.UPDATED]
            + counts[RowOutcome.UNCHANGED],
            error_count=counts[RowOutcome.ERROR],
            skipped_count=counts[RowOutcome.SKIPPED],
            created=counts[RowOutcome.CREATED],
            updated=counts[RowOutcome.UPDATED],
            unchanged=counts[RowOutcome.UNCHANGED],
            row_ranges=RowRanges.model_validate(ranges),
            details=self.details,
            details_left_out=self.details_left_out,
        )


def summarise_file(
    content: bytes,
    handle_chunk: ChunkHandler,
    max_details: int = MAX_DETAILS,
    budget: ReadBudget | None = None,
) -> ImportSummary:
    """Reads the file once, one row at a time; valid rows go to `handle_chunk` CHUNK_ROWS at a time.

    A file refused outright (by a limit on what reading it costs, or as a workbook no spreadsheet program
    wrote) raises HostileFile. A file error found part way
    returns a summary with only that error, but chunks before it have been
    handled: a handler that writes must only run on a file a first pass found free of file errors
    (and with a budget that cannot run out part way, as the first pass proved the file reads in time)."""
    try:
        with open_product_file(content, budget) as product_file:
            tally = ImportTally(
                product_file.ignored_columns, max_details, product_file.ignored_columns_left_out
            )
            pending: list[RowResult] = []
            valid: list[ProductRow] = []
            for result in product_file.rows:
                pending.append(result)
                if result.product is not None:
                    valid.append(result.product)
                if len(valid) == CHUNK_ROWS or len(pending) == _MAX_PENDING:
                    _handle(pending, valid, handle_chunk, tally)
            _handle(pending, valid, handle_chunk, tally)
    except HostileFile:
        raise  # the caller refuses the request: no summary of a file that was not read
    except FileRefused as refused:
        return ImportSummary(file_errors=[str(refused)])
    return tally.summary()


def _handle(
    pending: list[RowResult], valid: list[ProductRow], handle_chunk: ChunkHandler, tally: ImportTally
) -> None:
    outcomes = iter(handle_chunk(valid) if valid else [])
    for result in pending:
        if result.status is RowStatus.VALID:
            tally.add(result, next(outcomes))
        else:
            tally.add(result, RowOutcome.ERROR if result.status is RowStatus.ERROR else RowOutcome.SKIPPED)
    pending.clear()
    valid.clear()
