"""An item's starting quantity in QBO inventory mode as the sales tracked now count it (``starting_now``):
sales QuickBooks had entered when the quantity was read are counted as they are tracked now; what the
starting quantity cannot tell (recorded before its tracking was kept, a sale without an entry time) stays."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.providers.base import PulledLine, PulledSale
from shared.services.starting_quantities import starting_now
from shared.store.starting_quantities import StartingQuantity

READ_AT = datetime(2026, 11, 4, 17, 0, tzinfo=UTC)
BEFORE, AFTER = datetime(2026, 11, 4, 9, 0, tzinfo=UTC), datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
NOV_2, NOV_5 = date(2026, 11, 2), date(2026, 11, 5)


def sale(
    units: str, *, created: datetime | None, first_read: datetime | None, kind: str = "invoice"
) -> PulledSale:
    return PulledSale(
        document_id=f"qbo:r1:Invoice:{units}-{created}-{first_read}-{kind}",
        tenant_id="r1",
        kind=kind,  # type: ignore[arg-type]
        status="active",
        version="0",
        issued=date(2026, 11, 3),
        lines=(PulledLine(line_id="1", item_id="5", quantity=Decimal(units)),),
        created=created,
        first_read=first_read,
    )


def start(tracked: bool | None, tracked_from: date | None) -> dict[str, StartingQuantity]:
    return {
        "5": StartingQuantity(
            item_id="5", quantity=Decimal(7), read_at=READ_AT, tracked=tracked, tracked_from=tracked_from
        )
    }


@pytest.mark.parametrize(
    ("tracked", "tracked_from", "now_from", "document", "expected"),
    [
        # tracking turned on after the read: a sale QuickBooks held then is added back
        (False, None, NOV_2, sale("3", created=BEFORE, first_read=AFTER), 10),
        # a credit QuickBooks held then, tracked only later: its units came back in before Partsemble
        (False, None, NOV_2, sale("2", created=BEFORE, first_read=AFTER, kind="credit_note"), 5),
        # the start date moved earlier: the same
        (True, NOV_5, NOV_2, sale("3", created=BEFORE, first_read=AFTER), 10),
        # the start date moved later: a sale counted then is taken out again
        (True, NOV_2, NOV_5, sale("3", created=BEFORE, first_read=BEFORE), 4),
        # counted then and now: nothing changes
        (True, NOV_2, NOV_2, sale("3", created=BEFORE, first_read=AFTER), 7),
        # tracking off then, the sale stored by an earlier pull (counted then) and counted now
        (False, NOV_2, NOV_2, sale("3", created=BEFORE, first_read=BEFORE), 7),
        # entered in QuickBooks after the read: QtyOnHand did not hold it then
        (False, None, NOV_2, sale("3", created=AFTER, first_read=AFTER), 7),
        # QuickBooks gave no entry time: left as it was counted
        (False, None, NOV_2, sale("3", created=None, first_read=AFTER), 7),
        # a starting quantity recorded before its tracking was kept: left as it is
        (None, None, NOV_2, sale("3", created=BEFORE, first_read=AFTER), 7),
    ],
)
def test_the_starting_quantity_counts_sales_as_they_are_tracked_now(
    tracked: bool | None, tracked_from: date | None, now_from: date, document: PulledSale, expected: int
) -> None:
    assert starting_now(start(tracked, tracked_from), [document], now_from, "r1") == {"5": Decimal(expected)}


def test_a_sale_of_another_company_or_voided_changes_nothing() -> None:
    other = sale("3", created=BEFORE, first_read=AFTER).model_copy(update={"tenant_id": "r2"})
    voided = sale("3", created=BEFORE, first_read=AFTER).model_copy(update={"status": "voided"})
    assert starting_now(start(False, None), [other, voided], NOV_2, "r1") == {"5": Decimal(7)}
