"""Demo data for the Xero sandbox: one login, two organisations (AU and NZ) with accounts, items and sales."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.sandboxes.xero import XeroSandbox

DEMO_CLIENT_ID = "partsemble-local-xero"
DEMO_CLIENT_SECRET = "local-xero-secret"
DEMO_REDIRECT_URI = "http://127.0.0.1:3000/oauth/xero/callback"
DEMO_USERNAME = "demo@partsemble.test"
DEMO_PASSWORD = "demo"
_NAMESPACE = uuid.UUID("6f1d3c52-9a51-4d8e-bb0e-5a8f3b1d2c40")


def demo_id(*parts: str) -> str:
    """Stable ids, so every seeded sandbox has the same tenant, contact and document ids."""
    return str(uuid.uuid5(_NAMESPACE, ":".join(parts)))


AU_TENANT_ID = demo_id("org", "AU")
NZ_TENANT_ID = demo_id("org", "NZ")
DEMO_ORGS = (
    (AU_TENANT_ID, "Partsemble Demo (AU)", "AUD", "AU", "2026-06-30"),
    (NZ_TENANT_ID, "Partsemble Demo (NZ)", "NZD", "NZ", None),
)

ACCOUNTS = (
    ("090", "Business Bank Account", "BANK", "ACTIVE", ""),
    ("200", "Sales", "REVENUE", "ACTIVE", ""),
    ("300", "Purchases", "DIRECTCOSTS", "ACTIVE", ""),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "ACTIVE", ""),
    ("480", "Waste", "OVERHEADS", "ACTIVE", ""),
    ("610", "Accounts Receivable", "CURRENT", "ACTIVE", "DEBTORS"),
    ("630", "Inventory Asset", "CURRENT", "ACTIVE", ""),
    ("631", "Raw Materials", "CURRENT", "ACTIVE", ""),
    ("632", "Finished Goods", "CURRENT", "ACTIVE", ""),
    ("634", "Tracked Inventory", "INVENTORY", "ACTIVE", ""),
    ("639", "Old Stock Adjustments", "CURRENT", "ARCHIVED", ""),
    ("800", "Accounts Payable", "CURRLIAB", "ACTIVE", "CREDITORS"),
    ("820", "Receiving Clearing", "CURRLIAB", "ACTIVE", ""),
    ("960", "Retained Earnings", "EQUITY", "ACTIVE", "RETAINEDEARNINGS"),
)

# code, name, purchase price, sales price
ITEMS = (
    ("WIDGET-10", "Widget 10mm", "2.50", "6.00"),
    ("WIDGET-20", "Widget 20mm", "3.10", "7.50"),
    ("BRACKET-S", "Bracket small", "1.20", "3.20"),
    ("BRACKET-L", "Bracket large", "2.40", "5.90"),
    ("BOLT-M8", "Bolt M8 x 40", "0.18", "0.55"),
    ("PANEL-A", "Control panel A", "48.00", "129.00"),
    ("RESIN-1L", "Casting resin 1L", "14.00", "0"),
)
TRACKED_ITEM = ("KIT-STARTER", "Starter kit (tracked)", "30.00", "79.00")

# key, name, number, is_supplier, is_customer, status
CONTACTS = (
    ("bolt", "Bolt Supplies Pty Ltd", "SUP-0001", True, False, "ACTIVE"),
    ("metals", "Acme Metals Ltd", "SUP-0002", True, False, "ACTIVE"),
    ("harbour", "Harbour Fabrication", "CUS-0001", False, True, "ACTIVE"),
    ("kiwi", "Kiwi Robotics", "CUS-0002", False, True, "ACTIVE"),
    ("summit", "Summit Engineering Inc", "CUS-0003", False, True, "ACTIVE"),
    ("old", "Old Customer Co", "CUS-0000", False, True, "ARCHIVED"),
)

# number, type, contact, date, status, lines [(item, qty)], extra fields
INVOICES: tuple[tuple[str, str, str, str, str, list[tuple[str, str]], dict[str, Any]], ...] = (
    ("INV-0001", "ACCREC", "harbour", "2026-08-05", "PAID", [("WIDGET-10", "200"), ("BOLT-M8", "400")], {}),
    ("INV-0002", "ACCREC", "kiwi", "2026-08-19", "AUTHORISED", [("PANEL-A", "3")], {}),
    ("INV-0003", "ACCREC", "harbour", "2026-09-02", "VOIDED", [("BRACKET-S", "50")], {}),
    (
        "INV-0004",
        "ACCREC",
        "summit",
        "2026-09-16",
        "AUTHORISED",
        [("WIDGET-20", "120"), ("KIT-STARTER", "4")],
        {"CurrencyCode": "USD", "CurrencyRate": "0.6512"},
    ),
    ("INV-0005", "ACCREC", "kiwi", "2026-10-07", "DELETED", [("BRACKET-L", "10")], {}),
    (
        "INV-0006",
        "ACCREC",
        "harbour",
        "2026-10-21",
        "AUTHORISED",
        [("WIDGET-10", "150"), ("PANEL-A", "1")],
        {},
    ),
    ("INV-0007", "ACCREC", "summit", "2026-11-03", "DRAFT", [("BRACKET-L", "25")], {}),
    ("BOLT-7781", "ACCPAY", "bolt", "2026-08-12", "PAID", [("BOLT-M8", "2000")], {}),
    (
        "AM-20931",
        "ACCPAY",
        "metals",
        "2026-10-01",
        "AUTHORISED",
        [("BRACKET-S", "300"), ("BRACKET-L", "150")],
        {},
    ),
)
CREDIT_NOTES: tuple[tuple[str, str, str, str, str, list[tuple[str, str]]], ...] = (
    ("CN-0001", "ACCRECCREDIT", "harbour", "2026-08-20", "PAID", [("WIDGET-10", "10")]),
    ("CN-0002", "ACCRECCREDIT", "kiwi", "2026-11-02", "AUTHORISED", [("PANEL-A", "1")]),
    ("BOLT-CR-12", "ACCPAYCREDIT", "bolt", "2026-09-10", "AUTHORISED", [("BOLT-M8", "100")]),
)


def seed_demo(sandbox: XeroSandbox) -> None:
    """Adds the demo app, user and organisations; records that already exist are left as they are."""
    sandbox.register_app(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [DEMO_REDIRECT_URI])
    for tenant_id, name, currency, country, lock_date in DEMO_ORGS:
        sandbox.add_organisation(name, currency, country, tenant_id=tenant_id, period_lock_date=lock_date)
        _seed_books(sandbox, tenant_id, country)
    sandbox.add_user(DEMO_USERNAME, DEMO_PASSWORD, [AU_TENANT_ID, NZ_TENANT_ID])


def _add(sandbox: XeroSandbox, tenant_id: str, collection: str, record: dict[str, Any]) -> None:
    id_field = {
        "Accounts": "AccountID",
        "Items": "ItemID",
        "Contacts": "ContactID",
        "Invoices": "InvoiceID",
        "CreditNotes": "CreditNoteID",
    }[collection]
    if record[id_field] not in sandbox.organisations[tenant_id].records[collection]:
        sandbox.add_record(tenant_id, collection, record)


def _seed_books(sandbox: XeroSandbox, tenant_id: str, country: str) -> None:
    sales_tax, purchase_tax = ("OUTPUT", "INPUT") if country == "AU" else ("OUTPUT2", "INPUT2")
    for code, name, kind, status, system in ACCOUNTS:
        _add(
            sandbox,
            tenant_id,
            "Accounts",
            {
                "AccountID": demo_id(tenant_id, "account", code),
                "Code": code,
                "Name": name,
                "Type": kind,
                "Status": status,
                "SystemAccount": system,
            },
        )
    for code, name, cost, price in ITEMS:
        _add(
            sandbox,
            tenant_id,
            "Items",
            {
                "ItemID": demo_id(tenant_id, "item", code),
                "Code": code,
                "Name": name,
                "PurchaseDetails": {"UnitPrice": cost, "AccountCode": "300", "TaxType": purchase_tax},
                "SalesDetails": {"UnitPrice": price, "AccountCode": "200", "TaxType": sales_tax},
                "IsSold": price != "0",
            },
        )
    code, name, cost, price = TRACKED_ITEM
    _add(
        sandbox,
        tenant_id,
        "Items",
        {
            "ItemID": demo_id(tenant_id, "item", code),
            "Code": code,
            "Name": name,
            "InventoryAssetAccountCode": "634",
            "QuantityOnHand": "12",
            "TotalCostPool": "360.00",
            "PurchaseDetails": {"UnitPrice": cost, "COGSAccountCode": "310", "TaxType": purchase_tax},
            "SalesDetails": {"UnitPrice": price, "AccountCode": "200", "TaxType": sales_tax},
        },
    )
    for key, name, number, supplier, customer, status in CONTACTS:
        _add(
            sandbox,
            tenant_id,
            "Contacts",
            {
                "ContactID": demo_id(tenant_id, "contact", key),
                "Name": name,
                "ContactNumber": number,
                "IsSupplier": supplier,
                "IsCustomer": customer,
                "ContactStatus": status,
                "EmailAddress": f"accounts@{key}.example",
            },
        )
    prices = {code: (cost, price) for code, _, cost, price in (*ITEMS, TRACKED_ITEM)}
    for number, kind, contact, when, status, lines, extra in INVOICES:
        _add(
            sandbox,
            tenant_id,
            "Invoices",
            {
                "InvoiceID": demo_id(tenant_id, "invoice", number),
                "InvoiceNumber": number,
                "Type": kind,
                "Contact": {"ContactID": demo_id(tenant_id, "contact", contact)},
                "Date": when,
                "DueDate": when,
                "Status": status,
                "LineItems": _lines(lines, prices, kind == "ACCREC"),
                **extra,
            },
        )
    for number, kind, contact, when, status, lines in CREDIT_NOTES:
        _add(
            sandbox,
            tenant_id,
            "CreditNotes",
            {
                "CreditNoteID": demo_id(tenant_id, "credit-note", number),
                "CreditNoteNumber": number,
                "Type": kind,
                "Contact": {"ContactID": demo_id(tenant_id, "contact", contact)},
                "Date": when,
                "Status": status,
                "LineItems": _lines(lines, prices, kind == "ACCRECCREDIT"),
            },
        )


def _lines(
    lines: list[tuple[str, str]], prices: dict[str, tuple[str, str]], sales: bool
) -> list[dict[str, Any]]:
    return [
        {
            "ItemCode": code,
            "Description": code,
            "Quantity": qty,
            "UnitAmount": prices[code][1 if sales else 0],
            "AccountCode": "200" if sales else "300",
        }
        for code, qty in lines
    ]
