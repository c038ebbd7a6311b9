"""The product import's values: one row as read from the file, and the summary of a whole file.

A file of 50,000 rows is read one row at a time; what is kept is the summary: counts, the rows of each
outcome as ranges ("2-5000, 5002-10001"), and the details of the rows with errors or warnings (the
first MAX_DETAILS of them, and how many more were left out), so an answer stays small whatever the file."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pydantic import ConfigDict, Field

from shared.model import Model

MAX_DETAILS = 1_000  # rows listed with their problems; keeps a 50,000-row answer far below Lambda's 6 MB


class ProductType(StrEnum):
    FINISHED_GOOD = "finished_good"
    COMPONENT = "component"
    RAW_MATERIAL = "raw_material"
    SUB_ASSEMBLY = "sub_assembly"
    SERVICE = "service"
    NON_INVENTORY = "non_inventory"


class RowStatus(StrEnum):
    VALID = "valid"
    ERROR = "error"
    SKIPPED = "skipped"


class RowOutcome(StrEnum):
    """What happened to a row; in a dry run, created/updated/unchanged say what an apply would do."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ERROR = "error"
    SKIPPED = "skipped"


class ProductRow(Model):
    """One valid product; optional fields left blank in the file are None."""

    model_config = ConfigDict(frozen=True)

    key: str  # the normalised SKU: the stable identity an apply writes under, so a re-apply overwrites
    sku: str
    name: str
    type: ProductType | None = None
    unit_cost: Decimal | None = None
    unit: str | None = None
    reorder_point: Decimal | None = None
    sale_price: Decimal | None = None
    barcode: str | None = None


class RowProblem(Model):
    """What is wrong with one cell; `column` is the header as written in the file."""

    model_config = ConfigDict(frozen=True)

    column: str
    problem: str


@dataclass(frozen=True, slots=True)
class RowResult:
    """One row as read, never kept beyond its chunk; `row` is the number Excel shows (the header is row 1)."""

    row: int
    status: RowStatus
    sku: str | None = None  # as read, so a row with errors can still be recognised
    name: str | None = None
    product: ProductRow | None = None
    errors: tuple[RowProblem, ...] = ()
    warnings: tuple[RowProblem, ...] = ()


class RowDetail(Model):
    """A row with errors or warnings, as the user needs it to fix the file."""

    model_config = ConfigDict(frozen=True)

    row: int
    outcome: RowOutcome
    sku: str | None = None
    name: str | None = None
    errors: list[RowProblem] = Field(default_factory=list)
    warnings: list[RowProblem] = Field(default_factory=list)


class RowRanges(Model):
    """The rows of each outcome as inclusive [first, last] ranges; together they hold every row read once."""

    model_config = ConfigDict(frozen=True)

    created: list[tuple[int, int]] = Field(default_factory=list)
    updated: list[tuple[int, int]] = Field(default_factory=list)
    unchanged: list[tuple[int, int]] = Field(default_factory=list)
    error: list[tuple[int, int]] = Field(default_factory=list)
    skipped: list[tuple[int, int]] = Field(default_factory=list)


class ImportSummary(Model):
    """A file's result. A file error means no rows at all (and, in an apply, no writes)."""

    file_errors: list[str] = Field(default_factory=list)
    ignored_columns: list[str] = Field(default_factory=list)  # the first 50 (MAX_IGNORED_SHOWN)
    ignored_columns_left_out: int = 0  # columns ignored beyond those named
    rows_read: int = 0  # after the header: valid + errors + skipped (trailing blank rows are not read)
    valid_count: int = 0
    error_count: int = 0
    skipped_count: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    row_ranges: RowRanges = Field(default_factory=RowRanges)
    details: list[RowDetail] = Field(default_factory=list)
    details_left_out: int = 0  # rows with errors or warnings beyond the first MAX_DETAILS
