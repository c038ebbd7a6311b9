"""Each QuickBooks item's starting quantity in a company (``ITEM-START#<provider>#<company>#<item id>``):
what its QtyOnHand held of QuickBooks' own before Partsemble's first inventory adjustment of it. Written
once, before that adjustment is posted: the first reading stands, so a later one (taken after another
worker's adjustment was posted) never replaces it."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from shared.aws import table
from shared.store.dynamo import conditional, org_batch_get, org_items
from shared.store.keys import org_pk, starting_quantity_prefix, starting_quantity_sk


def starting_quantities(
    organisation_id: str, provider: str, company: str, item_ids: Iterable[str] | None = None
) -> dict[str, Decimal]:
    """Item id -> its starting quantity, of these items (None: of every item that has one)."""
    if item_ids is None:
        rows = org_items(organisation_id, starting_quantity_prefix(provider, company), ConsistentRead=True)
    else:
        keys = (starting_quantity_sk(provider, company, item_id) for item_id in item_ids)
        rows = org_batch_get(organisation_id, keys)
    return {str(row["item_id"]): Decimal(str(row["quantity"])) for row in rows}


def put_starting_quantity(
    organisation_id: str, provider: str, company: str, item_id: str, quantity: Decimal, read_at: str
) -> bool:
    """Records an item's starting quantity unless one is recorded already (False then)."""
    item = {
        "pk": org_pk(organisation_id),
        "sk": starting_quantity_sk(provider, company, item_id),
        "item_id": item_id,
        "quantity": str(quantity),  # exact, as text: a quantity can hold more digits than a number keeps
        "read_at": read_at,
    }
    put = lambda: table().put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")  # noqa: E731
    return conditional(put) is not None
