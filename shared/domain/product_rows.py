"""The product import's result: validated product rows and what happened to every row of the file."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import ConfigDict, Field, computed_field

from shared.model import Model


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


class RowResult(Model):
    """One row of the file; `row` is the number the user sees in Excel (the header is row 1)."""

    model_config = ConfigDict(frozen=True)

    row: int
    status: RowStatus
    sku: str | None = None  # as read, so a row with errors can still be recognised
    name: str | None = None
    product: ProductRow | None = None
    errors: list[RowProblem] = Field(default_factory=list)
    warnings: list[RowProblem] = Field(default_factory=list)


class ImportReport(Model):
    """A dry run's answer; an apply writes `products` and nothing else. File errors mean no rows at all."""

    model_config = ConfigDict(frozen=True)

    rows: list[RowResult] = Field(default_factory=list)
    ignored_columns: list[str] = Field(default_factory=list)
    file_errors: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def valid_count(self) -> int:
        return sum(1 for result in self.rows if result.status is RowStatus.VALID)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def error_count(self) -> int:
        return sum(1 for result in self.rows if result.status is RowStatus.ERROR)

    @property
    def products(self) -> list[ProductRow]:
        return [result.product for result in self.rows if result.product is not None]
