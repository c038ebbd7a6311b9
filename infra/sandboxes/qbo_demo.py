"""Demo data for the QBO sandbox: one US Plus manufacturer, its user, the local app, and a season of sales."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.sandboxes.qbo import QboSandbox

DEMO_REALM_ID = "9130350000000001"
DEMO_COMPANY_NAME = "Partsemble Demo Manufacturing (US)"
DEMO_USERNAME = "demo@partsemble.test"
DEMO_PASSWORD = "demo"
DEMO_CLIENT_ID = "partsemble-local-qbo"
DEMO_CLIENT_SECRET = "local-qbo-secret"
DEMO_REDIRECT_URI = "http://127.0.0.1:3000/oauth/qbo/callback"

# Name, AccountType, AccountSubType, AcctNum, Active. Ids are assigned in this order, from "1".
ACCOUNTS = (
    ("Inventory Asset", "Other Current Asset", "Inventory", "1300", True),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs", "5000", True),
    ("Inventory Shrinkage", "Cost of Goods Sold", "SuppliesMaterialsCogs", "5010", True),
    ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable", "2000", True),
    ("Receiving Clearing", "Other Current Liability", "OtherCurrentLiabilities", "2150", True),
    ("Sales of Product Income", "Income", "SalesOfProductIncome", "4000", True),
    ("Waste and Scrap", "Expense", "SuppliesMaterials", "6150", True),
    ("Old Freight Clearing", "Other Current Liability", "OtherCurrentLiabilities", "2190", False),
    ("Opening Balance Equity", "Equity", "OpeningBalanceEquity", "3000", True),
    ("Finished Goods", "Other Current Asset", "Inventory", "1310", True),
    ("Raw Materials", "Other Current Asset", "Inventory", "1320", True),
    ("Business Checking", "Bank", "Checking", "1000", True),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", "1200", True),
    ("Services", "Income", "ServiceFeeIncome", "4100", True),
)
INCOME, COGS, RAW, FINISHED, CHECKING, SERVICES = "6", "2", "11", "10", "12", "14"

# Name, Sku (None: no Sku), asset account, QtyOnHand, UnitPrice, PurchaseCost. Item ids "1".."8".
# QtyOnHand is the figure *after* the demo sales below: QBO relieves stock on every invoice and sales
# receipt and takes it back on a credit memo (infra/sandboxes/qbo_books.py STOCK_SIGN), and the demo sales are
# seeded through that same path, so each item is created with this figure plus what the surviving demo
# sales took from it net (_sold_by_demo_sales) as its starting quantity on InvStartDate.
INVENTORY_ITEMS = (
    ("Aluminium Bracket Blank", "RM-ALU-01", RAW, 400, "0", "1.20"),
    ("M6 Hex Bolt", "RM-BOLT-M6", RAW, 2500, "0", "0.08"),
    ("Powder Coat Black (kg)", "RM-PWD-BLK", RAW, 60, "0", "9.50"),
    ("Packing Carton", None, RAW, 300, "0", "0.45"),
    ("Wall Bracket 20mm", "FG-WB-20", FINISHED, 140, "4.50", "1.90"),
    ("Wall Bracket 40mm", "FG-WB-40", FINISHED, 90, "6.75", "2.80"),
    ("Shelf Kit Oak", "FG-SK-OAK", FINISHED, 25, "39.00", "16.00"),
    ("Corner Brace", "FG-CB-01", FINISHED, 210, "2.25", "0.70"),
)
BRACKET_20, BRACKET_40, SHELF_KIT, CORNER_BRACE = "5", "6", "7", "8"
SHOP_SUPPLIES, ASSEMBLY_LABOUR, BRACKET_BUNDLE, DISCONTINUED = "9", "10", "11", "12"
BUNDLE_PARTS = {BRACKET_20: 1, BRACKET_40: 1}  # the Bracket Pair Bundle's components, item id -> Qty

VENDORS = (("Northside Metals Ltd", "orders@northside-metals.test"), ("Coastal Fasteners Inc", None))
CUSTOMERS = (("Harbor Hardware Co", "USD"), ("Maple Street Builders", "USD"), ("Europa Fixtures GmbH", "EUR"))
HARBOR, MAPLE, EUROPA = "1", "2", "3"

SETUP_TIME = "2026-01-15T09:00:00-08:00"


def _line(item_id: str, qty: int, unit_price: str) -> dict[str, Any]:
    return {
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": item_id}, "Qty": qty, "UnitPrice": unit_price},
    }


def _bundle(quantity: int) -> dict[str, Any]:
    return {
        "DetailType": "GroupLineDetail",
        "GroupLineDetail": {"GroupItemRef": {"value": BRACKET_BUNDLE}, "Quantity": quantity},
    }


DEPOSIT = {"DepositToAccountRef": {"value": CHECKING}}  # the demo's cash sales go straight to the bank

# Entity, DocNumber, TxnDate, customer, lines, extra fields. Stamped on their TxnDate at 00:30 Pacific (PDT).
SALES: tuple[tuple[str, str, str, str, list[dict[str, Any]], dict[str, Any]], ...] = (
    (
        "Invoice",
        "1001",
        "2026-08-04",
        HARBOR,
        [_line(BRACKET_20, 40, "4.50"), _line(CORNER_BRACE, 100, "2.25")],
        {},
    ),
    ("SalesReceipt", "SR-2001", "2026-08-19", MAPLE, [_line(SHELF_KIT, 2, "39.00")], DEPOSIT),
    ("Invoice", "1002", "2026-09-08", HARBOR, [_bundle(10), _line(BRACKET_40, 5, "6.75")], {}),
    (
        "CreditMemo",
        "CM-3001",
        "2026-09-22",
        HARBOR,
        [_line(BRACKET_20, 4, "4.50")],
        {"PrivateNote": "Returned: bent brackets"},
    ),
    (
        "Invoice",
        "1003",
        "2026-10-06",
        EUROPA,
        [_line(SHELF_KIT, 6, "36.00")],
        {"CurrencyRef": {"value": "EUR", "name": "Euro"}, "ExchangeRate": "1.0850"},
    ),
    (
        "Invoice",
        "1004",
        "2026-10-14",
        MAPLE,
        [_line(CORNER_BRACE, 30, "2.25"), _line(ASSEMBLY_LABOUR, 2, "55.00")],
        {"PrivateNote": "Customer cancelled"},
    ),
    (
        "Invoice",
        "1005",
        "2026-10-20",
        HARBOR,
        [_line(BRACKET_40, 12, "6.75")],
        {"PrivateNote": "Entered twice"},
    ),
    ("SalesReceipt", "SR-2002", "2026-10-27", MAPLE, [_bundle(2), _line(SHOP_SUPPLIES, 1, "12.00")], DEPOSIT),
    ("Invoice", "1006", "2026-11-01", HARBOR, [_line(BRACKET_20, 60, "4.40")], {}),
)
VOIDED_DOC_NUMBER, DELETED_DOC_NUMBER = "1004", "1005"


def _sold_by_demo_sales() -> Counter[str]:
    """Item id -> units the demo sales that stay (neither voided nor deleted) take out of stock, net of
    the credit memo's return; bundle lines count their components."""
    sold: Counter[str] = Counter()
    for entity, doc_number, _, _, lines, _ in SALES:
        if doc_number in (VOIDED_DOC_NUMBER, DELETED_DOC_NUMBER):
            continue
        sign = -1 if entity == "CreditMemo" else 1
        for line in lines:
            if line["DetailType"] == "GroupLineDetail":
                for item_id, qty in BUNDLE_PARTS.items():
                    sold[item_id] += sign * qty * line["GroupLineDetail"]["Quantity"]
            else:
                detail = line["SalesItemLineDetail"]
                sold[detail["ItemRef"]["value"]] += sign * detail["Qty"]
    return sold


def _stamp(day: str) -> dict[str, str]:
    return {"CreateTime": f"{day}T00:30:00-07:00", "LastUpdatedTime": f"{day}T00:30:00-07:00"}


def seed_demo(sandbox: QboSandbox) -> None:
    """Registers the demo app and user and, unless the demo company exists already, builds it."""
    sandbox.register_app(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [DEMO_REDIRECT_URI])
    with sandbox.lock:
        if DEMO_REALM_ID in sandbox.companies:
            return
        sandbox.add_company(
            DEMO_COMPANY_NAME,
            realm_id=DEMO_REALM_ID,
            country="US",
            plan="Plus",
            inventory_tracking=True,
            closing_date=date(2026, 1, 31),
            home_currency="USD",
        )
        sandbox.add_user(DEMO_USERNAME, DEMO_PASSWORD, [DEMO_REALM_ID])
        _seed_lists(sandbox)
        _seed_sales(sandbox)


def _seed_lists(sandbox: QboSandbox) -> None:
    setup = {"CreateTime": SETUP_TIME, "LastUpdatedTime": SETUP_TIME}

    def add(entity: str, fields: dict[str, Any]) -> None:
        sandbox.create_record(DEMO_REALM_ID, entity, {**fields, "MetaData": setup})

    for name, kind, sub_type, number, active in ACCOUNTS:
        add(
            "Account",
            {
                "Name": name,
                "AccountType": kind,
                "AccountSubType": sub_type,
                "AcctNum": number,
                "Active": active,
            },
        )
    sold = _sold_by_demo_sales()
    for position, (name, sku, asset, qty, price, cost) in enumerate(INVENTORY_ITEMS, 1):
        add(
            "Item",
            {
                "Name": name,
                "Type": "Inventory",
                "TrackQtyOnHand": True,
                "QtyOnHand": qty + sold[str(position)],  # the starting quantity: see INVENTORY_ITEMS
                "InvStartDate": "2026-01-01",
                "UnitPrice": price,
                "PurchaseCost": cost,
                "IncomeAccountRef": {"value": INCOME},
                "ExpenseAccountRef": {"value": COGS},
                "AssetAccountRef": {"value": asset},
                **({"Sku": sku} if sku else {}),
            },
        )
    add(
        "Item",
        {
            "Name": "Shop Supplies",
            "Type": "NonInventory",
            "Sku": "NI-SUP",
            "UnitPrice": "12.00",
            "IncomeAccountRef": {"value": INCOME},
            "ExpenseAccountRef": {"value": COGS},
        },
    )
    add(
        "Item",
        {
            "Name": "Assembly Labour",
            "Type": "Service",
            "UnitPrice": "55.00",
            "IncomeAccountRef": {"value": SERVICES},
        },
    )
    add(
        "Item",
        {
            "Name": "Bracket Pair Bundle",
            "Type": "Group",
            "Sku": "KIT-WB-PAIR",
            "ItemGroupDetail": {
                "ItemGroupLine": [
                    {"ItemRef": {"value": item_id}, "Qty": qty} for item_id, qty in BUNDLE_PARTS.items()
                ]
            },
        },
    )
    add(
        "Item",
        {
            "Name": "Wall Bracket 10mm (discontinued)",
            "Type": "Inventory",
            "Sku": "FG-WB-10",
            "Active": False,
            "QtyOnHand": 0,
            "InvStartDate": "2026-01-01",
            "UnitPrice": "3.25",
            "IncomeAccountRef": {"value": INCOME},
            "ExpenseAccountRef": {"value": COGS},
            "AssetAccountRef": {"value": FINISHED},
        },
    )
    for name, email in VENDORS:
        add(
            "Vendor",
            {
                "DisplayName": name,
                "CompanyName": name,
                **({"PrimaryEmailAddr": {"Address": email}} if email else {}),
            },
        )
    for name, currency in CUSTOMERS:
        add("Customer", {"DisplayName": name, "CompanyName": name, "CurrencyRef": {"value": currency}})


def _seed_sales(sandbox: QboSandbox) -> None:
    by_doc_number: dict[str, str] = {}
    for entity, doc_number, day, customer, lines, extra in SALES:
        record = sandbox.create_record(
            DEMO_REALM_ID,
            entity,
            {
                "DocNumber": doc_number,
                "TxnDate": day,
                "CustomerRef": {"value": customer},
                "Line": lines,
                "MetaData": _stamp(day),
                **extra,
            },
        )
        by_doc_number[doc_number] = record["Id"]
    sandbox.void_record(DEMO_REALM_ID, "Invoice", by_doc_number[VOIDED_DOC_NUMBER])
    sandbox.delete_record(DEMO_REALM_ID, "Invoice", by_doc_number[DELETED_DOC_NUMBER])
