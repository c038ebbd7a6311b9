"""QuickBooks inventory mode: each item's starting quantity, what QuickBooks held of it before Partsemble,
recorded just before Partsemble's first inventory adjustment of the item is posted. The books check then
tells that stock from a difference, as it tells opening balances from others' entries in journals mode.

QuickBooks answers an item's quantity on hand now only (``QtyOnHand``), so the starting quantity is read at
that moment, with the units the sales documents Partsemble tracks had taken out of it by then added back
(QuickBooks counts an invoice's or sales receipt's units out when it is entered and a credit memo's back in,
and gives a voided or deleted one's back): what QuickBooks held before them. The documents are counted as
QuickBooks holds them at that moment: those the last pull read, updated by what changed since (read then),
so a sale entered after the last pull is not taken for stock QuickBooks held before Partsemble; the
quantities are read between two reads of those changes that agree, so one entered meanwhile is not either.
The sales tracking of that moment is kept with it: when the tracked sales change later (tracking turned on,
or the start date moved), the books check counts the sales QuickBooks had entered by then as they are
tracked now (``starting_now``, by QuickBooks' entry time of each).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from http import HTTPStatus

from shared.domain.books import of_company
from shared.domain.postings import InventoryAdjustment
from shared.domain.sales import excluded_because
from shared.errors import ServiceError
from shared.money import ZERO
from shared.providers.base import AccountingProvider, PulledSale, Session
from shared.store import exports as export_store
from shared.store import sales as sales_store
from shared.store import starting_quantities as store
from shared.store.starting_quantities import StartingQuantity

# which way QuickBooks moves an item's quantity on hand for a sales document's units (out positive)
OUT = {"invoice": 1, "sales_receipt": 1, "credit_note": -1}


def counts(document: PulledSale, start_date: date | None, company: str) -> bool:
    """Whether Partsemble counts ``document``'s units out of QuickBooks' stock: a sales document of
    ``company`` dated from ``start_date``, not voided or deleted."""
    return (
        document.status == "active"
        and not excluded_because(document.status, document.issued, start_date)
        and of_company(document.tenant_id, company)
    )


def _units(document: PulledSale, items: Collection[str]) -> Iterator[tuple[str, Decimal]]:
    """(item id, units out) of each of ``document``'s lines of ``items`` (a credit's units come back in)."""
    for line in document.lines:
        if (item := line.item_id) is not None and item in items and line.quantity:
            yield item, OUT[document.kind] * line.quantity


def counted_out(
    documents: Iterable[PulledSale], start_date: date | None, company: str, items: Collection[str]
) -> dict[str, Decimal]:
    """Item id -> the units of ``items`` that the sales documents of ``company`` Partsemble tracks (dated
    from ``start_date``, not voided or deleted) took out of QuickBooks' stock, net of what credits put
    back."""
    out: dict[str, Decimal] = {}
    for document in documents:
        if counts(document, start_date, company):
            for item, units in _units(document, items):
                out[item] = out.get(item, ZERO) + units
    return out


def _counted_then(document: PulledSale, start: StartingQuantity) -> bool:
    """Whether ``start`` counted ``document`` (one QuickBooks held when it was read): the sales documents
    stored then, dated from the start date of then, and all such when the company's sales were tracked."""
    stored = document.first_read is None or document.first_read <= start.read_at
    return (bool(start.tracked) or stored) and not excluded_because(
        document.status, document.issued, start.tracked_from
    )


def starting_now(
    starts: Mapping[str, StartingQuantity],
    documents: Iterable[PulledSale],
    start_date: date | None,
    company: str,
) -> dict[str, Decimal]:
    """Item id -> its starting quantity as the sales tracked now (from ``start_date``) count them. A sale
    QuickBooks had counted out when the quantity was read but Partsemble did not count then (tracking turned
    on later, or an earlier start date) has its units added back; one counted then but not now (a later
    start date) has them taken out again. A starting quantity recorded before the tracking of its moment was
    kept, or a sale whose entry time QuickBooks did not give, is left as it is."""
    starting = {item: start.quantity for item, start in starts.items()}
    for document in documents:
        created = document.created
        if created is None or not (document.status == "active" and of_company(document.tenant_id, company)):
            continue
        now = counts(document, start_date, company)
        for item, units in _units(document, starts):
            start = starts[item]
            if start.tracked is None or created > start.read_at:
                continue  # recorded before its tracking was kept, or entered after the quantity was read
            if now != _counted_then(document, start):
                starting[item] += units if now else -units
    return starting


def stored_documents(organisation_id: str) -> dict[str, PulledSale]:
    """The sales documents as the pulls stored them, by id."""
    return {
        d.document_id: d for d in map(PulledSale.model_validate_json, sales_store.documents(organisation_id))
    }


class SalesMoving(ServiceError):
    """QuickBooks' sales documents kept changing while an item's quantity on hand was read, or the pull has
    not caught up with them: try later."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


READS = 3  # tries at reading the quantities between two reads of the same sales changes
# pages of sales changes read here at most: past the change feed's window (no pull for a month) or before the
# first pull ended, QuickBooks answers by query page by page, and that read is the pull's to make
PAGES = 3
# and asks for the items' held sales by id past that window (one per kind of document, 100 sales each)
ASKS = 3


def note_starting(
    organisation_id: str,
    api: AccountingProvider,
    session: Session,
    adjustment: InventoryAdjustment,
    now: datetime,
) -> None:
    """Before ``adjustment`` is posted: the starting quantity of each of its items that Partsemble has not
    adjusted in this company before (one already recorded stands)."""
    company = session.tenant_id
    items = {line.item_id for line in adjustment.lines}
    missing = items - set(store.starting_quantities(organisation_id, "qbo", company, items))
    if missing:  # adjusted before starting quantities were recorded: QtyOnHand holds Partsemble's units too
        missing -= adjusted(organisation_id, company)[0]
    if not missing:
        return
    tracking = sales_store.get_tracking(organisation_id, "qbo")
    tracked = tracking is not None and tracking.enabled and of_company(tracking.tenant_id, company)
    stored = stored_documents(organisation_id)
    # the stored sales that count these items out: past CDC's window they are asked for by id (a deleted
    # one vanishes from the query), a few at most
    sales = [
        d.document_id
        for d in stored.values()
        if d.status != "deleted"
        and of_company(d.tenant_id, company)
        and any(line.item_id in missing for line in d.lines)
    ]

    def changed() -> tuple[PulledSale, ...]:
        """What changed in QuickBooks since the last pull, as it stands now (a deleted one as deleted)."""
        if not tracked or tracking is None:
            return ()
        pages = [0]

        def read() -> None:
            pages[0] += 1

        found = api.sales_changes(
            session,
            tracking.cursor,
            start=tracking.start_date,
            now=now,
            on_page=read,
            stop=lambda: pages[0] >= PAGES + ASKS,
            held=lambda: sales,
        )
        if found.resume is not None:
            raise SalesMoving(
                "the sales pull has not caught up with QuickBooks yet; the first adjustment of these items "
                "waits for it, so that their starting quantity is read right"
            )
        return found.records

    # the quantities are read between two reads of the changes that agree, so that no document entered
    # meanwhile is counted in one and not the other
    first = changed()
    for _ in range(READS):
        held = {
            i.item_id: i.quantity_on_hand for i in api.items(session, None).records if i.item_id in missing
        }
        then = changed()
        if {(d.document_id, d.version) for d in then} == {(d.document_id, d.version) for d in first}:
            break
        first = then
    else:
        raise SalesMoving("sales documents kept changing in QuickBooks while stock was read; retrying later")
    stored.update((d.document_id, d) for d in then)
    start_date = tracking.start_date if tracking else None
    out = counted_out(stored.values(), start_date, company, missing)
    for item_id in sorted(missing):
        quantity = held.get(item_id)
        if quantity is not None:  # None: QuickBooks doesn't track its quantity (it refuses the adjustment)
            start = StartingQuantity(
                item_id=item_id,
                quantity=quantity + out.get(item_id, ZERO),
                read_at=now,
                tracked=tracked,
                tracked_from=start_date,
            )
            store.put_starting_quantity(organisation_id, "qbo", company, start)


def adjusted(organisation_id: str, company: str) -> tuple[set[str], dict[str, Decimal]]:
    """The items of the inventory adjustments Partsemble has planned for ``company``, and per item the units
    those posted moved."""
    items: set[str] = set()
    posted: dict[str, Decimal] = {}
    for row in export_store.list_exports(organisation_id):
        if row.plan_type == "adjustment" and row.plan and of_company(row.plan_tenant, company):
            for line in InventoryAdjustment.model_validate_json(row.plan).lines:
                items.add(line.item_id)
                if row.status == "posted":
                    posted[line.item_id] = posted.get(line.item_id, ZERO) + line.quantity_diff
    return items, posted
