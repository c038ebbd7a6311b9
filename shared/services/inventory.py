"""Receipts (with their QA rejections) and builds recorded on the stock ledger, the lots they leave, and the
export each record enqueues.

Every write reads the ledger at a version, computes on it (a build is costed FIFO there, or refused with
its shortages), then commits its movements, its records, their pending exports and the stock they leave in
one transaction that holds only while the ledger is still at that version; a write that lost the race
recomputes. Nothing is written for a refused build, and a build is refused only on a ledger that did not
move while it was read (a read that straddled another write is computed again).

A write dated after the latest movement of each product it moves computes on just their stored stock, so
its work and DynamoDB requests do not grow with the history; a back-dated one replays the whole ledger
(DESIGN.md, "Stock items")."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from shared.bodies import BuildRequest, ReceiptRequest
from shared.contracts import ExportJob, ExportKind
from shared.domain import catalog as catalog_models
from shared.domain import inventory as domain
from shared.domain.inventory import (
    Build,
    BuildRecord,
    Component,
    ComponentCost,
    Receipt,
    ReceiptLine,
    Rejection,
    build_movement,
    receipt_movements,
    rejection_movements,
    rejection_of,
)
from shared.domain.ledger import AnyMovement, BuildRun, DuplicateMovement, Ledger, ReceiptIn, order_key
from shared.errors import Conflict, InvalidFields, NotFound
from shared.model import Model
from shared.money import total
from shared.observability import logger
from shared.services import catalog, paging, qbo_names, queue, sessions
from shared.services.paging import Page
from shared.store import catalog as catalog_store
from shared.store import checkpoints, keys
from shared.store import connections as connection_store
from shared.store import exports as export_store
from shared.store import inventory as store
from shared.store import settings as settings_store

MAX_TRIES = 8  # concurrent writes to one organisation's ledger: each loser recomputes on the newer version
CHECKPOINT_EVERY = 500  # movements between checkpoints of the ledger
T = TypeVar("T")


class ExportRef(Model):
    model_config = ConfigDict(frozen=True)
    kind: ExportKind
    record_id: str
    export_id: str


class ReceiptView(Model):
    receipt: Receipt
    rejection: Rejection | None
    accepted_cost: Decimal
    rejected_cost: Decimal
    exports: list[ExportRef]


class BuildView(Model):
    build: Build
    lot_id: str
    cost: Decimal  # exactly what the components cost
    unit_cost: Decimal
    components: tuple[ComponentCost, ...]
    exports: list[ExportRef]


class LotView(Model):
    lot_id: str
    lot_code: str
    source: Literal["receipt", "build", "credit"]  # credit: a credit note's units that matched no sale
    document_id: str
    at: datetime
    quantity: Decimal  # still on hand
    unit_cost: Decimal
    value: Decimal  # the exact remaining cost
    cost_incomplete: bool  # the lot's cost lacks inputs no lot could cover


class ProductLots(Model):
    product_id: str
    on_hand: Decimal
    value: Decimal
    lots: list[LotView]


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12].upper()}"


def _record_id(prefix: str, given: str | None, request_token: str | None) -> str:
    """A new record's id: the one its request gives, else the same for every attempt at an Idempotency-Key
    request (``idempotency.request_token``), else a new one."""
    if given:
        return given
    return f"{prefix}-{request_token[:12].upper()}" if request_token else _new_id(prefix)


class RecordIdTaken(store.DuplicateRecord):
    """The record id the request gives is a receipt's or a build's of this organisation already: the answer
    names the field and the id (the error stays ``DuplicateRecord``)."""

    def __init__(self, field: str, record_id: str) -> None:
        problem = (
            f"{record_id} is already recorded (receipts and builds share their ids): if this is a retry, "
            f"read it with GET /receipts/{record_id} or /builds/{record_id}; otherwise give another {field}"
        )
        super().__init__(f"{field}: {problem}")
        self.fields = [{"field": field, "problem": problem}]

    @property
    def code(self) -> str:
        return "DuplicateRecord"

    def response_fields(self) -> dict[str, list[dict[str, str]]]:
        return {"details": self.fields}


def _recorded_once(
    write: Callable[[], T],
    given: str | None,
    request_token: str | None,
    recorded: Callable[[], T],
    field: str,
) -> T:
    """``write`` (``_with_retries``); when its id came from the request token and is taken, an earlier
    attempt at this same request recorded it (its claim lapsed before its answer was kept): ``recorded``
    answers it again instead. An id the request gives (``field``) that is taken is refused naming it."""
    try:
        return _with_retries(write)
    except store.DuplicateRecord:
        if given:
            raise RecordIdTaken(field, given) from None
        if request_token is None:
            raise
        return recorded()


def _refs(organisation_id: str, records: Iterable[tuple[ExportKind, str]]) -> list[ExportRef]:
    return [
        ExportRef(kind=k, record_id=r, export_id=queue.export_id_for(organisation_id, k, r))
        for k, r in records
    ]


def _known_products(organisation_id: str, fields: Iterable[tuple[str, str]], named_by: str = "") -> None:
    """Refuses products the organisation does not have, naming each field (its path in the body) that
    names one."""
    named = list(fields)
    wanted = sorted({product_id for _, product_id in named})
    found = {p.product_id for p in catalog_store.get_products(organisation_id, wanted)}
    if missing := sorted(set(wanted) - found):
        raise InvalidFields(
            f"unknown product(s): {', '.join(missing)}",
            [
                {"field": field, "problem": f"{named_by}unknown product {p}"}
                for field, p in named
                if p not in found
            ],
        )


def _with_retries(write: Callable[[], T]) -> T:
    """Runs ``write`` until it commits on a ledger nobody changed meanwhile."""
    for _ in range(MAX_TRIES):
        try:
            return write()
        except store.LedgerMoved:
            continue
    raise Conflict("inventory kept changing while this was recorded; try again")


class _Costing:
    """The ledger a write computes on: when ``resumed`` can give it, just the open lots of the products the
    write consumes; otherwise the ledger from the nearest checkpoint before the write (or from its start),
    replayed, and the stock it held before the write."""

    def __init__(self, organisation_id: str, head: store.LedgerHead, moved: Sequence[AnyMovement]) -> None:
        self.touched = sorted({p for m in moved for p in m.products()})
        self.used = domain.consumed(moved)
        self.tails = store.tails(organisation_id, set(self.touched) - set(self.used), head)
        ledger = domain.resumed(
            store.stock(organisation_id, self.used, head) if self.used else {},
            {p: tail.last for p, tail in self.tails.items()},
            moved,
        )
        self.whole = ledger is None
        if ledger is None:
            ledger = _from_checkpoint(organisation_id, head, moved)
        self.ledger = Ledger(store.movements(organisation_id)) if ledger is None else ledger
        self.before = domain.stock_of(self.ledger, self.ledger.products()) if self.whole else {}

    def stock(self) -> dict[str, domain.Stock]:
        """The stock to store whole after the write: the consumed products' when just they were costed;
        after a replay, the touched products' and every other product's the write changed."""
        if not self.whole:
            return domain.stock_of(self.ledger, self.used)
        after = domain.stock_of(self.ledger, self.ledger.products())
        return {
            p: found
            for p, found in after.items()
            if p in self.touched or p not in self.before or not domain.same_stock(found, self.before[p])
        }

    def added(self) -> dict[str, tuple[store.Tail, domain.Stock]]:
        """The lots the write added to each product it did not consume, to store after its stored lots (when
        just the consumed products were costed)."""
        if self.whole:
            return {}
        return {p: (self.tails[p], found) for p, found in domain.stock_of(self.ledger, self.tails).items()}


def _from_checkpoint(
    organisation_id: str, head: store.LedgerHead, moved: Sequence[AnyMovement]
) -> Ledger | None:
    """The ledger from the nearest checkpoint before the write that still holds: the movements after it, on
    the lots there of the products they move (None when there is none: the whole ledger is replayed)."""
    if not head.timed:
        return None
    first = checkpoints.sortable(min(order_key(m) for m in moved))
    found = checkpoints.nearest(organisation_id, first, head.cuts)
    if found is None:
        return None
    later = checkpoints.movements_after(organisation_id, found.key)
    # the products that move after the checkpoint; the others' lots and stock stay as they are
    lots = checkpoints.lots_at(organisation_id, found, {p for m in (*later, *moved) for p in m.products()})
    return None if lots is None else domain.resumed_from(lots, later)


def _take_checkpoint(organisation_id: str, head: store.LedgerHead, moved: int) -> None:
    """After every ``CHECKPOINT_EVERY`` movements, every product's stock at the ledger's latest movement
    becomes a checkpoint. It only saves later replays work: a failure to take one is logged, not raised (the
    write is recorded)."""
    if not (head.timed and head.complete) or head.moved + moved - head.checkpointed < CHECKPOINT_EVERY:
        return
    try:
        now = store.ledger_head(organisation_id)
        stock = store.all_stock(organisation_id, now)
        if stock is not None:
            checkpoints.save(organisation_id, now.latest, now.version, stock)
            checkpoints.mark_taken(organisation_id, now.moved)
    except Exception:  # the write is recorded: its answer must say so
        logger.exception("no checkpoint taken", extra={"organisation_id": organisation_id})


def _listed(organisation_id: str, body: BaseModel, at: datetime) -> dict[str, str]:
    """A receipt's or build's place in its list (a rejection is listed with its receipt)."""
    if isinstance(body, Receipt):
        return keys.records_list_index(organisation_id, "receipt", at, body.seq, body.receipt_id)
    if isinstance(body, BuildRecord):
        return keys.records_list_index(organisation_id, "build", at, body.build.seq, body.build.build_id)
    return {}


def _commit(
    organisation_id: str,
    head: store.LedgerHead,
    documents: Mapping[str, Sequence[AnyMovement]],
    records: list[tuple[ExportKind, str, BaseModel, datetime]],
    now: datetime,
    costing: _Costing,
) -> list[ExportRef]:
    rows = [
        store.RecordRow(
            kind, record_id, body.model_dump_json(), at.isoformat(), _listed(organisation_id, body, at)
        )
        for kind, record_id, body, at in records
    ]
    pending = [
        export_store.new_export(
            organisation_id,
            queue.export_id_for(organisation_id, kind, record_id),
            kind=kind,
            record_id=record_id,
            at=at.isoformat(),
            now=now.isoformat(),
        )
        for kind, record_id, _, at in records
    ]
    store.commit(
        organisation_id,
        head=head,
        documents=documents,
        records=rows,
        extra=pending,
        stock=costing.stock(),
        added=costing.added(),
    )
    _take_checkpoint(organisation_id, head, sum(len(moves) for moves in documents.values()))
    refs = _refs(organisation_id, ((kind, record_id) for kind, record_id, _, _ in records))
    for ref in refs:  # stored: a queue outage only delays the export (the outbox sweep queues it)
        queue.deliver(ExportJob(organisation_id=organisation_id, kind=ref.kind, record_id=ref.record_id))
    return refs


# ---- receipts -----------------------------------------------------------------------------------------
def record_receipt(
    organisation_id: str, request: ReceiptRequest, now: datetime, request_token: str | None = None
) -> ReceiptView:
    """Accepted units become a lot per line; the rejected ones are written off at their cost by a
    rejection recorded (and exported) with the receipt. ``request_token``: see ``_record_id``."""
    _known_products(
        organisation_id, ((f"lines.{n}.product_id", line.product_id) for n, line in enumerate(request.lines))
    )
    receipt_id = _record_id("RCV", request.receipt_id, request_token)
    provider = _supplier_provider(organisation_id)
    supplier_id = _supplier_of(organisation_id, provider, request)
    _check_payable(organisation_id, provider, supplier_id)

    def write() -> ReceiptView:
        head = store.ledger_head(organisation_id)
        version = head.version
        receipt = Receipt(
            receipt_id=receipt_id,
            supplier_id=supplier_id,
            received_at=request.received_at,
            seq=version + 1,
            lines=tuple(
                ReceiptLine(
                    line_id=str(number),
                    product_id=line.product_id,
                    lot_code=line.lot_code,
                    accepted=line.accepted,
                    rejected=line.rejected,
                    unit_cost=line.unit_cost,
                    line_cost=line.line_cost,
                )
                for number, line in enumerate(request.lines, 1)
            ),
        )
        rejection = rejection_of(receipt)
        documents: dict[str, Sequence[AnyMovement]] = {receipt_id: receipt_movements(receipt)}
        records: list[tuple[ExportKind, str, BaseModel, datetime]] = [
            ("receipt", receipt_id, receipt, receipt.received_at)
        ]
        if rejection is not None:
            documents[rejection.rejection_id] = rejection_movements(rejection)
            records.append(("rejection", rejection.rejection_id, rejection, rejection.rejected_at))
        moved = [m for movements in documents.values() for m in movements]
        costing = _Costing(organisation_id, head, moved)
        try:
            costing.ledger.change(add=moved)
        except DuplicateMovement:  # its lots are in the ledger already: this receipt was recorded
            raise store.DuplicateRecord() from None
        refs = _commit(organisation_id, head, documents, records, now, costing)
        return _receipt_view(receipt, rejection, refs)

    return _recorded_once(
        write,
        request.receipt_id,
        request_token,
        lambda: get_receipt(organisation_id, receipt_id),
        "receipt_id",
    )


def _supplier_provider(organisation_id: str) -> str | None:
    """The provider whose suppliers a receipt names: the one in use, else (nothing connected: its export
    waits for the next connection) the one disconnected last, whose synced suppliers the store keeps. Read
    as the caller sent it there, a supplier named by email alone was dropped, and on QuickBooks' Accounts
    Payable the receipt's export failed for good after reconnecting ("has no supplier")."""
    connection = sessions.in_use(organisation_id)
    if connection is not None:
        return connection.provider
    gone = [c for c in connection_store.list_connections(organisation_id) if c.disconnected_at]
    return max(gone, key=lambda c: c.disconnected_at or "").provider if gone else None


def _supplier_of(organisation_id: str, provider: str | None, request: ReceiptRequest) -> str:
    """The connected provider's supplier the receipt names: by provider id, then email, then exact name;
    what the caller sent when none matches."""
    if not (request.supplier_id or request.supplier_email or request.supplier_name):
        return ""
    found = None
    if provider:
        found = catalog.supplier_for_receipt(
            organisation_id,
            provider,
            supplier_id=request.supplier_id or None,
            email=request.supplier_email or None,
            supplier_name=request.supplier_name or None,
        )
    return found.supplier_id if found else request.supplier_id or request.supplier_name


def _check_payable(organisation_id: str, provider: str | None, supplier_id: str) -> None:
    """Refuses, before anything is recorded, a receipt whose journal QBO would refuse: its receiving credit
    account is Accounts Payable and the receipt names no QBO vendor to put on that line."""
    if provider != "qbo":
        return
    chosen = settings_store.get_export_settings(organisation_id, "qbo")
    account_id = chosen.account("receiving_credit") if chosen else None
    if not chosen or chosen.quantity_mode or not account_id:
        return
    account = next(iter(catalog_store.get_accounts(organisation_id, "qbo", [account_id])), None)
    problem = account and qbo_names.vendor_problem(organisation_id, account, supplier_id, "this receipt")
    if problem:
        raise InvalidFields(f"supplier_id: {problem}", [{"field": "supplier_id", "problem": problem}])


def _receipt_view(receipt: Receipt, rejection: Rejection | None, refs: list[ExportRef]) -> ReceiptView:
    return ReceiptView(
        receipt=receipt,
        rejection=rejection,
        accepted_cost=receipt.accepted_cost,
        rejected_cost=rejection.cost if rejection else Decimal(0),
        exports=refs,
    )


def get_receipt(organisation_id: str, receipt_id: str) -> ReceiptView:
    body = store.get_record(organisation_id, "receipt", receipt_id)
    if body is None:
        raise NotFound(f"no receipt {receipt_id}")
    receipt = Receipt.model_validate_json(body)
    rejection = rejection_of(receipt)
    kinds: list[tuple[ExportKind, str]] = [("receipt", receipt_id)]
    if rejection is not None:
        kinds.append(("rejection", rejection.rejection_id))
    return _receipt_view(receipt, rejection, _refs(organisation_id, kinds))


class ReceiptPage(Page):
    """A page of the organisation's receipts, oldest first (by when received, then as recorded)."""

    items: list[ReceiptView]


def list_receipts(organisation_id: str, limit: int, cursor: str | None = None) -> ReceiptPage:
    bodies, last = store.record_page(
        organisation_id, "receipt", limit, paging.position_of("receipts", organisation_id, cursor)
    )
    views = []
    for receipt in (Receipt.model_validate_json(b) for b in bodies):
        rejection = rejection_of(receipt)
        kinds: list[tuple[ExportKind, str]] = [("receipt", receipt.receipt_id)]
        if rejection is not None:
            kinds.append(("rejection", rejection.rejection_id))
        views.append(_receipt_view(receipt, rejection, _refs(organisation_id, kinds)))
    return ReceiptPage(items=views, next_cursor=paging.next_cursor("receipts", organisation_id, last))


# ---- builds -------------------------------------------------------------------------------------------
def _components(organisation_id: str, request: BuildRequest) -> tuple[Component, ...]:
    if request.components:
        return tuple(
            Component(product_id=c.product_id, quantity_per_unit=c.quantity_per_unit)
            for c in request.components
        )
    product = next(iter(catalog_store.get_products(organisation_id, [request.product_id])), None)
    if product is None or not product.components:
        problem = "name the build's components, or give the product a bill of materials first"
        raise InvalidFields(problem, [{"field": "components", "problem": problem}])
    # a bill of materials comes from the provider (a bundle may list one item on two lines): a part named
    # twice is used as often as its lines say together; one the build can't use is refused, naming it
    per_unit: dict[str, Decimal] = {}
    for part in product.components:
        per_unit[part.ref] = per_unit.get(part.ref, Decimal(0)) + part.quantity
    unusable = [
        f"its bill of materials names {ref} "
        + ("as itself" if ref == request.product_id else f"with a quantity of {quantity}")
        for ref, quantity in per_unit.items()
        if ref == request.product_id or not quantity.is_finite() or quantity <= 0
    ]
    if unusable:
        problem = f"{'; '.join(unusable)}: correct the bill of materials, or name the build's components"
        raise InvalidFields(problem, [{"field": "product_id", "problem": problem}])
    return tuple(Component(product_id=ref, quantity_per_unit=quantity) for ref, quantity in per_unit.items())


def record_build(
    organisation_id: str, request: BuildRequest, now: datetime, request_token: str | None = None
) -> BuildView:
    """Consumes the components FIFO from their lots at the build's time and makes a finished-good lot whose
    cost is exactly what was consumed; too little stock refuses the build (``ShortageError``, 409).
    ``request_token``: see ``_record_id``."""
    built = [("product_id", request.product_id)]
    if request.components:  # one read for the product and its components
        components = _components(organisation_id, request)
        uses = [(f"components.{n}.product_id", c.product_id) for n, c in enumerate(components)]
        _known_products(organisation_id, [*built, *uses])
    else:  # the product first: its bill of materials is read from it
        _known_products(organisation_id, built)
        components = _components(organisation_id, request)
        uses = [("product_id", c.product_id) for c in components]
        _known_products(organisation_id, uses, "its bill of materials names ")
    build_id = _record_id("BLD", request.build_id, request_token)
    # a receipt's id: its commit is refused, but the costing would first replace that receipt's movements
    # (the same document) and could refuse it for a shortage or later use it does not have
    if request.build_id and store.get_record(organisation_id, "receipt", request.build_id) is not None:
        raise RecordIdTaken("build_id", request.build_id)

    def write() -> BuildView:
        head = store.ledger_head(organisation_id)
        version = head.version
        build = Build(
            build_id=build_id,
            product_id=request.product_id,
            quantity=request.quantity,
            built_at=request.built_at,
            seq=version + 1,
            lot_code=request.lot_code,
            components=components,
        )
        moved = build_movement(build)
        costing = _Costing(organisation_id, head, [moved])
        try:
            record = domain.record_build(costing.ledger, build)
        except (domain.ShortageError, domain.LaterUseUncovered) as refused:
            if store.ledger_version(organisation_id) != version:  # read across another write: again
                raise store.LedgerMoved() from None
            # sent again with its own id: costed on the stock it already used (its lots are not in the
            # stock a write after it reads), it would look short; the commit refuses it as recorded anyway
            if store.get_record(organisation_id, "build", build_id) is not None:
                raise store.DuplicateRecord() from None
            if isinstance(refused, domain.LaterUseUncovered):
                raise
            found = catalog_store.get_products(organisation_id, [s.product_id for s in refused.shortages])
            raise refused.named({p.product_id: _label(p) for p in found}) from None
        refs = _commit(
            organisation_id,
            head,
            {build_id: [moved]},
            [("build", build_id, record, build.built_at)],
            now,
            costing,
        )
        return _build_view(record, refs)

    return _recorded_once(
        write, request.build_id, request_token, lambda: get_build(organisation_id, build_id), "build_id"
    )


def _label(product: catalog_models.Product) -> str:
    return " ".join(part for part in (product.sku, product.name) if part) or product.product_id


def _build_view(record: BuildRecord, refs: list[ExportRef]) -> BuildView:
    return BuildView(
        build=record.build,
        lot_id=record.lot_id,
        cost=record.cost,
        unit_cost=record.unit_cost,
        components=record.components,
        exports=refs,
    )


def get_build(organisation_id: str, build_id: str) -> BuildView:
    body = store.get_record(organisation_id, "build", build_id)
    if body is None:
        raise NotFound(f"no build {build_id}")
    return _build_view(BuildRecord.model_validate_json(body), _refs(organisation_id, [("build", build_id)]))


class BuildPage(Page):
    """A page of the organisation's builds, oldest first (by when built, then as recorded)."""

    items: list[BuildView]


def list_builds(organisation_id: str, limit: int, cursor: str | None = None) -> BuildPage:
    bodies, last = store.record_page(
        organisation_id, "build", limit, paging.position_of("builds", organisation_id, cursor)
    )
    records = (BuildRecord.model_validate_json(b) for b in bodies)
    views = [_build_view(r, _refs(organisation_id, [("build", r.build.build_id)])) for r in records]
    return BuildPage(items=views, next_cursor=paging.next_cursor("builds", organisation_id, last))


# ---- lots ---------------------------------------------------------------------------------------------
def product_lots(organisation_id: str, product_id: str) -> ProductLots:
    """The product's FIFO layers now, oldest (next consumed) first: after the sales the books cost (and the
    lots their credits restock), so that their value is what the inventory accounts hold for them."""
    from shared.services import margins  # here: only this read costs the sales

    if not catalog_store.get_products(organisation_id, [product_id]):
        raise NotFound(f"no product {product_id}")
    costed = margins.costed_ledger(organisation_id)
    ledger = costed.ledger
    made = {m.lot_id: m for m in ledger.movements() if isinstance(m, ReceiptIn | BuildRun)}

    def source(lot: ReceiptIn | BuildRun) -> Literal["receipt", "build", "credit"]:
        if isinstance(lot, BuildRun):
            return "build"
        return "credit" if lot.document_id in costed.sales_documents else "receipt"

    lots = [
        LotView(
            lot_id=layer.lot_id,
            lot_code=made[layer.lot_id].lot_code,
            source=source(made[layer.lot_id]),
            document_id=made[layer.lot_id].document_id,
            at=made[layer.lot_id].at,
            quantity=layer.quantity,
            unit_cost=layer.unit_cost,
            value=layer.cost,
            cost_incomplete=layer.incomplete,
        )
        for layer in ledger.layers(product_id)
    ]
    return ProductLots(
        product_id=product_id,
        on_hand=total(lot.quantity for lot in lots),
        value=total(lot.value for lot in lots),
        lots=lots,
    )
