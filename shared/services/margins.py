"""Margins of tracked sales: each report replays the organisation's stock movements and its stored sales
documents into the FIFO ledger (nothing is stored), so an edit, void, delete or credit re-costs by replay and
a product linked later maps lines that were unmapped before; the report also exports as CSV or Excel."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import Field

from shared import spreadsheet
from shared.domain.catalog import Product, sku_key
from shared.domain.costing import (
    DocumentMargin,
    Figures,
    SaleDocument,
    SaleLine,
    UnmatchedReturn,
    apply_sales,
)
from shared.domain.costing import margins as costed_margins
from shared.domain.ledger import Ledger
from shared.domain.sales import (
    CreditMatch,
    KnownSale,
    MarginGroup,
    entry_order,
    excluded_because,
    kit_lines,
    match_credit,
    restocks,
    sale_time,
)
from shared.errors import Conflict
from shared.model import Model
from shared.money import ZERO, to_cents
from shared.providers.base import PulledLine, PulledSale
from shared.store import catalog as catalog_store
from shared.store import inventory as inventory_store
from shared.store import sales as store
from shared.store.sales import Tracking

if TYPE_CHECKING:  # the sales pull worker loads this module (for the books) without the API's requests
    from shared.bodies import MarginQuery


class LotUsed(Model):
    lot_id: str
    quantity: Decimal
    cost: Decimal  # exact


class LineReport(Model):
    line_id: str
    product_id: str
    sku: str
    name: str
    quantity: Decimal
    figures: Figures
    lots: list[LotUsed]


class UnmappedLine(Model):
    line_id: str
    item: str  # the provider's item id or code ("" when the line names no item)
    description: str
    quantity: Decimal | None
    amount: Decimal | None


class DocumentReport(Model):
    document_id: str
    provider: str
    kind: str
    number: str
    date: date
    status: str
    currency: str
    rate: Decimal | None
    figures: Figures
    lines: list[LineReport]
    unmapped: list[UnmappedLine]
    issues: list[str]


class GroupReport(Model):
    key: str  # product id or "YYYY-MM"
    label: str
    figures: Figures
    notes: list[str] = Field(
        default_factory=list
    )  # group=period: what the accountant should know about that month


class Excluded(Model):
    document_id: str
    number: str
    reason: str


class MarginReport(Model):
    home_currency: str
    start: date | None
    end: date | None
    group: MarginGroup
    totals: Figures
    documents: list[DocumentReport]  # group=document
    groups: list[GroupReport]  # group=product or period
    excluded: list[Excluded]  # documents not costed at all, with the reason
    notes: list[str]  # e.g. where the units of a credit that matched no sale went


@dataclass(frozen=True)
class _Mapped:
    pulled: PulledSale
    sale: SaleDocument
    unmapped: list[UnmappedLine]
    notes: list[str]


def margins(organisation_id: str, query: MarginQuery) -> MarginReport:
    settings: dict[str, Tracking] = {t.provider: t for t in store.tracked(organisation_id)}
    if not settings:
        raise Conflict("sales tracking has never been turned on; turn it on and pull first")
    home = next(
        (t.home_currency for t in settings.values() if t.enabled),
        next(iter(settings.values())).home_currency,
    )
    products = catalog_store.products(organisation_id)
    mapped, excluded = _sale_documents(organisation_id, settings, products)
    ledger = Ledger(inventory_store.movements(organisation_id))
    refused = apply_sales(ledger, [m.sale for m in mapped])
    chosen = [m for m in mapped if _within(m.sale.at.date(), query)]
    report = costed_margins(ledger, [m.sale for m in chosen], home_currency=home)
    by_id = {p.product_id: p for p in products}
    documents = (
        [
            _document_report(m, d, by_id, refused.get(m.sale.document_id))
            for m, d in zip(chosen, report.documents, strict=True)
        ]
        if query.group == "document"
        else []
    )
    groups: dict[str, Figures] = report.by_product if query.group == "product" else report.by_period
    notes: dict[str, list[str]] = {}
    for m, costed in zip(chosen, report.documents, strict=True):
        notes.setdefault(m.sale.at.strftime("%Y-%m"), []).extend(
            _return_note(m.pulled.number or m.sale.document_id, r, by_id.get(r.product_id))
            for r in costed.returns
        )
    return MarginReport(
        home_currency=home,
        start=query.start,
        end=query.end,
        group=query.group,
        totals=report.totals,
        documents=documents,
        groups=[
            GroupReport(
                key=key,
                label=_label(by_id.get(key), key),
                figures=figures,
                notes=notes.get(key, []) if query.group == "period" else [],
            )
            for key, figures in groups.items()
        ]
        if query.group != "document"
        else [],
        excluded=[e for e, when in excluded if when is None or _within(when, query)],
        notes=[note for period in sorted(notes) for note in notes[period]],
    )


class CostedLedger(NamedTuple):
    ledger: Ledger  # stock movements with every tracked sale applied
    sales_documents: dict[str, str]  # the documents that are sales (a credit's restocked lot among them) ->
    # the company they were read from ("": not recorded)
    business_zone: ZoneInfo | None  # the organisation's time zone (``store.zone_of``); None: none is set

    @property
    def zone(self) -> ZoneInfo:
        """The time zone that decides business days (and the organisation's today): UTC when none is set."""
        return self.business_zone or ZoneInfo("UTC")


def costed_ledger(organisation_id: str) -> CostedLedger:
    """What the books' cost of goods sold is drawn from."""
    ledger = Ledger(inventory_store.movements(organisation_id))
    settings: dict[str, Tracking] = {t.provider: t for t in store.tracked(organisation_id)}
    if not settings:
        return CostedLedger(ledger, {}, None)
    mapped, _ = _sale_documents(organisation_id, settings, catalog_store.products(organisation_id))
    apply_sales(ledger, [m.sale for m in mapped])
    documents = {m.sale.document_id: m.pulled.tenant_id or "" for m in mapped}
    return CostedLedger(ledger, documents, store.zone_of(list(settings.values())))


def _return_note(number: str, returned: UnmatchedReturn, product: Product | None) -> str:
    """'Credit CN-7 matched no sale: 2 x FG-1 restocked at 4.00' (written off; or not restocked)."""
    sku = product.sku if product and product.sku else returned.product_id
    what = f"{returned.quantity.normalize():f} x {sku}"
    if returned.outcome == "restocked" and returned.unit_cost is not None:
        unit = returned.unit_cost
        shown = to_cents(unit) if unit == to_cents(unit) else unit.normalize()
        return f"Credit {number} matched no sale: {what} restocked at {shown:f}"
    if returned.outcome == "written_off":
        return f"Credit {number} matched no sale: {what} written off (not restockable)"
    return f"Credit {number} matched no sale: {what} not restocked (no earlier lot to cost them)"


def _within(day: date, query: MarginQuery) -> bool:
    return (query.start is None or day >= query.start) and (query.end is None or day <= query.end)


def _label(product: Product | None, key: str) -> str:
    return " ".join(part for part in (product.sku, product.name) if part) if product else key


def _document_report(
    mapped: _Mapped, costed: DocumentMargin, products: dict[str, Product], refused: str | None
) -> DocumentReport:
    pulled, sale = mapped.pulled, mapped.sale
    lines = [
        LineReport(
            line_id=line.line_id,
            product_id=line.product_id,
            sku=products[line.product_id].sku if line.product_id in products else "",
            name=products[line.product_id].name if line.product_id in products else "",
            quantity=line.quantity,
            figures=line.figures,
            lots=[LotUsed(lot_id=d.lot_id, quantity=d.quantity, cost=d.cost) for d in line.lots],
        )
        for line in costed.lines
    ]
    issues = [
        *mapped.notes,
        *costed.issues,
        *([f"the ledger refused this document: {refused}"] if refused else []),
    ]
    return DocumentReport(
        document_id=sale.document_id,
        provider=sale.document_id.split(":", 1)[0],
        kind=sale.kind,
        number=pulled.number,
        date=sale.at.date(),
        status=sale.status,
        currency=sale.currency,
        rate=sale.rate,
        figures=costed.figures,
        lines=lines,
        unmapped=mapped.unmapped,
        issues=issues,
    )


def _sale_documents(
    organisation_id: str, settings: dict[str, Tracking], products: list[Product]
) -> tuple[list[_Mapped], list[tuple[Excluded, date | None]]]:
    """The stored documents as the ledger's sales, and those left out with the reason (and date)."""
    mapped: list[_Mapped] = []
    excluded: list[tuple[Excluded, date | None]] = []
    links = {(provider, item): p for p in products for provider, item in p.provider_links.items()}
    # a company's documents read before a switch of company map by the links to its items then
    former: dict[str, dict[tuple[str, str], Product]] = {}
    for p in products:
        for company, item in p.former_links.items():
            former.setdefault(company, {})[(company.split(":", 1)[0], item)] = p
    by_sku = {sku_key(p.sku): p for p in products if sku_key(p.sku)}
    by_id = {p.product_id: p for p in products}
    # a day's sales before its credits: a credit matches a sale of its own day too (and by id, "CreditMemo"
    # and "CreditNote" sort before "Invoice")
    pulled = sorted(
        map(PulledSale.model_validate_json, store.documents(organisation_id)),
        key=lambda d: (d.issued or date.min, d.kind == "credit_note", d.document_id),
    )
    sales: list[KnownSale] = []
    for document in pulled:
        provider = document.document_id.split(":", 1)[0]
        tracking = settings.get(provider)
        reason = excluded_because(document.status, document.issued, tracking.start_date if tracking else None)
        if reason or tracking is None or document.issued is None:
            excluded.append(
                (
                    Excluded(
                        document_id=document.document_id,
                        number=document.number,
                        reason=reason or "no sales tracking for this provider",
                    ),
                    document.issued,
                )
            )
            continue
        before_switch = bool(
            tracking.tenant_id and document.tenant_id and document.tenant_id != tracking.tenant_id
        )
        mapping = former.get(f"{provider}:{document.tenant_id}", {}) if before_switch else links
        lines, unmapped = _sale_lines(provider, document.lines, mapping, by_sku, by_id)
        notes = (
            [f"{len(unmapped)} line(s) name no Partsemble product: kept, shown as unmapped, not costed"]
            if unmapped
            else []
        )
        sale = SaleDocument(
            document_id=document.document_id,
            kind=document.kind,
            at=sale_time(document.issued, tracking.zone),
            seq=entry_order(document.kind, document.created),
            currency=document.currency or tracking.home_currency,
            rate=document.rate,
            status="voided" if document.status == "voided" else "active",
            lines=tuple(lines),
            restock=restocks(document.note),
        )
        customer = f"{document.tenant_id}:{document.customer_id}"  # customer ids are each company's own
        if document.kind == "credit_note":
            match = match_credit(sale, customer, document.sale_ids, sales)
            notes.extend([match.note] if match.note else [])
            notes.extend(_elsewhere_notes(match, sales, by_id))
            own = dict(match.elsewhere)
            lines = [
                line.model_copy(update={"returns_to": own[line.product_id] or ""})
                if line.product_id in own
                else line
                for line in sale.lines
            ]
            sale = sale.model_copy(update={"original_document_id": match.sale_id, "lines": tuple(lines)})
        mapped.append(_Mapped(pulled=document, sale=sale, unmapped=unmapped, notes=notes))
        if document.kind != "credit_note" and document.status == "active":
            sales.append(KnownSale(sale, customer, document.number))
    return mapped, excluded


def _elsewhere_notes(match: CreditMatch, sales: list[KnownSale], products: dict[str, Product]) -> list[str]:
    """'FG-1 is not on 1001: returned to the lots of 1000' (or: 'matches no sale'), for each product of a
    credit that the sale it returns to has none of."""
    if not match.elsewhere:
        return []
    numbers = {s.sale.document_id: s.number or s.sale.document_id for s in sales}
    matched = numbers.get(match.sale_id or "", match.sale_id)
    notes = []
    for product_id, sale_id in match.elsewhere:
        product = products.get(product_id)
        sku = product.sku if product and product.sku else product_id
        where = f"returned to the lots of {numbers.get(sale_id, sale_id)}" if sale_id else "matches no sale"
        notes.append(f"{sku} is not on {matched}: {where}")
    return notes


def _sale_lines(
    provider: str,
    lines: Iterable[PulledLine],
    links: dict[tuple[str, str], Product],
    by_sku: dict[str, Product],
    by_id: dict[str, Product],
) -> tuple[list[SaleLine], list[UnmappedLine]]:
    """Lines mapped to products by the provider item they name (Xero: else by item code as SKU); a kit
    (bundle) product's line becomes its components, the line's revenue split by their cost."""
    sale_lines: list[SaleLine] = []
    unmapped: list[UnmappedLine] = []
    for line in lines:
        quantity = line.quantity if line.quantity is not None else ZERO
        product = links.get((provider, line.item_id or "")) or (
            by_sku.get(sku_key(line.item_code)) if line.item_code else None
        )
        if product is None:
            unmapped.append(
                UnmappedLine(
                    line_id=line.line_id,
                    item=line.item_id or line.item_code or "",
                    description=line.description,
                    quantity=line.quantity,
                    amount=line.amount,
                )
            )
            sale_lines.append(
                SaleLine(line_id=line.line_id, product_id=None, quantity=quantity, amount=line.amount)
            )
            continue
        parts = [(by_id[c.ref], c.quantity) for c in product.components if c.ref in by_id]
        if product.type != "kit" or not parts:
            sale_lines.append(
                SaleLine(
                    line_id=line.line_id,
                    product_id=product.product_id,
                    quantity=quantity,
                    amount=line.amount,
                    unit_price=line.unit_price,
                )
            )
            continue
        net = (
            line.amount
            if line.amount is not None
            else (quantity * line.unit_price if line.unit_price is not None else None)
        )
        sale_lines.extend(kit_lines(line.line_id, quantity, net, parts))
    return sale_lines, unmapped


# ---- export ---------------------------------------------------------------------------------------------
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FIGURE_HEADERS = ["Revenue", "COGS", "Margin", "Margin %", "Uncosted quantity"]


def _figures(f: Figures) -> list[Any]:
    return [
        f.revenue,
        f.cogs,
        "" if f.margin is None else f.margin,
        "" if f.margin_pct is None else f.margin_pct,
        f.uncosted or "",
    ]


def export_rows(report: MarginReport) -> list[list[Any]]:
    """The report as a table: a row per document line (or per product / period), then the totals."""
    if report.group == "document":
        rows: list[list[Any]] = [
            [
                "Date",
                "Document",
                "Kind",
                "Status",
                "Line",
                "SKU",
                "Product",
                "Quantity",
                *FIGURE_HEADERS,
                "Lots",
                "Issues",
            ]
        ]
        for d in report.documents:
            head = [d.date.isoformat(), d.number or d.document_id, d.kind, d.status]
            for line in d.lines:
                lots = "; ".join(f"{lot.lot_id} x {lot.quantity}" for lot in line.lots)
                rows.append(
                    [
                        *head,
                        line.line_id,
                        line.sku,
                        line.name,
                        line.quantity,
                        *_figures(line.figures),
                        lots,
                        "",
                    ]
                )
            for unmapped in d.unmapped:
                rows.append(
                    [
                        *head,
                        unmapped.line_id,
                        "",
                        f"unmapped: {unmapped.item} {unmapped.description}".strip(),
                        unmapped.quantity,
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                    ]
                )
            if d.issues or not d.lines:
                rows.append([*head, "", "", "", "", *_figures(d.figures), "", "; ".join(d.issues)])
        rows.append(["Total", "", "", "", "", "", "", "", *_figures(report.totals), "", ""])
        return rows
    rows = [["Product" if report.group == "product" else "Period", *FIGURE_HEADERS]]
    rows += [[g.label, *_figures(g.figures)] for g in report.groups]
    rows.append(["Total", *_figures(report.totals)])
    return rows


class Export(Model):
    filename: str
    content_type: str
    body: bytes


def export_margins(organisation_id: str, query: MarginQuery, fmt: Literal["csv", "xlsx"]) -> Export:
    report = margins(organisation_id, query)
    rows = export_rows(report)
    name = f"margins-{query.group}-{query.start or 'start'}-{query.end or 'now'}.{fmt}"
    if fmt == "csv":
        return Export(filename=name, content_type=EXPORT_TYPES[fmt], body=spreadsheet.csv_bytes(rows))
    body = spreadsheet.xlsx_bytes(rows, f"Margins ({report.home_currency})")
    return Export(filename=name, content_type=EXPORT_TYPES[fmt], body=body)
