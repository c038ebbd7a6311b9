"""The stock ledger: movements per product, the FIFO layers replayed from them, and fast re-costing
(DESIGN.md, "The stock ledger's replay")."""

from __future__ import annotations

import gc
from bisect import bisect_left, insort
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from enum import StrEnum
from itertools import compress, count, islice, repeat, starmap
from operator import attrgetter, eq
from typing import Annotated, Literal, NamedTuple, cast, final

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from shared.errors import Conflict, NotFound
from shared.model import Model
from shared.money import COST_CONTEXT, ZERO, total

Quantity = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Cost = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
MovementKey = tuple[datetime, int, str]
order_key = attrgetter("at", "seq", "movement_id")
_at = attrgetter("at")
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

    @property
    def given_back(self) -> Decimal:
        """A credit's units that undo the part of its sale no lot covered (``Ledger._return`` gives those back
        first): neither returned to a lot nor beyond the sale. Zero for any other entry."""
        if self.kind not in (EntryKind.SALE_RETURN, EntryKind.RETURN_WASTE):
            return ZERO
        return self.quantity - total(d.quantity for d in self.draws) - self.uncosted


class DuplicateMovement(Conflict):
    pass


class UnknownMovement(NotFound):
    pass


# A Draw's fields (lot id, quantity, cost, incomplete) in a plain tuple: what is left of the head lot once a
# consumption took a part of it, and that part when it was all the consumption took (as it mostly is), which
# its entry gives as a Draw. A replay makes one or two for most movements and keeps one, and a plain tuple
# costs a fraction of a NamedTuple's to make and to free: a tuple subclass's instance is made from a tuple of
# its fields, freed by the generic path for subclasses, and never untracked by the collector (a plain tuple
# of such fields is, by the first collection it survives). The other layers, the lots made and lists of draws
# hold Draws: a consumption using up lots whole draws the layers themselves (only a part-used head is made a
# Draw then), and its entry copies them as they are (a build may use up thousands).
_Lot = tuple[str, Decimal, Decimal, bool]
# The lots drawn, in order: one when there is just one (a Draw or such a part), a list otherwise, or None.
_Drawn = _Lot | list[Draw] | None


@final
class _Result(NamedTuple):
    """What a movement did to one product, where the movement alone does not say it: its cost, the quantity
    no lot could cover, whether some cost lacks inputs, the lots drawn; for the lot a build made, (cost, ZERO,
    incomplete, None). Receipts and waste hold their own results. Entries are built from these on request."""

    cost: Decimal
    uncosted: Decimal
    incomplete: bool
    drawn: _Drawn


# A consumption that took part of one lot and found all it wanted is recorded as just that lot's tuple: its
# cost is ZERO + the draw's cost, nothing uncosted, incomplete as the lot. Its type tells it from a _Result.
_Recorded = _Result | _Lot
_new = tuple.__new__  # a NamedTuple made without the Python-level __new__ its call runs
# Scanning the document ids for one takes about a tenth of the time indexing them all takes: the first lookups
# of documents not in the ledger scan, and the index is built once they would have paid for it.
_SCANS = 10


def in_order(movements: Iterable[AnyMovement]) -> list[AnyMovement]:
    """The movements in replay order (by `order_key`), in about two thirds of the time sorting by the key
    takes: sorted by time alone, then each run of equal times (a document's lines, mostly) by the whole key.
    A step of the sort then compares two times once, where two keys' tuples take two comparisons (equal, then
    less); and the times are read in the order given (sorting indexes by them), since the movements' objects
    lie in memory in about that order, not in the order sorted."""
    given = list(movements)
    times = list(map(_at, given))
    order = sorted(range(len(given)), key=times.__getitem__)
    ordered = list(map(given.__getitem__, order))
    times = list(map(times.__getitem__, order))
    runs: list[list[int]] = []  # [first, last] index of each run of equal times
    for i in compress(count(), map(eq, times, islice(times, 1, None))):  # times i and i + 1 are equal
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    for first, last in runs:
        ordered[first : last + 1] = sorted(ordered[first : last + 1], key=order_key)
    return ordered


def _draw(lot_id: str, quantity: Decimal, cost: Decimal, incomplete: bool) -> Draw:
    return _new(Draw, (lot_id, quantity, cost, incomplete))


def _drawn(draws: _Drawn) -> Sequence[_Lot]:
    return [] if draws is None else draws if isinstance(draws, list) else [draws]


def _full(recorded: _Recorded) -> tuple[Decimal, Decimal, bool, _Drawn]:
    if type(recorded) is _Result:
        return recorded
    return COST_CONTEXT.add(ZERO, recorded[2]), ZERO, recorded[3], recorded


def _take(layers: deque[_Lot], wanted: Decimal) -> _Recorded:
    """Consume `wanted` from the head of the layers (each a lot's remaining quantity and cost): the lots it
    uses up whole, then a part of the next one, at its share of the lot's remaining cost."""
    draws: list[Draw] | None = None
    spent, lacking = ZERO, False
    if not layers or layers[0][1] <= wanted:  # the head lot is used up whole, maybe more after it
        whole = 0  # how many: counted first, then taken together (a C loop)
        for layer in layers:
            available = layer[1]
            if available > wanted:
                break
            wanted -= available
            spent += layer[2]
            if layer[3]:
                lacking = True
            whole += 1
            if not wanted:
                break
        # each lot used up whole is its own draw: the Draw it was made, or once part-used (the head) made one
        draws = list(starmap(layers.popleft, repeat((), whole)))  # type: ignore[arg-type]
        if draws and type(draws[0]) is not Draw:
            draws[0] = _new(Draw, draws[0])
        if not (wanted and layers):
            return _new(_Result, (spent, wanted, lacking, draws[0] if whole == 1 else draws or None))
    lot_id, available, cost, incomplete = layers[0]  # a part of the head lot covers the rest
    part = cost * wanted / available
    layers[0] = (lot_id, available - wanted, cost - part, incomplete)
    if draws is None:  # the usual consumption: a part of the head lot was all it needed
        return lot_id, wanted, part, incomplete
    draws.append(_new(Draw, (lot_id, wanted, part, incomplete)))
    return _new(_Result, (spent + part, ZERO, lacking or incomplete, draws))


class _Mark(NamedTuple):
    """A product's layers just before a movement of its stream (a checkpoint): `made` lots made until then,
    and `held` layers: the head (maybe part-used) and after it the last lots made, whole, when no return ever
    restocked the product; otherwise a `copy` of the layers."""

    made: int
    held: int
    head: _Lot | None
    copy: tuple[_Lot, ...] | None


def _mark(layers: deque[_Lot], made: list[Draw], restocked: bool) -> _Mark:
    if restocked:
        return _Mark(len(made), len(layers), None, tuple(layers))
    return _Mark(len(made), len(layers), layers[0] if layers else None, None)


def _restore(mark: _Mark | None, made: list[Draw]) -> deque[_Lot]:
    """The layers a mark holds; the lots made after it are forgotten (a replay makes them again)."""
    if mark is None:
        made.clear()
        return deque()
    del made[mark.made :]
    if mark.copy is not None:
        return deque(mark.copy)
    layers = deque[_Lot](made[mark.made - mark.held + 1 : mark.made] if mark.held else ())
    if mark.head is not None:
        layers.appendleft(mark.head)
    return layers


# a product being replayed: its layers, its stream (refilled as it is replayed), its results' indexes by
# movement id, its checkpoints, the lots it made (in the order made, as made), its results by stream index
_State = tuple[
    deque[_Lot], list[AnyMovement], dict[str, int], dict[int, _Mark], list[Draw], list[_Recorded | None]
]


class _Fresh(dict[str, _State]):
    """The products of a first replay: each starts from nothing the first time a movement names it."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self._ledger = ledger

    def __missing__(self, product_id: str) -> _State:
        ledger = self._ledger
        state = self[product_id] = (
            ledger._layers[product_id], ledger._streams[product_id], ledger._positions[product_id],
            ledger._checkpoints[product_id], ledger._made[product_id], ledger._recorded[product_id],
        )  # fmt: skip
        return state


def _same(a: Decimal, b: Decimal) -> bool:
    """Equal to the digit (1.0 and 1.00 are equal numbers, not the same result)."""
    return a == b and a.as_tuple() == b.as_tuple()


class Ledger:
    def __init__(self, movements: Iterable[AnyMovement] = (), *, checkpoint_every: int = 64) -> None:
        self._every = checkpoint_every
        self._empty()
        self.change(add=movements)

    def _empty(self) -> None:
        self._movements: dict[str, AnyMovement] = {}
        self._streams: dict[str, list[AnyMovement]] = defaultdict(list)  # per product, in replay order
        self._uses: dict[str, list[BuildRun]] = defaultdict(list)  # per product, the builds consuming it
        self._returns: dict[str, int] = defaultdict(int)  # per product, how many returns it has
        self._layers: dict[str, deque[_Lot]] = defaultdict(deque)  # each open lot's remaining quantity, cost
        # per product: stream index -> the layers just before that movement, every `checkpoint_every`
        self._checkpoints: dict[str, dict[int, _Mark]] = defaultdict(dict)
        self._made: dict[str, list[Draw]] = defaultdict(list)  # per product, the lots it made, as made
        # per product, the results by stream index (None for a receipt or waste), for re-pricing to search and
        # rewrite in place; the index of each movement with a result, by id (a re-pricing leaves it as it is);
        # and each lot's index in its product's lots made and in its stream
        self._recorded: dict[str, list[_Recorded | None]] = defaultdict(list)
        self._positions: dict[str, dict[str, int]] = defaultdict(dict)
        self._made_at: dict[str, tuple[int, int]] = {}
        # document id -> its movement id(s), built when a document is first looked up (an edit, a void, a
        # build); until then a replay only notes each movement's document id, in the order of `_movements`
        self._documents: dict[str, str | tuple[str, ...]] | None = None
        self._unfiled: list[str] = []
        self._scans = 0  # lookups answered by scanning `_unfiled` (a C loop), before indexing is cheaper
        self._lots: dict[str, ReceiptIn | BuildRun] = {}  # lot id -> the movement that made it
        # (sale document, product) -> its sales and returns; built when a return first needs it
        self._sales: dict[tuple[str, str], list[SaleOut | SaleReturn]] | None = None

    def products(self) -> list[str]:
        return sorted(p for p, stream in self._streams.items() if stream)

    def movements(self) -> list[AnyMovement]:
        return in_order(self._movements.values())

    def document_movements(self, document_id: str) -> list[AnyMovement]:
        return sorted((self._movements[m] for m in self._ids(document_id)), key=order_key)

    def entries(self, product_id: str | None = None) -> list[Entry]:
        chosen = [product_id] if product_id else self.products()
        return [
            self._entry(m, p, result)
            for p in chosen
            for m, result in zip(self._streams.get(p, ()), self._recorded.get(p, ()), strict=True)
        ]

    def entries_of(self, movement_id: str) -> tuple[Entry, ...]:
        if movement_id not in self._movements:
            raise UnknownMovement(f"no movement {movement_id}")
        m = self._movements[movement_id]
        return tuple(self._entry(m, p) for p in m.products())

    def uncovered(
        self, product_ids: Iterable[str], since: MovementKey | None = None
    ) -> dict[tuple[str, str], Decimal]:
        """The quantity no lot could cover, by (movement id, product id), where there is any; ``since``: of
        the movements from that replay-order key on only (a change at a key leaves every result before it as
        it was, so a build comparing before and after reads what follows it, not the product's history)."""
        found = {}
        for p in product_ids:
            stream, recorded = self._streams.get(p, ()), self._recorded.get(p, ())
            first = 0 if since is None else bisect_left(stream, since, key=order_key)
            for index in range(first, len(stream)):
                result = recorded[index]
                if type(result) is _Result and result[1]:
                    found[stream[index].movement_id, p] = result[1]
        return found

    def _result(self, product_id: str, movement_id: str) -> _Recorded:
        return self._recorded[product_id][self._positions[product_id][movement_id]]  # type: ignore[return-value]

    def layers(self, product_id: str) -> tuple[Layer, ...]:
        lots = self._lots
        return tuple(Layer(order_key(lots[d[0]]), *d) for d in self._layers.get(product_id, ()))

    def latest(self, product_id: str) -> MovementKey | None:
        """The replay-order key of the product's latest movement (None when it has none)."""
        stream = self._streams.get(product_id)
        return order_key(stream[-1]) if stream else None

    def on_hand(self, product_id: str) -> Decimal:
        return total(layer[1] for layer in self._layers.get(product_id, ()))

    def replace_document(self, document_id: str, movements: Iterable[AnyMovement]) -> list[AnyMovement]:
        """Swap a document's movements for its new version (an edit, or none at all for a void/delete);
        returns the movements it had (to put back should the new version be refused)."""
        ids = self._ids(document_id)
        previous = [self._movements[i] for i in ids]
        self.change(add=movements, remove=ids)
        return previous

    def change(self, *, add: Iterable[AnyMovement] = (), remove: Iterable[str] = ()) -> None:
        """Add and remove movements as one change (refused whole), then re-cost what it can affect."""
        collecting = gc.isenabled()
        gc.disable()  # a change makes many small tuples and frees few: nothing for the collector to find
        try:
            self._change(in_order(add), set(remove))
        finally:
            if collecting:
                gc.enable()

    def _change(self, added: list[AnyMovement], gone: set[str]) -> None:
        everything = not self._movements and not gone  # a first replay: the added movements are everything
        if not everything:
            self._check(added, gone)
        removed = [self._pop(movement_id) for movement_id in gone]
        starts: dict[str, MovementKey] = {}
        for m in () if everything else (*added, *removed):
            for p in m.products():
                starts[p] = min(starts.get(p, MAX), order_key(m))
        for m in removed:
            for p in m.products():
                self._positions[p].pop(m.movement_id, None)
        reach, edges = self._spread(starts)
        order = self._downstream(starts, reach, edges)
        replayed = reach if order is None else starts
        with localcontext(COST_CONTEXT):
            try:
                dirty = self._replay({p: reach[p] for p in replayed}, added, gone, everything=everything)
            except Exception:
                if everything:  # a first replay checks as it goes: refused, the ledger stays empty
                    self._empty()
                    self._check(added, set())  # raises, naming what is repeated
                raise
            for p in order or ():
                self._reprice(p, dirty)

    def _entry(self, m: AnyMovement, p: str, result: _Recorded | None = None) -> Entry:
        """What movement `m` did to product `p`, from the movement and its recorded result (looked up when
        not given)."""
        if m.kind == "receipt_in" or m.kind == "waste":
            kind = EntryKind.RECEIPT_IN if m.kind == "receipt_in" else EntryKind.WASTE
            draw = Draw(m.lot_id, m.quantity, m.cost, False)
            return Entry(
                m.movement_id, m.document_id, kind, p, m.at, m.quantity, m.cost, (draw,), ZERO, False
            )
        cost, uncosted, incomplete, draws = _full(result or self._result(p, m.movement_id))
        quantity = m.quantity
        if m.kind == "sale":
            kind = EntryKind.SALE_CONSUME
        elif m.kind == "sale_return":
            kind = EntryKind.SALE_RETURN if m.restock else EntryKind.RETURN_WASTE
        elif p == m.product_id:
            kind, draws = EntryKind.BUILD_PRODUCE, Draw(m.lot_id, quantity, cost, incomplete)
        else:
            kind = EntryKind.BUILD_CONSUME
            quantity = next(c.quantity for c in m.components if c.product_id == p)
        # a list of Draws is copied as it is (a build may draw thousands); a part alone is made a Draw
        drawn = tuple(draws) if isinstance(draws, list) else () if draws is None else (Draw._make(draws),)
        return Entry(m.movement_id, m.document_id, kind, p, m.at, quantity, cost, drawn, uncosted, incomplete)

    def _check(self, added: list[AnyMovement], gone: set[str]) -> None:
        if unknown := {i for i in gone if i not in self._movements}:
            raise UnknownMovement(f"no movement {min(unknown)}")
        ids = [m.movement_id for m in added]
        if len(set(ids)) != len(ids) or any(i in self._movements and i not in gone for i in ids):
            raise DuplicateMovement("a movement id is already in the ledger")
        lots = [m.lot_id for m in added if isinstance(m, ReceiptIn | BuildRun)]
        taken = (lot for lot in lots if lot in self._lots and self._lots[lot].movement_id not in gone)
        if len(set(lots)) != len(lots) or any(taken):
            raise DuplicateMovement("a lot id is already in the ledger")

    def _pop(self, movement_id: str) -> AnyMovement:
        documents = self._documents_index()  # indexed while `_unfiled` still matches the movements
        m = self._movements.pop(movement_id)
        documents[m.document_id] = tuple(i for i in self._ids(m.document_id) if i != movement_id)
        if isinstance(m, ReceiptIn | BuildRun):
            del self._lots[m.lot_id]
            self._made_at.pop(m.lot_id, None)
        if isinstance(m, BuildRun):
            for c in m.components:
                uses = self._uses[c.product_id]
                del uses[bisect_left(uses, order_key(m), key=order_key)]
        elif isinstance(m, SaleOut | SaleReturn) and self._sales is not None:
            sales = self._sales[_sale_of(m), m.product_id]
            if m in sales:
                sales.remove(m)
        if isinstance(m, SaleReturn):
            self._returns[m.product_id] -= 1
            if not self._returns[m.product_id]:
                del self._returns[m.product_id]
        return m

    def _ids(self, document_id: str) -> tuple[str, ...]:
        if self._documents is None and self._scans < _SCANS:  # a document new to the ledger, as a build's is
            self._scans += 1
            if document_id not in self._unfiled:
                return ()
        filed = self._documents_index().get(document_id, ())
        return (filed,) if isinstance(filed, str) else filed

    def _documents_index(self) -> dict[str, str | tuple[str, ...]]:
        if self._documents is None:  # filed by C loops when each document has one movement, as most do
            self._documents = dict(zip(self._unfiled, self._movements, strict=True))
            if len(self._documents) < len(self._unfiled):  # a document with more movements than one
                self._documents = {}
                for document_id, movement_id in zip(self._unfiled, self._movements, strict=True):
                    _file_document(self._documents, document_id, movement_id)
            self._unfiled = []
        return self._documents

    def _sales_index(self) -> dict[tuple[str, str], list[SaleOut | SaleReturn]]:
        if self._sales is None:
            self._sales = defaultdict(list)
            for m in self._movements.values():
                if m.kind == "sale" or (m.kind == "sale_return" and m.sale_document_id):
                    self._sales[_sale_of(m), m.product_id].append(m)
        return self._sales

    def _spread(self, starts: dict[str, MovementKey]) -> tuple[dict[str, MovementKey], set[tuple[str, str]]]:
        """Each product built from a changed one after its change, from that build on (transitively), with
        the (component, product) pairs of those builds."""
        reach, edges, todo = dict(starts), set(), list(starts)
        while todo:
            p = todo.pop()
            uses = self._uses.get(p, [])
            for m in uses[bisect_left(uses, reach[p], key=order_key) :]:
                edges.add((p, m.product_id))
                if order_key(m) < reach.get(m.product_id, MAX):
                    reach[m.product_id] = order_key(m)
                    todo.append(m.product_id)
        return reach, edges

    def _downstream(
        self, starts: dict[str, MovementKey], reach: dict[str, MovementKey], edges: set[tuple[str, str]]
    ) -> list[str] | None:
        """The products only built from changed ones, in an order where each comes after its components, when
        re-pricing them along their recorded draws gives what a replay would: none has a return (a restock
        mixes costs back into lots), none feeds a product that is replayed, no cycle. Otherwise None."""
        later = [p for p in reach if p not in starts]
        if any(self._returns.get(p) for p in later) or any(a not in starts and b in starts for a, b in edges):
            return None
        inputs: dict[str, set[str]] = {p: set() for p in later}
        for a, b in edges:
            if a not in starts:
                inputs[b].add(a)
        order: list[str] = []
        while ready := sorted(p for p, needs in inputs.items() if not needs):
            order += ready
            inputs = {p: needs.difference(ready) for p, needs in inputs.items() if p not in ready}
        return None if inputs else order

    def _replay(
        self, starts: dict[str, MovementKey], added: list[AnyMovement], gone: set[str], *, everything: bool
    ) -> dict[str, list[BuildRun]]:
        """Restore each product from its last checkpoint before its start, then replay them all in order,
        filing each replayed movement back into its product's stream, and each added one by id, document,
        lot, use and sale (`everything`: the added movements are the whole ledger, every product replayed
        from nothing). Returns, per product not replayed, the builds of it whose components were replayed."""
        states: dict[str, _State] = _Fresh(self) if everything else {}
        restart: dict[str, MovementKey] = {}
        pending: dict[str, AnyMovement] = {} if everything else {m.movement_id: m for m in added}
        for p, start in starts.items():
            stream, checkpoints = self._streams[p], self._checkpoints[p]
            changed_at = bisect_left(stream, start, key=order_key)  # stream[:changed_at] is unchanged
            lots_made = self._made[p]
            if changed_at == len(stream):  # after all of the product's movements: its layers are as they are
                first, layers = changed_at, self._layers[p]
            else:
                first = max((i for i in checkpoints if i <= changed_at), default=0)
                layers = self._layers[p] = _restore(checkpoints.get(first), lots_made)
                for index in [i for i in checkpoints if i > first]:
                    del checkpoints[index]
            restart[p] = min(start, order_key(stream[first])) if first < len(stream) else start
            done = self._positions[p]
            for m in stream[first:]:  # recorded again as replayed: results stay in replay order
                done.pop(m.movement_id, None)
                if m.movement_id not in gone:
                    pending[m.movement_id] = m
            del stream[first:]
            recorded = self._recorded[p]
            del recorded[first:]
            states[p] = (layers, stream, done, checkpoints, lots_made, recorded)
        dirty: dict[str, list[BuildRun]] = defaultdict(list)
        every, movements, documents, unfiled, lots, returns, uses, made_at = (
            self._every, self._movements, self._documents, self._unfiled, self._lots,
            self._returns, self._uses, self._made_at,
        )  # fmt: skip
        fresh, clash = {m.movement_id for m in (() if everything else added)}, False
        for m in added if everything else in_order(pending.values()):
            movement_id = m.movement_id
            new = everything or movement_id in fresh
            if new:
                movements[movement_id] = m
                if documents is None:
                    unfiled.append(m.document_id)
                else:
                    _file_document(documents, m.document_id, movement_id)
            # told apart by type, not by `kind`: each attribute read on a movement takes the slow way (a
            # pydantic model defines __getattr__, so the interpreter cannot specialise it), and a replay
            # reads many
            if type(m) is BuildRun:
                key, parts, made = order_key(m), [], m.product_id
                if new:
                    clash = clash or m.lot_id in lots
                    lots[m.lot_id] = m
                for c in m.components:
                    p = c.product_id
                    if everything:  # in replay order: each comes last
                        uses[p].append(m)
                    elif new:
                        _file(uses[p], m, key)
                    if everything or (p in states and key >= restart[p]):
                        layers, stream, done, saved, lots_made, recorded = states[p]
                        if not len(stream) % every:
                            saved[len(stream)] = _mark(layers, lots_made, p in returns)
                        stream.append(m)
                        done[movement_id] = len(recorded)
                        result = _take(layers, c.quantity)
                        recorded.append(result)
                    else:
                        result = self._result(p, movement_id)
                    parts.append(result)
                if not (everything or (made in states and key >= restart[made])):
                    dirty[made].append(m)
                    continue
                layers, stream, done, saved, lots_made, recorded = states[made]
                if not len(stream) % every:
                    saved[len(stream)] = _mark(layers, lots_made, made in returns)
                made_at[m.lot_id] = (len(lots_made), len(stream))
                stream.append(m)
                # the finished lot costs exactly what its components cost
                cost, lacking = _made(parts)
                done[movement_id] = len(recorded)
                recorded.append(_new(_Result, (cost, ZERO, lacking, None)))
                lot = _new(Draw, (m.lot_id, m.quantity, cost, lacking))
                layers.append(lot)
                lots_made.append(lot)
                continue
            layers, stream, done, saved, lots_made, recorded = states[m.product_id]
            if not len(stream) % every:
                saved[len(stream)] = _mark(layers, lots_made, m.product_id in returns)
            stream.append(m)
            if type(m) is SaleOut:
                done[movement_id] = len(recorded)
                recorded.append(_take(layers, m.quantity))
                if new and (sales := self._sales) is not None:  # built the first time a return needs it
                    sales[m.document_id, m.product_id].append(m)
            elif type(m) is ReceiptIn:
                if new:
                    clash = clash or m.lot_id in lots
                    lots[m.lot_id] = m
                made_at[m.lot_id] = (len(lots_made), len(stream) - 1)
                lot = _new(Draw, (m.lot_id, m.quantity, m.cost, False))
                layers.append(lot)
                lots_made.append(lot)
                recorded.append(None)
            elif type(m) is SaleReturn:
                if new:
                    self._returns[m.product_id] += 1
                    if m.sale_document_id and (sales := self._sales) is not None:
                        sales[m.sale_document_id, m.product_id].append(m)
                done[movement_id] = len(recorded)
                recorded.append(self._return(m, layers, done, recorded))
            else:  # waste: never in stock
                recorded.append(None)
        if clash or (everything and len(movements) != len(added)):
            raise DuplicateMovement("an id is repeated")  # named by the check the caller then makes
        return dirty

    def _return(
        self, m: SaleReturn, layers: deque[_Lot], done: dict[str, int], recorded: list[_Recorded | None]
    ) -> _Recorded:
        """Undo the sale's consumption most-recently-consumed first: its uncosted tail, then its lots."""
        pieces: list[Draw] = []  # what the sale took, in the order it took it; lot "" is the uncosted part
        already, key = ZERO, order_key(m)  # already: what earlier credits of this sale took back
        sales = self._sales_index().get((m.sale_document_id or "", m.product_id), [])
        for earlier in sorted(sales, key=order_key):
            if order_key(earlier) < key:
                _, uncosted, _, draws = _full(recorded[done[earlier.movement_id]])  # type: ignore[arg-type]
                if earlier.kind == "sale_return":
                    already += earlier.quantity
                else:
                    pieces += [*map(Draw._make, _drawn(draws)), Draw("", uncosted, ZERO)]
        wanted, returned = m.quantity, []
        for piece in reversed(pieces):
            skip = min(already, piece.quantity)
            take = min(wanted, piece.quantity - skip)
            already, wanted = already - skip, wanted - take
            if take and piece.lot_id:
                returned.append(piece._replace(quantity=take, cost=piece.cost * take / piece.quantity))
        cost = sum((d.cost for d in returned), ZERO)
        lacking = any(d.incomplete for d in returned)
        result = _Result(cost, wanted, lacking, returned)
        for draw in returned if m.restock else ():
            self._restock(layers, draw)
        return result

    def _restock(self, layers: deque[_Lot], draw: Draw) -> None:
        """Back into its own lot; a used-up lot comes back at its original place in the FIFO order, maybe
        ahead of the head: so a part-used head is made a Draw first, as the layers after it are (see _Lot)."""
        if layers and type(layers[0]) is not Draw:
            layers[0] = _new(Draw, layers[0])
        for index, (lot_id, quantity, cost, incomplete) in enumerate(layers):
            if lot_id == draw.lot_id:
                layers[index] = _draw(lot_id, quantity + draw.quantity, cost + draw.cost, incomplete)
                return
        lots = self._lots
        lot_key = order_key(lots[draw.lot_id])
        index = next(
            (i for i, layer in enumerate(layers) if order_key(lots[layer[0]]) > lot_key), len(layers)
        )
        layers.insert(index, draw)

    def _reprice(self, product_id: str, dirty: dict[str, list[BuildRun]]) -> None:
        """Re-price a product whose own movements did not change, along the draws it recorded: only the cost
        (and completeness) of lots some builds of it made changed, never which lots its movements draw.

        Each changed lot's draws are re-priced in order, exactly as a replay prices them (a part takes its
        share of the lot's remaining cost, the last part what is left), from the first consumption drawing it
        until it is used up: only those results are read, not those drawing the lots ahead of it in stock.
        Lots are re-priced one after the other (a result drawing two of them is re-priced twice, each time
        summed again in order, as a replay sums it). The builds consuming a re-priced movement are handed on
        to the products they make."""
        builds = {m.movement_id: m for m in dirty.pop(product_id, ())}
        priced: dict[str, dict[Decimal, tuple[Decimal, bool]]] = {}  # lot -> remaining quantity -> cost, ...
        made, made_at, in_stock = self._made[product_id], self._made_at, False
        # only the results of builds consuming it (to hand on) are told by their movements: a product none
        # consumes (as a finished good mostly is) is re-priced reading its results alone
        stream = self._streams[product_id] if self._uses.get(product_id) else None
        recorded = self._recorded[product_id]
        for movement_id, m in builds.items():
            lot_id = m.lot_id
            index, at = made_at[lot_id]
            lot = self._remake(m, movement_id, recorded, at)
            if lot is None:
                continue
            recorded[at] = lot[0]
            made[index] = lot[1]
            priced[lot_id] = {lot[1][1]: (lot[1][2], lot[1][3])}
            first = _first_draw(recorded, made_at, at)
            in_stock = _redraw_lot(stream, recorded, lot[1], first, priced, dirty) or in_stock
        if not priced:
            return
        if in_stock:  # the lots used up are no longer in stock
            self._layers[product_id] = deque(_priced(self._layers[product_id], priced))
        saved = self._checkpoints[product_id]
        for index, mark in saved.items():
            if mark.copy is not None:
                saved[index] = mark._replace(copy=tuple(_priced(mark.copy, priced)))
            elif mark.head is not None and mark.head[0] in priced:
                saved[index] = mark._replace(head=next(_priced((mark.head,), priced)))

    def _remake(
        self, m: BuildRun, movement_id: str, recorded: list[_Recorded | None], at: int
    ) -> tuple[_Result, Draw] | None:
        """A build's result (at stream index `at` of what it makes) and lot at what its components cost now,
        when that changed."""
        cost, lacking = _made([self._result(c.product_id, movement_id) for c in m.components])
        old = cast(_Result, recorded[at])  # a build's own result: its lot's cost, ZERO, incomplete, None
        if old[2] is lacking and _same(old[0], cost):
            return None
        return _new(_Result, (cost, ZERO, lacking, None)), _new(Draw, (m.lot_id, m.quantity, cost, lacking))


def _first_draw(
    recorded: list[_Recorded | None], lots_made_at: dict[str, tuple[int, int]], made_at: int
) -> int:
    """The stream index of the first consumption after `made_at` that draws the lot made there, or a later
    lot (the stream's end when none does). Consumptions draw lots in the order they were made, so a binary
    search finds it, reading only the results it probes; a result that drew no lot (a lot made, or a
    consumption finding no stock, so none made before it) counts as the consumption after it."""
    low, high = made_at + 1, len(recorded)
    while low < high:
        middle = at = (low + high) // 2
        lot = _last_lot(recorded[at])
        while lot is None and at + 1 < high:
            at += 1
            lot = _last_lot(recorded[at])
        if lot is not None and lots_made_at[lot][1] < made_at:
            low = at + 1
        else:
            high = middle
    return low


def _redraw_lot(
    stream: list[AnyMovement] | None,
    recorded: list[_Recorded | None],
    lot: Draw,
    first: int,
    priced: dict[str, dict[Decimal, tuple[Decimal, bool]]],
    dirty: dict[str, list[BuildRun]],
) -> bool:
    """Re-price a changed lot's draws, from the consumption at stream index `first` until it is used up
    (what each draw leaves is noted in `priced`); True when some of it is still in stock."""
    lot_id, available, remaining, incomplete = lot
    noted = priced[lot_id]
    for at in range(first, len(recorded)):
        record = recorded[at]
        if record is None:  # a receipt
            continue
        if type(record) is not _Result:  # a part of one lot, as most results are: re-priced here
            if record[0] != lot_id:
                continue
            quantity = record[1]
            if quantity < available:  # a part, as `_take` prices it
                part = remaining * quantity / available
                remaining, available = remaining - part, available - quantity
                noted[available] = (remaining, incomplete)
                redrawn: _Recorded = (lot_id, quantity, part, incomplete)
            else:
                redrawn, available = (lot_id, quantity, remaining, incomplete), ZERO
        elif record[3] is None:  # a lot made, or nothing drawn
            continue
        else:  # several lots (the lot among them), or a lot and a quantity no lot covered
            drawn = record[3]
            lots: list[_Lot] = []
            spent, lacking = ZERO, False
            for d in drawn if isinstance(drawn, list) else (drawn,):
                if d[0] == lot_id:
                    quantity = d[1]
                    if quantity < available:
                        part = remaining * quantity / available
                        remaining, available = remaining - part, available - quantity
                        noted[available] = (remaining, incomplete)
                        d = (lot_id, quantity, part, incomplete)
                    else:
                        d, available = (lot_id, quantity, remaining, incomplete), ZERO
                lots.append(d)
                spent += d[2]  # summed in order, as `_take` sums it
                if d[3]:
                    lacking = True
            if len(lots) > 1:  # the lots drawn as Draws in a list (see _Lot)
                redrawn = _new(
                    _Result,
                    (spent, record[1], lacking, [d if type(d) is Draw else _new(Draw, d) for d in lots]),
                )
            elif record[1] is ZERO:
                redrawn = lots[0]
            else:
                redrawn = _new(_Result, (spent, record[1], lacking, lots[0]))
        recorded[at] = redrawn
        if stream is not None and type(m := stream[at]) is BuildRun:
            dirty[m.product_id].append(m)
        if not available:
            return False
    return True


def _file_document(documents: dict[str, str | tuple[str, ...]], document_id: str, movement_id: str) -> None:
    filed = documents.setdefault(document_id, movement_id)
    if filed is not movement_id:  # a document's second movement, or more
        documents[document_id] = _and(filed, movement_id)


def _and(filed: str | tuple[str, ...], movement_id: str) -> tuple[str, ...]:
    return (filed, movement_id) if isinstance(filed, str) else (*filed, movement_id)


def _file(uses: list[BuildRun], m: BuildRun, key: MovementKey) -> None:
    """Into a list in replay order: at the end when it comes last, as it always does in a first replay."""
    if uses and order_key(uses[-1]) > key:
        insort(uses, m, key=order_key)
    else:
        uses.append(m)


def _made(parts: list[_Recorded]) -> tuple[Decimal, bool]:
    """A build's finished lot costs exactly what its components cost; incomplete when one lacked something."""
    cost, lacking = ZERO, False
    for r in parts:  # summed as `_full` gives each part's cost, without making its tuple
        if type(r) is not _Result:
            cost += COST_CONTEXT.add(ZERO, r[2])
            lacking = lacking or r[3]
        else:
            cost += r[0]
            if r[1] or r[2]:
                lacking = True
    return cost, lacking


def _last_lot(record: _Recorded | None) -> str | None:
    """The lot a result drew last (None when it drew none: a lot made, a receipt, nothing in stock)."""
    if record is None:
        return None
    if type(record) is not _Result:
        return record[0]
    drawn = record.drawn
    if drawn is None:
        return None
    return drawn[-1][0] if isinstance(drawn, list) else drawn[0]


def _priced(layers: Iterable[_Lot], priced: dict[str, dict[Decimal, tuple[Decimal, bool]]]) -> Iterator[_Lot]:
    """Layers (or lots made) with each re-priced lot at its cost when it had what the layer holds."""
    for d in layers:
        yield _draw(d[0], d[1], *priced[d[0]][d[1]]) if d[0] in priced else d


def _sale_of(m: SaleOut | SaleReturn) -> str:
    return m.document_id if m.kind == "sale" else m.sale_document_id or ""
