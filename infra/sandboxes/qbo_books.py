"""The QBO sandbox's books: companies and their records, the rules API writes must pass, how QBO fills in and
totals a record, and how sales documents and adjustments move stock."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from infra.sandboxes.common import Clock
from infra.sandboxes.qbo_query import ENTITIES, NAME_LISTS
from infra.sandboxes.qbo_reports import cents

DISCOUNT = "DiscountLineDetail"
# GlobalTaxCalculation: "Method in which tax is applied. Allowed values are: TaxExcluded, TaxInclusive, and
# NotApplicable" (Intuit's Invoice, SalesReceipt, CreditMemo and RefundReceipt references)
GLOBAL_TAX = ("TaxExcluded", "TaxInclusive", "NotApplicable")
CENT = Decimal("0.01")
DEFAULT_ZONE = "America/Los_Angeles"  # a company whose zone is not chosen (and answers with no company)
SALES_DOCS = ("Invoice", "SalesReceipt", "CreditMemo", "RefundReceipt")
# How a sales document moves a tracked Inventory item's QtyOnHand, per unit on its lines. Intuit, "Managing
# Inventory" (developer.intuit.com/app/developer/qbo/docs/concepts/manage-inventory): "Recording the sale of
# an inventory item decreases the value of Inventory Asset account by the original cost of the item and
# decreases the Quantity on Hand units for that item" (invoices and sales receipts are QBO's sales forms,
# developer.intuit.com/app/developer/qbo/docs/workflows/manage-inventory). A credit memo or refund receipt
# records the customer's return and puts the items back in stock (QuickBooks help "What are credit memos
# for?": "record a return when a customer returns items"). A bundle (Group) line relieves each component
# (Intuit "Item bundles using groups" workflow; ../shared/providers/qbo.md section 3.2). A voided
# document keeps its lines with quantities 0 (Intuit blog 2016-04-06 "Voiding invoice objects"), so it
# moves nothing; a deleted one is gone; an edit moves the difference between the old and the new lines.
STOCK_SIGN = {
    "Invoice": Decimal(-1),
    "SalesReceipt": Decimal(-1),
    "CreditMemo": Decimal(1),
    "RefundReceipt": Decimal(1),
}
TRANSACTIONS = (*SALES_DOCS, "JournalEntry", "InventoryAdjustment")
# What a bundle (Group item, made in QBO's UI only) may hold. Intuit's "Item bundles using groups": its lines
# name items with a quantity each; the example bundle holds Inventory and Service items and the page sets
# Category items (Item.type = Category) apart; a bundle is not itself stock (TrackQtyOnHand false). So a line
# names an Inventory, NonInventory or Service item: not a category, nor another bundle (nesting: UNSURE, no
# Intuit words for it found; the service reads a bundle line's components as item lines). At most 50 lines,
# as the catalog's note has it (shared/domain/catalog.py, "QBO: 50 to a bundle"; UNSURE: no Intuit page
# found). The UI's words for these refusals: UNSURE.
BUNDLE_PARTS = ("Inventory", "NonInventory", "Service")
BUNDLE_LINES = 50
ENTITY_BY_SEGMENT = {name.lower(): name for name in ENTITIES}
ENTITY_SEGMENTS = "|".join(ENTITY_BY_SEGMENT)

CURRENCY_NAMES = {
    "USD": "United States Dollar",
    "EUR": "Euro",
    "GBP": "British Pound Sterling",
    "CAD": "Canadian Dollar",
    "AUD": "Australian Dollar",
}
# AccountType -> (Classification, its AccountSubTypes the sandbox knows): Intuit Java SDK XSD
# (ipp-v3-java-data Finance.xsd AccountTypeEnum, AccountSubTypeEnum) and the Account reference's
# classification table (developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account).
# An Account created with only one of AccountType and AccountSubType gets the other (the reference:
# AccountType "Required if AccountSubType is not specified" and the reverse; its sample creates {"Name",
# "AccountType": "Accounts Receivable"} and answers AccountSubType "AccountsReceivable"; python-quickbooks'
# integration test creates one with only AccountSubType "CashOnHand"). Which sub-type QBO picks for the
# other types is UNSURE: the sandbox takes the first listed.
ACCOUNT_TYPES = {
    "Bank": ("Asset", "Checking CashOnHand Savings MoneyMarket TrustAccounts"),
    "Accounts Receivable": ("Asset", "AccountsReceivable"),
    "Other Current Asset": ("Asset", "OtherCurrentAssets Inventory UndepositedFunds PrepaidExpenses"),
    "Fixed Asset": (
        "Asset",
        "MachineryAndEquipment FurnitureAndFixtures Vehicles Buildings OtherFixedAssets",
    ),
    "Other Asset": ("Asset", "OtherLongTermAssets"),
    "Accounts Payable": ("Liability", "AccountsPayable"),
    "Credit Card": ("Liability", "CreditCard"),
    "Other Current Liability": ("Liability", "OtherCurrentLiabilities"),
    "Long Term Liability": ("Liability", "OtherLongTermLiabilities NotesPayable"),
    "Equity": ("Equity", "OwnersEquity OpeningBalanceEquity RetainedEarnings"),
    "Income": ("Revenue", "SalesOfProductIncome ServiceFeeIncome DiscountsRefundsGiven OtherPrimaryIncome"),
    "Other Income": ("Revenue", "OtherMiscellaneousIncome InterestEarned"),
    "Cost of Goods Sold": ("Expense", "SuppliesMaterialsCogs CostOfLaborCos OtherCostsOfServiceCos"),
    "Expense": (
        "Expense",
        "SuppliesMaterials OtherMiscellaneousServiceCost OfficeGeneralAdministrativeExpenses",
    ),
    "Other Expense": ("Expense", "OtherMiscellaneousExpense Depreciation"),
}
CLASSIFICATION = {kind: classification for kind, (classification, _) in ACCOUNT_TYPES.items()}
SUBTYPE_TYPES = {sub: kind for kind, (_, subs) in ACCOUNT_TYPES.items() for sub in subs.split()}
_COMMON = "Id SyncToken sparse domain MetaData"
_PARTY = (
    "DisplayName CompanyName GivenName MiddleName FamilyName Title Suffix PrintOnCheckName Active "
    "PrimaryEmailAddr PrimaryPhone Mobile Fax WebAddr BillAddr CurrencyRef Balance"
)
WRITABLE_FIELDS = {  # top-level properties QBO accepts on writes; anything else is error 2010
    name: frozenset(f"{_COMMON} {fields}".split())
    for name, fields in {
        "JournalEntry": "TxnDate DocNumber PrivateNote Line Adjustment CurrencyRef ExchangeRate TxnTaxDetail "
        "TotalAmt HomeTotalAmt DepartmentRef TransactionLocationType",
        "InventoryAdjustment": "TxnDate DocNumber PrivateNote Line AdjustAccountRef CustomerRef "
        "DepartmentRef",
        # BillRate and TaxReportingBasis are Vendor properties the official client sends (python-quickbooks
        # 0.9.12 integration tests against an Intuit sandbox; qbo.md section 7)
        "Vendor": f"{_PARTY} AcctNum TaxIdentifier TermRef Vendor1099 BillRate TaxReportingBasis "
        "APAccountRef OtherContactInfo AlternatePhone",
        # the properties python-quickbooks 0.9.12 sends on every Customer (objects/customer.py), all in
        # the Customer reference (developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/
        # customer)
        "Customer": f"{_PARTY} ShipAddr Notes Taxable FullyQualifiedName BalanceWithJobs BillWithParent Job "
        "Level IsProject ParentRef PreferredDeliveryMethod PrimaryTaxIdentifier ResaleNum OpenBalanceDate "
        "ARAccountRef DefaultTaxCodeRef PaymentMethodRef SalesTermRef",
        # read-only properties a read answers (PrintGroupedItems, Level) may come back on a full update, as
        # they do from python-quickbooks: Intuit's Item reference lists them, so they are no unknown field
        "Item": "Name Sku Description PurchaseDesc Active Type UnitPrice PurchaseCost IncomeAccountRef "
        "ExpenseAccountRef AssetAccountRef TrackQtyOnHand QtyOnHand InvStartDate ReorderPoint Taxable "
        "SubItem ParentRef ItemGroupDetail FullyQualifiedName PrintGroupedItems Level SalesTaxCodeRef "
        "PurchaseTaxCodeRef PrefVendorRef SalesTaxIncluded PurchaseTaxIncluded",
        # Intuit's Account reference (…/all-entities/account), read-only ones included (a full update sends
        # the object as read)
        "Account": "Name AcctNum Description Active AccountType AccountSubType ParentRef SubAccount "
        "FullyQualifiedName Classification CurrentBalance CurrentBalanceWithSubAccounts CurrencyRef "
        "TaxCodeRef TxnLocationType AccountAlias",
    }.items()
}


class QboFault(Exception):
    """A request QBO refuses; rendered as a ``Fault`` body."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str = "",
        status: int = 400,
        kind: str = "ValidationFault",
        element: str = "",
    ) -> None:
        super().__init__(detail or message)
        self.code, self.message, self.detail, self.status, self.kind = code, message, detail, status, kind
        self.element = element  # the property the error is about, when QBO names one


class AdminError(ValueError):
    """A bad admin request (bad entity, bad field)."""


class AdminNotFound(AdminError):
    """An admin request naming a company or record that doesn't exist."""


def business_error(detail: str) -> QboFault:
    return QboFault(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


def required(name: str) -> QboFault:
    return QboFault(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {name} is missing in the request",
    )


def inactive(what: str) -> QboFault:
    return QboFault(
        "610",
        "Object Not Found",
        f"Something you're trying to use has been made inactive. Check the fields with accounts, "
        f"customers, items, vendors or employees. ({what})",
    )


def invalid_reference(entity: str, ref_id: str) -> QboFault:
    return QboFault(
        "2500", "Invalid Reference Id", f"Invalid Reference Id : {entity} element id {ref_id} not found"
    )


# A JournalEntry line on an Accounts Payable account must name a vendor, on Accounts Receivable a
# customer: JournalEntryLineDetail.Entity {"Type": "Vendor"|"Customer", "EntityRef": {"value": id}}
# (Intuit's JournalEntry reference; QBO's Name field). Without it QBO answers 6000 "When you use Accounts
# Payable, you must choose a vendor in the Name field." (../shared/providers/qbo.md section 7: Expensify
# QBO097, a public QBO sandbox test report). The A/R text follows the same pattern (integrators such as
# Link My Books document the customer requirement; UNSURE of QBO's exact A/R wording).
NAME_REQUIRED = {"Accounts Payable": "Vendor", "Accounts Receivable": "Customer"}


# Text lengths on the transactions the sandbox writes (JournalEntry, InventoryAdjustment and the sales
# documents): DocNumber "max 21 characters", PrivateNote "max 4000 characters" (Intuit's references for each,
# e.g. developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice; ../shared/providers/
# qbo.md sections 3.5 and 3.8). Longer text is refused with 2050 "String length is either shorter or longer
# than supported by specification", its Detail "String length specified does not match the supported length.
# Min:0 Max:4,000 supported. Supplied length: 4,006" and the property as its element (raw QBO answers
# quoted in ruckus/quickbooks-ruby#436 for a 4000-character Description, and consolibyte/quickbooks-php#79
# for "Max:21" on an invoice).
TEXT_MAX = {"DocNumber": 21, "PrivateNote": 4000}


def check_text_lengths(body: dict[str, Any]) -> None:
    for key, longest in TEXT_MAX.items():
        length = len(str(body.get(key) or ""))
        if length > longest:
            raise QboFault(
                "2050",
                "String length is either shorter or longer than supported by specification",
                f"String length specified does not match the supported length. Min:0 Max:{longest:,} "
                f"supported. Supplied length: {length:,}",
                element=key,
            )


# AdjustAccountRef, the account an InventoryAdjustment's value goes to: "an expense or opening balance
# equity account" (Intuit's schema, InventoryAdjustment.AdjustAccountRef: intuit/QuickBooks-V3-PHP-SDK
# src/Data/IPPInventoryAdjustment.php, the Java SDK's Finance.xsd; qbo.md section 3.8), in QBO's account types
# Cost of Goods Sold, Expense and Other Expense (classification Expense: ACCOUNT_TYPES) or Equity. UNSURE:
# whether QBO takes every Equity account or only Opening Balance Equity, and its code and wording for the
# refusal (the sandbox answers 6000, its business validation error).
ADJUST_ACCOUNT_TYPES = ("Cost of Goods Sold", "Expense", "Other Expense", "Equity")


NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
# Vendor and Customer: "DisplayName, Title, GivenName, MiddleName, FamilyName, Suffix, and PrintOnCheckName
# must not contain colon (:), tab (\t), or newline (\n)" (Intuit's Vendor and Customer references, business
# rules, as copied in public repositories' QBO API notes; ruckus/quickbooks-ruby refuses a Vendor
# DisplayName 'Tractor:Trailer' for it; Workato's QBO troubleshooting page: "QuickBooks does not allow ...
# colon (:)" in a display name). A colon is how QBO joins a sub-customer's name to its parent's. QBO's code
# and wording for the refusal are UNSURE: the sandbox answers 6000, its business validation error.
PARTY_TEXT = ("DisplayName", *NAME_PARTS, "PrintOnCheckName")
PARTY_BANNED = ":\t\n"
NAME_MAX = 100  # Item and Account Name: "max 100 characters" (Intuit's Item and Account references)


def _list_name(record: dict[str, Any], banned: str, described: str) -> str:
    """An Item's or Account's Name, refused when empty, over 100 characters or holding a character its
    reference forbids (Item: colon, tab, newline; Account: double quote, colon). QBO's code for these is
    UNSURE: the sandbox answers 2050, its "String length" error."""
    name = str(record.get("Name") or "")
    if not name.strip() or len(name) > NAME_MAX or any(c in name for c in banned):
        raise QboFault(
            "2050",
            "String length is either shorter or longer than supported by specification",
            f"Name is required, at most {NAME_MAX} characters, and can't contain {described}",
        )
    return name


def _check_party_text(record: dict[str, Any]) -> None:
    """A Vendor's or Customer's names hold no colon, tab or newline (``PARTY_TEXT``)."""
    for key in PARTY_TEXT:
        if any(c in str(record.get(key) or "") for c in PARTY_BANNED):
            raise business_error(f"{key} can't contain a colon (:), a tab or a new line.")


def _item_lines(lines: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every line that names an item, bundle components included."""
    for line in lines:
        if line.get("DetailType") == "SalesItemLineDetail":
            yield line
        elif line.get("DetailType") == "GroupLineDetail":
            for component in line["GroupLineDetail"].get("Line", []):
                if component.get("DetailType") == "SalesItemLineDetail":
                    yield component


def decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def plain(value: Any) -> Any:
    """Admin input as the sandbox stores it: floats as Decimal, dates as ISO text, containers copied."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def wire(value: Any) -> Any:
    """JSON numbers for Decimals at the HTTP boundary (json has no Decimal; the text round-trips exactly)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


@dataclass
class Company:
    realm_id: str
    name: str
    country: str
    plan: str
    inventory_tracking: bool
    closing_date: date | None
    home_currency: str
    created: datetime
    # QBO keeps each company's time zone (its settings) and stamps every time of that company in it, with
    # its offset: a response's "time" carries the company's local offset (qbo.md section 7 "Time zone").
    # UNSURE, and contradicted: Intuit staff answered that the API returns MetaData times "always in
    # PST/PDT" (intuit/QuickBooks-V3-Java-SDK#26, 2017), which every Intuit sample (-07:00/-08:00) fits. If
    # so, a real company's stamps and "time" say nothing of its zone (shared/providers/qbo/sales.time_zone
    # reads its default zone from that offset).
    time_zone: str = DEFAULT_ZONE
    records: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in ENTITIES}
    )
    tombstones: list[tuple[str, str, datetime]] = field(default_factory=list)  # entity, id, deleted at
    next_ids: Counter[str] = field(default_factory=Counter)
    request_ids: dict[str, tuple[datetime, int, bytes]] = field(default_factory=dict)
    stock_moves: dict[str, list[tuple[str, Decimal]]] = field(default_factory=dict)  # adjustment -> diffs
    # (entity, sales document id) -> item id -> the QtyOnHand change that document made
    sale_moves: dict[tuple[str, str], dict[str, Decimal]] = field(default_factory=dict)
    openings: dict[str, tuple[date, Decimal]] = field(default_factory=dict)  # item -> starting value

    def summary(self) -> dict[str, Any]:
        return {
            "realm_id": self.realm_id,
            "name": self.name,
            "country": self.country,
            "plan": self.plan,
            "inventory_tracking": self.inventory_tracking,
            "home_currency": self.home_currency,
            "closing_date": self.closing_date.isoformat() if self.closing_date else None,
            "time_zone": self.time_zone,
        }

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def multicurrency(self) -> bool:
        """Preferences.CurrencyPrefs.MultiCurrencyEnabled, read by the Preferences answer and by the rules
        that depend on it (``_journal_currency``). In QBO it is a company setting; the sandbox keeps no switch
        of its own and has it on exactly when the company holds a record (a customer, a document) in a
        currency other than its home currency, which only a multicurrency company can hold. The sandbox's
        model: a company with the setting on and no foreign record yet can't be shown, and how QBO answers a
        foreign customer or sales document sent while the setting is off is UNSURE (not refused here)."""
        return any(
            (r.get("CurrencyRef") or {}).get("value", self.home_currency) != self.home_currency
            for records in self.records.values()
            for r in records.values()
        )

    def new_id(self, entity: str) -> str:
        self.next_ids[entity] += 1
        return str(self.next_ids[entity])

    def find(self, entity: str, record_id: str) -> dict[str, Any] | None:
        return self.records[entity].get(str(record_id))


class QboBooks:
    """Mixed into ``QboSandbox``: validation and normalization of records, stock moves, the sandbox's time."""

    companies: dict[str, Company]
    clock: Clock

    # ---- time -----------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def stamp(self, company: Company, when: datetime | None = None) -> str:
        """A time of ``company``'s records (MetaData), in its own zone with the offset."""
        return (when or self.now()).astimezone(company.zone).isoformat(timespec="seconds")

    def today(self, company: Company) -> date:
        return self.now().astimezone(company.zone).date()

    def _time(self, company: Company | None) -> str:
        """A response's ``time``: now in the company's zone (QBO's own for an answer with no company)."""
        zone = company.zone if company else ZoneInfo(DEFAULT_ZONE)
        return self.now().astimezone(zone).isoformat(timespec="milliseconds")

    # ---- validation of API writes ---------------------------------------------------------------
    def _validate(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """The record a write of ``body`` makes (API and admin alike), or the QboFault QBO answers."""
        if entity in TRANSACTIONS:
            check_text_lengths(body)
        if entity == "JournalEntry":
            return self._journal_entry(company, body)
        if entity == "InventoryAdjustment":
            return self._inventory_adjustment(company, body)
        return self.normalize(company, entity, body)

    def _txn_date(self, company: Company, body: dict[str, Any]) -> date:
        try:
            when = date.fromisoformat(str(body["TxnDate"])) if body.get("TxnDate") else self.today(company)
        except ValueError:
            raise QboFault(
                "2010",
                "Request has invalid or unsupported property",
                f"TxnDate {body['TxnDate']!r} is not a date",
            ) from None
        if company.closing_date and when <= company.closing_date:
            raise QboFault(
                "6210",
                "Account Period Closed",
                f"The account period has closed and the books are closed as of "
                f"{company.closing_date.isoformat()}. Date entered must be after the closing date.",
            )
        return when

    def _active_ref(self, company: Company, entity: str, ref: Any, field_name: str) -> dict[str, Any]:
        ref_id = str(ref.get("value", "")) if isinstance(ref, dict) else ""
        if not ref_id:
            raise required(field_name)
        record = company.find(entity, ref_id)
        if record is None:
            raise invalid_reference(f"{entity}s" if entity == "Account" else entity, ref_id)
        if not record.get("Active", True):
            raise inactive(f"{entity} {ref_id}")
        return record

    def _journal_entry(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        when = self._txn_date(company, body)
        lines = body.get("Line")
        if not isinstance(lines, list) or not lines:
            raise required("Line")
        totals = {"Debit": Decimal(0), "Credit": Decimal(0)}
        built = []
        for number, raw in enumerate(lines):
            detail = raw.get("JournalEntryLineDetail")
            if raw.get("DetailType") != "JournalEntryLineDetail" or not isinstance(detail, dict):
                raise required("Line.JournalEntryLineDetail")
            posting = detail.get("PostingType")
            if posting not in totals:
                raise QboFault(
                    "2010",
                    "Request has invalid or unsupported property",
                    f"PostingType {posting!r} must be Debit or Credit",
                )
            amount = decimal(raw.get("Amount", 0))
            if amount <= 0:
                raise business_error("Journal entry line amounts must be positive.")
            account = self._active_ref(company, "Account", detail.get("AccountRef"), "AccountRef")
            entity = self._line_entity(company, detail.get("Entity"), account)
            totals[posting] += amount
            built.append(
                {
                    **raw,
                    "Id": str(number),
                    "Amount": amount,
                    "JournalEntryLineDetail": {
                        **detail,
                        "AccountRef": {"value": account["Id"], "name": account["Name"]},
                        **({"Entity": entity} if entity else {}),
                    },
                }
            )
        if totals["Debit"] != totals["Credit"]:
            raise business_error(
                "You can't save an unbalanced journal entry: debits must equal credits "
                f"(debits {totals['Debit']}, credits {totals['Credit']})."
            )
        return {
            **body,
            "TxnDate": when.isoformat(),
            "Line": built,
            "TotalAmt": totals["Debit"],
            "Adjustment": bool(body.get("Adjustment", False)),
            "domain": "QBO",
            "sparse": False,
            "CurrencyRef": self._journal_currency(company, body),
        }

    @staticmethod
    def _journal_currency(company: Company, body: dict[str, Any]) -> Any:
        """The journal's CurrencyRef, the home currency when none is sent. Intuit's JournalEntry reference,
        CurrencyRef: "Reference to the currency in which all amounts on the associated transaction are
        expressed. This must be defined if multicurrency is enabled for the company. Multicurrency is enabled
        for the company if Preferences.MultiCurrencyEnabled is set to true"
        (developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/journalentry): without
        multicurrency a company has one currency, its home currency, and a journal in another is refused.
        QBO's code and wording for that refusal are UNSURE: the sandbox answers 6000, its business validation
        error."""
        currency = body.get("CurrencyRef") or {"value": company.home_currency}
        code = str(currency.get("value", "")) if isinstance(currency, dict) else str(currency)
        if code != company.home_currency and not company.multicurrency:
            raise business_error(
                f"Multicurrency is off in this company: a journal entry can only be in its home currency "
                f"{company.home_currency}, not {code}."
            )
        return currency

    def _line_entity(self, company: Company, entity: Any, account: dict[str, Any]) -> dict[str, Any] | None:
        """The line's Name (Entity) with the name filled in; refused when the account needs one of a kind
        the line doesn't carry, or when it names no active vendor / customer."""
        wanted = NAME_REQUIRED.get(str(account.get("AccountType")))
        kind = entity.get("Type") if isinstance(entity, dict) else None
        if wanted and kind != wanted:
            ledger, party = account["AccountType"], wanted.lower()
            raise business_error(f"When you use {ledger}, you must choose a {party} in the Name field.")
        if entity is None:
            return None
        if kind not in ("Vendor", "Customer"):
            raise QboFault(
                "2010",
                "Request has invalid or unsupported property",
                f"Entity Type {kind!r} must be Vendor or Customer",
            )
        record = self._active_ref(company, str(kind), entity.get("EntityRef"), "Entity.EntityRef")
        return {"Type": kind, "EntityRef": {"value": record["Id"], "name": record.get("DisplayName", "")}}

    def _inventory_adjustment(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        if company.country != "US" or company.plan not in ("Plus", "Advanced"):
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: Inventory adjustments need QuickBooks Online Plus or "
                f"Advanced in the US (this company: {company.plan}, {company.country}).",
            )
        if not company.inventory_tracking:
            raise business_error("Turn on inventory tracking (track quantity on hand) to adjust inventory.")
        when = self._txn_date(company, body)
        account = self._active_ref(company, "Account", body.get("AdjustAccountRef"), "AdjustAccountRef")
        if account.get("AccountType") not in ADJUST_ACCOUNT_TYPES:  # see ADJUST_ACCOUNT_TYPES
            raise business_error(
                f"The inventory adjustment account must be a Cost of Goods Sold, Expense, Other Expense or "
                f"Equity account: {account['Name']} is {account.get('AccountType')}."
            )
        lines = body.get("Line")
        if not isinstance(lines, list) or not lines:
            raise required("Line")
        built = []
        for number, raw in enumerate(lines, 1):
            detail = raw.get("ItemAdjustmentLineDetail")
            if raw.get("DetailType") != "ItemAdjustmentLineDetail" or not isinstance(detail, dict):
                raise required("Line.ItemAdjustmentLineDetail")
            item = self._active_ref(company, "Item", detail.get("ItemRef"), "ItemRef")
            if item.get("Type") != "Inventory" or not item.get("TrackQtyOnHand"):
                raise business_error(
                    f"Item {item['Name']} is not an inventory item that tracks quantity on hand."
                )
            if ("QtyDiff" in detail) == ("NewQty" in detail):
                raise business_error("Each adjustment line needs exactly one of QtyDiff or NewQty.")
            if item.get("InvStartDate") and when < date.fromisoformat(item["InvStartDate"]):
                raise business_error(f"The adjustment date is before the start date of item {item['Name']}.")
            quantity = {k: decimal(detail[k]) for k in ("QtyDiff", "NewQty") if k in detail}
            built.append(
                {
                    "Id": str(number),
                    "DetailType": "ItemAdjustmentLineDetail",
                    "ItemAdjustmentLineDetail": {
                        **detail,
                        **quantity,
                        "ItemRef": {"value": item["Id"], "name": item["Name"]},
                    },
                }
            )
        return {
            **body,
            "TxnDate": when.isoformat(),
            "Line": built,
            "domain": "QBO",
            "sparse": False,
            "AdjustAccountRef": {"value": account["Id"], "name": account["Name"]},
            "DocNumber": body.get("DocNumber") or str(company.next_ids["InventoryAdjustment"] + 1),
        }

    def _apply_stock(self, company: Company, adjustment: dict[str, Any]) -> None:
        diffs = []
        for line in adjustment["Line"]:
            detail = line["ItemAdjustmentLineDetail"]
            item = company.records["Item"][detail["ItemRef"]["value"]]
            on_hand = decimal(item.get("QtyOnHand", 0))
            diff = detail["NewQty"] - on_hand if "NewQty" in detail else detail["QtyDiff"]
            diffs.append((item["Id"], diff))
            self._touch(company, item, {"QtyOnHand": on_hand + diff})
        company.stock_moves[adjustment["Id"]] = diffs

    def _reverse_stock(self, company: Company, adjustment_id: str) -> None:
        for item_id, diff in company.stock_moves.pop(adjustment_id, []):
            item = company.records["Item"][item_id]
            self._touch(company, item, {"QtyOnHand": decimal(item.get("QtyOnHand", 0)) - diff})

    @staticmethod
    def _item_details(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The SalesItemLineDetail of every line that names an item, bundle components included."""
        return (line["SalesItemLineDetail"] for line in _item_lines(document.get("Line", [])))

    def _sale_effect(self, company: Company, entity: str, document: dict[str, Any]) -> dict[str, Decimal]:
        """Item id -> the QtyOnHand change the document makes (STOCK_SIGN); only tracked Inventory items."""
        effect: dict[str, Decimal] = {}
        for detail in self._item_details(document):
            item = company.find("Item", str(detail.get("ItemRef", {}).get("value", "")))
            if item is None or item.get("Type") != "Inventory" or not item.get("TrackQtyOnHand"):
                continue  # services, non-inventory items and untracked items have no quantity
            change = STOCK_SIGN[entity] * decimal(detail.get("Qty", 0))
            effect[item["Id"]] = effect.get(item["Id"], Decimal(0)) + change
        return {item_id: change for item_id, change in effect.items() if change}

    def _restock(self, company: Company, entity: str, document: dict[str, Any]) -> None:
        """Brings the items' QtyOnHand to what ``document`` as it now stands implies: the change from what
        it moved before (nothing for a new document) is applied, and the item's SyncToken and
        LastUpdatedTime move with it as for an inventory adjustment (QtyOnHand is a stored Item property:
        UNSURE whether QBO bumps the item's SyncToken and LastUpdatedTime on a sale, the sandbox does, as it
        does for adjustments). The item is stamped at the document's own LastUpdatedTime (a back-dated
        seeded document moves its items at that time too), never earlier than the item's last change."""
        key = (entity, document["Id"])
        before = company.sale_moves.pop(key, {})
        after = self._sale_effect(company, entity, document)
        stamp = document.get("MetaData", {}).get("LastUpdatedTime") or self.stamp(company)
        for item_id in sorted(set(before) | set(after), key=int):
            delta = after.get(item_id, Decimal(0)) - before.get(item_id, Decimal(0))
            item = company.find("Item", item_id)
            if not delta or item is None:
                continue
            current = item["MetaData"]["LastUpdatedTime"]
            later = max(current, stamp, key=datetime.fromisoformat)
            self._touch(company, item, {"QtyOnHand": decimal(item.get("QtyOnHand", 0)) + delta}, later)
        if after:
            company.sale_moves[key] = after

    # ---- records: normalize, insert, replace ----------------------------------------------------
    def normalize(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """A full record from a (possibly partial) body: names on refs, defaults, derived totals."""
        own_id = body.get("Id")
        record = {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "MetaData")}
        record.update({"domain": "QBO", "sparse": False})
        if entity in NAME_LISTS:
            record.setdefault("Active", True)
        if entity == "Item":
            self._normalize_item(company, record, own_id)
        elif entity == "Account":
            self._normalize_account(company, record, own_id)
        elif entity in ("Vendor", "Customer"):
            # Intuit's Vendor and Customer references, DisplayName: "If not supplied, the system generates
            # DisplayName by concatenating [its] name components supplied in the request from the
            # following list: Title, GivenName, MiddleName, FamilyName, and Suffix"; one of them or
            # DisplayName is required on create. Joined with single spaces (UNSURE of QBO's exact joining);
            # an empty string is absent, as python-quickbooks sends "" for every name part left unset.
            if not str(record.get("DisplayName") or "").strip():
                parts = (str(record.get(part) or "").strip() for part in NAME_PARTS)
                record["DisplayName"] = " ".join(part for part in parts if part)
            if not record["DisplayName"]:
                raise required("DisplayName")
            _check_party_text(record)
            self._check_unique(company, ("Vendor", "Customer"), "DisplayName", record["DisplayName"], own_id)
            record.setdefault("CurrencyRef", {"value": company.home_currency})
            record.setdefault("Balance", Decimal(0))
            if entity == "Customer":
                record.setdefault("FullyQualifiedName", record["DisplayName"])
        elif entity in SALES_DOCS:
            self._normalize_sales_doc(company, entity, record)
        return record

    def _check_unique(
        self, company: Company, entities: tuple[str, ...], key: str, value: str, own_id: Any
    ) -> None:
        for entity in entities:
            for record in company.records[entity].values():
                if record.get(key, "").lower() == value.lower() and record["Id"] != str(own_id):
                    raise QboFault(
                        "6240",
                        "Duplicate Name Exists Error",
                        f"The name supplied already exists. : Another {entity} is already using this "
                        f"name. Please use a different name. (Id={record['Id']})",
                    )

    def _ref(self, company: Company, entity: str, ref: Any, name_key: str = "Name") -> dict[str, str]:
        ref_id = str(ref.get("value", "")) if isinstance(ref, dict) else str(ref or "")
        record = company.find(entity, ref_id)
        if record is None:
            raise invalid_reference(entity, ref_id)
        return {"value": ref_id, "name": record.get(name_key, "")}

    def _normalize_account(self, company: Company, record: dict[str, Any], own_id: Any) -> None:
        """Intuit's Account reference: Name required, "max 100 characters", "must not contain double quotes
        (") or colon (:)", unique among accounts (6240); AccountType or AccountSubType required (ACCOUNT_TYPES
        fills in the other); Classification, FullyQualifiedName, SubAccount and CurrentBalance are read only
        (system defined), so what a full update sends back is not taken."""
        name = _list_name(record, '":', 'double quotes (") or a colon')
        self._check_unique(company, ("Account",), "Name", name, own_id)
        kind, sub = record.get("AccountType"), record.get("AccountSubType")
        if not kind and not sub:
            raise required("AccountType")
        kind = kind or SUBTYPE_TYPES.get(str(sub))
        if kind not in ACCOUNT_TYPES:  # QBO's code for an unknown type is UNSURE
            wrong = record.get("AccountType") or sub
            raise QboFault(
                "2010", "Request has invalid or unsupported property", f"Invalid account type {wrong!r}"
            )
        record["AccountType"] = kind
        record["AccountSubType"] = sub or ACCOUNT_TYPES[kind][1].split()[0]
        record["Classification"] = CLASSIFICATION[kind]
        record["FullyQualifiedName"] = name
        record["SubAccount"] = False
        current = company.find("Account", str(own_id)) if own_id else None
        record["CurrentBalance"] = (current or {}).get("CurrentBalance", Decimal(0))
        record.setdefault("CurrencyRef", {"value": company.home_currency})

    def _normalize_item(self, company: Company, record: dict[str, Any], own_id: Any) -> None:
        name = _list_name(record, ":\t\n", "a colon, tab or newline")
        self._check_unique(company, ("Item",), "Name", name, own_id)
        kind = record.get("Type")
        if kind not in ("Inventory", "NonInventory", "Service", "Group", "Category"):
            raise required("Type")
        if kind == "Inventory" and not (company.inventory_tracking and company.plan in ("Plus", "Advanced")):
            raise business_error(
                "Inventory items need QuickBooks Online Plus or Advanced with quantity tracking turned on."
            )
        record["FullyQualifiedName"] = name  # read only: derived from Name (the sandbox keeps no sub-items)
        for key in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef"):
            if record.get(key):  # an inactive account is refused as on a journal line (610; UNSURE for items)
                account = self._active_ref(company, "Account", record[key], key)
                record[key] = {"value": account["Id"], "name": account["Name"]}
        # IncomeAccountRef: "required for Inventory and Service item types" (Intuit's Item reference)
        if kind == "Service" and not record.get("IncomeAccountRef"):
            raise required("IncomeAccountRef")
        # AssetAccountRef: "Must be an account with Account.AccountType set to Other Current Asset" (Intuit's
        # Item reference; QBO's code and wording for the refusal are UNSURE)
        asset = company.find("Account", (record.get("AssetAccountRef") or {}).get("value", ""))
        if asset is not None and asset.get("AccountType") != "Other Current Asset":
            raise business_error(
                f"The inventory asset account must be an Other Current Asset: {asset['Name']}."
            )
        if kind == "Inventory":
            missing = [
                k
                for k in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef", "InvStartDate")
                if k not in record
            ]
            if missing:
                raise required(missing[0])
            record.setdefault("TrackQtyOnHand", True)
            record["QtyOnHand"] = decimal(record.get("QtyOnHand", 0))
        else:
            record["TrackQtyOnHand"] = False
        if kind == "Group":
            record["ItemGroupDetail"] = {"ItemGroupLine": self._bundle_lines(company, record)}
            record.setdefault("PrintGroupedItems", False)
        for key in ("UnitPrice", "PurchaseCost"):
            record[key] = decimal(record.get(key, 0))

    def _bundle_lines(self, company: Company, record: dict[str, Any]) -> list[dict[str, Any]]:
        """A bundle's lines as QBO keeps them, or its refusal of what no bundle holds (``BUNDLE_PARTS``)."""
        lines = record.get("ItemGroupDetail", {}).get("ItemGroupLine", [])
        if len(lines) > BUNDLE_LINES:
            raise business_error(f"A bundle can hold at most {BUNDLE_LINES} products and services.")
        kept = []
        for line in lines:
            ref = self._ref(company, "Item", line["ItemRef"])
            part = company.find("Item", ref["value"]) or {}
            if part.get("Type") not in BUNDLE_PARTS:
                raise business_error(
                    f"{ref['name']} is a {part.get('Type')} item: a bundle holds only products and services."
                )
            kept.append({"ItemRef": {**ref, "type": "Item"}, "Qty": decimal(line.get("Qty", 1))})
        return kept

    def _normalize_sales_doc(self, company: Company, entity: str, record: dict[str, Any]) -> None:
        record["CustomerRef"] = self._ref(company, "Customer", record.get("CustomerRef"), "DisplayName")
        record.setdefault("TxnDate", self.today(company).isoformat())
        record.setdefault("DocNumber", str(1001 + len(company.records[entity])))
        currency = record.get("CurrencyRef") or {"value": company.home_currency}
        code = currency["value"]
        record["CurrencyRef"] = {"value": code, "name": currency.get("name", CURRENCY_NAMES.get(code, code))}
        self._ledger_refs(company, entity, record)
        lines: list[dict[str, Any]] = []
        discounts = [copy.deepcopy(r) for r in record.get("Line", []) if r.get("DetailType") == DISCOUNT]
        for raw in record.get("Line", []):
            if raw.get("DetailType") in ("SubTotalLineDetail", DISCOUNT):
                continue  # recomputed below
            line = copy.deepcopy(raw)
            if line.get("DetailType") == "SalesItemLineDetail":
                self._sales_line(company, line)
            elif line.get("DetailType") == "GroupLineDetail":
                self._group_line(company, line)
            line["Amount"] = decimal(line.get("Amount", 0))
            lines.append({"Id": str(len(lines) + 1), "LineNum": len(lines) + 1, **line})
        subtotal = sum((line["Amount"] for line in lines), Decimal(0))
        tax = self._included_tax(record, lines)
        lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        if len(discounts) > 1:
            raise business_error("A transaction can have only one discount line.")
        off = Decimal(0)
        for discount in discounts:  # after the subtotal, it discounts the subtotal; TotalAmt is after it
            off = self._discount_line(discount, subtotal)
            lines.append(discount)
        total = subtotal - off + tax
        record["Line"] = lines
        record["TotalAmt"] = total
        if "ExchangeRate" in record:
            record["ExchangeRate"] = decimal(record["ExchangeRate"])
            record["HomeTotalAmt"] = (total * record["ExchangeRate"]).quantize(Decimal("0.01"))
        if entity == "Invoice":
            record["Balance"] = total
        elif entity == "CreditMemo":
            record["RemainingCredit"] = total

    @staticmethod
    def _included_tax(record: dict[str, Any], lines: list[dict[str, Any]]) -> Decimal:
        """The tax a ``GlobalTaxCalculation`` TaxInclusive document's lines hold (0 for any other), kept as
        ``TxnTaxDetail.TotalTax`` and added to ``TotalAmt``.

        An item line's ``Amount`` (and ``UnitPrice``) stays without tax even then: the tax-inclusive figure
        is ``SalesItemLineDetail.TaxInclusiveAmt``, "the total amount of the line item including tax"
        (Intuit's Invoice reference, SalesItemLineDetail.TaxInclusiveAmt; Intuit's XSD "Indicates the total
        amount of line item including tax", intuit/QuickBooks-V3-PHP-SDK Data/IPPSalesItemLineDetail.php);
        GlobalTaxCalculation "only affects the display of the invoice ... by default QuickBooks assumes all
        prices exclude tax" (ruckus/quickbooks-ruby#346). A line with a ``TaxCodeRef`` must say it: "if
        GlobalTaxCalculation is TaxInclusive and TaxCodeRef is specified, TaxInclusiveAmt is required"
        (Intuit's JournalEntry reference, tax considerations for global companies; UNSURE that QBO refuses a
        sales line without it the same way, with 2020); one without a tax code holds no tax. The sandbox
        keeps no tax rates, so the tax is what the lines say (``TaxInclusiveAmt`` less ``Amount``), and
        ``TxnTaxDetail`` carries no ``TaxLine``."""
        method = record.get("GlobalTaxCalculation")
        if method is not None and method not in GLOBAL_TAX:
            raise QboFault(
                "2010",
                "Request has invalid or unsupported property",
                f"GlobalTaxCalculation {method!r} is not one of {', '.join(GLOBAL_TAX)}",
            )
        if method != "TaxInclusive":
            return Decimal(0)
        tax = Decimal(0)
        for line in _item_lines(lines):
            detail = line["SalesItemLineDetail"]
            gross = detail.get("TaxInclusiveAmt")
            if gross in (None, "") and detail.get("TaxCodeRef"):
                raise required("Line.SalesItemLineDetail.TaxInclusiveAmt")
            gross = line["Amount"] if gross in (None, "") else decimal(gross).quantize(CENT, ROUND_HALF_UP)
            detail["TaxInclusiveAmt"] = gross
            tax += gross - line["Amount"]
        record["TxnTaxDetail"] = {**(record.get("TxnTaxDetail") or {}), "TotalTax": tax}
        return tax

    def _ledger_refs(self, company: Company, entity: str, record: dict[str, Any]) -> None:
        """The account a sales document's total goes to. Intuit's SalesReceipt reference,
        DepositToAccountRef: the account the payment is deposited to, Undeposited Funds when none is given;
        RefundReceipt reference: DepositToAccountRef (the account the refund is paid from) is required.
        Invoices and credit memos go to Accounts Receivable (ARAccountRef, optional: the company's A/R
        account by default; Intuit Invoice reference)."""
        for key in ("DepositToAccountRef", "ARAccountRef"):
            if record.get(key):
                record[key] = self._ref(company, "Account", record[key])
        if entity == "RefundReceipt" and not record.get("DepositToAccountRef"):
            raise required("DepositToAccountRef")
        if entity == "SalesReceipt" and not record.get("DepositToAccountRef"):
            undeposited = next(
                (
                    a
                    for a in company.records["Account"].values()
                    if a.get("AccountSubType") == "UndepositedFunds"
                ),
                None,
            )
            if undeposited is not None:  # a company without one: the report shows a bare "Undeposited Funds"
                record["DepositToAccountRef"] = {"value": undeposited["Id"], "name": undeposited["Name"]}

    @staticmethod
    def _discount_line(line: dict[str, Any], subtotal: Decimal) -> Decimal:
        """A ``DiscountLineDetail`` line as QBO keeps it: ``PercentBased`` with ``DiscountPercent`` (its
        ``Amount`` the percentage of the subtotal, rounded to the cent half up) or a flat ``Amount``
        (Intuit Invoice reference, DiscountLineDetail; provider facts qbo.md section 7 "Discounts")."""
        detail = line.setdefault("DiscountLineDetail", {})
        if detail.get("PercentBased"):
            percent = decimal(detail.get("DiscountPercent", 0))
            detail["DiscountPercent"] = percent
            amount = (subtotal * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        else:
            detail["PercentBased"] = False
            amount = decimal(line.get("Amount", 0)).quantize(CENT, rounding=ROUND_HALF_UP)
        if amount < 0 or amount > subtotal:
            raise business_error("A discount must be between zero and the subtotal it applies to.")
        line["Amount"] = amount
        return amount

    def _sales_line(self, company: Company, line: dict[str, Any]) -> None:
        """An item line. Its item must exist (2500 Invalid Reference Id) and be active: an inactive one is
        610 "Object Not Found", "Something you're trying to use has been made inactive. Check the fields with
        accounts, customers, items, vendors or employees." (Intuit's common-errors page, developer.intuit.com/
        app/developer/qbo/docs/develop/troubleshooting/handling-common-errors; ../shared/providers/qbo.md
        section 2.8; the raw answer in intuit/QuickBooks-V3-DotNET-SDK#353). UNSURE which of the two codes QBO
        gives an inactive item: a 2018 answer carried the same text as 2500 "Invalid Reference Id"
        (intuit/QuickBooks-V3-PHP-SDK#110); the sandbox answers 610, as for inactive accounts. A bundle's
        components are lines too."""
        detail = line["SalesItemLineDetail"]
        item = self._active_ref(company, "Item", detail.get("ItemRef"), "ItemRef")
        detail["ItemRef"] = {"value": item["Id"], "name": item["Name"]}
        detail["Qty"] = decimal(detail.get("Qty", 1))
        detail["UnitPrice"] = decimal(detail.get("UnitPrice", item.get("UnitPrice", 0)))
        line.setdefault("Amount", (detail["Qty"] * detail["UnitPrice"]).quantize(Decimal("0.01")))

    def _group_line(self, company: Company, line: dict[str, Any]) -> None:
        detail = line["GroupLineDetail"]
        group = self._active_ref(company, "Item", detail.get("GroupItemRef"), "GroupItemRef")
        if group.get("Type") != "Group":
            raise invalid_reference("Item", group["Id"])
        detail["GroupItemRef"] = {"value": group["Id"], "name": group["Name"]}
        detail["Quantity"] = decimal(detail.get("Quantity", 1))
        if "Line" not in detail:
            detail["Line"] = [
                {
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {
                        "ItemRef": part["ItemRef"],
                        "Qty": part["Qty"] * detail["Quantity"],
                    },
                }
                for part in group["ItemGroupDetail"]["ItemGroupLine"]
            ]
        for component in detail["Line"]:
            self._sales_line(company, component)
            component["Amount"] = decimal(component["Amount"])
        line.setdefault("Amount", sum((c["Amount"] for c in detail["Line"]), Decimal(0)))

    def _insert(
        self, company: Company, entity: str, record: dict[str, Any], metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        stamp = self.stamp(company)
        # A new record's SyncToken is the string "0" whatever the request carried (SyncToken is a string on
        # every entity: qbo.md section 3). The official client (python-quickbooks 0.9.12) sends its default
        # ``"SyncToken": 0``, an int, on every create; kept, it made the record undeletable.
        record = {
            "Id": company.new_id(entity),
            **record,
            "SyncToken": "0",
            "MetaData": metadata or {"CreateTime": stamp, "LastUpdatedTime": stamp},
        }
        company.records[entity][record["Id"]] = record
        if entity == "InventoryAdjustment":
            self._apply_stock(company, record)
        if entity in SALES_DOCS:
            self._restock(company, entity, record)
        if entity == "Item" and record.get("Type") == "Inventory" and record.get("InvStartDate"):
            # QBO books an item created with a quantity as its "Inventory Starting Value" on InvStartDate
            value = cents(decimal(record.get("QtyOnHand", 0)) * decimal(record.get("PurchaseCost", 0)))
            company.openings[record["Id"]] = (date.fromisoformat(str(record["InvStartDate"])), value)
        return record

    def _replace(self, company: Company, current: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        """Swaps a record's content for ``record``, keeping its Id and creation time."""
        fresh = {k: v for k, v in record.items() if k not in ("Id", "SyncToken", "MetaData")}
        for key in set(current) - {"Id", "SyncToken", "MetaData"} - set(fresh):
            del current[key]
        return self._touch(company, current, fresh)

    def _touch(
        self, company: Company, record: dict[str, Any], changes: dict[str, Any], stamp: str | None = None
    ) -> dict[str, Any]:
        """Applies changes in place, bumping SyncToken and LastUpdatedTime as QBO does on every change."""
        record.update(changes)
        record["SyncToken"] = str(int(record["SyncToken"]) + 1)
        record["MetaData"] = {**record["MetaData"], "LastUpdatedTime": stamp or self.stamp(company)}
        return record
