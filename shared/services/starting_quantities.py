"""QuickBooks inventory mode: each item's starting quantity, what QuickBooks held of it before Partsemble,
read just before Partsemble's first inventory adjustment of the item is posted. The books check then tells
that stock from a difference, as it tells opening balances from others' entries in journals mode.

QuickBooks answers an item's quantity on hand now only (``QtyOnHand``), so the starting quantity is read at
that moment: QtyOnHand then, plus the units that the sales documents Partsemble had read from the company by
then took out of it (QuickBooks counts an invoice's units out when it is entered), less the units their
credits put back (it counts every unit of a credit memo back in): what QuickBooks held before those sales.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.domain.books import of_company
from shared.domain.ledger import EntryKind
from shared.domain.postings import InventoryAdjustment
from shared.lazy import lazy_module
from shared.money import ZERO
from shared.providers.base import AccountingProvider, Session
from shared.store import starting_quantities as store

if TYPE_CHECKING:
    from shared.services import margins
else:  # the costed ledger loads only for an item's first adjustment
    margins = lazy_module("shared.services.margins")

# which way a sales document's stock movement moves QuickBooks' quantity on hand (units out positive)
SALES_MOVES = {EntryKind.SALE_CONSUME: 1, EntryKind.SALE_RETURN: -1, EntryKind.RETURN_WASTE: -1}


def moved_by_sales(
    costed: margins.CostedLedger, company: str, items: Mapping[str, str]
) -> dict[str, Decimal]:
    """Item id -> the units the sales documents read from ``company`` took out of QuickBooks' stock, net of
    the units their credits put back, for ``items`` (product id -> item id)."""
    moved: dict[str, Decimal] = {}
    for product_id, item_id in items.items():
        for entry in costed.ledger.entries(product_id):
            sign = SALES_MOVES.get(entry.kind)
            if sign and of_company(costed.sales_documents.get(entry.document_id), company):
                moved[item_id] = moved.get(item_id, ZERO) + sign * entry.quantity
    return moved


def note_starting(
    organisation_id: str,
    api: AccountingProvider,
    session: Session,
    adjustment: InventoryAdjustment,
    now: datetime,
) -> None:
    """Before ``adjustment`` is posted: the starting quantity of each of its items that Partsemble has not
    adjusted in this company before (one it already holds stands)."""
    company = session.tenant_id
    items = {line.item_id: line.product_id for line in adjustment.lines}
    missing = set(items) - set(store.starting_quantities(organisation_id, "qbo", company, items))
    if not missing:
        return
    held = {i.item_id: i.quantity_on_hand for i in api.items(session, None).records if i.item_id in missing}
    products = {items[item_id]: item_id for item_id in missing}
    moved = moved_by_sales(margins.costed_ledger(organisation_id), company, products)
    for item_id in sorted(missing):
        quantity = held.get(item_id)
        if quantity is not None:  # None: QuickBooks doesn't track its quantity (it refuses the adjustment)
            starting = quantity + moved.get(item_id, ZERO)
            store.put_starting_quantity(organisation_id, "qbo", company, item_id, starting, now.isoformat())
