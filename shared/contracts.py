"""Wire shapes: the export message on SQS, the inventory request bodies, and a provider's posted document."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Json, model_validator

ExportKind = Literal["receipt", "build", "rejection"]
RecordId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Quantity = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
_INBOUND = ConfigDict(frozen=True, extra="forbid")


class ExportJob(BaseModel):
    model_config = _INBOUND
    organisation_id: str = Field(min_length=1)
    kind: ExportKind
    record_id: str = Field(min_length=1)  # the message names the record; the numbers stay in DynamoDB


class SqsAttributes(BaseModel):
    ApproximateReceiveCount: int


class ExportRecord(BaseModel):
    """The fields of an SQS record the export worker reads. (Powertools' SqsRecordModel would do, but
    importing it imports every parser model: about 65 ms of each cold start.)"""

    messageId: str
    receiptHandle: str
    body: Json[ExportJob]
    attributes: SqsAttributes


class ScheduledEvent(BaseModel):
    """An EventBridge schedule's event; the handlers need only its time (the same reason as above)."""

    time: AwareDatetime


class ReceiptLineRequest(BaseModel):
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


class ReceiptRequest(BaseModel):
    model_config = _INBOUND
    receipt_id: RecordId | None = (
        None  # the caller's own id makes a repeated POST safe (refused, not doubled)
    )
    supplier_id: str = Field(default="", max_length=128)  # the provider's supplier id, when known
    supplier_email: str = Field(default="", max_length=254)
    supplier_name: str = Field(default="", max_length=255)
    received_at: AwareDatetime
    lines: list[ReceiptLineRequest] = Field(min_length=1, max_length=500)


class ComponentRequest(BaseModel):
    model_config = _INBOUND
    product_id: str = Field(min_length=1)
    quantity_per_unit: Quantity


class BuildRequest(BaseModel):
    model_config = _INBOUND
    build_id: RecordId | None = None
    product_id: str = Field(min_length=1)
    quantity: Quantity
    built_at: AwareDatetime
    lot_code: str = Field(default="", max_length=64)
    components: list[ComponentRequest] = Field(
        default_factory=list, max_length=500
    )  # none: the product's BOM


class PostedDocument(BaseModel):
    """A document in the provider that carries an export's marker (posted now, or found by the marker)."""

    model_config = ConfigDict(frozen=True)
    document_id: str
    document_type: str  # JournalEntry, InventoryAdjustment, ManualJournal
    link: str


def json_bytes(value: Any) -> bytes:
    """JSON with every Decimal written as a number digit for digit (``json.dumps`` would need a float)."""
    if isinstance(value, Decimal):
        return format(value, "f").encode()
    if isinstance(value, dict):
        return (
            b"{"
            + b",".join(json.dumps(str(k)).encode() + b":" + json_bytes(v) for k, v in value.items())
            + b"}"
        )
    if isinstance(value, list | tuple):
        return b"[" + b",".join(json_bytes(v) for v in value) + b"]"
    return json.dumps(value).encode()
