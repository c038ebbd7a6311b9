"""Request bodies of the API's inventory routes (receipts and builds)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from shared.model import Model

RecordId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Quantity = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
_INBOUND = ConfigDict(frozen=True, extra="forbid")


class ReceiptLineRequest(Model):
    """A received line: ``quantity`` arrived, QA rejected ``rejected`` of it; priced per unit or as a line."""

    model_config = _INBOUND
    product_id: str = Field(min_length=1)
    quantity: Quantity
    rejected: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = Decimal(0)
    unit_cost: Amount | None = None
    line_cost: Amount | None = None
    lot_code: str = Field(default="", max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> ReceiptLineRequest:
        if self.rejected > self.quantity:
            raise ValueError("rejected cannot exceed the quantity received")
        if (self.unit_cost is None) == (self.line_cost is None):
            raise ValueError("give either unit_cost or line_cost")
        return self

    @property
    def accepted(self) -> Decimal:
        return self.quantity - self.rejected


class ReceiptRequest(Model):
    model_config = _INBOUND
    receipt_id: RecordId | None = (
        None  # the caller's own id makes a repeated POST safe (refused, not doubled)
    )
    supplier_id: str = Field(default="", max_length=128)  # the provider's supplier id, when known
    supplier_email: str = Field(default="", max_length=254)
    supplier_name: str = Field(default="", max_length=255)
    received_at: AwareDatetime
    lines: list[ReceiptLineRequest] = Field(min_length=1, max_length=500)


class ComponentRequest(Model):
    model_config = _INBOUND
    product_id: str = Field(min_length=1)
    quantity_per_unit: Quantity


class BuildRequest(Model):
    model_config = _INBOUND
    build_id: RecordId | None = None
    product_id: str = Field(min_length=1)
    quantity: Quantity
    built_at: AwareDatetime
    lot_code: str = Field(default="", max_length=64)
    components: list[ComponentRequest] = Field(
        default_factory=list, max_length=500
    )  # none: the product's BOM
