"""Receipts with QA rejections and multi-level builds exported to both sandboxes in each mode: the right
documents, accounts, amounts and dates, one provider write per export, and the export list over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect

D = Decimal
RECEIVED = "2026-11-02T09:00:00-08:00"
BUILT = "2026-11-03T09:00:00-08:00"
FINISHED = "2026-11-04T09:00:00-08:00"
QBO_API = f"/v3/company/{DEMO_REALM_ID}"
QBO_ACCOUNTS = {
    "build_debit": "10",
    "build_credit": "11",
    "receiving_debit": "1",
    "receiving_credit": "5",
    "waste": "7",
    "cogs": "2",
}  # Finished Goods, Raw Materials, Inventory Asset, Receiving Clearing, ...
XERO_ACCOUNTS = {
    "build_debit": "632",
    "build_credit": "631",
    "receiving_debit": "630",
    "receiving_credit": "820",
    "waste": "480",
    "cogs": "310",
}  # by account code
QBO_PARTS = {"blank": "1", "bolt": "2", "bracket": "5", "shelf": "7"}  # QBO item ids
XERO_PARTS = {
    "blank": "WIDGET-10",
    "bolt": "BOLT-M8",
    "bracket": "BRACKET-S",
    "shelf": "PANEL-A",
}  # item codes


pytestmark = pytest.mark.usefixtures("no_real_sleep")


def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, response.body
    return response.json()


def setup_qbo(api: Api, sandboxes: Sandboxes, mode: str = "journals") -> dict[str, str]:
    """Connected, catalog synced, the parts imported as products; returns product ids by part name."""
    connect(api, sandboxes, "qbo")
    ok(api.call("POST", "/integrations/qbo/sync/accounts"))
    ok(api.call("POST", "/integrations/qbo/sync/items"))
    imported = ok(
        api.call(
            "POST",
            "/products/import-from-provider",
            json_body={"provider": "qbo", "item_ids": list(QBO_PARTS.values())},
        )
    )
    accounts = {**QBO_ACCOUNTS, **({"adjustment": "3"} if mode == "inventory_adjustments" else {})}
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body={"mode": mode, "accounts": accounts}))
    by_item = {p["provider_links"]["qbo"]: p["product_id"] for p in imported["created"]}
    return {part: by_item[item] for part, item in QBO_PARTS.items()}


def setup_xero(api: Api, sandboxes: Sandboxes) -> dict[str, str]:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    chart = {
        a["code"]: a["account_id"]
        for a in ok(api.call("POST", "/integrations/xero/sync/accounts"))["accounts"]
    }
    ok(api.call("POST", "/integrations/xero/sync/items"))
    items = {i["sku"]: i["item_id"] for i in ok(api.call("GET", "/integrations/xero/items"))["items"]}
    imported = ok(
        api.call(
            "POST",
            "/products/import-from-provider",
            json_body={"provider": "xero", "item_ids": [items[c] for c in XERO_PARTS.values()]},
        )
    )
    accounts = {role: chart[code] for role, code in XERO_ACCOUNTS.items()}
    ok(
        api.call(
            "PUT", "/integrations/xero/export-settings", json_body={"mode": "journals", "accounts": accounts}
        )
    )
    by_sku = {p["sku"]: p["product_id"] for p in imported["created"]}
    return {part: by_sku[code] for part, code in XERO_PARTS.items()}


def bracket_build(parts: dict[str, str]) -> dict[str, Any]:
    """Four brackets built from a blank and two bolts each, on BUILT."""
    return {
        "product_id": parts["bracket"],
        "quantity": "4",
        "built_at": BUILT,
        "components": [
            {"product_id": parts["blank"], "quantity_per_unit": "1"},
            {"product_id": parts["bolt"], "quantity_per_unit": "2"},
        ],
    }


def record_season(api: Api, parts: dict[str, str]) -> dict[str, str]:
    """A receipt with QA rejections, then a bracket built from it and a shelf built from brackets; returns
    the record id of each export kind (receipt, rejection, bracket, shelf)."""
    receipt = ok(
        api.call(
            "POST",
            "/receipts",
            json_body={
                "received_at": RECEIVED,
                "supplier_id": "Northside",
                "lines": [
                    {
                        "product_id": parts["blank"],
                        "quantity": "10",
                        "rejected": "2",
                        "unit_cost": "1.20",
                        "lot_code": "AL-1",
                    },
                    {"product_id": parts["bolt"], "quantity": "100", "unit_cost": "0.08"},
                ],
            },
        ),
        201,
    )
    bracket = ok(
        api.call(
            "POST",
            "/builds",
            json_body=bracket_build(parts),
        ),
        201,
    )
    shelf = ok(
        api.call(
            "POST",
            "/builds",
            json_body={
                "product_id": parts["shelf"],
                "quantity": "1",
                "built_at": FINISHED,
                "components": [
                    {"product_id": parts["bracket"], "quantity_per_unit": "2"},
                    {"product_id": parts["bolt"], "quantity_per_unit": "4"},
                ],
            },
        ),
        201,
    )
    assert D(bracket["cost"]) == D("5.44") and D(shelf["cost"]) == D("3.04")  # 2 x 1.36 + 4 x 0.08
    return {
        "receipt": receipt["receipt"]["receipt_id"],
        "rejection": receipt["rejection"]["rejection_id"],
        "bracket": bracket["build"]["build_id"],
        "shelf": shelf["build"]["build_id"],
    }


def exports_by_record(api: Api) -> dict[str, dict[str, Any]]:
    return {e["record_id"]: e for e in ok(api.call("GET", "/exports"))["items"]}


def qbo_lines(record: dict[str, Any]) -> list[tuple[str, str, Decimal]]:
    return [
        (
            line["JournalEntryLineDetail"]["AccountRef"]["value"],
            line["JournalEntryLineDetail"]["PostingType"],
            D(str(line["Amount"])),
        )
        for line in record["Line"]
    ]


def test_qbo_journals_for_receipt_rejection_and_multi_level_builds(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    ids = record_season(api, setup_qbo(api, sandboxes))
    posts_before = sandboxes.qbo.call_count("POST", f"{QBO_API}/journalentry")
    queries_before = sandboxes.qbo.call_count("GET", f"{QBO_API}/query")
    Poller(aws).drain()

    exported = exports_by_record(api)
    assert {exported[r]["status"] for r in ids.values()} == {"posted"}
    assert sandboxes.qbo.call_count("POST", f"{QBO_API}/journalentry") - posts_before == 4  # one write each
    assert sandboxes.qbo.call_count("GET", f"{QBO_API}/query") == queries_before  # no doubt, so no search
    journals = {j["Id"]: j for j in sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")}
    by_kind = {kind: journals[exported[record_id]["document_id"]] for kind, record_id in ids.items()}
    # each account moves by its change: the shelf's brackets (2.72) stay in finished goods, its bolts (0.32)
    # come out of inventory, where the receipt put them
    assert {kind: qbo_lines(document) for kind, document in by_kind.items()} == {
        "receipt": [("1", "Debit", D("17.60")), ("5", "Credit", D("17.60"))],
        "rejection": [("7", "Debit", D("2.40")), ("5", "Credit", D("2.40"))],
        "bracket": [("10", "Debit", D("5.44")), ("1", "Credit", D("5.44"))],
        "shelf": [("10", "Debit", D("0.32")), ("1", "Credit", D("0.32"))],
    }
    assert [by_kind[k]["TxnDate"] for k in ("receipt", "bracket", "shelf")] == [
        "2026-11-02",
        "2026-11-03",
        "2026-11-04",
    ]
    for kind, record_id in ids.items():
        export = exported[record_id]
        document = by_kind[kind]
        assert document["DocNumber"] == export["export_id"] and export["export_id"] in document["PrivateNote"]
        assert document["CurrencyRef"]["value"] == "USD"
        assert export["document_link"].endswith(f"/app/journal?txnId={document['Id']}")
        assert (export["attempts"], export["last_error"], export["adopted"]) == (1, None, False)


@pytest.mark.parametrize("mode", ["journals", "inventory_adjustments"])
def test_a_record_is_dated_where_the_organisation_is_at_a_month_end(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, mode: str
) -> None:
    """A receipt made on 30 November at 20:00 in Los Angeles and sent in UTC (1 December 04:00, as a
    browser's toISOString gives it) is in November's books there, as that day's sales are; an organisation
    with no time zone set has each time dated as it was given."""
    parts = setup_qbo(api, sandboxes, mode=mode)
    line = {"product_id": parts["bolt"], "quantity": "10", "unit_cost": "2.00"}
    at = {"R-NO-ZONE": "2026-11-30T20:00:00-08:00", "R-LATE": "2026-12-01T04:00:00Z"}
    ok(api.call("POST", "/receipts", json_body={"receipt_id": "R-NO-ZONE", "received_at": at["R-NO-ZONE"],
                                                 "lines": [line]}), 201)  # fmt: skip
    Poller(aws).drain()
    tracking = {"enabled": True, "start_date": "2026-11-01", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    ok(api.call("POST", "/receipts", json_body={"receipt_id": "R-LATE", "received_at": at["R-LATE"],
                                                 "lines": [line]}), 201)  # fmt: skip
    Poller(aws).drain()

    exported = exports_by_record(api)
    kind = "JournalEntry" if mode == "journals" else "InventoryAdjustment"
    documents = {d["Id"]: d for d in sandboxes.qbo.list_records(DEMO_REALM_ID, kind)}
    assert {r: documents[exported[r]["document_id"]]["TxnDate"] for r in at} == {
        "R-NO-ZONE": "2026-11-30",
        "R-LATE": "2026-11-30",
    }
    # the zone dates what is planned: it can't change now (a past date's check would cut other days)
    tracking["time_zone"] = "Pacific/Auckland"
    moved = api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking)
    assert moved.status == 400 and moved.json()["details"][0]["field"] == "time_zone", moved.body
    if mode == "journals":  # the books at the end of 30 November hold both, as the stock ledger does
        books = ok(api.call("GET", "/reconciliation?as_of=2026-11-30"))
        (inventory,) = [a for a in books["accounts"] if a["account_id"] == QBO_ACCOUNTS["receiving_debit"]]
        assert (D(inventory["posted"]), D(inventory["subledger"])) == (D("40.00"), D("40.00")), inventory


def test_a_xero_organisation_in_any_of_xeros_time_zones_has_its_records_dated_there(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """An organisation set in Xero to Guadalajara, Mexico City (Timezone CENTRALSTANDARDTIME(MEXICO), one of
    the spec's TimeZone values) tracks its sales in America/Mexico_City: a receipt made on 30 November at
    22:00 there and sent in UTC (1 December 04:00) is in November's books, not December's."""
    sandboxes.xero.set_timezone(AU_TENANT_ID, "CENTRALSTANDARDTIME(MEXICO)")
    parts = setup_xero(api, sandboxes)
    tracking_body = {"enabled": True, "start_date": "2026-11-01"}
    tracking = ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=tracking_body))
    assert tracking["time_zone"] == "America/Mexico_City"
    line = {"product_id": parts["bolt"], "quantity": "10", "unit_cost": "2.00"}
    body = {"receipt_id": "R-MX", "received_at": "2026-12-01T04:00:00Z", "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()

    journals = {j["ManualJournalID"]: j for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")}
    posted = journals[exports_by_record(api)["R-MX"]["document_id"]]
    assert posted["Date"] == "/Date(1795996800000+0000)/"  # 30 Nov 2026


def test_a_record_posted_before_a_time_zone_was_set_keeps_its_day_in_the_books_check(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """Sent in UTC before any time zone was set, a receipt is posted dated 30 November; sales tracking set
    in Auckland (+13) later would date it 1 December now, but the books check cuts it where it was posted."""
    parts = setup_qbo(api, sandboxes)
    line = {"product_id": parts["bolt"], "quantity": "10", "unit_cost": "2.00"}
    body = {"receipt_id": "R-UTC", "received_at": "2026-11-30T12:00:00Z", "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()
    assert exports_by_record(api)["R-UTC"]["status"] == "posted"
    tracking = {"enabled": True, "start_date": "2026-11-01", "time_zone": "Pacific/Auckland"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    books = ok(api.call("GET", "/reconciliation?as_of=2026-11-30"))
    (inventory,) = [a for a in books["accounts"] if a["account_id"] == QBO_ACCOUNTS["receiving_debit"]]
    assert (D(inventory["posted"]), D(inventory["subledger"]), D(inventory["unexplained"])) == (
        D("20.00"), D("20.00"), 0
    ), inventory  # fmt: skip


def test_qbo_inventory_mode_adjusts_quantities_by_item(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    ids = record_season(api, setup_qbo(api, sandboxes, mode="inventory_adjustments"))
    Poller(aws).drain()

    exported = exports_by_record(api)
    adjustments = {a["Id"]: a for a in sandboxes.qbo.list_records(DEMO_REALM_ID, "InventoryAdjustment")}
    moved = {
        kind: [
            (
                line["ItemAdjustmentLineDetail"]["ItemRef"]["value"],
                D(str(line["ItemAdjustmentLineDetail"]["QtyDiff"])),
            )
            for line in adjustments[exported[record_id]["document_id"]]["Line"]
        ]
        for kind, record_id in ids.items()
    }
    assert moved == {
        "receipt": [("1", 10), ("2", 100)],
        "rejection": [("1", -2)],
        "bracket": [("1", -4), ("2", -8), ("5", 4)],
        "shelf": [("5", -2), ("2", -4), ("7", 1)],
    }
    rejection = adjustments[exported[ids["rejection"]]["document_id"]]
    assert rejection["AdjustAccountRef"]["value"] == "7" and rejection["TxnDate"] == "2026-11-02"
    on_hand = {i["Id"]: i.get("QtyOnHand") for i in sandboxes.qbo.list_records(DEMO_REALM_ID, "Item")}
    assert [D(str(on_hand[i])) for i in ("1", "2", "5", "7")] == [
        400 + 10 - 2 - 4,
        2500 + 100 - 8 - 4,
        140 + 4 - 2,
        25 + 1,
    ]


def test_xero_manual_journals_balance_and_carry_the_marker(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    ids = record_season(api, setup_xero(api, sandboxes))
    Poller(aws).drain()

    exported = exports_by_record(api)
    journals = {j["ManualJournalID"]: j for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")}
    lines = {
        kind: [
            (line["AccountCode"], D(str(line["LineAmount"])))
            for line in journals[exported[record_id]["document_id"]]["JournalLines"]
        ]
        for kind, record_id in ids.items()
    }
    assert lines == {
        "receipt": [("630", D("17.60")), ("820", D("-17.60"))],
        "rejection": [("480", D("2.40")), ("820", D("-2.40"))],
        "bracket": [("632", D("5.44")), ("630", D("-5.44"))],
        "shelf": [("632", D("0.32")), ("630", D("-0.32"))],
    }
    bracket = journals[exported[ids["bracket"]]["document_id"]]["Narration"]
    assert ": 4 x BRACKET-S" in bracket, bracket  # the product by its SKU, as an accountant reads it
    for record_id in ids.values():
        export = exported[record_id]
        journal = journals[export["document_id"]]
        assert export["export_id"] in journal["Narration"] and journal["Status"] == "POSTED"
        assert (
            export["document_link"]
            == f"https://go.xero.com/Journal/View.aspx?invoiceID={journal['ManualJournalID']}"
        )
    assert (
        journals[exported[ids["shelf"]]["document_id"]]["Date"] == "/Date(1793750400000+0000)/"
    )  # 4 Nov 2026


def test_missing_export_settings_fail_with_the_reason(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    ok(api.call("POST", "/integrations/qbo/sync/items"))
    imported = ok(
        api.call("POST", "/products/import-from-provider", json_body={"provider": "qbo", "item_ids": ["2"]})
    )
    bolt = imported["created"][0]["product_id"]
    ok(
        api.call(
            "POST",
            "/receipts",
            json_body={
                "received_at": RECEIVED,
                "lines": [{"product_id": bolt, "quantity": "10", "unit_cost": "0.08"}],
            },
        ),
        201,
    )
    Poller(aws).drain()
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "failed"
    assert export["last_error"].startswith("no export settings for QuickBooks Online")
    assert sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry") == []


# ---- accounts payable on QBO -----------------------------------------------------------------------
PAYABLE, NORTHSIDE = "4", "1"  # the demo's Accounts Payable (A/P) account and Northside Metals Ltd vendor


def receive(api: Api, parts: dict[str, str], **supplier: str) -> Any:
    return api.call(
        "POST",
        "/receipts",
        json_body={
            "received_at": RECEIVED,
            **supplier,
            "lines": [
                {"product_id": parts["blank"], "quantity": "10", "rejected": "2", "unit_cost": "1.20"},
                {"product_id": parts["bolt"], "quantity": "100", "unit_cost": "0.08"},
            ],
        },
    )


def payables_to_ap(api: Api) -> None:
    accounts = {**QBO_ACCOUNTS, "receiving_credit": PAYABLE}
    ok(
        api.call(
            "PUT", "/integrations/qbo/export-settings", json_body={"mode": "journals", "accounts": accounts}
        )
    )


def test_qbo_receipt_on_accounts_payable_names_the_supplier_as_vendor(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    parts = setup_qbo(api, sandboxes)
    ok(api.call("POST", "/integrations/qbo/sync/suppliers"))
    payables_to_ap(api)
    recorded = ok(receive(api, parts, supplier_email="orders@northside-metals.test"), 201)
    assert recorded["receipt"]["supplier_id"] == NORTHSIDE
    assert recorded["rejection"]["supplier_id"] == NORTHSIDE
    Poller(aws).drain()

    exported = exports_by_record(api)
    journals = {j["Id"]: j for j in sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")}
    for record_id in (recorded["receipt"]["receipt_id"], recorded["rejection"]["rejection_id"]):
        assert exported[record_id]["status"] == "posted", exported[record_id]["last_error"]
        lines = [
            line["JournalEntryLineDetail"] for line in journals[exported[record_id]["document_id"]]["Line"]
        ]
        named = {d["AccountRef"]["value"]: d.get("Entity") for d in lines}
        assert named.pop(PAYABLE) == {
            "Type": "Vendor",
            "EntityRef": {"value": NORTHSIDE, "name": "Northside Metals Ltd"},
        }
        assert set(named.values()) == {None}  # only the A/P line carries a name
    receipt_journal = journals[exported[recorded["receipt"]["receipt_id"]]["document_id"]]
    assert qbo_lines(receipt_journal) == [("1", "Debit", D("17.60")), (PAYABLE, "Credit", D("17.60"))]


def test_a_receipt_recorded_while_quickbooks_is_disconnected_keeps_the_vendor_it_names(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """Receipts owed on QuickBooks' Accounts Payable, entered while QuickBooks is disconnected: the vendor
    named by email was dropped (no provider in use to read it from), the receipt was recorded without one,
    and after reconnecting its export failed for good ("has no supplier"), the books short of it. The last
    connected provider's synced vendors name it now, and one naming no vendor is refused as when connected."""
    parts = setup_qbo(api, sandboxes)
    ok(api.call("POST", "/integrations/qbo/sync/suppliers"))
    payables_to_ap(api)
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    recorded = ok(receive(api, parts, supplier_email="orders@northside-metals.test"), 201)
    assert recorded["receipt"]["supplier_id"] == NORTHSIDE
    refused = receive(api, parts)
    assert refused.status == 400 and refused.json()["details"][0]["field"] == "supplier_id", refused.body
    connect(api, sandboxes, "qbo")
    Poller(aws).drain()
    exported = exports_by_record(api)
    for record_id in (recorded["receipt"]["receipt_id"], recorded["rejection"]["rejection_id"]):
        assert exported[record_id]["status"] == "posted", exported[record_id]["last_error"]


@pytest.mark.parametrize(
    ("supplier", "why"),
    [
        ({}, "this receipt has no supplier"),
        (
            {"supplier_name": "Nobody Ltd"},
            "the supplier 'Nobody Ltd' of this receipt is not a QuickBooks Online vendor",
        ),
    ],
)
def test_qbo_receipt_on_accounts_payable_without_a_vendor_is_refused_when_recorded(
    api: Api, sandboxes: Sandboxes, supplier: dict[str, str], why: str
) -> None:
    parts = setup_qbo(api, sandboxes)
    ok(api.call("POST", "/integrations/qbo/sync/suppliers"))
    payables_to_ap(api)
    refused = receive(api, parts, **supplier)
    assert refused.status == 400, refused.body
    (detail,) = refused.json()["details"]
    assert detail["field"] == "supplier_id"
    assert detail["problem"] == (
        f"{why}, and '2000 Accounts Payable (A/P)' is Accounts Payable, where QuickBooks Online needs a "
        "vendor on every journal line: name a vendor synced from QuickBooks Online (supplier_id, "
        "supplier_email or supplier_name), or choose a receiving clearing account as the receiving credit "
        "account"
    )
    assert ok(api.call("GET", "/receipts"))["items"] == [] and ok(api.call("GET", "/exports"))["items"] == []


def test_qbo_export_to_accounts_payable_without_a_vendor_fails_with_the_reason(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    parts = setup_qbo(api, sandboxes)
    recorded = ok(receive(api, parts, supplier_name="Nobody Ltd"), 201)  # clearing account: fine to record
    payables_to_ap(api)  # ...but A/P by the time it is exported
    Poller(aws).drain()

    exported = exports_by_record(api)
    for record_id in (recorded["receipt"]["receipt_id"], recorded["rejection"]["rejection_id"]):
        assert exported[record_id]["status"] == "failed"
        assert (
            "is not a QuickBooks Online vendor, and '2000 Accounts Payable (A/P)' is Accounts Payable"
            in (exported[record_id]["last_error"])
        )
    assert "of the QA rejection of receipt" in exported[recorded["rejection"]["rejection_id"]]["last_error"]
    assert sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry") == []


def test_a_xero_403_on_the_export_path_marks_the_connection_expired_at_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """The organisation was disconnected in Xero: its 403 (AuthenticationUnsuccessful) on an export parks the
    export and marks the connection expired there and then, not at the next scheduled check."""
    parts = setup_xero(api, sandboxes)
    sandboxes.xero.disconnect_organisation(AU_TENANT_ID)
    record_season(api, parts)
    Poller(aws).drain()

    waiting = ok(api.call("GET", "/exports"))["items"]
    assert {e["status"] for e in waiting} == {"waiting"}
    xero = next(c for c in ok(api.call("GET", "/integrations")) if c["provider"] == "xero")
    assert xero["status"] == "expired"
    # the reason the connection was marked with, as its card shows it, said once for each export (not
    # "xero: xero: ...")
    reason = xero["last_error"]["detail"]
    assert reason.startswith("xero: ") and reason.count("xero: ") == 1, reason
    assert {e["last_error"] for e in waiting} == {f"waiting for the connection to be restored: {reason}"}
