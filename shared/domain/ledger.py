"""The stock ledger: movements per product, the FIFO layers replayed from them, and fast re-costing.

Movements are replayed in (at, seq, movement_id) order, so the same set of movements always gives the same
costs whatever order it was stored in. Each lot is a layer holding its remaining quantity and remaining
exact cost; a part taken from a layer costs `cost * taken / quantity` and the last part takes whatever cost
is left, so a lot's cost is never lost or invented. A change (add, remove, replace a document) re-costs
only what it can affect: the products it touches and the finished goods built from them, each restarted
from its last checkpoint (a copy of its layers every `checkpoint_every` movements) at or before the change.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from operator import attrgetter
from typing import Annotated, Literal, NamedTuple

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from shared.errors import Conflict, NotFound
from shared.model import Model
from shared.money import COST_CONTEXT, ZERO, total

Quantity = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Cost = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
MovementKey = tuple[datetime, int, str]
order_key = attrgetter("at", "seq", "movement_id")
MAX: MovementKey = (datetime.max.replace(tzinfo=UTC), 0, "")


class _Movement(Model):
    model_config = ConfigDict(frozen=True, extra="forbid")
    movement_id: str = Field(min_length=1)
    document_id: str = Field(min_length=1)
    at: AwareDatetime
    seq: int = 0
    product_id: str = Field(min_length=1)
    quantity: Quantity

    def products(self) -> tuple[str, ...]:
        return (self.product_id,)


class ReceiptIn(_Movement):
    """A lot received: `cost` is the exact cost of the whole quantity (unit cost = cost / quantity)."""

    kind: Literal["receipt_in"] = "receipt_in"
    lot_id: str = Field(min_length=1)
    lot_code: str = ""
    cost: Cost


class Waste(_Movement):
    """Units rejected at receiving: recorded at their cost, never in stock, so nothing can consume them."""

    kind: Literal["waste"] = "waste"
    lot_id: str = Field(min_length=1)
    cost: Cost


class ComponentUse(Model):
    model_config = ConfigDict(frozen=True, extra="forbid")
    product_id: str = Field(min_length=1)
    quantity: Quantity  # for the whole run, not per unit


class BuildRun(_Movement):
    kind: Literal["build"] = "build"
    lot_id: str = Field(min_length=1)
    lot_code: str = ""
    components: tuple[ComponentUse, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_components(self) -> BuildRun:
        ids = [c.product_id for c in self.components]
        if len(set(ids)) != len(ids) or self.product_id in ids:
            raise ValueError("each component appears once and is not the product being built")
        return self

    def products(self) -> tuple[str, ...]:
        return (self.product_id, *(c.product_id for c in self.components))


class SaleOut(_Movement):
    kind: Literal["sale"] = "sale"


class SaleReturn(_Movement):
    """A credit: units go back to the lots the sale `sale_document_id` took them from (or to waste)."""

    kind: Literal["sale_return"] = "sale_return"
    sale_document_id: str | None
    restock: bool = True


Movement = Annotated[ReceiptIn | Waste | BuildRun | SaleOut | SaleReturn, Field(discriminator="kind")]
AnyMovement = ReceiptIn | Waste | BuildRun | SaleOut | SaleReturn


class EntryKind(StrEnum):
    RECEIPT_IN = "receipt_in"
    WASTE = "waste"
    BUILD_CONSUME = "build_consume"
    BUILD_PRODUCE = "build_produce"
    SALE_CONSUME = "sale_consume"
    SALE_RETURN = "sale_return"  # restocked into the original lots
    RETURN_WASTE = "return_waste"  # returned but not restockable: the original cost goes to waste


class Draw(NamedTuple):
    """A quantity of one lot at its exact cost; `incomplete` when that lot's own cost lacks some inputs."""

    lot_id: str
    quantity: Decimal
    cost: Decimal
    incomplete: bool = False


class Layer(NamedTuple):
    key: MovementKey
    lot_id: str
    quantity: Decimal
    cost: Decimal
    incomplete: bool

    @property
    def unit_cost(self) -> Decimal:
        with localcontext(COST_CONTEXT):
            return self.cost / self.quantity


class Entry(NamedTuple):
    """What one movement did to one product: the lots touched and any quantity no lot could cover."""

    movement_id: str
    document_id: str
    kind: EntryKind
    product_id: str
    at: datetime
    quantity: Decimal
    cost: Decimal
    draws: tuple[Draw, ...]
    uncosted: Decimal
    incomplete: bool


class DuplicateMovement(Conflict):
    pass


class UnknownMovement(NotFound):
    pass


class Ledger:
    def __init__(self, movements: Iterable[AnyMovement] = (), *, checkpoint_every: int = 64) -> None:
        self._every = checkpoint_every
        self._movements: dict[str, AnyMovement] = {}
        self._streams: dict[str, list[AnyMovement]] = defaultdict(list)  # per product, in replay order
        self._layers: dict[str, deque[Layer]] = defaultdict(deque)
        # per product: stream index -> the layers just before that movement, every `checkpoint_every`
        self._checkpoints: dict[str, dict[int, tuple[Layer, ...]]] = defaultdict(dict)
        self._entries: dict[tuple[str, str], Entry] = {}
        self._documents: dict[str, set[str]] = defaultdict(set)
        self._sales: dict[tuple[str, str], list[SaleOut | SaleReturn]] = defaultdict(list)  # (sale, product)
        self._lot_keys: dict[str, MovementKey] = {}
        self.change(add=movements)

    def products(self) -> list[str]:
        return sorted(p for p, stream in self._streams.items() if stream)

    def movements(self) -> list[AnyMovement]:
        return sorted(self._movements.values(), key=order_key)

    def document_movements(self, document_id: str) -> list[AnyMovement]:
        return sorted((self._movements[m] for m in self._documents.get(document_id, ())), key=order_key)

    def entries(self, product_id: str | None = None) -> list[Entry]:
        chosen = [product_id] if product_id else self.products()
        return [self._entries[m.movement_id, p] for p in chosen for m in self._streams.get(p, ())]

    def entries_of(self, movement_id: str) -> tuple[Entry, ...]:
        if movement_id not in self._movements:
            raise UnknownMovement(f"no movement {movement_id}")
        return tuple(self._entries[movement_id, p] for p in self._movements[movement_id].products())

    def layers(self, product_id: str) -> tuple[Layer, ...]:
        return tuple(self._layers.get(product_id, ()))

    def on_hand(self, product_id: str) -> Decimal:
        return total(layer.quantity for layer in self._layers.get(product_id, ()))

    def replace_document(self, document_id: str, movements: Iterable[AnyMovement]) -> None:
        """Swap a document's movements for its new version (an edit, or none at all for a void/delete)."""
        self.change(add=movements, remove=list(self._documents.get(document_id, ())))

    def change(self, *, add: Iterable[AnyMovement] = (), remove: Iterable[str] = ()) -> None:
        """Add and remove movements as one change (refused whole), then re-cost what it can affect."""
        added, gone = list(add), set(remove)
        self._check(added, gone)
        removed = [self._pop(movement_id) for movement_id in gone]
        starts: dict[str, MovementKey] = {}
        for m in (*added, *removed):
            for p in m.products():
                starts[p] = min(starts.get(p, MAX), order_key(m))
        for m in removed:
            for p in m.products():
                del self._entries[m.movement_id, p]
        self._index(added, starts)
        with localcontext(COST_CONTEXT):
            self._replay(self._spread(starts))

    def _check(self, added: list[AnyMovement], gone: set[str]) -> None:
        if unknown := gone - self._movements.keys():
            raise UnknownMovement(f"no movement {min(unknown)}")
        ids = [m.movement_id for m in added]
        if len(set(ids)) != len(ids) or any(i in self._movements and i not in gone for i in ids):
            raise DuplicateMovement("a movement id is already in the ledger")
        lots = [m.lot_id for m in added if isinstance(m, ReceiptIn | BuildRun)]
        taken = (lot for lot in lots if lot in self._lot_keys and self._lot_keys[lot][2] not in gone)
        if len(set(lots)) != len(lots) or any(taken):
            raise DuplicateMovement("a lot id is already in the ledger")

    def _index(self, added: list[AnyMovement], touched: Iterable[str]) -> None:
        for m in added:
            self._movements[m.movement_id] = m
            self._documents[m.document_id].add(m.movement_id)
            if m.kind == "build":
                for p in m.products():
                    self._streams[p].append(m)
            else:
                self._streams[m.product_id].append(m)
            if m.kind == "receipt_in" or m.kind == "build":
                self._lot_keys[m.lot_id] = order_key(m)
            elif m.kind == "sale" or (m.kind == "sale_return" and m.sale_document_id):
                self._sales[_sale_of(m), m.product_id].append(m)
        for p in touched:
            self._streams[p].sort(key=order_key)

    def _pop(self, movement_id: str) -> AnyMovement:
        m = self._movements.pop(movement_id)
        self._documents[m.document_id].discard(movement_id)
        for p in m.products():
            stream = self._streams[p]
            del stream[bisect_left(stream, order_key(m), key=order_key)]
        if isinstance(m, ReceiptIn | BuildRun):
            del self._lot_keys[m.lot_id]
        elif isinstance(m, SaleOut | SaleReturn) and m in self._sales[_sale_of(m), m.product_id]:
            self._sales[_sale_of(m), m.product_id].remove(m)
        return m

    def _spread(self, starts: dict[str, MovementKey]) -> dict[str, MovementKey]:
        """Add each product built from a changed one after its change, from that build on (transitively)."""
        todo = list(starts)
        while todo:
            p = todo.pop()
            stream = self._streams[p]
            for m in stream[bisect_left(stream, starts[p], key=order_key) :]:
                if m.kind == "build" and m.product_id != p and order_key(m) < starts.get(m.product_id, MAX):
                    starts[m.product_id] = order_key(m)
                    todo.append(m.product_id)
        return starts

    def _replay(self, starts: dict[str, MovementKey]) -> None:
        """Restore each product from its last checkpoint before its start, then replay them all in order."""
        pending: dict[str, AnyMovement] = {}
        position: dict[str, int] = {}
        restart: dict[str, MovementKey] = {}
        for p, start in starts.items():
            stream, checkpoints = self._streams[p], self._checkpoints[p]
            changed_at = bisect_left(stream, start, key=order_key)  # stream[:changed_at] is unchanged
            first = max((i for i in checkpoints if i <= changed_at), default=0)
            self._layers[p] = deque(checkpoints.get(first, ()))
            for index in [i for i in checkpoints if i > first]:
                del checkpoints[index]
            position[p], restart[p] = first, order_key(stream[first]) if first < len(stream) else MAX
            pending.update((m.movement_id, m) for m in stream[first:])
        every, saved, layers = self._every, self._checkpoints, self._layers
        for m in sorted(pending.values(), key=order_key):
            if m.kind == "build":  # replay only the parts of products restarted at or before it
                products = [p for p in m.products() if order_key(m) >= restart.get(p, MAX)]
            else:
                products = [m.product_id]
            for p in products:
                if position[p] % every == 0:
                    saved[p][position[p]] = tuple(layers[p])
                position[p] += 1
            self._apply(m, products)

    def _apply(self, m: AnyMovement, products: list[str]) -> None:
        if m.kind == "sale":
            self._consume(m, EntryKind.SALE_CONSUME, m.product_id, m.quantity)
        elif m.kind == "receipt_in":
            self._produce(m, m.cost, EntryKind.RECEIPT_IN, incomplete=False)
        elif m.kind == "build":
            parts = [
                self._consume(m, EntryKind.BUILD_CONSUME, c.product_id, c.quantity)
                if c.product_id in products
                else self._entries[m.movement_id, c.product_id]
                for c in m.components
            ]
            if m.product_id in products:  # the finished lot costs exactly what its components cost
                cost, lacking = (
                    sum((e.cost for e in parts), ZERO),
                    any(e.uncosted or e.incomplete for e in parts),
                )
                self._produce(m, cost, EntryKind.BUILD_PRODUCE, incomplete=lacking)
        elif m.kind == "waste":
            draw = Draw(m.lot_id, m.quantity, m.cost)
            self._record(m, EntryKind.WASTE, m.product_id, m.quantity, (draw,), ZERO, m.cost, False)
        else:
            self._return(m)

    def _record(
        self, m: AnyMovement, kind: EntryKind, product_id: str, quantity: Decimal, draws: tuple[Draw, ...],
        uncosted: Decimal, cost: Decimal, incomplete: bool,
    ) -> Entry:  # fmt: skip
        entry = Entry(m.movement_id, m.document_id, kind, product_id, m.at, quantity, cost, draws, uncosted,
                      incomplete)  # fmt: skip
        self._entries[m.movement_id, product_id] = entry
        return entry

    def _produce(self, m: ReceiptIn | BuildRun, cost: Decimal, kind: EntryKind, *, incomplete: bool) -> None:
        self._layers[m.product_id].append(Layer(order_key(m), m.lot_id, m.quantity, cost, incomplete))
        draw = Draw(m.lot_id, m.quantity, cost, incomplete)
        self._record(m, kind, m.product_id, m.quantity, (draw,), ZERO, cost, incomplete)

    def _consume(self, m: AnyMovement, kind: EntryKind, product_id: str, quantity: Decimal) -> Entry:
        layers, draws, wanted, spent, lacking = self._layers[product_id], [], quantity, ZERO, False
        while wanted and layers:
            key, lot_id, available, cost, incomplete = layers[0]
            if available > wanted:  # a part of the lot, at its share of the remaining cost
                cost, available = cost * wanted / available, available - wanted
                layers[0] = Layer(key, lot_id, available, layers[0].cost - cost, incomplete)
                draws.append(Draw(lot_id, wanted, cost, incomplete))
                wanted = ZERO
            else:
                layers.popleft()
                draws.append(Draw(lot_id, available, cost, incomplete))
                wanted -= available
            spent += cost
            lacking = lacking or incomplete
        return self._record(m, kind, product_id, quantity, tuple(draws), wanted, spent, lacking)

    def _return(self, m: SaleReturn) -> None:
        """Undo the sale's consumption most-recently-consumed first: its uncosted tail, then its lots."""
        pieces: list[Draw] = []  # what the sale took, in the order it took it; lot "" is the uncosted part
        already, key = ZERO, order_key(m)  # already: what earlier credits of this sale took back
        for earlier in sorted(self._sales.get((m.sale_document_id or "", m.product_id), []), key=order_key):
            if order_key(earlier) < key:
                entry = self._entries[earlier.movement_id, m.product_id]
                if earlier.kind == "sale_return":
                    already += entry.quantity
                else:
                    pieces += [*entry.draws, Draw("", entry.uncosted, ZERO)]
        wanted, returned = m.quantity, []
        for piece in reversed(pieces):
            skip = min(already, piece.quantity)
            take = min(wanted, piece.quantity - skip)
            already, wanted = already - skip, wanted - take
            if take and piece.lot_id:
                returned.append(piece._replace(quantity=take, cost=piece.cost * take / piece.quantity))
        kind = EntryKind.SALE_RETURN if m.restock else EntryKind.RETURN_WASTE
        cost = sum((d.cost for d in returned), ZERO)
        lacking = any(d.incomplete for d in returned)
        self._record(m, kind, m.product_id, m.quantity, tuple(returned), wanted, cost, lacking)
        for draw in returned if m.restock else ():
            self._restock(m.product_id, draw)

    def _restock(self, product_id: str, draw: Draw) -> None:
        """Back into its own lot; a used-up lot comes back at its original place in the FIFO order."""
        layers = self._layers[product_id]
        for index, layer in enumerate(layers):
            if layer.lot_id == draw.lot_id:
                layers[index] = layer._replace(
                    quantity=layer.quantity + draw.quantity, cost=layer.cost + draw.cost
                )
                return
        lot_key = self._lot_keys[draw.lot_id]
        index = next((i for i, layer in enumerate(layers) if layer.key > lot_key), len(layers))
        layers.insert(index, Layer(lot_key, draw.lot_id, draw.quantity, draw.cost, draw.incomplete))


def _sale_of(m: SaleOut | SaleReturn) -> str:
    return m.document_id if m.kind == "sale" else m.sale_document_id or ""
