"""Adversarial probes of QBO inventory (quantity) mode and the catalog sync: receipts, rejections and builds
interleaved with sales entered in QuickBooks, back-dated records, bundles, inactive and untracked items,
unknown outcomes and refusals retried; items renamed, re-coded, deactivated and duplicated between syncs.

After each step the reconciliation must explain every item's QtyOnHand (nothing unexplained) and the
sandbox must hold each inventory-adjustment export exactly once, moving each item by what the posted plans
say."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import CHECKING, DEMO_REALM_ID, HARBOR, MAPLE
from shared.domain.postings import InventoryAdjustment
from shared.store import sales as sales_store
from tests.conftest import Api, Sandboxes
from tests.integration.test_books import receive
from tests.integration.test_export_faults import deliver
from tests.integration.test_exports import ok, setup_qbo, setup_xero
from tests.integration.test_probe_exactly_once import QBO_ADJUSTMENTS, adjusted, export_rows

D = Decimal
pytestmark = pytest.mark.usefixtures("no_real_sleep")
TRACKING = {"enabled": True, "start_date": "2026-11-02", "time_zone": "America/Los_Angeles"}
LATER = {**TRACKING, "start_date": "2026-11-05"}


# ---- helpers ---------------------------------------------------------------------------------------------
def qbo_document(
    sandboxes: Sandboxes,
    entity: str,
    number: str,
    day: str,
    lines: list[tuple[str, int]],
    *,
    note: str = "",
    customer: str = HARBOR,
    bundle: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """A sales document entered in QuickBooks: item lines (item id, qty), optionally a bundle line."""
    body_lines: list[dict[str, Any]] = [
        {
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": "9.00"},
        }
        for item, qty in lines
    ]
    if bundle:
        body_lines.append(
            {
                "DetailType": "GroupLineDetail",
                "GroupLineDetail": {"GroupItemRef": {"value": bundle[0]}, "Quantity": bundle[1]},
            }
        )
    record = {"DocNumber": number, "TxnDate": day, "CustomerRef": {"value": customer}, "PrivateNote": note}
    if entity == "RefundReceipt":
        record["DepositToAccountRef"] = {"value": CHECKING}
    created: dict[str, Any] = sandboxes.qbo.create_record(
        DEMO_REALM_ID, entity, {**record, "Line": body_lines}
    )
    return created


def receipt(api: Api, at: str, lines: list[dict[str, str]], receipt_id: str | None = None) -> Any:
    body: dict[str, Any] = {"received_at": at, "lines": lines}
    if receipt_id:
        body["receipt_id"] = receipt_id
    return ok(api.call("POST", "/receipts", json_body=body), 201)


def build(api: Api, product: str, quantity: str, at: str, components: dict[str, str]) -> Any:
    body = {
        "product_id": product,
        "quantity": quantity,
        "built_at": at,
        "components": [{"product_id": p, "quantity_per_unit": q} for p, q in components.items()],
    }
    return ok(api.call("POST", "/builds", json_body=body), 201)


def planned_moves() -> dict[str, Decimal]:
    """Item id -> the units the posted adjustment exports' plans move."""
    moved: dict[str, Decimal] = defaultdict(Decimal)
    for row in export_rows():
        if row.plan_type == "adjustment" and row.plan and row.status == "posted":
            for line in InventoryAdjustment.model_validate_json(row.plan).lines:
                moved[line.item_id] += line.quantity_diff
    return {i: q for i, q in moved.items() if q}


def reconciled(api: Api) -> dict[str, dict[str, Any]]:
    answer = ok(api.call("GET", "/reconciliation"))
    assert answer["mode"] == "inventory_adjustments"
    return {i["item_id"]: i for i in answer["items"]}


def assert_explained_and_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, step: str, *, settled: bool = True
) -> dict[str, dict[str, Any]]:
    """Exports delivered, sales pulled; every item explained; every adjustment export in QBO once."""
    deliver(aws)
    Poller(aws).drain()
    tracking = sales_store.get_tracking("org-a", "qbo")
    if tracking is not None and tracking.enabled:
        api.pull_sales()
    rows = export_rows()
    if settled:
        bad = [(r.kind, r.status, r.last_error) for r in rows if r.status not in ("posted", "skipped")]
        assert not bad, (step, bad)
    markers, moved = adjusted(sandboxes)
    twice = {m: n for m, n in markers.items() if n != 1}
    assert not twice, (step, "adjustments posted more than once", twice)
    posted = {r.export_id for r in rows if r.status == "posted" and r.plan_type == "adjustment"}
    assert set(markers) == posted, (step, set(markers) ^ posted)
    assert moved == planned_moves(), (step, moved, planned_moves())
    items = reconciled(api)
    unexplained = {i: x for i, x in items.items() if x["unexplained"] is not None and D(x["unexplained"])}
    fields = ("provider_quantity", "on_hand", "starting_quantity", "unexplained", "sold_without_stock")
    assert not unexplained, (step, {i: [x[k] for k in fields] for i, x in unexplained.items()})
    return items


# ---- quantity mode: a season of records and sales ---------------------------------------------------------
def test_a_season_of_records_and_quickbooks_sales_is_explained_after_every_step(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    # the bundle's other component (Wall Bracket 40mm) as a product too, and the bundle itself (a kit)
    ok(
        api.call(
            "POST", "/products/import-from-provider", json_body={"provider": "qbo", "item_ids": ["6", "11"]}
        )
    )
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=TRACKING))
    blank, bracket, shelf = parts["blank"], parts["bracket"], parts["shelf"]
    assert_explained_and_once(api, aws, sandboxes, "start")

    receipt(
        api,
        "2026-11-03T09:00:00-08:00",
        [
            {"product_id": blank, "quantity": "20", "rejected": "2", "unit_cost": "1.20"},
            {"product_id": bracket, "quantity": "10", "unit_cost": "1.90"},
        ],
    )
    assert_explained_and_once(api, aws, sandboxes, "receipt with a rejection")

    qbo_document(sandboxes, "Invoice", "S-1", "2026-11-04", [("5", 3)])
    qbo_document(sandboxes, "SalesReceipt", "S-2", "2026-11-04", [("1", 5)], customer=MAPLE)
    assert_explained_and_once(api, aws, sandboxes, "invoice and sales receipt")

    build(api, bracket, "4", "2026-11-05T09:00:00-08:00", {blank: "1"})
    assert_explained_and_once(api, aws, sandboxes, "build")

    qbo_document(sandboxes, "CreditMemo", "C-1", "2026-11-06", [("5", 1)])
    qbo_document(sandboxes, "RefundReceipt", "C-2", "2026-11-06", [("1", 1)], note="scrapped", customer=MAPLE)
    assert_explained_and_once(api, aws, sandboxes, "credit memo and scrapped refund receipt")

    receipt(api, "2026-11-02T09:00:00-08:00", [{"product_id": bracket, "quantity": "5", "unit_cost": "2.00"}])
    assert_explained_and_once(api, aws, sandboxes, "back-dated receipt")

    qbo_document(sandboxes, "Invoice", "S-3", "2026-11-07", [], bundle=("11", 2))
    assert_explained_and_once(api, aws, sandboxes, "bundle sold")

    qbo_document(sandboxes, "Invoice", "S-4", "2026-11-08", [("5", 30)])  # beyond Partsemble's stock
    items = assert_explained_and_once(api, aws, sandboxes, "sold without stock")
    assert D(items["5"]["sold_without_stock"]) > 0, items["5"]

    # a build back-dated before the sale that took its brackets
    build(api, shelf, "1", "2026-11-07T12:00:00-08:00", {bracket: "2"})
    assert_explained_and_once(api, aws, sandboxes, "back-dated build")

    # an invoice edited and one voided in QuickBooks
    s1 = next(i for i in sandboxes.qbo.list_records(DEMO_REALM_ID, "Invoice") if i.get("DocNumber") == "S-1")
    line = {**s1["Line"][0]}
    line["SalesItemLineDetail"] = {**line["SalesItemLineDetail"], "Qty": 1}
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Invoice", s1["Id"], {"Line": [line]})
    s3 = next(i for i in sandboxes.qbo.list_records(DEMO_REALM_ID, "Invoice") if i.get("DocNumber") == "S-3")
    sandboxes.qbo.delete_record(DEMO_REALM_ID, "Invoice", s3["Id"])
    assert_explained_and_once(api, aws, sandboxes, "invoice edited, bundle invoice deleted")


def test_an_item_made_inactive_in_quickbooks_fails_its_adjustment_and_the_retry_posts_it_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """Wall Bracket 20mm made inactive in QuickBooks after a first adjustment: the next receipt's adjustment
    is refused (610), the item's quantity still explained (the units named as not in QuickBooks); made
    active again and retried, it posts once."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=TRACKING))
    bracket = parts["bracket"]
    receipt(api, "2026-11-03T09:00:00-08:00", [{"product_id": bracket, "quantity": "4", "unit_cost": "1.90"}])
    assert_explained_and_once(api, aws, sandboxes, "first receipt")
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", "5", {"Active": False})
    ok(api.call("POST", "/integrations/qbo/sync/items"))
    receipt(api, "2026-11-04T09:00:00-08:00", [{"product_id": bracket, "quantity": "6", "unit_cost": "1.90"}])
    items = assert_explained_and_once(api, aws, sandboxes, "receipt of an inactive item", settled=False)
    (failed,) = [r for r in export_rows() if r.status == "failed"]
    assert D(items["5"]["not_in_quickbooks"]) == 6, items["5"]
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", "5", {"Active": True})
    ok(api.call("POST", f"/exports/{failed.export_id}/retry"))
    items = assert_explained_and_once(api, aws, sandboxes, "retried")
    assert D(items["5"]["not_in_quickbooks"]) == 0, items["5"]


def test_credit_memos_of_a_bundle_count_its_components_restocked_or_written_off(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """A bundle (Bracket Pair Bundle, a kit) sold, then credited: once back to that sale (its components'
    units go back to its lots, as QuickBooks puts them back in stock) and once scrapped, matching no sale
    (Partsemble writes them off, QuickBooks still puts them back). The bundle's line reaches the books check
    as its components' lines, each matched to its own stock movement: only the scrapped units are named as
    written off, and nothing is left as not in QuickBooks."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    ok(
        api.call(
            "POST", "/products/import-from-provider", json_body={"provider": "qbo", "item_ids": ["6", "11"]}
        )
    )
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=TRACKING))
    receipt(
        api,
        "2026-11-03T09:00:00-08:00",
        [{"product_id": parts["bracket"], "quantity": "10", "unit_cost": "1.90"}],
    )
    qbo_document(sandboxes, "Invoice", "S-1", "2026-11-04", [], bundle=("11", 2))
    qbo_document(sandboxes, "CreditMemo", "C-1", "2026-11-05", [], bundle=("11", 1))
    items = assert_explained_and_once(api, aws, sandboxes, "bundle sold and credited back to its sale")
    # Wall Bracket 20mm: 10 received, 2 sold, 1 back; 40mm: none held, so 2 sold without stock, 1 undone
    assert [D(items["5"][k]) for k in ("on_hand", "written_off_credits", "not_in_quickbooks")] == [9, 0, 0]
    assert [D(items["6"][k]) for k in ("sold_without_stock", "written_off_credits", "not_in_quickbooks")] == [
        1,
        0,
        0,
    ]
    qbo_document(
        sandboxes, "CreditMemo", "C-2", "2026-11-06", [], bundle=("11", 1), note="scrapped", customer=MAPLE
    )
    items = assert_explained_and_once(api, aws, sandboxes, "bundle credited, scrapped, matching no sale")
    for item in ("5", "6"):
        assert [D(items[item][k]) for k in ("written_off_credits", "not_in_quickbooks")] == [1, 0], items[
            item
        ]
    assert D(items["5"]["on_hand"]) == 9, items["5"]


def test_a_build_that_uses_a_non_inventory_item_is_posted_for_the_items_quickbooks_tracks(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """Shop Supplies is a non-inventory item in QuickBooks (no quantity): a product linked to it, received and
    consumed by a build. QuickBooks adjusts only tracked inventory items, so the build's finished goods and
    tracked components must still reach QtyOnHand, every item explained."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    imported = ok(
        api.call("POST", "/products/import-from-provider", json_body={"provider": "qbo", "item_ids": ["9"]})
    )
    (supplies,) = [p["product_id"] for p in imported["created"]]
    receipt(
        api,
        "2026-11-03T09:00:00-08:00",
        [
            {"product_id": parts["blank"], "quantity": "10", "unit_cost": "1.20"},
            {"product_id": supplies, "quantity": "5", "unit_cost": "12.00"},
        ],
    )
    build(api, parts["bracket"], "4", "2026-11-04T09:00:00-08:00", {parts["blank"]: "1", supplies: "1"})
    items = assert_explained_and_once(api, aws, sandboxes, "non-inventory component")
    assert D(items["5"]["not_in_quickbooks"]) == 0 and D(items["1"]["not_in_quickbooks"]) == 0, items
    assert items["9"]["provider_quantity"] is None, items["9"]


def test_adjustments_lost_timed_out_and_refused_then_retried_with_post_on_post_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """A receipt's adjustment whose answer is lost, a build's that times out then is lost, and one refused by
    QuickBooks' closing date then retried with a later ``post_on``: each once, each item explained, the
    re-dated one on the day chosen."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=TRACKING))
    qbo = sandboxes.qbo
    qbo.inject("lost_response", method="POST", path_prefix=QBO_ADJUSTMENTS)
    receipt(
        api, "2026-11-03T09:00:00-08:00", [{"product_id": parts["blank"], "quantity": "10", "unit_cost": "1"}]
    )
    assert_explained_and_once(api, aws, sandboxes, "lost")
    qbo_document(sandboxes, "Invoice", "L-1", "2026-11-04", [("1", 2)])
    qbo.inject("timeout", method="POST", path_prefix=QBO_ADJUSTMENTS, count=2)
    qbo.inject("lost_response", method="POST", path_prefix=QBO_ADJUSTMENTS, count=1)
    build(api, parts["bracket"], "3", "2026-11-05T09:00:00-08:00", {parts["blank"]: "1"})
    assert_explained_and_once(api, aws, sandboxes, "timeouts then lost")
    qbo.update_company(DEMO_REALM_ID, closing_date=date(2026, 11, 7))
    receipt(
        api,
        "2026-11-07T09:00:00-08:00",
        [{"product_id": parts["bracket"], "quantity": "5", "unit_cost": "2"}],
    )
    qbo_document(sandboxes, "Invoice", "L-2", "2026-11-08", [("5", 1)])
    assert_explained_and_once(api, aws, sandboxes, "refused", settled=False)
    (refused,) = [r for r in export_rows() if r.status == "failed"]
    assert "closing date" in (refused.last_error or ""), refused
    ok(api.call("POST", f"/exports/{refused.export_id}/retry?post_on=2026-11-08"))
    assert_explained_and_once(api, aws, sandboxes, "retried on a later day")
    (posted,) = [
        a
        for a in qbo.list_records(DEMO_REALM_ID, "InventoryAdjustment")
        if refused.export_id in a.get("PrivateNote", "")
    ]
    assert posted["TxnDate"] == "2026-11-08", posted


# ---- catalog sync ----------------------------------------------------------------------------------------
def test_a_xero_item_code_changed_keeps_its_products_sales_mapped(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """The Xero item BOLT-M8 re-coded BOLT-M8-ZN in Xero after its product was linked: the link holds by
    ItemID across the sync, so the invoices that name the new code are that product's sales, not unmapped
    lines left out of cost of goods sold."""
    from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id

    parts = setup_xero(api, sandboxes)
    ok(
        api.call(
            "PUT",
            "/integrations/xero/sales-tracking",
            json_body={"enabled": True, "start_date": "2026-11-01"},
        )
    )
    receive(api, "R-X", "2026-11-02T09:00:00+11:00", parts["bolt"], "100", "0.20")
    item = next(i for i in sandboxes.xero.list_records(AU_TENANT_ID, "Items") if i.get("Code") == "BOLT-M8")
    sandboxes.xero.edit_record(AU_TENANT_ID, "Items", item["ItemID"], {"Code": "BOLT-M8-ZN"})
    synced = ok(api.call("POST", "/integrations/xero/sync/items"))
    assert [u["sku"] for u in synced["updated"]] == ["BOLT-M8-ZN"], synced
    again = ok(api.call("POST", "/integrations/xero/sync/items"))
    assert (again["created"], again["updated"], again["matched"]) == ([], [], []), again
    products = {p["product_id"]: p for p in ok(api.call("GET", "/products"))["items"]}
    assert products[parts["bolt"]]["provider_links"]["xero"] == item["ItemID"]
    sandboxes.xero.add_record(
        AU_TENANT_ID,
        "Invoices",
        {
            "InvoiceNumber": "ZN-1",
            "Type": "ACCREC",
            "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")},
            "Date": "2026-11-03",
            "Status": "AUTHORISED",
            "LineItems": [
                {"ItemCode": "BOLT-M8-ZN", "Description": "Bolt", "Quantity": "10", "UnitAmount": "1"}
            ],
        },
    )
    api.pull_sales()
    margins = ok(api.call("GET", "/margins?start=2026-11-01&end=2026-11-30"))
    (sale,) = [d for d in margins["documents"] if d["number"] == "ZN-1"]
    assert sale["unmapped"] == [] and [line["product_id"] for line in sale["lines"]] == [parts["bolt"]], sale


def test_qbo_items_renamed_recoded_deactivated_and_duplicated_between_syncs_keep_products_links(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """Between syncs: Wall Bracket 20mm renamed and its SKU changed, Wall Bracket 40mm made inactive, a new
    item given the SKU of a linked one, two new items sharing one SKU. Links hold by item id, the duplicates
    are not guessed, a re-sync changes nothing, and the adjustments (quantity mode) still name the linked
    items, every item explained."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    ok(api.call("POST", "/products/import-from-provider", json_body={"provider": "qbo", "item_ids": ["6"]}))
    before = {p["product_id"]: p for p in ok(api.call("GET", "/products"))["items"]}
    receipt(
        api,
        "2026-11-03T09:00:00-08:00",
        [{"product_id": parts["bracket"], "quantity": "3", "unit_cost": "2"}],
    )
    assert_explained_and_once(api, aws, sandboxes, "before the changes")

    qbo = sandboxes.qbo
    qbo.edit_record(DEMO_REALM_ID, "Item", "5", {"Name": "Wall Bracket 20mm zinc", "Sku": "FG-WB-20-ZN"})
    qbo.edit_record(DEMO_REALM_ID, "Item", "6", {"Active": False})
    template = qbo.get_record(DEMO_REALM_ID, "Item", "8")
    fields = {k: template[k] for k in ("Type", "TrackQtyOnHand", "IncomeAccountRef", "ExpenseAccountRef",
                                       "AssetAccountRef")}  # fmt: skip
    fields.update({"QtyOnHand": 7, "InvStartDate": "2026-01-01"})
    twin = qbo.create_record(DEMO_REALM_ID, "Item", {**fields, "Name": "Bracket twin", "Sku": "FG-WB-20"})
    qbo.create_record(DEMO_REALM_ID, "Item", {**fields, "Name": "Brace A", "Sku": "FG-CB-01"})
    qbo.create_record(DEMO_REALM_ID, "Item", {**fields, "Name": "Brace B", "Sku": "fg-cb-01 "})
    first = ok(api.call("POST", "/integrations/qbo/sync/items"))
    assert first["matched"] == [], first  # nothing linked by a guess
    second = ok(api.call("POST", "/integrations/qbo/sync/items"))
    assert (second["created"], second["updated"], second["matched"]) == ([], [], []), second
    after = {p["product_id"]: p for p in ok(api.call("GET", "/products"))["items"]}
    assert {k: p["provider_links"] for k, p in after.items()} == {
        k: p["provider_links"] for k, p in before.items()
    }
    assert twin["Id"] not in {p["provider_links"].get("qbo") for p in after.values()}
    receipt(
        api,
        "2026-11-04T09:00:00-08:00",
        [{"product_id": parts["bracket"], "quantity": "2", "unit_cost": "2"}],
    )
    items = assert_explained_and_once(api, aws, sandboxes, "after the changes")
    assert D(items["5"]["not_in_quickbooks"]) == 0 and D(items["5"]["on_hand"]) == 5, items["5"]
    lots = ok(api.call("GET", f"/products/{parts['bracket']}/lots"))
    assert sum(D(lot["quantity"]) for lot in (lots["lots"] if isinstance(lots, dict) else lots)) == 5, lots


def ten_brackets_received(api: Api, parts: dict[str, str]) -> None:
    """A receipt of 10 Wall Brackets (item 5) on 4 November: the item's first adjustment."""
    receipt(
        api,
        "2026-11-04T09:00:00-08:00",
        [{"product_id": parts["bracket"], "quantity": "10", "unit_cost": "2"}],
    )


@pytest.mark.parametrize("before", ["tracking off", "a later start date"])
def test_sales_tracked_only_after_the_first_adjustment_are_not_a_discrepancy(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, before: str
) -> None:
    """An invoice of 3 Wall Brackets entered in QuickBooks on 3 November; Partsemble's first adjustment of the
    item (a receipt of 10) is posted while that invoice is not tracked (sales tracking off, or starting on 5
    November); then tracking starts on 2 November and the pull reads it. QuickBooks counted those 3 out before
    the first adjustment: the item is explained (sold without stock), not a discrepancy."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    if before == "a later start date":
        ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=LATER))
    qbo_document(sandboxes, "Invoice", "EARLY-1", "2026-11-03", [("5", 3)])
    ten_brackets_received(api, parts)
    assert_explained_and_once(api, aws, sandboxes, "first adjustment, the invoice not tracked")
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=TRACKING))  # from 2 November
    items = assert_explained_and_once(api, aws, sandboxes, "the invoice tracked")
    assert (D(items["5"]["on_hand"]), D(items["5"]["sold_without_stock"])) == (10, 3), items["5"]


def test_a_sale_no_longer_tracked_after_the_first_adjustment_is_not_a_discrepancy(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """The other way round: the invoice of 3 (3 November) is tracked when the first adjustment is posted, so
    the starting quantity counts its units back; then the start date moves to 5 November. QuickBooks still
    counts those 3 out, Partsemble no longer does: the starting quantity gives them up (stock QuickBooks had
    sold before Partsemble), and nothing is unexplained."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=TRACKING))
    qbo_document(sandboxes, "Invoice", "EARLY-1", "2026-11-03", [("5", 3)])
    ten_brackets_received(api, parts)
    before = assert_explained_and_once(api, aws, sandboxes, "first adjustment, the invoice tracked")["5"]
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=LATER))
    after = assert_explained_and_once(api, aws, sandboxes, "the invoice no longer tracked")["5"]
    assert D(after["starting_quantity"]) == D(before["starting_quantity"]) - 3, (before, after)
    assert (D(after["on_hand"]), D(after["sold_without_stock"])) == (10, 0), after


def test_a_sale_entered_after_the_first_adjustment_and_tracked_later_is_not_stock_of_its_own(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """An invoice of 3 dated 3 November but entered in QuickBooks only after the first adjustment, while
    tracking starts on 5 November; then tracking moves to 2 November and the pull reads it. QuickBooks counted
    it out after the starting quantity was read: the starting quantity stays as read (its units are not
    QuickBooks' stock from before Partsemble), and the item is explained by the sale alone."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=LATER))
    ten_brackets_received(api, parts)
    before = assert_explained_and_once(api, aws, sandboxes, "first adjustment")["5"]
    sandboxes.qbo.clock.set(datetime.now(UTC) + timedelta(minutes=1))  # entered after the quantity was read
    qbo_document(sandboxes, "Invoice", "LATE-ENTRY-1", "2026-11-03", [("5", 3)])
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=TRACKING))
    after = assert_explained_and_once(api, aws, sandboxes, "the invoice tracked")["5"]
    assert D(after["starting_quantity"]) == D(before["starting_quantity"]), (before, after)
    assert (D(after["on_hand"]), D(after["sold_without_stock"])) == (10, 3), after


def test_a_xero_item_deleted_and_made_again_between_syncs_is_not_left_linked(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """The linked Xero item BOLT-M8 deleted in Xero and a new one made with the same code (Xero codes are
    unique): after a sync the catalog no longer offers the deleted item, the new one is not reported as a
    duplicate of it, the product links to it, and a re-sync changes nothing."""
    from infra.sandboxes.xero_demo import AU_TENANT_ID

    parts = setup_xero(api, sandboxes)
    old = next(i for i in sandboxes.xero.list_records(AU_TENANT_ID, "Items") if i.get("Code") == "BOLT-M8")
    sandboxes.xero.delete_record(AU_TENANT_ID, "Items", old["ItemID"])
    sandboxes.xero.add_record(AU_TENANT_ID, "Items", {"Code": "BOLT-M8", "Name": "Bolt M8 x 40 (new)"})
    synced = ok(api.call("POST", "/integrations/xero/sync/items"))
    items = {i["item_id"]: i for i in ok(api.call("GET", "/integrations/xero/items"))["items"]}
    assert not [s for s in synced["skipped"] if "duplicate" in s["reason"]], synced
    new = next(i for i in sandboxes.xero.list_records(AU_TENANT_ID, "Items") if i.get("Code") == "BOLT-M8")
    assert old["ItemID"] not in items and new["ItemID"] in items, items
    (bolt,) = [p for p in ok(api.call("GET", "/products"))["items"] if p["product_id"] == parts["bolt"]]
    assert bolt["provider_links"] == {"xero": new["ItemID"]}, bolt  # the same product, its history kept
    again = ok(api.call("POST", "/integrations/xero/sync/items"))
    assert (again["created"], again["updated"], again["matched"], again["removed"]) == ([], [], [], []), again
