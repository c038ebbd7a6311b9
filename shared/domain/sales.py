"""Rules of tracked sales documents: when a sale happens, which documents count, which credits restock, how a
kit's revenue splits over its components, and which sale a credit returns its goods to."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain.catalog import Product
from shared.domain.costing import SaleDocument, SaleLine
from shared.money import ZERO, allocate_cents, to_cents

# A credit whose note says so returns its goods to waste, not to stock.
NOT_RESTOCKABLE = re.compile(
    r"\b(?:not?[ -]?restock(?:able|ed)?|scrap(?:ped)?|write[ -]?off)\b", re.IGNORECASE
)
# A sale dated D (a local date in the organisation's zone) is placed at the very end of D there: it takes from
# what was received or built by then, e.g. at 22:00 in New York, after midnight UTC.
DAY_END = time(23, 59, 59, 999999)
MarginGroup = Literal["document", "product", "period"]  # a margins report: by document, product or month


def zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name; ValueError names what is wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as America/New_York") from None


def sale_time(issued: date, where: ZoneInfo) -> datetime:
    """When a document dated ``issued`` (a local date in ``where``) takes its goods: the end of that day."""
    return datetime.combine(issued, DAY_END, tzinfo=where)


# The seq of a sales document's movements: its place among the documents of its day (all at the day's end).
# Same-day documents go in the order they were entered, by the provider's entry time (QBO's CreateTime) to
# the second (a replay key holds 10 digits of seq: shared.store.checkpoints.sortable), a credit after the
# sales of its second, as a credit returns what was sold before it. Without one (Xero gives none; a document
# stored before it was kept) a sale goes first and a credit after the day's sales.
ENTRY_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
AFTER_THE_DAY = 9_999_999_999


def entry_order(kind: str, created: datetime | None) -> int:
    credit = kind == "credit_note"
    if created is None:
        return AFTER_THE_DAY if credit else 0
    second = min(max(0, int((created - ENTRY_EPOCH).total_seconds())), AFTER_THE_DAY // 2 - 2)
    return 2 * (1 + second) + credit


def restocks(note: str) -> bool:
    """Whether a credit with this note puts its goods back in stock (else they are written off)."""
    return not NOT_RESTOCKABLE.search(note)


def excluded_because(status: str, issued: date | None, start_date: date | None) -> str:
    """Why a stored document is not costed at all ("" when it is): gone, a draft, undated, or dated before
    the first pull date ``start_date``."""
    if status == "deleted":
        return "deleted in the provider"
    if status == "draft":
        return "a draft: not a sale until it is approved"
    if issued is None:
        return "the document has no date"
    if start_date and issued < start_date:
        return f"dated before the first pull date ({start_date.isoformat()})"
    return ""


def kit_lines(
    line_id: str, quantity: Decimal, net: Decimal | None, parts: Sequence[tuple[Product, Decimal]]
) -> list[SaleLine]:
    """A kit's sale line as lines of its components (``parts``: each product with its quantity per kit). The
    line's net revenue splits over them to the cent by cost (quantity x unit cost), or by quantity when a
    component has no cost; the parts are numbered ``<line_id>.1``, ``.2``, ..."""
    weights = [q * (p.unit_cost or ZERO) for p, q in parts]
    weights = weights if all(w > 0 for w in weights) else [q for _, q in parts]
    amounts: list[Decimal | None] = (
        list(allocate_cents(to_cents(net), weights)) if net is not None else [None] * len(parts)
    )
    return [
        SaleLine(line_id=f"{line_id}.{i}", product_id=p.product_id, quantity=quantity * q, amount=amount)
        for i, ((p, q), amount) in enumerate(zip(parts, amounts, strict=True), 1)
    ]


@dataclass(frozen=True)
class KnownSale:
    """An active sale a later credit may return goods to."""

    sale: SaleDocument
    customer_id: str
    number: str


class CreditMatch(NamedTuple):
    sale_id: str | None  # the sale the credit's goods return to; None: it matches none
    note: str = ""  # set when the sale was guessed, not named
    # the credit's products that sale has none of, each with the customer's latest sale of it (None: none)
    elsewhere: tuple[tuple[str, str | None], ...] = ()


def match_credit(
    credit: SaleDocument, customer_id: str, named: Sequence[str], sales: Sequence[KnownSale]
) -> CreditMatch:
    """The sale a credit returns goods from: the first of ``named`` (the sales it names) that is known, else
    the customer's latest sale up to the credit with any of the credited products (one with all of them
    first). A product that sale has none of returns to the first other sale it names with the product, else
    to the customer's latest sale of it up to the credit, else to none (its units are then those of a credit
    that matches no sale)."""
    known = {s.sale.document_id: s for s in sales}
    wanted = {line.product_id for line in credit.lines if line.product_id}
    # entered before the credit (of a day's documents, by entry order: ``entry_order``)
    earlier = [
        s
        for s in sales
        if s.customer_id == customer_id and (s.sale.at, s.sale.seq) <= (credit.at, credit.seq)
    ]
    named_known = [known[i] for i in named if i in known]
    chosen = named_known[0] if named_known else None
    note = ""
    if chosen is None:
        candidates = [s for s in earlier if wanted & _products(s)]
        if not candidates:
            return CreditMatch(None)
        chosen = max(candidates, key=lambda s: (wanted <= _products(s), *_entered(s)))
        named_as = chosen.number or chosen.sale.document_id
        why = "names no sale" if not named else "names no sale Partsemble costs (voided, deleted, later, ...)"
        note = f"the credit {why}; its goods return to the lots of {named_as}"
    elsewhere = tuple(
        (product, _named_with(named_known, product) or _latest_with(earlier, product))
        for product in sorted(wanted - _products(chosen))
    )
    return CreditMatch(chosen.sale.document_id, note, elsewhere)


def _named_with(named: Sequence[KnownSale], product: str) -> str | None:
    return next((s.sale.document_id for s in named if product in _products(s)), None)


def _products(sale: KnownSale) -> set[str | None]:
    return {line.product_id for line in sale.sale.lines}


def _latest_with(sales: Sequence[KnownSale], product: str) -> str | None:
    holding = [s for s in sales if product in _products(s)]
    return max(holding, key=_entered).sale.document_id if holding else None


def _entered(sale: KnownSale) -> tuple[datetime, int, str]:
    return sale.sale.at, sale.sale.seq, sale.sale.document_id
