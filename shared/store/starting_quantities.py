"""Each QuickBooks item's starting quantity in a company (``ITEM-START#<provider>#<company>#<item id>``):
what its QtyOnHand held of QuickBooks' own before Partsemble's first inventory adjustment of it, with the
sales tracking of that moment (which sales it counted). Written once, before that adjustment is posted: the
first reading stands, so a later one (taken after another worker's adjustment was posted) never replaces
it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.aws import table
from shared.model import Model
from shared.store.dynamo import conditional, org_batch_get, org_items
from shared.store.keys import org_pk, starting_quantity_prefix, starting_quantity_sk


class StartingQuantity(Model):
    """An item's starting quantity, and what it counted: the sales documents then stored, dated from
    ``tracked_from``, and, when the company's sales were ``tracked`` then, every one QuickBooks held."""

    item_id: str
    quantity: Decimal
    read_at: datetime
    tracked: bool | None = None  # None: recorded before the tracking of the moment was kept
    tracked_from: date | None = None


def starting_quantities(
    organisation_id: str, provider: str, company: str, item_ids: Iterable[str] | None = None
) -> dict[str, StartingQuantity]:
    """Item id -> its starting quantity, of these items (None: of every item that has one)."""
    if item_ids is None:
        rows = org_items(organisation_id, starting_quantity_prefix(provider, company), ConsistentRead=True)
    else:
        keys = (starting_quantity_sk(provider, company, item_id) for item_id in item_ids)
        rows = org_batch_get(organisation_id, keys)
    return {str(row["item_id"]): _starting(row) for row in rows}


def _starting(row: dict[str, Any]) -> StartingQuantity:
    tracked = row.get("tracked")
    return StartingQuantity(
        item_id=str(row["item_id"]),
        quantity=Decimal(str(row["quantity"])),
        read_at=datetime.fromisoformat(str(row["read_at"])),
        tracked=None if tracked is None else bool(tracked),
        tracked_from=date.fromisoformat(str(row["tracked_from"])) if row.get("tracked_from") else None,
    )


def put_starting_quantity(organisation_id: str, provider: str, company: str, start: StartingQuantity) -> bool:
    """Records an item's starting quantity unless one is recorded already (False then)."""
    item = {
        "pk": org_pk(organisation_id),
        "sk": starting_quantity_sk(provider, company, start.item_id),
        "item_id": start.item_id,
        # exact, as text: a quantity can hold more digits than a number keeps
        "quantity": str(start.quantity),
        "read_at": start.read_at.isoformat(),
        "tracked": bool(start.tracked),
        **({"tracked_from": start.tracked_from.isoformat()} if start.tracked_from else {}),
    }
    put = lambda: table().put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")  # noqa: E731
    return conditional(put) is not None
