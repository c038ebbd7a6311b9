"""Receipts, QA rejections and builds as values, the ledger movements they make, and their costs.

A receipt line's rejected units never enter stock: the receipt adds only the accepted units as a lot, and
its rejection (a record of its own, exported on its own) writes the rejected units off at their cost.

A product's ``Stock`` is what the whole ledger's replay leaves; a write after the latest movement of every
product it moves is costed on just the open lots it consumes (``resumed``), to the same digits (DESIGN.md,
"Stock items").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, localcontext
from itertools import chain
from typing import Annotated, Any, NamedTuple

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from shared.domain.ledger import (
    AnyMovement,
    BuildRun,
    ComponentUse,
    Draw,
    Entry,
    EntryKind,
    Layer,
    Ledger,
    MovementKey,
    Quantity,
    ReceiptIn,
    Waste,
    order_key,
)
from shared.errors import Conflict
from shared.model import Model
from shared.money import COST_CONTEXT, ZERO, total

Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
_VALUE = ConfigDict(frozen=True, extra="forbid")


class Product(Model):
    model_config = _VALUE
    product_id: str = Field(min_length=1)
    sku: str = ""
    name: str = ""
    provider_item_id: str | None = None  # the QBO item id / Xero item code it is mapped to
    # QBO inventory mode: its item holds no quantity (a non-inventory or service item, or one that does not
    # track quantity on hand), so an inventory adjustment has nothing to move for it (QBO refuses the line)
    untracked: bool = False

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.sku, self.name) if part) or self.product_id


class ReceiptLine(Model):
    """A received quantity, priced per unit or (when the supplier priced the line as a total) by line."""

    model_config = _VALUE
    line_id: str = Field(min_length=1)
    product_id: str = Field(min_length=1)
    lot_code: str = ""
    accepted: Annotated[Decimal, Field(ge=0)]
    rejected: Annotated[Decimal, Field(ge=0)] = ZERO
    unit_cost: Money | None = None
    line_cost: Money | None = None  # for accepted + rejected together

    @model_validator(mode="after")
    def _priced_once(self) -> ReceiptLine:
        if (self.unit_cost is None) == (self.line_cost is None):
            raise ValueError("give either unit_cost or line_cost")
        if self.received <= 0:
            raise ValueError("a receipt line receives something")
        return self

    @property
    def received(self) -> Decimal:
        return self.accepted + self.rejected

    @property
    def accepted_cost(self) -> Decimal:
        with localcontext(COST_CONTEXT):
            if self.unit_cost is not None:
                return self.accepted * self.unit_cost
            assert self.line_cost is not None
            return self.line_cost * self.accepted / self.received

    @property
    def rejected_cost(self) -> Decimal:
        """The rest of the line: accepted and rejected costs add up to the line cost exactly."""
        with localcontext(COST_CONTEXT):
            if self.unit_cost is not None:
                return self.rejected * self.unit_cost
            assert self.line_cost is not None
            return self.line_cost - self.accepted_cost


class Receipt(Model):
    model_config = _VALUE
    receipt_id: str = Field(min_length=1)
    supplier_id: str = ""
    received_at: AwareDatetime
    seq: int = 0
    lines: tuple[ReceiptLine, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_lines(self) -> Receipt:
        if len({line.line_id for line in self.lines}) != len(self.lines):
            raise ValueError("line ids repeat")
        return self

    def lot_id(self, line: ReceiptLine) -> str:
        return f"{self.receipt_id}/{line.line_id}"

    @property
    def accepted_cost(self) -> Decimal:
        return total(line.accepted_cost for line in self.lines)


class RejectionLine(Model):
    model_config = _VALUE
    product_id: str = Field(min_length=1)
    lot_id: str = Field(min_length=1)  # the lot the units would have joined
    quantity: Quantity
    cost: Money


class Rejection(Model):
    model_config = _VALUE
    rejection_id: str = Field(min_length=1)
    receipt_id: str
    supplier_id: str = ""
    rejected_at: AwareDatetime
    seq: int = 0
    lines: tuple[RejectionLine, ...] = Field(min_length=1)

    @property
    def cost(self) -> Decimal:
        return total(line.cost for line in self.lines)


class Component(Model):
    model_config = _VALUE
    product_id: str = Field(min_length=1)
    quantity_per_unit: Quantity


class Build(Model):
    model_config = _VALUE
    build_id: str = Field(min_length=1)
    product_id: str = Field(min_length=1)
    quantity: Quantity
    built_at: AwareDatetime
    seq: int = 0
    lot_code: str = ""
    components: tuple[Component, ...] = Field(min_length=1)


class Shortage(Model):
    model_config = _VALUE
    product_id: str
    required: Decimal
    available: Decimal

    @property
    def short(self) -> Decimal:
        return self.required - self.available


class ShortageError(Conflict):
    """Too little stock of one or more components at the build's time; nothing was applied."""

    def __init__(self, shortages: tuple[Shortage, ...], labels: Mapping[str, str] | None = None) -> None:
        named = labels or {}
        listed = ", ".join(
            f"{named.get(s.product_id, s.product_id)} short {s.short} (need {s.required}, have {s.available})"
            for s in shortages
        )
        super().__init__(f"not enough stock to build: {listed}")
        self.shortages, self.labels = shortages, named

    def named(self, labels: Mapping[str, str]) -> ShortageError:
        """The same refusal naming products by their SKU and name (the domain knows only their ids)."""
        return ShortageError(self.shortages, labels)

    def response_fields(self) -> dict[str, Any]:
        fields = ("product_id", "required", "available", "short")
        return {
            "shortages": [
                {**{name: str(getattr(s, name)) for name in fields}, "product": self.labels.get(s.product_id)}
                for s in self.shortages
            ]
        }


class ComponentCost(Model):
    model_config = _VALUE
    product_id: str
    quantity: Decimal
    cost: Decimal  # exact
    lots: tuple[Draw, ...]


class BuildRecord(Model):
    """A build with what it consumed (lot by lot) and the finished-good lot it made, at exact cost."""

    model_config = _VALUE
    build: Build
    lot_id: str
    components: tuple[ComponentCost, ...]
    cost: Decimal
    incomplete: bool  # some component found no stock when the ledger was last replayed

    @property
    def unit_cost(self) -> Decimal:
        with localcontext(COST_CONTEXT):
            return self.cost / self.build.quantity

    @property
    def at(self) -> datetime:
        return self.build.built_at


def receipt_movements(receipt: Receipt) -> list[ReceiptIn]:
    return [
        ReceiptIn(
            movement_id=receipt.lot_id(line),
            document_id=receipt.receipt_id,
            at=receipt.received_at,
            seq=receipt.seq,
            product_id=line.product_id,
            quantity=line.accepted,
            lot_id=receipt.lot_id(line),
            lot_code=line.lot_code,
            cost=line.accepted_cost,
        )
        for line in receipt.lines
        if line.accepted > 0
    ]


def rejection_of(receipt: Receipt) -> Rejection | None:
    """The QA rejection of a receipt's rejected units, at their share of the line's cost."""
    lines = tuple(
        RejectionLine(
            product_id=line.product_id,
            lot_id=receipt.lot_id(line),
            quantity=line.rejected,
            cost=line.rejected_cost,
        )
        for line in receipt.lines
        if line.rejected > 0
    )
    if not lines:
        return None
    return Rejection(
        rejection_id=f"{receipt.receipt_id}/rejected",
        receipt_id=receipt.receipt_id,
        supplier_id=receipt.supplier_id,
        rejected_at=receipt.received_at,
        seq=receipt.seq,
        lines=lines,
    )


def rejection_movements(rejection: Rejection) -> list[Waste]:
    return [
        Waste(
            movement_id=f"{rejection.rejection_id}/{index}",
            document_id=rejection.rejection_id,
            at=rejection.rejected_at,
            seq=rejection.seq,
            product_id=line.product_id,
            quantity=line.quantity,
            lot_id=line.lot_id,
            cost=line.cost,
        )
        for index, line in enumerate(rejection.lines)
    ]


def build_movement(build: Build) -> BuildRun:
    with localcontext(COST_CONTEXT):
        uses = tuple(
            ComponentUse(product_id=c.product_id, quantity=c.quantity_per_unit * build.quantity)
            for c in build.components
        )
    return BuildRun(
        movement_id=build.build_id,
        document_id=build.build_id,
        at=build.built_at,
        seq=build.seq,
        product_id=build.product_id,
        quantity=build.quantity,
        lot_id=build.build_id,
        lot_code=build.lot_code,
        components=uses,
    )


class LaterUseUncovered(Conflict):
    """A back-dated build that would take stock already used by later records; nothing was applied."""

    def __init__(self, uncovered: tuple[Entry, ...]) -> None:
        listed = ", ".join(
            f"{e.document_id} ({e.product_id}, {e.at.isoformat()}) would lack {e.uncosted}" for e in uncovered
        )
        super().__init__(
            f"this build is dated before records that already use the same stock: {listed}; "
            "date it after them, or record more stock before it"
        )
        self.uncovered = uncovered

    def response_fields(self) -> dict[str, Any]:
        return {
            "later_records": [
                {"document_id": e.document_id, "product_id": e.product_id, "at": e.at.isoformat(),
                 "short": str(e.uncosted)}
                for e in self.uncovered
            ]
        }  # fmt: skip


def _uncovered(
    ledger: Ledger, product_ids: list[str], skip: str, since: MovementKey
) -> dict[tuple[str, str], Decimal]:
    return {key: short for key, short in ledger.uncovered(product_ids, since).items() if key[0] != skip}


def record_build(ledger: Ledger, build: Build) -> BuildRecord:
    """Apply a build, or refuse it naming each component's shortage at its time, or, when it is back-dated,
    the later records it would leave without stock; nothing is applied then."""
    components = [c.product_id for c in build.components]
    movement, previous = build_movement(build), ledger.document_movements(build.build_id)
    # what the build (and its earlier version, if any) can change: the components' records from its place on
    since = min(map(order_key, [movement, *previous]))
    before = _uncovered(ledger, components, build.build_id, since)
    ledger.change(add=[movement], remove=[m.movement_id for m in previous])
    entries = ledger.entries_of(build.build_id)
    shortages = tuple(
        Shortage(product_id=e.product_id, required=e.quantity, available=total(d.quantity for d in e.draws))
        for e in entries
        if e.kind is EntryKind.BUILD_CONSUME and e.uncosted  # some quantity no lot covered
    )
    after = _uncovered(ledger, components, build.build_id, since)
    worse = tuple(
        next(e for e in ledger.entries_of(m) if e.product_id == p)
        for (m, p), short in sorted(after.items())
        if short > before.get((m, p), ZERO)
    )
    if shortages or worse:
        ledger.replace_document(build.build_id, previous)
        raise ShortageError(shortages) if shortages else LaterUseUncovered(worse)
    return _record(build, entries)


def build_record(ledger: Ledger, build: Build) -> BuildRecord:
    """The build's costs as the ledger holds them now (after any back-dated change re-costed it)."""
    return _record(build, ledger.entries_of(build.build_id))


def _record(build: Build, entries: Sequence[Entry]) -> BuildRecord:
    produced = next(e for e in entries if e.kind is EntryKind.BUILD_PRODUCE)
    # the ledger's own values, already valid: constructed, not validated again lot by lot
    consumed = tuple(
        ComponentCost.model_construct(product_id=e.product_id, quantity=e.quantity, cost=e.cost, lots=e.draws)
        for e in entries
        if e.kind is EntryKind.BUILD_CONSUME
    )
    return BuildRecord.model_construct(
        build=build,
        lot_id=build.build_id,
        components=consumed,
        cost=produced.cost,
        incomplete=produced.incomplete,
    )


class Stock(NamedTuple):
    """A product's stock as the whole ledger's replay leaves it: its open lots, oldest (next consumed) first,
    each with its remaining quantity and exact remaining cost, and the key of its latest movement."""

    lots: tuple[Layer, ...]
    last: MovementKey


def stock_of(ledger: Ledger, product_ids: Iterable[str]) -> dict[str, Stock]:
    """The stock of each of these products that has a movement."""
    found = {}
    for p in product_ids:
        last = ledger.latest(p)
        if last is not None:
            found[p] = Stock(ledger.layers(p), last)
    return found


def same_stock(a: Stock, b: Stock) -> bool:
    """Equal to the digit (a lot costing 1.0 is not the lot costing 1.00 a replay leaves)."""
    return a.last == b.last and [_digits(lot) for lot in a.lots] == [_digits(lot) for lot in b.lots]


def _digits(lot: Layer) -> tuple[object, ...]:
    return lot.key, lot.lot_id, lot.quantity.as_tuple(), lot.cost.as_tuple(), lot.incomplete


def consumed(moved: Sequence[AnyMovement]) -> list[str]:
    """The products these movements take lots from (the components of builds): only their lots are costed;
    the other products they touch are only added to."""
    return sorted({c.product_id for m in moved if isinstance(m, BuildRun) for c in m.components})


def resumed(
    stock: Mapping[str, Stock], latest: Mapping[str, MovementKey], moved: Sequence[AnyMovement]
) -> Ledger | None:
    """A ledger of just the open lots of the products ``moved`` consumes, on which those movements cost
    exactly what they cost on the whole ledger (each lot reopened as a receipt of what remains of it, at its
    own place in the replay order); None when that cannot be known: a consumed product's ``stock`` or
    another touched product's ``latest`` movement is not given, a lot's cost is incomplete (a receipt cannot
    carry that), or a movement is not after the latest movement of every product it touches (a back-dated
    one re-orders, and may re-cost, what came after it). The ledger's lots of the other products are just
    the ones ``moved`` adds."""
    used = consumed(moved)
    if any(p not in stock for p in used):
        return None
    last = {**latest, **{p: stock[p].last for p in used}}
    first = min(order_key(m) for m in moved)
    touched = {p for m in moved for p in m.products()}
    if any(p not in last or last[p] >= first for p in touched):
        return None
    return resumed_from({p: stock[p].lots for p in used}, ())


def resumed_from(lots: Mapping[str, Sequence[Layer]], later: Iterable[AnyMovement]) -> Ledger | None:
    """The ledger from a point in its replay order: the open lots there, each reopened as a receipt of what
    remains of it at its own place in the replay order, then the ``later`` movements; the movements after the
    point cost on it exactly what they cost on the whole ledger. None when a lot's cost is incomplete (a
    receipt cannot carry that)."""
    if any(lot.incomplete for layers in lots.values() for lot in layers):
        return None
    reopened = (
        ReceiptIn.model_construct(  # the ledger's own values, already valid
            movement_id=lot.key[2],
            document_id=lot.key[2],
            at=lot.key[0],
            seq=lot.key[1],
            product_id=p,
            quantity=lot.quantity,
            lot_id=lot.lot_id,
            cost=lot.cost,
        )
        for p, layers in lots.items()
        for lot in layers
    )
    return Ledger(chain(reopened, later))
