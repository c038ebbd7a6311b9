"""Margins over HTTP against both sandboxes' demo books, checked against examples worked by hand: a credit,
a void, a deleted invoice, an edited quantity, a bundle and a foreign-currency invoice; and the download.

Stock is received through ``POST /receipts`` before the sales (1 July 2026); sales track from 1 August."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook

from infra.sandboxes.qbo_demo import (
    BRACKET_20,
    BRACKET_40,
    BRACKET_BUNDLE,
    CORNER_BRACE,
    DEMO_REALM_ID,
    SHELF_KIT,
)
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from shared.domain.catalog import Component, Product
from shared.store import catalog as catalog_store
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect

D = Decimal


pytestmark = pytest.mark.usefixtures("no_real_sleep")


def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, response.body
    return response.json()


def products_by_sku(api: Api, provider: str, item_ids: list[str]) -> dict[str, str]:
    ok(api.call("POST", f"/integrations/{provider}/sync/items"))
    ok(
        api.call(
            "POST", "/products/import-from-provider", json_body={"provider": provider, "item_ids": item_ids}
        )
    )
    return {p["sku"]: p["product_id"] for p in ok(api.call("GET", "/products"))["items"]}


def receive(api: Api, lots: list[tuple[str, str, str, str]]) -> dict[str, str]:
    """(name, product id, quantity, unit cost) per lot, each received on its own; name -> lot id."""
    names = {}
    for day, (name, product_id, quantity, unit_cost) in enumerate(lots, 1):
        view = ok(
            api.call(
                "POST",
                "/receipts",
                json_body={
                    "receipt_id": f"RCV-{name}",
                    "received_at": f"2026-07-{day:02d}T09:00:00Z",
                    "lines": [{"product_id": product_id, "quantity": quantity, "unit_cost": unit_cost}],
                },
            ),
            201,
        )
        names[name] = f"{view['receipt']['receipt_id']}/1"
    return names


def track_and_pull(api: Api, provider: str) -> None:
    ok(
        api.call(
            "PUT",
            f"/integrations/{provider}/sales-tracking",
            json_body={"enabled": True, "start_date": "2026-08-01"},
        )
    )
    api.pull_sales()


def figures(f: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal | None, Decimal | None]:
    return (
        D(f["revenue"]),
        D(f["cogs"]),
        None if f["margin"] is None else D(f["margin"]),
        None if f["margin_pct"] is None else D(f["margin_pct"]),
    )


def by_number(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["number"]: d for d in report["documents"]}


def lots_of(line: dict[str, Any], names: dict[str, str]) -> list[tuple[str, Decimal, Decimal]]:
    lot_names = {v: k for k, v in names.items()}
    return [(lot_names[lot["lot_id"]], D(lot["quantity"]), D(lot["cost"])) for lot in line["lots"]]


def test_qbo_margins_match_the_hand_worked_example(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20, BRACKET_40, SHELF_KIT, CORNER_BRACE, BRACKET_BUNDLE])
    lots = receive(
        api,
        [
            ("A", sku["FG-WB-20"], "50", "1.90"),
            ("B", sku["FG-WB-20"], "100", "2.00"),
            ("C", sku["FG-WB-40"], "50", "2.80"),
            ("D", sku["FG-SK-OAK"], "8", "16.00"),
            ("E", sku["FG-CB-01"], "80", "0.70"),
        ],
    )
    track_and_pull(api, "qbo")

    first = by_number(ok(api.call("GET", "/margins")))
    # 1001: 40 brackets from A (76.00); 100 corner braces, 80 from E (56.00) and 20 with no stock left
    corner = next(line for line in first["1001"]["lines"] if line["sku"] == "FG-CB-01")
    assert (D(corner["figures"]["uncosted"]), corner["figures"]["margin"]) == (D(20), None)
    assert first["1001"]["figures"]["margin"] is None and D(first["1001"]["figures"]["cogs"]) == D("132.00")
    # 1006: 60 brackets: the 2 left in A (after 40 + 10 sold, 4 back, 2 sold) and 58 from B
    assert lots_of(first["1006"]["lines"][0], lots) == [("A", D(2), D("3.80")), ("B", D(58), D("116.00"))]
    assert first["1004"]["status"] == "voided" and first["1004"]["lines"] == []
    unmapped = first["SR-2002"]["unmapped"]
    assert [(u["item"], D(u["amount"])) for u in unmapped] == [("9", D("12.00"))]  # Shop Supplies: no product

    # In QuickBooks: 1001 deleted, SR-2001 voided, 1006 edited from 60 to 70 brackets at 4.40
    qbo = sandboxes.qbo
    qbo.clock.advance(60)
    ids = {
        r["DocNumber"]: r["Id"]
        for e in ("Invoice", "SalesReceipt")
        for r in qbo.list_records(DEMO_REALM_ID, e)
    }
    qbo.delete_record(DEMO_REALM_ID, "Invoice", ids["1001"])
    qbo.void_record(DEMO_REALM_ID, "SalesReceipt", ids["SR-2001"])
    qbo.edit_record(
        DEMO_REALM_ID,
        "Invoice",
        ids["1006"],
        {
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": BRACKET_20}, "Qty": 70, "UnitPrice": "4.40"},
                }
            ]
        },
    )
    api.pull_sales()

    report = ok(api.call("GET", "/margins"))
    docs = by_number(report)
    assert "1001" not in docs and "1005" not in docs
    assert [e["number"] for e in report["excluded"]] == ["1001"]
    # 1002 (bundle of 10 = 10 x 20mm at 4.50 + 10 x 40mm at 6.75; and 5 x 40mm at 6.75):
    # revenue 45.00 + 67.50 + 33.75 = 146.25; COGS 10 x 1.90 (A) + 15 x 2.80 (C) = 61.00; 85.25 = 58.29 %
    assert figures(docs["1002"]["figures"]) == (D("146.25"), D("61.00"), D("85.25"), D("58.29"))
    bundle_20 = next(line for line in docs["1002"]["lines"] if line["sku"] == "FG-WB-20")
    assert lots_of(bundle_20, lots) == [("A", D(10), D("19.00"))]
    # CM-3001 names no invoice: Harbor's latest earlier sale with 20mm brackets is 1002, so 4 go back to A
    credit = docs["CM-3001"]
    assert figures(credit["figures"]) == (D("-18.00"), D("-7.60"), D("-10.40"), D("57.78"))
    assert lots_of(credit["lines"][0], lots) == [("A", D(4), D("7.60"))]
    # 1003: 216.00 EUR at 1.0850 = 234.36 USD; 6 kits from D (SR-2001 voided: it takes none) = 96.00
    assert figures(docs["1003"]["figures"]) == (D("234.36"), D("96.00"), D("138.36"), D("59.04"))
    assert docs["SR-2001"]["status"] == "voided" and docs["SR-2001"]["lines"] == []
    # SR-2002: bundle of 2: 9.00 + 13.50 = 22.50; 2 x 1.90 (A) + 2 x 2.80 (C) = 9.40
    assert figures(docs["SR-2002"]["figures"]) == (D("22.50"), D("9.40"), D("13.10"), D("58.22"))
    # 1006 re-costed by replay: 70 brackets = the 42 left in A (50 - 10 + 4 - 2) and 28 from B
    assert figures(docs["1006"]["figures"]) == (D("308.00"), D("135.80"), D("172.20"), D("55.91"))
    assert lots_of(docs["1006"]["lines"][0], lots) == [("A", D(42), D("79.80")), ("B", D(28), D("56.00"))]
    assert figures(report["totals"]) == (D("693.11"), D("294.60"), D("398.51"), D("57.50"))

    by_product = ok(api.call("GET", "/margins?group=product"))
    groups = {g["label"].split()[0]: figures(g["figures"]) for g in by_product["groups"]}
    # 20mm: 45.00 - 18.00 + 9.00 + 308.00 = 344.00; 19.00 - 7.60 + 3.80 + 135.80 = 151.00
    assert groups["FG-WB-20"] == (D("344.00"), D("151.00"), D("193.00"), D("56.10"))
    by_period = ok(api.call("GET", "/margins?group=period&from=2026-10-01&to=2026-10-31"))
    # October: 1003 and SR-2002
    assert [(g["key"], figures(g["figures"])) for g in by_period["groups"]] == [
        ("2026-10", (D("256.86"), D("105.40"), D("151.46"), D("58.97")))
    ]


def test_xero_margins_match_the_hand_worked_example(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    xero = sandboxes.xero
    items = {
        code: demo_id(AU_TENANT_ID, "item", code) for code in ("WIDGET-10", "WIDGET-20", "BOLT-M8", "PANEL-A")
    }
    sku = products_by_sku(api, "xero", list(items.values()))
    # KIT-STARTER is a Partsemble kit: 2 x WIDGET-10 and 5 x BOLT-M8
    catalog_store.put_products(
        "org-a",
        [
            Product(
                product_id="kit-starter",
                sku="KIT-STARTER",
                name="Starter kit",
                type="kit",
                provider_links={"xero": demo_id(AU_TENANT_ID, "item", "KIT-STARTER")},
                components=(
                    Component(ref=sku["WIDGET-10"], quantity=D(2)),
                    Component(ref=sku["BOLT-M8"], quantity=D(5)),
                ),
            )
        ],
    )
    lots = receive(
        api,
        [
            ("W1", sku["WIDGET-10"], "300", "2.50"),
            ("V", sku["WIDGET-20"], "150", "3.10"),
            ("B", sku["BOLT-M8"], "1000", "0.18"),
            ("P", sku["PANEL-A"], "4", "48.00"),
            ("W2", sku["WIDGET-10"], "200", "2.60"),
        ],
    )
    xero.add_record(
        AU_TENANT_ID,
        "Invoices",
        {
            "InvoiceNumber": "INV-0008",
            "Type": "ACCREC",
            "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")},
            "Date": "2026-09-30",
            "Status": "AUTHORISED",
            "LineItems": [
                {"ItemCode": "WIDGET-10", "Description": "Widget", "Quantity": "30", "UnitAmount": "6.00"}
            ],
        },
    )
    track_and_pull(api, "xero")

    first = ok(api.call("GET", "/margins"))
    docs = by_number(first)
    assert {e["number"]: e["reason"] for e in first["excluded"]} == {
        "INV-0007": "a draft: not a sale until it is approved"
    }
    assert docs["INV-0003"]["status"] == "voided"
    # INV-0006: 150 widgets after 200 sold, 10 back, 8 in kits and 30 on INV-0008: 72 left in W1, 78 from W2
    assert lots_of(docs["INV-0006"]["lines"][0], lots) == [
        ("W1", D(72), D("180.00")),
        ("W2", D(78), D("202.80")),
    ]

    xero.clock.advance(60)
    xero.edit_record(
        AU_TENANT_ID,
        "Invoices",
        demo_id(AU_TENANT_ID, "invoice", "INV-0006"),
        {
            "LineItems": [
                {"ItemCode": "WIDGET-10", "Description": "Widget", "Quantity": "100", "UnitAmount": "6.00"},
                {"ItemCode": "PANEL-A", "Description": "Panel", "Quantity": "1", "UnitAmount": "129.00"},
            ]
        },
    )
    xero.void_record(AU_TENANT_ID, "CreditNotes", demo_id(AU_TENANT_ID, "credit-note", "CN-0002"))
    eighth = next(r for r in xero.list_records(AU_TENANT_ID, "Invoices") if r["InvoiceNumber"] == "INV-0008")
    xero.void_record(AU_TENANT_ID, "Invoices", eighth["InvoiceID"])  # approved: Xero voids, never deletes it
    api.pull_sales()

    report = ok(api.call("GET", "/margins"))
    docs = by_number(report)
    assert {e["number"] for e in report["excluded"]} == {"INV-0007"}
    assert docs["INV-0008"]["status"] == "voided" and docs["INV-0008"]["lines"] == []
    # INV-0001: 1200.00 + 220.00; 200 x 2.50 (W1) + 400 x 0.18 (B) = 572.00; 848.00 = 59.72 %
    assert figures(docs["INV-0001"]["figures"]) == (D("1420.00"), D("572.00"), D("848.00"), D("59.72"))
    # CN-0001 (no allocation): harbour's INV-0001 took the widgets, so 10 go back to W1 at 2.50
    assert figures(docs["CN-0001"]["figures"]) == (D("-60.00"), D("-25.00"), D("-35.00"), D("58.33"))
    # INV-0004 in USD at 0.6512 USD per AUD: 900.00 / 0.6512 = 1382.06; the kit line (4 x 79.00 = 316.00 USD)
    # splits by component cost 8 x 2.50 : 20 x 0.18 = 20.00 : 3.60 -> 267.80 + 48.20 USD = 411.24 + 74.02 AUD
    inv4 = docs["INV-0004"]
    assert [(line["sku"], D(line["quantity"]), D(line["figures"]["revenue"])) for line in inv4["lines"]] == [
        ("WIDGET-20", D(120), D("1382.06")),
        ("WIDGET-10", D(8), D("411.24")),
        ("BOLT-M8", D(20), D("74.02")),
    ]
    # COGS 120 x 3.10 + 8 x 2.50 + 20 x 0.18 = 372.00 + 20.00 + 3.60 = 395.60
    assert figures(inv4["figures"]) == (D("1867.32"), D("395.60"), D("1471.72"), D("78.81"))
    # INV-0006 edited to 100 widgets, re-costed by replay without INV-0008: all from W1 (102 left) = 250.00
    assert figures(docs["INV-0006"]["figures"]) == (D("729.00"), D("298.00"), D("431.00"), D("59.12"))
    assert lots_of(docs["INV-0006"]["lines"][0], lots) == [("W1", D(100), D("250.00"))]
    assert docs["CN-0002"]["status"] == "voided" and docs["CN-0002"]["lines"] == []
    # INV-0002: 3 panels 387.00 - 144.00
    assert figures(report["totals"]) == (D("4343.32"), D("1384.60"), D("2958.72"), D("68.12"))


def test_the_download_carries_the_same_report(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20, SHELF_KIT])
    receive(api, [("A", sku["FG-WB-20"], "500", "1.90"), ("D", sku["FG-SK-OAK"], "20", "16.00")])
    track_and_pull(api, "qbo")
    report = ok(api.call("GET", "/margins?group=product"))

    response = api.call("GET", "/margins/export?group=product&format=csv")
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="margins-product-' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.body.decode())))
    assert rows[0][:3] == ["Product", "Revenue", "COGS"]
    assert rows[-1][:3] == ["Total", report["totals"]["revenue"], report["totals"]["cogs"]]

    response = api.call("GET", "/margins/export?format=xlsx")
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.body), read_only=True).worksheets[0]
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert table[0][:2] == ["Date", "Document"] and table[-1][0] == "Total"
    lots = [row[13] for row in table[1:-1] if row[5] == "FG-WB-20"]
    assert lots and all(str(lot).startswith("RCV-A/1 x ") for lot in lots)


def test_qbo_revenue_is_net_of_a_document_discount_spread_to_the_cent(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20, BRACKET_40, CORNER_BRACE])
    receive(
        api,
        [
            ("A", sku["FG-WB-20"], "500", "1.90"),
            ("C", sku["FG-WB-40"], "500", "2.80"),
            ("E", sku["FG-CB-01"], "500", "0.70"),
        ],
    )
    sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "Invoice",
        {
            "CustomerRef": {"value": "1"},
            "DocNumber": "D-10",
            "TxnDate": "2026-11-20",
            "Line": [
                *(
                    {
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": price},
                    }
                    for item, price in ((BRACKET_20, "12.25"), (BRACKET_40, "12.25"), (CORNER_BRACE, "10.45"))
                ),
                {
                    "DetailType": "DiscountLineDetail",
                    "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10},
                },
            ],
        },
    )
    track_and_pull(api, "qbo")

    invoice = by_number(ok(api.call("GET", "/margins")))["D-10"]
    # 10 % of 34.95 is 3.495: QBO's discount line says 3.50 (TotalAmt 31.45). Spread by amount:
    # 3.50 x 12.25 / 34.95 = 1.22675.., 1.22675.., 3.50 x 10.45 / 34.95 = 1.04649..: floors 1.22 + 1.22 + 1.04
    # leave 2 cents, to the two largest remainders (.00675, .00675) -> 1.23, 1.23, 1.04
    assert [D(line["figures"]["revenue"]) for line in invoice["lines"]] == [D("11.02"), D("11.02"), D("9.41")]
    # COGS 1.90 + 2.80 + 0.70 = 5.40; margin 26.05 of 31.45 = 82.83 %
    assert figures(invoice["figures"]) == (D("31.45"), D("5.40"), D("26.05"), D("82.83"))


def test_qbo_revenue_is_without_tax_on_a_tax_inclusive_invoice_as_on_a_tax_exclusive_one(
    api: Api, sandboxes: Sandboxes
) -> None:
    """An AU company enters prices with GST in them (GlobalTaxCalculation TaxInclusive): QuickBooks keeps the
    line's Amount without the tax and the GST-inclusive figure in TaxInclusiveAmt; revenue is the Amount."""
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20])
    receive(api, [("A", sku["FG-WB-20"], "100", "1.90")])
    for number, method, with_tax in (("INCL-1", "TaxInclusive", "49.50"), ("EXCL-1", "TaxExcluded", None)):
        detail: dict[str, Any] = {"ItemRef": {"value": BRACKET_20}, "Qty": 10, "UnitPrice": "4.50"}
        if with_tax:
            detail.update(TaxCodeRef={"value": "10"}, TaxInclusiveAmt=with_tax)
        sandboxes.qbo.create_record(
            DEMO_REALM_ID,
            "Invoice",
            {
                "CustomerRef": {"value": "1"},
                "DocNumber": number,
                "TxnDate": "2026-11-12",
                "GlobalTaxCalculation": method,
                "Line": [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}],
            },
        )
    ok(
        api.call(
            "PUT", "/integrations/qbo/sales-tracking", json_body={"enabled": True, "start_date": "2026-11-12"}
        )
    )
    api.pull_sales()

    docs = by_number(ok(api.call("GET", "/margins")))
    # 10 x 4.50 = 45.00 net (49.50 with 4.50 GST, TotalAmt 49.50); COGS 10 x 1.90 = 19.00; 26.00 = 57.78 %
    assert figures(docs["INCL-1"]["figures"]) == (D("45.00"), D("19.00"), D("26.00"), D("57.78"))
    # the tax-exclusive one: the same 45.00; the next 10 of lot A
    assert figures(docs["EXCL-1"]["figures"]) == (D("45.00"), D("19.00"), D("26.00"), D("57.78"))


def test_xero_revenue_is_net_of_line_discounts_and_included_tax(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    items = [demo_id(AU_TENANT_ID, "item", code) for code in ("WIDGET-10", "BOLT-M8")]
    sku = products_by_sku(api, "xero", items)
    receive(api, [("W", sku["WIDGET-10"], "1000", "2.50"), ("B", sku["BOLT-M8"], "5000", "0.18")])
    sandboxes.xero.add_record(
        AU_TENANT_ID,
        "Invoices",
        {
            "InvoiceNumber": "INV-D1",
            "Type": "ACCREC",
            "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")},
            "Date": "2026-10-05",
            "Status": "AUTHORISED",
            "LineAmountTypes": "Inclusive",
            "LineItems": [
                {"ItemCode": "WIDGET-10", "Quantity": "10", "UnitAmount": "11.00", "DiscountRate": "10"},
                {"ItemCode": "BOLT-M8", "Quantity": "4", "UnitAmount": "5.50", "DiscountAmount": "2.00"},
            ],
        },
    )
    track_and_pull(api, "xero")

    invoice = by_number(ok(api.call("GET", "/margins")))["INV-D1"]
    # widgets: 10 x 11.00 less 10 % = 99.00 with GST 9.00 in it -> 90.00; bolts: 22.00 - 2.00 = 20.00
    # with GST 1.82 in it -> 18.18. COGS 10 x 2.50 + 4 x 0.18 = 25.72; margin 82.46 of 108.18 = 76.22 %
    assert [D(line["figures"]["revenue"]) for line in invoice["lines"]] == [D("90.00"), D("18.18")]
    assert figures(invoice["figures"]) == (D("108.18"), D("25.72"), D("82.46"), D("76.22"))


def test_credits_matching_no_sale_reverse_revenue_say_where_units_went_and_keep_the_month(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20, CORNER_BRACE])
    receive(
        api,
        [
            ("A", sku["FG-WB-20"], "50", "1.90"),
            ("B", sku["FG-WB-20"], "100", "2.00"),
            ("E", sku["FG-CB-01"], "500", "0.70"),
        ],
    )
    walk_in = sandboxes.qbo.create_record(DEMO_REALM_ID, "Customer", {"DisplayName": "Walk-in"})["Id"]
    for number, day, item, price, note in (
        ("CM-7", "2026-11-10", BRACKET_20, "4.50", "Returned unopened"),
        ("CM-8", "2026-11-12", CORNER_BRACE, "2.25", "Scrapped: crushed in transit"),
    ):
        sandboxes.qbo.create_record(
            DEMO_REALM_ID,
            "CreditMemo",
            {
                "CustomerRef": {"value": walk_in},  # who never bought anything
                "DocNumber": number,
                "TxnDate": day,
                "PrivateNote": note,
                "Line": [
                    {
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": item},
                            "Qty": 2 if number == "CM-7" else 1,
                            "UnitPrice": price,
                        },
                    }
                ],
            },
        )
    track_and_pull(api, "qbo")

    november = ok(api.call("GET", "/margins?group=period&from=2026-11-01&to=2026-11-30"))
    assert november["notes"] == [
        "Credit CM-7 matched no sale: 2 x FG-WB-20 restocked at 2.00",
        "Credit CM-8 matched no sale: 1 x FG-CB-01 written off (not restockable)",
    ]
    (month,) = november["groups"]
    assert month["notes"] == november["notes"]
    # 1006: 60 x 4.40 = 264.00 from the 2 left in A (3.80) and 58 of B (116.00); CM-7: -9.00, 2 back as a
    # lot at B's 2.00 (-4.00); CM-8: -2.25, written off (0). 252.75 - 115.80 = 136.95 = 54.18 %
    assert figures(month["figures"]) == (D("252.75"), D("115.80"), D("136.95"), D("54.18"))
    credit = by_number(ok(api.call("GET", "/margins?from=2026-11-10")))["CM-7"]
    # the returned units are a lot of their own, which later sales take from in FIFO order
    assert [(lot["lot_id"], D(lot["cost"])) for lot in credit["lines"][0]["lots"]] == [
        (credit["document_id"] + "/1", D("4.00"))
    ]
    assert credit["issues"] == []


def brackets_sold(
    sandboxes: Sandboxes, kind: str, number: str, customer: str, quantity: int, price: str
) -> None:
    """A QBO sales document (or credit) of 12 November for ``quantity`` FG-WB-20 at ``price``."""
    detail = {"ItemRef": {"value": BRACKET_20}, "Qty": quantity, "UnitPrice": price}
    sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        kind,
        {
            "CustomerRef": {"value": customer},
            "DocNumber": number,
            "TxnDate": "2026-11-12",
            "Line": [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}],
        },
    )


def test_a_credit_on_the_day_of_its_invoice_returns_the_units_that_invoice_took_last(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20])
    lots = receive(
        api, [(name, sku["FG-WB-20"], "10", cost) for name, cost in (("A", "1.00"), ("B", "3.00"))]
    )
    customer = sandboxes.qbo.create_record(DEMO_REALM_ID, "Customer", {"DisplayName": "Same day"})["Id"]
    for kind, number, quantity in (("Invoice", "SD-1", 12), ("CreditMemo", "SD-CM", 2)):  # one day
        brackets_sold(sandboxes, kind, number, customer, quantity, "4.50")
    tracking = {"enabled": True, "start_date": "2026-11-12"}  # these two alone: none of the demo's sales
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    api.pull_sales()

    report = ok(api.call("GET", "/margins?from=2026-11-12&to=2026-11-12"))
    assert not [note for note in report["notes"] if "SD-CM" in note]  # it matched: not "matched no sale"
    docs = by_number(report)
    # SD-1 took all of A (10.00) and 2 of B (6.00); the 2 credited are those 2 of B, back to B
    assert figures(docs["SD-1"]["figures"]) == (D("54.00"), D("16.00"), D("38.00"), D("70.37"))
    assert figures(docs["SD-CM"]["figures"])[:2] == (D("-9.00"), D("-6.00"))
    assert docs["SD-CM"]["issues"] == ["the credit names no sale; its goods return to the lots of SD-1"]
    assert [(lot, quantity) for lot, quantity, _ in lots_of(docs["SD-CM"]["lines"][0], lots)] == [("B", D(2))]


def test_sales_of_one_day_take_stock_in_the_order_they_were_entered_in_quickbooks(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A sales receipt entered in the morning and an invoice entered in the afternoon, both dated 12
    November: FIFO gives the first lot to the one entered first (QuickBooks' CreateTime), not to the one
    whose id sorts first ("Invoice" before "SalesReceipt")."""
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20])
    receive(api, [(name, sku["FG-WB-20"], "10", cost) for name, cost in (("A", "1.00"), ("B", "3.00"))])
    customer = sandboxes.qbo.create_record(DEMO_REALM_ID, "Customer", {"DisplayName": "Entry order"})["Id"]
    for kind, number in (("SalesReceipt", "MORNING"), ("Invoice", "AFTERNOON")):
        brackets_sold(sandboxes, kind, number, customer, 10, "4.00")
        sandboxes.qbo.clock.advance(4 * 3600)
    ok(
        api.call(
            "PUT", "/integrations/qbo/sales-tracking", json_body={"enabled": True, "start_date": "2026-11-12"}
        )
    )
    api.pull_sales()

    docs = by_number(ok(api.call("GET", "/margins?from=2026-11-12&to=2026-11-12")))
    assert figures(docs["MORNING"]["figures"])[:2] == (D("40.00"), D("10.00"))  # lot A
    assert figures(docs["AFTERNOON"]["figures"])[:2] == (D("40.00"), D("30.00"))  # lot B


def test_lines_of_one_product_take_stock_in_the_invoices_order_not_their_ids_order(
    api: Api, sandboxes: Sandboxes
) -> None:
    """An invoice whose line 2 comes before its line 10 (a line keeps its Id as an invoice is edited): line 2
    sells the older lot, though "10" sorts before "2" as text."""
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20])
    lots = receive(
        api, [(name, sku["FG-WB-20"], "10", cost) for name, cost in (("A", "1.00"), ("B", "3.00"))]
    )
    sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "Invoice",
        {
            "CustomerRef": {"value": "1"},
            "DocNumber": "TWO-LINES",
            "TxnDate": "2026-11-12",
            "Line": [
                {
                    "Id": line_id,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": BRACKET_20}, "Qty": qty, "UnitPrice": price},
                }
                for line_id, qty, price in (("2", 10, "4.00"), ("10", 5, "5.00"))
            ],
        },
    )
    ok(
        api.call(
            "PUT", "/integrations/qbo/sales-tracking", json_body={"enabled": True, "start_date": "2026-11-12"}
        )
    )
    api.pull_sales()

    invoice = by_number(ok(api.call("GET", "/margins")))["TWO-LINES"]
    first, second = invoice["lines"]
    # line 2: 10 at 4.00 = 40.00, all of lot A at 1.00; line 10: 5 at 5.00 = 25.00, 5 of lot B at 3.00
    assert (first["line_id"], figures(first["figures"])) == ("2", (D("40.00"), D("10.00"), D("30.00"), D(75)))
    assert lots_of(first, lots) == [("A", D(10), D("10.00"))]
    assert (second["line_id"], figures(second["figures"])) == ("10", (D("25.00"), D("15.00"), D(10), D(40)))
    assert lots_of(second, lots) == [("B", D(5), D("15.00"))]


def test_a_sale_takes_from_what_arrived_by_the_end_of_its_day_in_the_organisation_time_zone(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20])
    # 22:00 at UTC-5 on 10 March is 03:00 UTC on the 11th, but still the 10th in New York (23:00 EDT: summer
    # time began on 8 March); 01:30 on the 11th there is a later day
    for receipt, at, unit_cost in (
        ("RCV-EVENING", "2026-03-10T22:00:00-05:00", "3.00"),
        ("RCV-NEXT-DAY", "2026-03-11T01:30:00-04:00", "4.00"),
    ):
        body = {
            "receipt_id": receipt,
            "received_at": at,
            "lines": [{"product_id": sku["FG-WB-20"], "quantity": "5", "unit_cost": unit_cost}],
        }
        ok(api.call("POST", "/receipts", json_body=body), 201)
    for number, day in (("NY-1", "2026-03-10"), ("NY-2", "2026-03-11")):
        sandboxes.qbo.create_record(
            DEMO_REALM_ID,
            "Invoice",
            {
                "CustomerRef": {"value": "1"},
                "DocNumber": number,
                "TxnDate": day,
                "Line": [
                    {
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": BRACKET_20},
                            "Qty": 5,
                            "UnitPrice": "5.00",
                        },
                    }
                ],
            },
        )
    tracking = {"enabled": True, "start_date": "2026-03-01", "time_zone": "America/New_York"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    api.pull_sales()

    docs = by_number(ok(api.call("GET", "/margins?to=2026-03-31")))
    # NY-1 (the 10th) ends at 03:59:59.999999 UTC on the 11th: the evening lot is its own. At 23:59:59 UTC on
    # the 10th it would have found no stock at all.
    assert [lot["lot_id"] for lot in docs["NY-1"]["lines"][0]["lots"]] == ["RCV-EVENING/1"]
    assert figures(docs["NY-1"]["figures"]) == (D("25.00"), D("15.00"), D("10.00"), D("40.00"))
    assert [lot["lot_id"] for lot in docs["NY-2"]["lines"][0]["lots"]] == ["RCV-NEXT-DAY/1"]
    assert (docs["NY-1"]["date"], docs["NY-2"]["date"]) == ("2026-03-10", "2026-03-11")
    periods = ok(api.call("GET", "/margins?group=period&to=2026-03-31"))["groups"]
    assert [g["key"] for g in periods] == ["2026-03"]


def test_a_credit_naming_a_sale_without_its_product_returns_it_to_the_customers_sale_of_it(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A credit for brackets linked (LinkedTxn) to an invoice of corner braces only: the brackets go back to
    the customer's bracket invoice's lots, at their cost, and the report says so; none is lost uncosted."""
    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20, CORNER_BRACE])
    lots = receive(api, [("A", sku["FG-WB-20"], "10", "2.00"), ("E", sku["FG-CB-01"], "10", "0.70")])
    customer = sandboxes.qbo.create_record(DEMO_REALM_ID, "Customer", {"DisplayName": "Linked"})["Id"]

    def document(kind: str, number: str, day: str, item: str, quantity: int, link: str = "") -> str:
        detail = {"ItemRef": {"value": item}, "Qty": quantity, "UnitPrice": "4.50"}
        fields = {
            "CustomerRef": {"value": customer},
            "DocNumber": number,
            "TxnDate": day,
            "Line": [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}],
            **({"LinkedTxn": [{"TxnId": link, "TxnType": "Invoice"}]} if link else {}),
        }
        return str(sandboxes.qbo.create_record(DEMO_REALM_ID, kind, fields)["Id"])

    document("Invoice", "LK-1", "2026-11-12", BRACKET_20, 3)
    braces = document("Invoice", "LK-2", "2026-11-13", CORNER_BRACE, 1)
    document("CreditMemo", "LK-CM", "2026-11-14", BRACKET_20, 2, link=braces)
    tracking = {"enabled": True, "start_date": "2026-11-12"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    api.pull_sales()

    report = ok(api.call("GET", "/margins?from=2026-11-12"))
    credit = by_number(report)["LK-CM"]
    assert credit["issues"] == ["FG-WB-20 is not on LK-2: returned to the lots of LK-1"], credit
    assert figures(credit["figures"]) == (D("-9.00"), D("-4.00"), D("-5.00"), D("55.56"))
    assert D(credit["figures"]["uncosted"]) == 0
    assert [(lot, quantity) for lot, quantity, _ in lots_of(credit["lines"][0], lots)] == [("A", D(2))]


def test_xero_a_credit_allocated_to_an_invoice_without_its_product_returns_to_the_customers_sale_of_it(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A Xero credit note allocated (its Allocations) to a bolts invoice credits widgets: they go back to the
    contact's widget invoice's lots, and the report says so."""
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    xero = sandboxes.xero
    widget, bolt = (demo_id(AU_TENANT_ID, "item", code) for code in ("WIDGET-10", "BOLT-M8"))
    sku = products_by_sku(api, "xero", [widget, bolt])
    lots = receive(api, [("W", sku["WIDGET-10"], "10", "2.50"), ("B", sku["BOLT-M8"], "10", "0.18")])
    contact = xero.add_record(AU_TENANT_ID, "Contacts", {"Name": "Allocating"})["ContactID"]

    def document(collection: str, number: str, day: str, code: str, quantity: str, **more: Any) -> str:
        field = "InvoiceNumber" if collection == "Invoices" else "CreditNoteNumber"
        line = {"ItemCode": code, "Description": code, "Quantity": quantity, "UnitAmount": "6.00"}
        kind = "ACCREC" if collection == "Invoices" else "ACCRECCREDIT"
        fields = {field: number, "Type": kind, "Contact": {"ContactID": contact}, "Date": day}
        record = {**fields, "Status": "AUTHORISED", "LineItems": [line], **more}
        made = xero.add_record(AU_TENANT_ID, collection, record)
        return str(made["InvoiceID" if collection == "Invoices" else "CreditNoteID"])

    document("Invoices", "AL-1", "2026-11-12", "WIDGET-10", "3")
    bolts = document("Invoices", "AL-2", "2026-11-13", "BOLT-M8", "5")
    allocation = {"Invoice": {"InvoiceID": bolts}, "Amount": "12.00", "Date": "2026-11-14"}
    document("CreditNotes", "AL-CN", "2026-11-14", "WIDGET-10", "2", Allocations=[allocation])
    tracking = {"enabled": True, "start_date": "2026-11-12"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=tracking))
    api.pull_sales()

    credit = by_number(ok(api.call("GET", "/margins?from=2026-11-12")))["AL-CN"]
    assert credit["issues"] == ["WIDGET-10 is not on AL-2: returned to the lots of AL-1"], credit
    assert figures(credit["figures"])[:2] == (D("-12.00"), D("-5.00"))
    assert [(lot, quantity) for lot, quantity, _ in lots_of(credit["lines"][0], lots)] == [("W", D(2))]
