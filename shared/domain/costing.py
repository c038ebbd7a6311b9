"""Sales documents applied to the ledger, and their margins: revenue, COGS from the lots consumed, margin %.

Revenue is converted to the home currency at the document's own rate (home units per unit of the document's
currency) and rounded to cents per line; COGS is the exact cost of the lots a line consumed, shown to the
cent; documents, products and periods add up their lines' revenue cents and round their lines' exact cost
once. A figure whose cost is not fully known (units no lot could cover, or lots whose own cost lacks inputs)
has no margin: its `uncosted` quantity says why, and it is never costed at zero. A credit gives back those
units first: negative `uncosted` on the credit, so a total where they all came back has a margin again. A
bad line or document is reported as an issue and never blocks the others. A credit that matches no sale
still reverses its revenue and never leaves a figure uncosted: its units go back to stock as a lot of their
own at the unit cost of the product's latest earlier lot, or are written off when not restockable, and its
`returns` say which.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field, computed_field

from shared.domain.ledger import (
    AnyMovement,
    Draw,
    DuplicateMovement,
    Entry,
    EntryKind,
    Ledger,
    ReceiptIn,
    SaleOut,
    SaleReturn,
    UnknownMovement,
)
from shared.model import Model
from shared.money import COST_CONTEXT, ZERO, to_cents, total

_VALUE = ConfigDict(frozen=True, extra="forbid")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
HUNDRED = Decimal(100)


class SaleLine(Model):
    model_config = _VALUE
    line_id: str = Field(min_length=1)
    product_id: str | None  # None: the line's item is not mapped to a product
    quantity: Decimal = Field(allow_inf_nan=False)
    amount: Decimal | None = Field(default=None, allow_inf_nan=False)  # net, in the document's currency
    unit_price: Decimal | None = Field(default=None, allow_inf_nan=False)  # used when there is no amount
    # a credit's line whose product its document's sale has none of: the sale it returns to ("": none)
    returns_to: str | None = None

    @property
    def net(self) -> Decimal | None:
        if self.amount is not None:
            return self.amount
        return None if self.unit_price is None else self.quantity * self.unit_price


class SaleDocument(Model):
    model_config = _VALUE
    document_id: str = Field(min_length=1)
    kind: Literal["invoice", "sales_receipt", "credit_note"]
    at: AwareDatetime
    seq: int = 0
    currency: str
    rate: Decimal | None = Field(default=None, allow_inf_nan=False)  # home units per document unit
    status: Literal["active", "voided", "deleted"] = "active"
    lines: tuple[SaleLine, ...] = ()
    original_document_id: str | None = None  # a credit's sale
    restock: bool = True  # a credit's units go back to stock; otherwise to waste


class Figures(Model):
    model_config = _VALUE
    revenue: Decimal
    # the exact cost, which sums add: a total's cost of goods sold is its lines' exact cost rounded once, as
    # the books post it, so it ties to the general ledger (a sum of rounded lines drifts a cent at a time)
    exact_cogs: Decimal = Field(exclude=True)
    uncosted: Decimal  # quantity whose cost is unknown; a credit's units given back from it count negative
    incomplete: bool  # some lot's own cost lacks inputs (a build that found too little stock)
    # that quantity by where it arose: the sale no lot covered it on (a credit's units given back count there,
    # negative), or a credit's line with units beyond its sale. The cost is known only where each nets to
    # zero, so a credit never makes up for another sale's uncosted units (in a period, a date range)
    open_units: tuple[tuple[str, Decimal], ...] = Field(default=(), exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cogs(self) -> Decimal:
        return to_cents(self.exact_cogs)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def margin(self) -> Decimal | None:
        known = not (self.uncosted or self.incomplete or self.open_units)
        return self.revenue - self.cogs if known else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def margin_pct(self) -> Decimal | None:
        margin = self.margin
        return None if margin is None or not self.revenue else to_cents(margin * HUNDRED / self.revenue)


class LineMargin(Model):
    model_config = _VALUE
    line_id: str
    product_id: str
    quantity: Decimal
    figures: Figures
    lots: tuple[Draw, ...]  # the lots consumed (or returned to), with their exact cost


class UnmatchedReturn(Model):
    """Where the units of a credit that matches no sale went: back to stock as a new lot at the unit cost of
    the product's latest lot before the credit, written off (not restockable), or nowhere when no lot came
    before it to cost them (the revenue is still reversed)."""

    model_config = _VALUE
    line_id: str
    product_id: str
    quantity: Decimal
    outcome: Literal["restocked", "written_off", "no_lot"]
    unit_cost: Decimal | None = None  # exact, when restocked


class DocumentMargin(Model):
    model_config = _VALUE
    document: SaleDocument
    lines: tuple[LineMargin, ...]
    figures: Figures
    issues: tuple[str, ...]
    returns: tuple[UnmatchedReturn, ...] = ()  # a credit that matches no sale: what became of its units


class MarginReport(Model):
    model_config = _VALUE
    documents: tuple[DocumentMargin, ...]
    by_product: dict[str, Figures]
    by_period: dict[str, Figures]  # "YYYY-MM" of the document's date
    totals: Figures


def movement_id(document_id: str, position: int, line_id: str) -> str:
    """The id of the stock movement of the line ``line_id``, at ``position`` (from 0) in its sales document.

    The ledger orders one document's movements (one time, one seq) by id: the position comes first,
    zero-padded, so lines of one product take their stock in the document's order (line "2" listed before
    line "10" draws first, as it did not when ids were compared as text). Nine digits hold any document: a
    stored one is one DynamoDB item (400 KB: a few thousand lines), a kit line one line per component (a kit
    is one catalog item: some thousands at most). A document's lines of one product draw the same lots
    whatever their order, so a document stored before (costed in its lines' text order) keeps its cost of
    goods sold per day and account: only which of its lines bears which lot changes."""
    return f"{document_id}/{position:09d}/{line_id}"


def line_of(document_id: str, movement: str) -> str:
    """The line id of a movement of a sales document (``movement_id``'s inverse)."""
    return movement.removeprefix(f"{document_id}/").partition("/")[2]


def restocked_lot(document_id: str, line_id: str) -> str:
    """The lot a credit's line restocks when it matches no sale: named by its document and line, as shown in
    margins and the stock's lots (its movement id orders it; this names it)."""
    return f"{document_id}/{line_id}"


def unmatched(document: SaleDocument, line: SaleLine) -> bool:
    """Whether a line of a credit matches no sale (its units are restocked as a lot of their own)."""
    return document.kind == "credit_note" and not returned_to(document, line)


def returned_to(document: SaleDocument, line: SaleLine) -> str | None:
    """The sale a credit's line returns its goods to: its own, else its document's (None: none)."""
    return (line.returns_to if line.returns_to is not None else document.original_document_id) or None


def sale_movements(
    document: SaleDocument, restock_costs: Mapping[str, Decimal] | None = None
) -> tuple[list[AnyMovement], list[str]]:
    """The stock movements of a document (none once voided or deleted), and the issues of lines left out.

    A credit's line that matches no sale restocks its units as a lot of their own (a receipt of the credit)
    costed at ``restock_costs[product]`` per unit when it is restockable and that cost is known; otherwise its
    units move nowhere (written off, or no lot to cost them)."""
    lines, issues = _valid_lines(document)
    movements: list[AnyMovement] = []
    for position, line in lines:
        mid, product = movement_id(document.document_id, position, line.line_id), line.product_id or ""
        if unmatched(document, line):
            unit = (restock_costs or {}).get(product) if document.restock else None
            if unit is not None:
                with localcontext(COST_CONTEXT):
                    cost = line.quantity * unit
                movements.append(
                    ReceiptIn(
                        movement_id=mid,
                        document_id=document.document_id,
                        at=document.at,
                        seq=document.seq,
                        product_id=product,
                        quantity=line.quantity,
                        lot_id=restocked_lot(document.document_id, line.line_id),
                        lot_code=f"returned on {document.document_id}",
                        cost=cost,
                    )
                )
        elif document.kind == "credit_note":
            movements.append(
                SaleReturn(
                    movement_id=mid,
                    document_id=document.document_id,
                    at=document.at,
                    seq=document.seq,
                    product_id=product,
                    quantity=line.quantity,
                    sale_document_id=returned_to(document, line),
                    restock=document.restock,
                )
            )
        else:
            movements.append(
                SaleOut(
                    movement_id=mid,
                    document_id=document.document_id,
                    at=document.at,
                    seq=document.seq,
                    product_id=product,
                    quantity=line.quantity,
                )
            )
    return movements, issues


def _valid_lines(document: SaleDocument) -> tuple[list[tuple[int, SaleLine]], list[str]]:
    """The lines that move stock (none once voided or deleted), each with its position in the document, and
    the issues of the lines left out."""
    if document.status != "active":
        return [], []
    valid: list[tuple[int, SaleLine]] = []
    issues = []
    seen: set[str] = set()
    for position, line in enumerate(document.lines):
        problem = _line_problem(line, seen)
        seen.add(line.line_id)
        if problem:
            issues.append(f"line {line.line_id} {problem}: left out of costing")
        else:
            valid.append((position, line))
    return valid, issues


def _line_problem(line: SaleLine, seen: set[str]) -> str | None:
    if line.line_id in seen:
        return "repeats an earlier line's id"
    if not line.product_id:
        return "has no item mapped to a product"
    if line.quantity <= 0:
        return f"has quantity {line.quantity}"
    return None


def apply_sales(ledger: Ledger, documents: Iterable[SaleDocument]) -> dict[str, str]:
    """New, edited, voided and deleted documents: each one's movements replaced by its latest version.

    All in one change (one replay) when possible; otherwise one by one, and the documents the ledger
    refused come back with the reason while the others are applied.

    A credit that matches no sale restocks at the unit cost of the product's latest lot before it, read
    from the ledger once the other documents are in: so its lots are added after them, and again while a
    restock changes the cost of a later lot another such credit copies (builds from restocked parts).
    """
    latest = {document.document_id: document for document in documents}
    refused = _apply(ledger, latest.values(), {})
    credits = [
        d
        for d in latest.values()
        if d.restock and d.document_id not in refused and any(unmatched(d, line) for line in d.lines)
    ]
    costs: dict[str, dict[str, Decimal]] = {}
    for _ in range(len(credits) + 1):  # each pass settles at least the earliest credit still moving
        fresh = {d.document_id: _restock_costs(ledger, d) for d in credits}
        changed = [d for d in credits if fresh[d.document_id] != costs.get(d.document_id)]
        if not changed:
            break
        costs.update(fresh)
        refused.update(_apply(ledger, changed, costs))
    return refused


def _apply(
    ledger: Ledger, documents: Iterable[SaleDocument], costs: Mapping[str, Mapping[str, Decimal]]
) -> dict[str, str]:
    chosen = list(documents)
    try:
        _replace(ledger, chosen, costs)
        return {}
    except (DuplicateMovement, UnknownMovement):
        pass
    refused = {}
    for document in chosen:
        try:
            _replace(ledger, [document], costs)
        except (DuplicateMovement, UnknownMovement) as error:
            refused[document.document_id] = error.message
    return refused


def _replace(
    ledger: Ledger, documents: Iterable[SaleDocument], costs: Mapping[str, Mapping[str, Decimal]]
) -> None:
    add: list[AnyMovement] = []
    remove: list[str] = []
    for document in documents:
        remove.extend(m.movement_id for m in ledger.document_movements(document.document_id))
        add.extend(sale_movements(document, costs.get(document.document_id))[0])
    ledger.change(add=add, remove=remove)


def _restock_costs(ledger: Ledger, credit: SaleDocument) -> dict[str, Decimal]:
    """Per product of the credit, the exact unit cost of its latest lot (received, built or restocked by
    another credit) placed before the credit, whose own cost is complete; products with none are left out."""
    costs = {}
    for _, line in _valid_lines(credit)[0]:
        product = line.product_id or ""
        lot = next((e for e in reversed(ledger.entries(product)) if _earlier_lot(ledger, e, credit)), None)
        if lot is not None:
            with localcontext(COST_CONTEXT):
                costs[product] = lot.cost / lot.quantity
    return costs


def _earlier_lot(ledger: Ledger, entry: Entry, credit: SaleDocument) -> bool:
    if entry.kind not in (EntryKind.RECEIPT_IN, EntryKind.BUILD_PRODUCE) or entry.incomplete:
        return False
    if entry.document_id == credit.document_id or entry.at > credit.at:
        return False
    if entry.at < credit.at:
        return True
    (movement,) = (
        m for m in ledger.document_movements(entry.document_id) if m.movement_id == entry.movement_id
    )
    return movement.seq <= credit.seq


def margins(ledger: Ledger, documents: Iterable[SaleDocument], *, home_currency: str) -> MarginReport:
    reports = [_document_margin(ledger, d, home_currency) for d in documents]
    by_product: dict[str, list[Figures]] = defaultdict(list)
    by_period: dict[str, list[Figures]] = defaultdict(list)
    for report in reports:
        for line in report.lines:
            by_product[line.product_id].append(line.figures)
            by_period[report.document.at.strftime("%Y-%m")].append(line.figures)
    return MarginReport(
        documents=tuple(reports),
        by_product={key: _sum(figures) for key, figures in sorted(by_product.items())},
        by_period={key: _sum(figures) for key, figures in sorted(by_period.items())},
        totals=_sum([r.figures for r in reports]),
    )


def _document_margin(ledger: Ledger, document: SaleDocument, home_currency: str) -> DocumentMargin:
    valid, issues = _valid_lines(document)
    rate = _rate(document, home_currency, issues)
    lines: list[LineMargin] = []
    returns: list[UnmatchedReturn] = []
    if rate is not None:
        sign = -1 if document.kind == "credit_note" else 1
        for position, line in valid:
            mid = movement_id(document.document_id, position, line.line_id)
            if unmatched(document, line):
                margin = _unmatched_line(ledger, document, line, mid, rate, issues, returns)
            else:
                margin = _line_margin(ledger, document, line, mid, rate, sign, issues)
            if margin is not None:
                lines.append(margin)
    return DocumentMargin(
        document=document,
        lines=tuple(lines),
        figures=_sum([line.figures for line in lines]),
        issues=tuple(issues),
        returns=tuple(returns),
    )


def _rate(document: SaleDocument, home_currency: str, issues: list[str]) -> Decimal | None:
    if not _CURRENCY.match(document.currency):
        issues.append(f"unknown currency {document.currency!r}: margins not computed")
        return None
    if document.currency == home_currency:
        return Decimal(1)
    if document.rate is None or document.rate <= 0:
        issues.append(f"no exchange rate from {document.currency} to {home_currency}: margins not computed")
        return None
    return document.rate


def _line_margin(
    ledger: Ledger,
    document: SaleDocument,
    line: SaleLine,
    mid: str,
    rate: Decimal,
    sign: int,
    issues: list[str],
) -> LineMargin | None:
    net = _revenue(line, rate, issues)
    if net is None:
        return None
    try:
        (entry,) = ledger.entries_of(mid)
    except UnknownMovement:
        issues.append(f"line {line.line_id} is not in the ledger yet: apply the document first")
        return None
    if sign < 0 and entry.uncosted:
        more = entry.uncosted.normalize()
        issues.append(
            f"line {line.line_id} returns {more:f} more than its sale took (less earlier credits): not costed"
        )
    # a credit first gives back the units its sale could not cost: they count against the sale's uncosted
    # quantity (a negative one here), so a sale beyond stock credited back to what stock covered has a margin
    given_back = entry.given_back
    if given_back:
        issues.append(
            f"line {line.line_id} gives back {given_back.normalize():f} unit(s) its sale found no stock for:"
            " no cost to return, shown as a negative uncosted quantity"
        )
    open_units = (
        [(document.document_id, entry.uncosted)]
        if sign > 0
        else [(returned_to(document, line) or "", -given_back), (mid, entry.uncosted)]
    )
    # a credit's units not restocked take their cost out of cost of goods sold too (into waste, as the books
    # post it: ``domain.books.effects``), so the report's cost of goods sold ties to the ledger's
    figures = Figures(
        revenue=sign * net,
        exact_cogs=sign * entry.cost,
        uncosted=entry.uncosted - given_back,
        incomplete=entry.incomplete,
        open_units=_netted(open_units),
    )
    return LineMargin(
        line_id=line.line_id,
        product_id=entry.product_id,
        quantity=line.quantity,
        figures=figures,
        lots=entry.draws,
    )


def _unmatched_line(
    ledger: Ledger,
    credit: SaleDocument,
    line: SaleLine,
    mid: str,
    rate: Decimal,
    issues: list[str],
    returns: list[UnmatchedReturn],
) -> LineMargin | None:
    """A line of a credit that matches no sale: its revenue reversed; its cost back out of COGS as the new
    lot's cost when restocked, none when its units went nowhere. Never uncosted: it blanks no period."""
    net = _revenue(line, rate, issues)
    if net is None:
        return None
    product = line.product_id or ""
    try:
        entries = ledger.entries_of(mid)
    except UnknownMovement:
        entries = ()
    outcome: Literal["restocked", "written_off", "no_lot"] = (
        "restocked" if entries else "written_off" if not credit.restock else "no_lot"
    )
    cost, unit = ZERO, None
    draws: tuple[Draw, ...] = ()
    if entries:
        (entry,) = entries
        cost, draws = entry.cost, entry.draws
        with localcontext(COST_CONTEXT):
            unit = entry.cost / entry.quantity
    returns.append(
        UnmatchedReturn(
            line_id=line.line_id, product_id=product, quantity=line.quantity, outcome=outcome, unit_cost=unit
        )
    )
    return LineMargin(
        line_id=line.line_id,
        product_id=product,
        quantity=line.quantity,
        figures=Figures(revenue=-net, exact_cogs=-cost, uncosted=ZERO, incomplete=False),
        lots=draws,
    )


def _revenue(line: SaleLine, rate: Decimal, issues: list[str]) -> Decimal | None:
    net = line.net
    if net is None:
        issues.append(f"line {line.line_id} has no amount: left out of margins")
        return None
    return to_cents(net * rate)


def _sum(figures: list[Figures]) -> Figures:
    return Figures(
        revenue=total(f.revenue for f in figures),
        exact_cogs=total(f.exact_cogs for f in figures),
        uncosted=total(f.uncosted for f in figures),
        incomplete=any(f.incomplete for f in figures),
        open_units=_netted(units for f in figures for units in f.open_units),
    )


def _netted(units: Iterable[tuple[str, Decimal]]) -> tuple[tuple[str, Decimal], ...]:
    """Uncosted quantities added up by where they arose; those that net to zero left out."""
    by_key: dict[str, Decimal] = defaultdict(lambda: ZERO)
    with localcontext(COST_CONTEXT):
        for key, quantity in units:
            by_key[key] += quantity
    return tuple(sorted((key, quantity) for key, quantity in by_key.items() if quantity))
