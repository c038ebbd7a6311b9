"""Sales documents applied to the ledger, and their margins: revenue, COGS from the lots consumed, margin %.

Revenue is converted to the home currency at the document's own rate (home units per unit of the document's
currency) and rounded to cents per line; COGS is the exact cost of the lots a line consumed, rounded to
cents per line; documents, products and periods add up their lines' cents. A figure whose cost is not fully
known (units no lot could cover, or lots whose own cost lacks inputs) has no margin: its `uncosted`
quantity says why, and it is never costed at zero. A bad line or document is reported as an issue and
never blocks the others.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field, computed_field

from shared.domain.ledger import (
    AnyMovement,
    Draw,
    DuplicateMovement,
    EntryKind,
    Ledger,
    SaleOut,
    SaleReturn,
    UnknownMovement,
)
from shared.model import Model
from shared.money import ZERO, to_cents, total

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
    cogs: Decimal
    uncosted: Decimal  # quantity whose cost is unknown
    incomplete: bool  # some lot's own cost lacks inputs (a build that found too little stock)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def margin(self) -> Decimal | None:
        return None if self.uncosted or self.incomplete else self.revenue - self.cogs

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


class DocumentMargin(Model):
    model_config = _VALUE
    document: SaleDocument
    lines: tuple[LineMargin, ...]
    figures: Figures
    issues: tuple[str, ...]


class MarginReport(Model):
    model_config = _VALUE
    documents: tuple[DocumentMargin, ...]
    by_product: dict[str, Figures]
    by_period: dict[str, Figures]  # "YYYY-MM" of the document's date
    totals: Figures


def movement_id(document: SaleDocument, line: SaleLine) -> str:
    return f"{document.document_id}/{line.line_id}"


def sale_movements(document: SaleDocument) -> tuple[list[AnyMovement], list[str]]:
    """The stock movements of a document (none once voided or deleted), and the issues of lines left out."""
    if document.status != "active":
        return [], []
    movements: list[AnyMovement] = []
    issues = []
    if document.kind == "credit_note" and not document.original_document_id:
        issues.append("credit note names no original sale: its returned units are uncosted")
    seen: set[str] = set()
    for line in document.lines:
        problem = _line_problem(line, seen)
        seen.add(line.line_id)
        if problem:
            issues.append(f"line {line.line_id} {problem}: left out of costing")
        elif document.kind == "credit_note":
            movements.append(
                SaleReturn(
                    movement_id=movement_id(document, line),
                    document_id=document.document_id,
                    at=document.at,
                    seq=document.seq,
                    product_id=line.product_id,
                    quantity=line.quantity,
                    sale_document_id=document.original_document_id,
                    restock=document.restock,
                )
            )
        else:
            movements.append(
                SaleOut(
                    movement_id=movement_id(document, line),
                    document_id=document.document_id,
                    at=document.at,
                    seq=document.seq,
                    product_id=line.product_id,
                    quantity=line.quantity,
                )
            )
    return movements, issues


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
    """
    latest = {document.document_id: document for document in documents}
    try:
        _replace(ledger, latest.values())
        return {}
    except (DuplicateMovement, UnknownMovement):
        pass
    refused = {}
    for document in latest.values():
        try:
            _replace(ledger, [document])
        except (DuplicateMovement, UnknownMovement) as error:
            refused[document.document_id] = error.message
    return refused


def _replace(ledger: Ledger, documents: Iterable[SaleDocument]) -> None:
    add: list[AnyMovement] = []
    remove: list[str] = []
    for document in documents:
        remove.extend(m.movement_id for m in ledger.document_movements(document.document_id))
        add.extend(sale_movements(document)[0])
    ledger.change(add=add, remove=remove)


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
    movements, issues = sale_movements(document)
    rate = _rate(document, home_currency, issues)
    lines = []
    if rate is not None:
        sign = -1 if document.kind == "credit_note" else 1
        first = {movement_id(document, line): line for line in reversed(document.lines)}
        for m in movements:
            margin = _line_margin(ledger, document, first[m.movement_id], rate, sign, issues)
            if margin is not None:
                lines.append(margin)
    return DocumentMargin(
        document=document,
        lines=tuple(lines),
        figures=_sum([line.figures for line in lines]),
        issues=tuple(issues),
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
    ledger: Ledger, document: SaleDocument, line: SaleLine, rate: Decimal, sign: int, issues: list[str]
) -> LineMargin | None:
    net = line.net
    if net is None:
        issues.append(f"line {line.line_id} has no amount: left out of margins")
        return None
    try:
        (entry,) = ledger.entries_of(movement_id(document, line))
    except UnknownMovement:
        issues.append(f"line {line.line_id} is not in the ledger yet: apply the document first")
        return None
    cogs = ZERO if entry.kind is EntryKind.RETURN_WASTE else to_cents(entry.cost)
    figures = Figures(
        revenue=sign * to_cents(net * rate),
        cogs=sign * cogs,
        uncosted=entry.uncosted,
        incomplete=entry.incomplete,
    )
    return LineMargin(
        line_id=line.line_id,
        product_id=entry.product_id,
        quantity=line.quantity,
        figures=figures,
        lots=entry.draws,
    )


def _sum(figures: list[Figures]) -> Figures:
    return Figures(
        revenue=total(f.revenue for f in figures),
        cogs=total(f.cogs for f in figures),
        uncosted=total(f.uncosted for f in figures),
        incomplete=any(f.incomplete for f in figures),
    )
