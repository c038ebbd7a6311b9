"""GET /reconciliation in QBO inventory mode: each linked item's QtyOnHand against Partsemble's on hand."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import (
    BRACKET_BUNDLE,
    COGS,
    DEMO_REALM_ID,
    FINISHED,
    HARBOR,
    INCOME,
    MAPLE,
)
from tests.conftest import Api, Sandboxes
from tests.integration.test_books import daily_check
from tests.integration.test_exports import QBO_ACCOUNTS, QBO_PARTS, ok, setup_qbo


def record_receipt(api: Api, received_at: str, line: dict[str, str]) -> None:
    """A receipt of one line, recorded (201)."""
    ok(api.call("POST", "/receipts", json_body={"received_at": received_at, "lines": [line]}), 201)


def test_qbo_inventory_mode_compares_item_quantities(api: Api, sandboxes: Sandboxes) -> None:
    setup_qbo(api, sandboxes, mode="inventory_adjustments")
    answer = ok(api.call("GET", "/reconciliation"))
    assert (answer["mode"], answer["accounts"]) == ("inventory_adjustments", [])
    items = {i["item_id"]: i for i in answer["items"]}
    assert set(items) <= set(QBO_PARTS.values()) and items
    # nothing received in Partsemble yet: QBO's quantity is the difference, all of it QBO's own stock
    for item in items.values():
        assert Decimal(item["on_hand"]) == 0
        if item["provider_quantity"] is not None:
            assert Decimal(item["difference"]) == Decimal(item["provider_quantity"])
            assert Decimal(item["starting_quantity"]) == Decimal(item["provider_quantity"])
            assert Decimal(item["unexplained"]) == 0
    assert len(answer["notes"]) == 2 and "built_without_stock" in answer["notes"][1]
    assert any(Decimal(i["difference"] or 0) for i in items.values())
    assert answer["status"] == "explained"  # the demo company's stock before Partsemble: no discrepancy
    # QuickBooks tells an item's quantity on hand now only: a past date is refused, not answered with today's
    past = api.call("GET", "/reconciliation?as_of=2026-11-15")
    assert past.status == 400 and past.json()["details"][0]["field"] == "query.as_of", past.body
    assert ok(api.call("GET", f"/reconciliation?as_of={answer['as_of']}"))["items"] == answer["items"]


def test_units_a_build_used_after_a_late_sale_took_them_are_named(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """A sale dated before a build but pulled after it takes the build's brackets first: QBO counted them
    out with the build's adjustment and again with the invoice, and the reconciliation says so."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    bracket = parts["bracket"]
    # from 2 November: after the demo company's own sales
    body = {"enabled": True, "start_date": "2026-11-02", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))
    line = {"product_id": bracket, "quantity": "2", "unit_cost": "3.00"}
    record_receipt(api, "2026-11-02T09:00:00-08:00", line)
    components = [{"product_id": bracket, "quantity_per_unit": "2"}]
    build = {"product_id": parts["shelf"], "quantity": "1", "built_at": "2026-11-06T09:00:00-08:00"}
    ok(api.call("POST", "/builds", json_body={**build, "components": components}), 201)
    Poller(aws).drain()
    before = {
        i["Id"]: Decimal(str(i.get("QtyOnHand", 0)))
        for i in sandboxes.qbo.list_records(DEMO_REALM_ID, "Item")
    }
    sandboxes.qbo.create_record(  # invoiced on 4 Nov, entered in QBO after the build was recorded
        DEMO_REALM_ID,
        "Invoice",
        {
            "DocNumber": "LATE-1",
            "TxnDate": "2026-11-04",
            "CustomerRef": {"value": HARBOR},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "5"}, "Qty": 2, "UnitPrice": "9.00"},
                }
            ],
        },
    )
    api.pull_sales()
    item = next(i for i in ok(api.call("GET", "/reconciliation"))["items"] if i["item_id"] == "5")
    assert Decimal(item["on_hand"]) == 0 and Decimal(item["built_without_stock"]) == 2
    assert Decimal(item["sold_without_stock"]) == 0  # the sale took the received lot
    # QBO: its quantity before the invoice, less the 2 invoiced; Partsemble: none on hand
    assert Decimal(item["provider_quantity"]) == before["5"] - 2
    starting = before["5"] - 2 + 2  # QBO's own quantity before Partsemble: the receipt and the build cancel
    assert Decimal(item["starting_quantity"]) == starting
    assert Decimal(item["difference"]) == starting - Decimal(item["built_without_stock"])
    assert Decimal(item["unexplained"]) == 0


def test_units_of_a_credit_written_off_are_named_as_quickbooks_counted_them_back_in(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """A credit memo whose note says the goods are scrapped: QuickBooks puts its units back in stock,
    Partsemble writes them off, and the reconciliation names them, one that matched a sale and one that
    matched none alike, so the item's difference is explained to the unit."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    body = {"enabled": True, "start_date": "2026-11-02", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))
    line = {"product_id": parts["bracket"], "quantity": "5", "unit_cost": "3.00"}
    receipt = {"received_at": "2026-11-02T09:00:00-08:00", "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=receipt), 201)
    Poller(aws).drain()
    starting = Decimal(str(sandboxes.qbo.get_record(DEMO_REALM_ID, "Item", "5")["QtyOnHand"])) - 5

    def document(
        entity: str, number: str, day: str, quantity: int, note: str = "", customer: str = HARBOR
    ) -> None:
        detail = {"ItemRef": {"value": "5"}, "Qty": quantity, "UnitPrice": "9.00"}
        record = {
            "DocNumber": number,
            "TxnDate": day,
            "CustomerRef": {"value": customer},
            "PrivateNote": note,
        }
        line = {"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}
        sandboxes.qbo.create_record(DEMO_REALM_ID, entity, {**record, "Line": [line]})

    document("Invoice", "WO-1", "2026-11-03", 3)
    document("CreditMemo", "WO-C1", "2026-11-04", 2, "damaged in transit: scrapped")  # of WO-1
    document("CreditMemo", "WO-C2", "2026-11-05", 4, "not restockable")  # beyond what was sold
    # a customer who bought nothing: the credit matches no sale, and its units go to no lot (scrapped)
    document("CreditMemo", "WO-C3", "2026-11-05", 1, "scrapped", customer=MAPLE)
    api.pull_sales()

    item = next(i for i in ok(api.call("GET", "/reconciliation"))["items"] if i["item_id"] == "5")
    assert Decimal(item["on_hand"]) == 2  # 5 received, 3 sold; the credits' units are written off
    assert Decimal(item["provider_quantity"]) == starting + 5 - 3 + 2 + 4 + 1  # QBO counted all in
    assert Decimal(item["written_off_credits"]) == 7
    assert Decimal(item["sold_without_stock"]) == 0 and Decimal(item["built_without_stock"]) == 0
    assert Decimal(item["difference"]) == starting + Decimal(item["written_off_credits"])
    assert Decimal(item["starting_quantity"]) == starting and Decimal(item["unexplained"]) == 0


def test_starting_quantity_is_quickbooks_own_stock_before_the_sales_partsemble_tracks(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """A company with stock of its own: the sales Partsemble tracks had taken units out of QuickBooks before
    its first adjustment of the item, one read by the last pull and one entered after it, so the starting
    quantity adds both back; the books check calls that stock explained, every day, and an adjustment made
    in QuickBooks afterwards a discrepancy."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    own = Decimal(str(sandboxes.qbo.get_record(DEMO_REALM_ID, "Item", "5")["QtyOnHand"]))
    assert own > 5
    body = {"enabled": True, "start_date": "2026-11-02", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))

    def invoice(number: str, day: str, quantity: int) -> None:
        detail = {"ItemRef": {"value": "5"}, "Qty": quantity, "UnitPrice": "9.00"}
        line = {"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}
        record = {"DocNumber": number, "TxnDate": day, "CustomerRef": {"value": HARBOR}, "Line": [line]}
        sandboxes.qbo.create_record(DEMO_REALM_ID, "Invoice", record)

    invoice("OWN-1", "2026-11-03", 3)
    api.pull_sales()  # no stock in Partsemble: sold without stock
    invoice("OWN-2", "2026-11-04", 2)  # entered after the pull: QuickBooks has counted it out, unread
    receipt = {"product_id": parts["bracket"], "quantity": "4", "unit_cost": "3.00"}
    record_receipt(api, "2026-11-04T09:00:00-08:00", receipt)
    Poller(aws).drain()  # the first adjustment of item 5: QBO held own - 5 when it was read
    assert Decimal(str(sandboxes.qbo.get_record(DEMO_REALM_ID, "Item", "5")["QtyOnHand"])) == own - 5 + 4

    def item_5() -> tuple[dict[str, Any], str]:
        answer = ok(api.call("GET", "/reconciliation"))
        return next(i for i in answer["items"] if i["item_id"] == "5"), answer["status"]

    item, status = item_5()
    assert Decimal(item["starting_quantity"]) == own
    # until the next pull reads OWN-2, its 2 units are QuickBooks' alone: named, not Partsemble's stock
    assert (Decimal(item["unexplained"]), status) == (-2, "discrepancy")
    api.pull_sales()  # OWN-2 takes 2 of the 4 received
    item, status = item_5()
    assert Decimal(item["starting_quantity"]) == own
    assert (Decimal(item["on_hand"]), Decimal(item["sold_without_stock"])) == (2, 3)
    assert Decimal(item["difference"]) == own - 3 and Decimal(item["unexplained"]) == 0
    assert status == "explained"
    assert not daily_check(now=datetime(2026, 11, 5, 18, tzinfo=UTC))

    # someone counts one more in QuickBooks by hand: the starting quantity stands, the unit is unexplained
    adjustment = {"ItemRef": {"value": "5"}, "QtyDiff": 1}
    sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "InventoryAdjustment",
        {
            "TxnDate": "2026-11-05",
            "AdjustAccountRef": {"value": "3"},
            "Line": [{"DetailType": "ItemAdjustmentLineDetail", "ItemAdjustmentLineDetail": adjustment}],
        },
    )
    item, status = item_5()
    assert Decimal(item["starting_quantity"]) == own and Decimal(item["unexplained"]) == 1
    assert status == "discrepancy"
    assert daily_check(now=datetime(2026, 11, 6, 18, tzinfo=UTC))


def test_a_sale_entered_while_the_starting_quantity_is_read_is_not_counted_twice(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invoice entered in QuickBooks just after the item's quantity on hand was read (before the sales
    changes are read) was not in that quantity: the quantities are read again between two reads of the
    changes that agree, so the starting quantity is QuickBooks' own stock and nothing is left unexplained."""
    from shared.providers.qbo.client import QboProvider

    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    own = Decimal(str(sandboxes.qbo.get_record(DEMO_REALM_ID, "Item", "5")["QtyOnHand"]))
    body = {"enabled": True, "start_date": "2026-11-02", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))
    api.pull_sales()
    read_items = QboProvider.items
    entered: list[str] = []

    def items_then_a_sale(self: QboProvider, session: Any, since: str | None) -> Any:
        found = read_items(self, session, since)
        if not entered:  # entered once, just after the first read of the quantities
            detail = {"ItemRef": {"value": "5"}, "Qty": 4, "UnitPrice": "9.00"}
            line = {"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}
            invoice = {"DocNumber": "MID-1", "TxnDate": "2026-11-04", "CustomerRef": {"value": HARBOR},
                       "Line": [line]}  # fmt: skip
            entered.append(sandboxes.qbo.create_record(DEMO_REALM_ID, "Invoice", invoice)["Id"])
        return found

    monkeypatch.setattr(QboProvider, "items", items_then_a_sale)
    receipt = {"product_id": parts["bracket"], "quantity": "10", "unit_cost": "3.00"}
    record_receipt(api, "2026-11-04T09:00:00-08:00", receipt)
    Poller(aws).drain()
    api.pull_sales()  # MID-1 takes 4 of the 10 received
    item = next(i for i in ok(api.call("GET", "/reconciliation"))["items"] if i["item_id"] == "5")
    assert entered and Decimal(item["starting_quantity"]) == own
    assert Decimal(item["provider_quantity"]) == own + 10 - 4 and Decimal(item["on_hand"]) == 6
    assert Decimal(item["unexplained"]) == 0


def test_after_a_switch_of_company_the_stock_adjusted_into_the_one_before_is_named_not_unexplained(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """Ten Wall Brackets adjusted into the first company; then a switch to a second company that holds 50 of
    its own and a receipt of 5 there: its QtyOnHand is 55, Partsemble holds 15, and the 10 are named as held
    by Partsemble only (in the company before), with nothing unexplained."""
    from tests.integration.test_disconnect import _switch_to_a_company_with_the_demo_chart, account_ids

    bracket = setup_qbo(api, sandboxes, mode="inventory_adjustments")["bracket"]
    receipt = {"product_id": bracket, "quantity": "10", "unit_cost": "3.00"}
    record_receipt(api, "2026-11-04T09:00:00-08:00", receipt)
    Poller(aws).drain()
    second = _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    chart = account_ids(sandboxes.qbo, second.realm_id)
    item = sandboxes.qbo.create_record(
        second.realm_id,
        "Item",
        {"Name": "Wall Bracket 20mm", "Sku": "FG-WB-20", "Type": "Inventory", "TrackQtyOnHand": True,
         "QtyOnHand": 50, "InvStartDate": "2026-01-01",
         "IncomeAccountRef": {"value": chart["Sales of Product Income"]},
         "ExpenseAccountRef": {"value": chart["Cost of Goods Sold"]},
         "AssetAccountRef": {"value": chart["Inventory Asset"]}},
    )  # fmt: skip
    ok(api.call("POST", "/integrations/qbo/sync/items"))
    ok(
        api.call(
            "POST", "/products/import-from-provider", json_body={"provider": "qbo", "item_ids": [item["Id"]]}
        )
    )
    accounts = {**QBO_ACCOUNTS, "adjustment": "3"}
    settings = {"mode": "inventory_adjustments", "accounts": accounts}
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=settings))
    receipt = {"product_id": bracket, "quantity": "5", "unit_cost": "3.00"}
    record_receipt(api, "2026-11-05T09:00:00-08:00", receipt)
    Poller(aws).drain()
    answer = ok(api.call("GET", "/reconciliation"))
    found = next(i for i in answer["items"] if i["item_id"] == item["Id"])
    assert Decimal(found["provider_quantity"]) == 55 and Decimal(found["on_hand"]) == 15, found
    assert Decimal(found["starting_quantity"]) == 50 and Decimal(found["not_in_quickbooks"]) == 10
    assert Decimal(found["unexplained"]) == 0 and answer["status"] == "explained", answer


def test_an_item_adjusted_before_starting_quantities_were_recorded_gets_none_not_a_wrong_one(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """An item Partsemble adjusted before this was recorded (its row gone, as data from before): its
    QtyOnHand holds Partsemble's units too, so a later first reading would count them as QuickBooks' own;
    it is left not known instead."""
    from shared.aws import table
    from shared.store.keys import org_pk, starting_quantity_sk

    bracket = setup_qbo(api, sandboxes, mode="inventory_adjustments")["bracket"]
    for quantity in ("10", "1"):
        line = {"product_id": bracket, "quantity": quantity, "unit_cost": "3.00"}
        record_receipt(api, "2026-11-04T09:00:00-08:00", line)
        Poller(aws).drain()
        if quantity == "10":  # recorded before this change: no row
            key = {"pk": org_pk("org-a"), "sk": starting_quantity_sk("qbo", DEMO_REALM_ID, "5")}
            table().delete_item(Key=key)
    item = next(i for i in ok(api.call("GET", "/reconciliation"))["items"] if i["item_id"] == "5")
    assert item["starting_quantity"] is None, item


def test_the_first_adjustment_of_an_item_waits_for_a_pull_that_has_not_caught_up(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sales tracking on and its first pull not done: the sales since the start date would be read by query,
    page after page, inside the export; past a few pages the export waits (retried) for the pull, and once
    the pull has caught up it posts with the starting quantity read right."""
    from shared.contracts import ExportJob
    from shared.services import exports, starting_quantities

    bracket = setup_qbo(api, sandboxes, mode="inventory_adjustments")["bracket"]
    own = Decimal(str(sandboxes.qbo.get_record(DEMO_REALM_ID, "Item", "5")["QtyOnHand"]))
    body = {"enabled": True, "start_date": "2026-11-02", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))
    monkeypatch.setattr(starting_quantities, "PAGES", 0)  # as if the history were longer than the budget
    monkeypatch.setattr(starting_quantities, "ASKS", 0)
    line = {"product_id": bracket, "quantity": "10", "unit_cost": "3.00"}
    view = ok(
        api.call(
            "POST", "/receipts", json_body={"received_at": "2026-11-04T09:00:00-08:00", "lines": [line]}
        ),
        201,
    )
    Poller(aws).drain()
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "pending" and "has not caught up" in export["last_error"], export
    api.pull_sales()  # caught up: what changed since is read in one answer
    job = ExportJob(organisation_id="org-a", kind="receipt", record_id=view["receipt"]["receipt_id"])
    assert exports.export_one(job, receive_count=2).status == "posted"
    item = next(i for i in ok(api.call("GET", "/reconciliation"))["items"] if i["item_id"] == "5")
    assert Decimal(item["starting_quantity"]) == own and Decimal(item["unexplained"]) == 0, item


def test_a_sale_deleted_in_a_month_without_pulls_is_not_counted_in_the_starting_quantity(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last pull was a month ago, and a sale it read has been deleted in QuickBooks since: the first
    adjustment of its item reads the changes past CDC's window by query, which names no deletion, so it asks
    for the item's sales it holds by id (an invoice and a sales receipt: two asks), adds nothing back for the
    deleted one, and reads the same answer twice though QuickBooks' clock moves between them."""
    bracket = setup_qbo(api, sandboxes, mode="inventory_adjustments")["bracket"]
    qbo, now = sandboxes.qbo, datetime.now(UTC)
    own = Decimal(str(qbo.get_record(DEMO_REALM_ID, "Item", "5")["QtyOnHand"]))
    month_ago = now - timedelta(days=31)
    qbo.clock.set(month_ago)
    body = {"enabled": True, "start_date": month_ago.date().isoformat(), "time_zone": "UTC"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))
    detail = {"ItemRef": {"value": "5"}, "Qty": 3, "UnitPrice": "9.00"}
    line = {"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}
    record = {"DocNumber": "GAP-1", "TxnDate": month_ago.date().isoformat(), "CustomerRef": {"value": HARBOR}}
    sale = qbo.create_record(DEMO_REALM_ID, "Invoice", {**record, "Line": [line]})
    kept = {**line, "SalesItemLineDetail": {**detail, "Qty": 1}}
    qbo.create_record(DEMO_REALM_ID, "SalesReceipt", {**record, "DocNumber": "GAP-2", "Line": [kept]})
    api.pull_sales()  # GAP-1 and GAP-2 held: sold without stock
    qbo.clock.advance(3600)
    qbo.delete_record(DEMO_REALM_ID, "Invoice", sale["Id"])  # QuickBooks has its 3 units back
    qbo.clock.set(now)
    ticks = itertools.count()
    monkeypatch.setattr(qbo.clock, "now", lambda: now + timedelta(milliseconds=next(ticks)))

    receipt = {"product_id": bracket, "quantity": "4", "unit_cost": "3.00"}
    record_receipt(api, now.isoformat(), receipt)
    Poller(aws).drain()  # the first adjustment of item 5, a month after the last pull
    assert Decimal(str(qbo.get_record(DEMO_REALM_ID, "Item", "5")["QtyOnHand"])) == own - 1 + 4
    api.pull_sales()
    answer = ok(api.call("GET", "/reconciliation"))
    item = next(i for i in answer["items"] if i["item_id"] == "5")
    assert Decimal(item["starting_quantity"]) == own and Decimal(item["unexplained"]) == 0, item
    assert Decimal(item["on_hand"]) == 4 and Decimal(item["sold_without_stock"]) == 1, item


def test_a_kit_sold_as_a_plain_quickbooks_item_is_named_with_its_sales(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """A kit linked to a plain inventory item (its bundle made inactive in QuickBooks, an item of its SKU
    made instead): QuickBooks counts its sales out of that item, Partsemble out of the kit's components.
    The books check shows the kit's item and says which sales moved it, so both differences are explained."""
    parts = setup_qbo(api, sandboxes, mode="inventory_adjustments")
    bundle = {"provider": "qbo", "item_ids": [BRACKET_BUNDLE]}  # its other part (item 6) comes along
    imported = ok(api.call("POST", "/products/import-from-provider", json_body=bundle))
    (kit,) = [p for p in imported["created"] if p["type"] == "kit"]
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", BRACKET_BUNDLE, {"Active": False})
    plain = sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "Item",
        {
            "Name": "Bracket Pair",
            "Type": "Inventory",
            "Sku": kit["sku"],
            "TrackQtyOnHand": True,
            "QtyOnHand": 0,
            "InvStartDate": "2026-01-01",
            "IncomeAccountRef": {"value": INCOME},
            "ExpenseAccountRef": {"value": COGS},
            "AssetAccountRef": {"value": FINISHED},
        },
    )
    synced = ok(api.call("POST", "/integrations/qbo/sync/items"))
    assert {(m["product_id"], m["item_id"]) for m in synced["matched"]} == {(kit["product_id"], plain["Id"])}
    # the sync links it, and says at once that QuickBooks counts the kit apart
    (warning,) = synced["warnings"]
    assert (warning["product_id"], warning["item_id"]) == (kit["product_id"], plain["Id"])
    assert "no bundle" in warning["reason"] and "make it a bundle" in warning["reason"]
    body = {"enabled": True, "start_date": "2026-11-02", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))
    line = {"product_id": parts["bracket"], "quantity": "5", "unit_cost": "3.00"}
    record_receipt(api, "2026-11-02T09:00:00-08:00", line)
    Poller(aws).drain()
    starting = Decimal(str(sandboxes.qbo.get_record(DEMO_REALM_ID, "Item", "5")["QtyOnHand"])) - 5
    detail = {"ItemRef": {"value": plain["Id"]}, "Qty": 2, "UnitPrice": "10.00"}
    invoice = {
        "DocNumber": "KIT-1",
        "TxnDate": "2026-11-03",
        "CustomerRef": {"value": HARBOR},
        "Line": [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}],
    }
    sandboxes.qbo.create_record(DEMO_REALM_ID, "Invoice", invoice)
    credit = {**invoice, "DocNumber": "KIT-C1", "TxnDate": "2026-11-04"}  # one kit back, restocked
    credit["Line"] = [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {**detail, "Qty": 1}}]
    sandboxes.qbo.create_record(DEMO_REALM_ID, "CreditMemo", credit)
    api.pull_sales()

    answer = ok(api.call("GET", "/reconciliation"))
    items = {i["item_id"]: i for i in answer["items"]}
    # QuickBooks counted the net kit sold out of the kit's own item, Partsemble a bracket out of its lots
    sold = items[plain["Id"]]
    assert sold["product_id"] == kit["product_id"]
    assert (Decimal(sold["provider_quantity"]), Decimal(sold["on_hand"])) == (-1, 0)
    assert Decimal(sold["kit_sales"]) == -1 and Decimal(sold["unexplained"]) == 0
    assert Decimal(sold["not_in_quickbooks"]) == 0 and Decimal(sold["written_off_credits"]) == 0
    bracket = items["5"]
    assert Decimal(bracket["on_hand"]) == 4 and Decimal(bracket["kit_sales"]) == 1
    assert Decimal(bracket["difference"]) == starting + 1
    assert Decimal(bracket["not_in_quickbooks"]) == 0 and Decimal(bracket["unexplained"]) == 0
    # none of the other part in Partsemble: sold without stock, which QuickBooks did not count out either
    other = items["6"]
    assert (Decimal(other["sold_without_stock"]), Decimal(other["kit_sales"])) == (1, 1)
    assert Decimal(other["not_in_quickbooks"]) == 0 and Decimal(other["unexplained"]) == 0
    (named,) = answer["kits"]
    assert (named["product_id"], named["item_id"], Decimal(named["quantity"])) == (
        kit["product_id"],
        plain["Id"],
        1,
    )
    assert named["documents"] == ["invoice KIT-1", "credit note KIT-C1"]
    (note,) = [n for n in answer["notes"] if kit["name"] in n]
    assert "(1 so far; invoice KIT-1; credit note KIT-C1)" in note and "bundle" in note, note
    assert answer["status"] == "explained"
