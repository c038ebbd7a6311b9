"""One Xero organisation's books in the sandbox: records, write validation, list queries, wire rendering."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from infra.sandboxes.xero_journals import IN_THE_BOOKS, Journal, Posting, record_change
from infra.sandboxes.xero_where import Predicate, enum, lookup

Record = dict[str, Any]

ID_FIELDS = {
    "Accounts": "AccountID",
    "Items": "ItemID",
    "Contacts": "ContactID",
    "ManualJournals": "ManualJournalID",
    "Invoices": "InvoiceID",
    "CreditNotes": "CreditNoteID",
}
PAGED = frozenset({"Contacts", "ManualJournals", "Invoices", "CreditNotes"})
LINE_FIELDS = {"ManualJournals": "JournalLines", "Invoices": "LineItems", "CreditNotes": "LineItems"}
DOCUMENT_TYPES = {"Invoices": ("ACCREC", "ACCPAY"), "CreditNotes": ("ACCRECCREDIT", "ACCPAYCREDIT")}
DOCUMENT_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
ACCOUNT_CLASSES = {
    "ASSET": ("BANK", "CURRENT", "FIXED", "INVENTORY", "NONCURRENT", "PREPAYMENT"),
    "LIABILITY": ("CURRLIAB", "LIABILITY", "TERMLIAB", "PAYG"),
    "EQUITY": ("EQUITY",),
    "EXPENSE": ("DEPRECIATN", "DIRECTCOSTS", "EXPENSE", "OVERHEADS"),
    "REVENUE": ("OTHERINCOME", "REVENUE", "SALES"),
}
TAX_RATES = {"AU": Decimal("0.10"), "NZ": Decimal("0.15")}
TAXED_TYPES = frozenset({"OUTPUT", "INPUT", "OUTPUT2", "INPUT2"})
CENT = Decimal("0.01")
UNIT4 = Decimal("0.0001")
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
# Xero's words when a document with an allocation is edited (a Xero answer quoted in
# waynerobinson/xeroizer#211; ../shared/providers/xero.md section 6 lists it among common 400 messages).
ALLOCATED_DOCUMENT = "This document cannot be edited as it has a payment or credit note allocated to it."


# ---- wire formats ----------------------------------------------------------------------------------


def ms_date(value: date | datetime) -> str:
    """Xero's Microsoft JSON date; date-only values are midnight UTC."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return f"/Date({int(value.timestamp() * 1000)}+0000)/"


def wire_default(value: Any) -> Any:
    """``json.dumps`` hook: money as JSON numbers, dates as /Date(ms+0000)/."""
    if isinstance(value, Decimal):
        return float(value)  # only at the wire boundary; amounts are Decimal inside the sandbox
    if isinstance(value, (date, datetime)):
        return ms_date(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def parse_date(value: Any) -> date:
    """Input dates: ``YYYY-MM-DD``, an ISO date-time, or /Date(ms)/."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    m = _MS_DATE.fullmatch(text)
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC).date()
    return datetime.fromisoformat(text[:19] if "T" in text else text[:10]).date()


def money(value: Any, places: Decimal = CENT) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError("not a number")
    try:
        return Decimal(str(value)).quantize(places, rounding=ROUND_HALF_UP)
    except InvalidOperation as err:
        raise ValueError(f"{value!r} is not a number") from err


def new_id() -> str:
    return str(uuid.uuid4())


def unit_places(unitdp: str | None) -> Decimal:
    """The places of unit amounts a request asks for. Spec parameter ``unitdp`` (on GET/PUT/POST Items,
    GET Invoices, CreditNotes, ...): "e.g. unitdp=4 - (Unit Decimal Places) You can opt in to use four
    decimal places for unit amounts"; without it Xero rounds them to 2 places (../shared/providers/xero.md
    section 4.2, legacy Items doc: "UnitPrice rounds to 2 dp unless ?unitdp=4"). The rounding of a half
    (up or to even) is not documented: half up here, UNSURE."""
    return UNIT4 if (unitdp or "").strip() == "4" else CENT


# ---- the organisation -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """A validated write: the record to store (or the echoed element), with its messages."""

    record: Record
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Organisation:
    tenant_id: str
    name: str
    base_currency: str
    country: str
    created: datetime
    period_lock_date: date | None = None
    end_of_year_lock_date: date | None = None
    financial_year_end: tuple[int, int] | None = None  # (month, day); by country when not set
    timezone: str | None = None  # spec enum TimeZone; by country when not set
    records: dict[str, dict[str, Record]] = field(default_factory=lambda: {c: {} for c in ID_FIELDS})
    numbers: Counter[str] = field(default_factory=Counter)
    journals: list[Journal] = field(default_factory=list)  # the general ledger, oldest first (xero_journals)
    postings: dict[str, Posting] = field(default_factory=dict)  # what each record has in it, by its id

    @property
    def year_end(self) -> tuple[int, int]:
        """(month, day) the financial year ends: 30 June in Australia, 31 March elsewhere unless set."""
        return self.financial_year_end or ((6, 30) if self.country == "AU" else (3, 31))

    def to_wire(self) -> Record:
        wire: Record = {
            "OrganisationID": self.tenant_id,
            "Name": self.name,
            "LegalName": self.name,
            "PaysTax": True,
            "Version": self.country if self.country in ("AU", "NZ", "UK", "US") else "GLOBAL",
            "OrganisationType": "COMPANY",
            "BaseCurrency": self.base_currency,
            "CountryCode": self.country,
            "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE",
            "FinancialYearEndDay": self.year_end[1],
            "FinancialYearEndMonth": self.year_end[0],
            "SalesTaxBasis": "ACCRUALS",
            "SalesTaxPeriod": "QUARTERLY1",
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Exclusive",
            "CreatedDateUTC": self.created,
            "OrganisationEntityType": "COMPANY",
            "Timezone": self.timezone
            or ("NEWZEALANDSTANDARDTIME" if self.country == "NZ" else "AUSEASTERNSTANDARDTIME"),
            "ShortCode": "!" + self.tenant_id[:5],
            "Edition": "BUSINESS",
            "Class": "STANDARD",
            "Addresses": [],
            "Phones": [],
            "ExternalLinks": [],
            "PaymentTerms": {},
        }
        if self.period_lock_date:
            wire["PeriodLockDate"] = self.period_lock_date
        if self.end_of_year_lock_date:
            wire["EndOfYearLockDate"] = self.end_of_year_lock_date
        return wire

    def account(self, *, code: str | None = None, account_id: str | None = None) -> Record | None:
        for account in self.records["Accounts"].values():
            if (code is not None and str(account.get("Code", "")).lower() == code.lower()) or (
                account_id is not None and account["AccountID"].lower() == account_id.lower()
            ):
                return account
        return None

    def find(self, collection: str, key: str) -> Record | None:
        """A record by id (any case), an invoice / credit note by its number, or an item by its Code in place
        of the ItemID (XeroAPI/xero-python#53: get_item with an item's Code finds it, the issue being only a
        "/" in the Code; Xero's own Items page is not in our notes, so UNSURE as a documented promise)."""
        records = self.records[collection]
        found = records.get(key.lower())
        if found is None and collection in DOCUMENT_TYPES:
            number = "InvoiceNumber" if collection == "Invoices" else "CreditNoteNumber"
            found = next((r for r in records.values() if r.get(number) == key), None)
        if found is None and collection == "Items":
            found = next((r for r in records.values() if str(r["Code"]).lower() == key.lower()), None)
        if found is None and collection == "Contacts":  # Xero's Contacts page: GET Contacts/{identifier} is
            # "ContactID" or "ContactNumber - A custom identifier specified from another system"
            found = next((r for r in records.values() if key and r.get("ContactNumber") == key), None)
        return found

    def store(self, collection: str, record: Record) -> None:
        """Keeps the record, posting to the general ledger what changes in what it posts."""
        record_change(self, collection, record)
        self.records[collection][record[ID_FIELDS[collection]].lower()] = record

    def next_number(self, prefix: str) -> str:
        """The next document number of the prefix that no document holds (seeded ones set their own)."""
        taken = {
            str(r.get(field) or "")
            for collection, field in (("Invoices", "InvoiceNumber"), ("CreditNotes", "CreditNoteNumber"))
            for r in self.records[collection].values()
        }
        while True:
            self.numbers[prefix] += 1
            if (number := f"{prefix}-{self.numbers[prefix]:04d}") not in taken:
                return number


# ---- builders: input (wire or stored form) -> Outcome ------------------------------------------------


@dataclass
class Write:
    """What a builder may consult besides the element itself."""

    org: Organisation
    today: date
    existing: Record | None = None
    batch: list[Record] = field(default_factory=list)
    trusted: bool = False
    unit_places: Decimal = CENT  # of unit prices written (see unit_places)


def build(
    org: Organisation,
    collection: str,
    data: Any,
    now: datetime,
    *,
    existing: Record | None = None,
    batch: list[Record] | None = None,
    trusted: bool = False,
    places: Decimal = CENT,
) -> Outcome:
    """Validates one element; ``trusted`` (admin seeding) may set ids and read-only fields and keeps unit
    prices to 4 places; ``places`` are those of unit prices a request writes (``unit_places``)."""
    if not isinstance(data, dict):
        return Outcome({}, ["The element is not a valid object."])
    id_field = ID_FIELDS[collection]
    own_id = (existing or {}).get(id_field) or (trusted and data.get(id_field)) or new_id()
    merged = {**(existing or {}), **data, id_field: own_id}
    outcome = _BUILDERS[collection](
        merged, Write(org, now.date(), existing, batch or [], trusted, UNIT4 if trusted else places)
    )
    outcome.record[id_field] = own_id
    outcome.record["UpdatedDateUTC"] = now
    return outcome


def after_store(org: Organisation, collection: str, record: Record) -> None:
    """Xero sets IsCustomer / IsSupplier on a contact once a sales / purchase document uses it."""
    if collection not in DOCUMENT_TYPES or not record.get("Contact"):
        return
    contact = org.records["Contacts"].get(record["Contact"]["ContactID"].lower())
    if contact is not None:
        flag = "IsCustomer" if record["Type"] in ("ACCREC", "ACCRECCREDIT") else "IsSupplier"
        contact[flag] = True


def _text(data: Record, key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value).strip()


def _date_or_error(data: Record, key: str, errors: list[str], default: date | None) -> date | None:
    if data.get(key) in (None, ""):
        return default
    try:
        return parse_date(data[key])
    except ValueError:
        errors.append(f"The {key} '{data[key]}' is not a valid date.")
        return default


def build_account(data: Record, w: Write) -> Outcome:
    org, errors = w.org, []
    code, name, kind = _text(data, "Code"), _text(data, "Name"), _text(data, "Type").upper()
    if not code or len(code) > 10:
        errors.append("Please enter a Code of 10 characters or less.")
    if not name or len(name) > 150:
        errors.append("Please enter a Name of 150 characters or less.")
    klass = next((c for c, types in ACCOUNT_CLASSES.items() if kind in types), None)
    if klass is None:
        errors.append(f"Account Type '{kind}' is not valid.")
    own_id = data.get("AccountID")
    for other in org.records["Accounts"].values():
        if other["AccountID"] == own_id:
            continue
        if code and str(other["Code"]).lower() == code.lower():
            errors.append("Please enter a unique Code.")
        if name and other["Name"].lower() == name.lower():
            errors.append("Please enter a unique Name.")
    status = _text(data, "Status").upper() or "ACTIVE"
    if status not in ("ACTIVE", "ARCHIVED"):
        errors.append(f"Account Status '{status}' is not valid.")
    was = w.existing or {}
    if was.get("SystemAccount") and not w.trusted and (status == "ARCHIVED" or kind != was["Type"]):
        # a system account stays as Xero made it (UNSURE: a public research note sums up Xero's Accounts page
        # as "can archive; can't delete system or used accounts"); the words are the sandbox's
        errors.append(f"The system account '{code}' cannot be archived or change its type.")
    if kind == "BANK" and not was and not w.trusted and not _text(data, "BankAccountNumber"):
        # spec Account.BankAccountNumber: "For bank accounts only (Account Type BANK)"; that a new bank
        # account needs one is UNSURE (Xero's own form asks for it); the words are the sandbox's
        errors.append("A bank account needs a BankAccountNumber.")
    record = {
        "AccountID": own_id,
        "Code": code,
        "Name": name,
        "Type": kind,
        "Status": status,
        "Description": _text(data, "Description"),
        "TaxType": _text(data, "TaxType") or "NONE",
        "Class": klass,
        # read-only in the spec's Account schema: only Xero (here, admin seeding) makes system accounts
        "SystemAccount": (data if w.trusted else (w.existing or {})).get("SystemAccount") or "",
        "EnablePaymentsToAccount": bool(data.get("EnablePaymentsToAccount", False)),
        "ShowInExpenseClaims": bool(data.get("ShowInExpenseClaims", False)),
        "ReportingCode": _text(data, "ReportingCode"),
        "HasAttachments": False,
        "AddToWatchlist": False,
    }
    if kind == "BANK":
        record.update(
            BankAccountNumber=_text(data, "BankAccountNumber"),
            BankAccountType="BANK",
            CurrencyCode=_text(data, "CurrencyCode") or org.base_currency,
        )
    return Outcome(record, errors)


# The spec's Item schema: Description "The sales description of the item (max length = 4000)" and
# PurchaseDescription "The purchase description of the item (max length = 4000)" (maxLength: 4000 on both;
# ../shared/providers/xero.md section 4.2, CONFIRMED). That Xero refuses a longer one (not truncates it) and
# its words are UNSURE: they follow the Code and Name messages above.
ITEM_DESCRIPTION_LIMIT = 4000


def build_item(data: Record, w: Write) -> Outcome:
    org = w.org
    errors: list[str] = []
    code, name = _text(data, "Code"), _text(data, "Name")
    if not code:
        errors.append("Item code must be specified.")
    elif len(code) > 30:
        errors.append("The Item Code must be 30 characters or less.")
    if len(name) > 50:
        errors.append("The Item Name must be 50 characters or less.")
    errors += [
        f"The Item {key} must be {ITEM_DESCRIPTION_LIMIT} characters or less."
        for key in ("Description", "PurchaseDescription")
        if len(_text(data, key)) > ITEM_DESCRIPTION_LIMIT
    ]
    own_id = data.get("ItemID")
    taken = [r for r in [*org.records["Items"].values(), *w.batch] if r.get("ItemID") != own_id]
    if code and any(str(r["Code"]).lower() == code.lower() for r in taken):
        # Xero's words: the spec's PUT /Items example ValidationErrors, and calcinai/xero-php#528
        errors.append(f"Price List Item with Code '{code}' already exists")
    record: Record = {
        "ItemID": own_id,
        "Code": code,
        "Name": name,
        "Description": _text(data, "Description"),
        "PurchaseDescription": _text(data, "PurchaseDescription"),
        "IsSold": bool(data.get("IsSold", True)),
        "IsPurchased": bool(data.get("IsPurchased", True)),
    }
    for key in ("PurchaseDetails", "SalesDetails"):
        details = data.get(key) or {}
        kept = details is (w.existing or {}).get(key)  # not sent: the stored price keeps its places
        clean: Record = {
            k: details[k] for k in ("AccountCode", "COGSAccountCode", "TaxType") if details.get(k)
        }
        try:
            clean["UnitPrice"] = money(details.get("UnitPrice", 0), UNIT4 if kept else w.unit_places)
        except ValueError:
            errors.append(f"{key}.UnitPrice is not a valid number.")
        record[key] = clean
    asset_code = _text(data, "InventoryAssetAccountCode")
    tracked = bool(asset_code)
    if tracked:
        asset = org.account(code=asset_code)
        if asset is None or asset["Type"] != "INVENTORY":
            errors.append("The inventory asset account must be an account of type INVENTORY.")
        if not record["PurchaseDetails"].get("COGSAccountCode"):
            errors.append("A COGS account code is required for tracked inventory items.")
        record["InventoryAssetAccountCode"] = asset_code
    record["IsTrackedAsInventory"] = tracked
    if tracked:
        record["QuantityOnHand"] = money(data.get("QuantityOnHand", 0), Decimal("0.0001"))
        record["TotalCostPool"] = money(data.get("TotalCostPool", 0))
    return Outcome(record, errors)


# A contact's EmailAddress, when given, must be an address Xero takes: the spec's Contact.EmailAddress is
# "Email address of contact person (umlauts not supported) (max length  = 255)", and "a contact will always
# require a valid email if provided" (waynerobinson/xeroizer#477, a maintainer on Xero's 400; calcinai/
# xero-php#583 was refused an address it could not see a fault in). Xero's own test of an address is not
# published: here one @, a dotted domain, printable ASCII only (no umlauts, nor other non-ASCII: UNSURE).
# The words follow Xero's "Website must be valid." for a contact's Website (XeroAPI/Xero-NetStandard#434):
# UNSURE for the email address.
CONTACT_EMAIL = re.compile(r"[!-?A-~]+@[!-?A-~]+\.[!-?A-~]+")


def build_contact(data: Record, w: Write) -> Outcome:
    errors: list[str] = []
    name = _text(data, "Name")
    if not name:
        errors.append("The contact name must be specified.")
    elif len(name) > 255:
        errors.append("The contact name must be 255 characters or less.")
    status = _text(data, "ContactStatus").upper() or "ACTIVE"
    if status not in ("ACTIVE", "ARCHIVED"):
        errors.append(f"The contact status '{status}' is not valid.")
    own_id = data.get("ContactID")
    active = [
        r
        for r in [*w.org.records["Contacts"].values(), *w.batch]
        if r.get("ContactID") != own_id and r.get("ContactStatus") == "ACTIVE"
    ]
    if name and status == "ACTIVE" and any(r["Name"].lower() == name.lower() for r in active):
        errors.append(
            f"The contact name {name} is already assigned to another contact. "
            "The contact name must be unique across all active contacts."
        )
    email = _text(data, "EmailAddress")
    if email and (len(email) > 255 or not CONTACT_EMAIL.fullmatch(email)):
        errors.append("Email address must be valid.")
    number = _text(data, "ContactNumber")
    if len(number) > 50:
        errors.append("The contact number must be 50 characters or less.")
    others = [r for r in [*w.org.records["Contacts"].values(), *w.batch] if r.get("ContactID") != own_id]
    if number and any(str(r.get("ContactNumber") or "").lower() == number.lower() for r in others):
        # PUT Contacts: "if an existing contact matches your ContactName or ContactNumber then you will
        # receive an error" (Xero's Contacts page); the words of the error are not published: UNSURE
        errors.append(f"The contact number {number} is already assigned to another contact.")
    flags = data if w.trusted else (w.existing or {})
    record = {
        "ContactID": own_id,
        "ContactNumber": number,
        "AccountNumber": _text(data, "AccountNumber"),
        "ContactStatus": status,
        "Name": name,
        "FirstName": _text(data, "FirstName"),
        "LastName": _text(data, "LastName"),
        "EmailAddress": _text(data, "EmailAddress"),
        "Addresses": list(data.get("Addresses") or []),
        "Phones": list(data.get("Phones") or []),
        "IsSupplier": bool(flags.get("IsSupplier", False)),
        "IsCustomer": bool(flags.get("IsCustomer", False)),
        "ContactGroups": [],
        "ContactPersons": [],
        "HasAttachments": False,
        "HasValidationErrors": False,
    }
    if data.get("DefaultCurrency"):
        record["DefaultCurrency"] = str(data["DefaultCurrency"])
    return Outcome(record, errors)


def lock_date_error(org: Organisation, when: date) -> str | None:
    if org.end_of_year_lock_date and when <= org.end_of_year_lock_date:
        return (
            "The document date cannot be before the end of year lock date, currently set at "
            f"{org.end_of_year_lock_date:%d %B %Y}."
        )
    if org.period_lock_date and when <= org.period_lock_date:
        return (
            "The document date cannot be before the period lock date, currently set at "
            f"{org.period_lock_date:%d %B %Y}."
        )
    return None


# The statuses a manual journal may take, by the status it has (a new one: DRAFT or POSTED). Xero's status
# codes: DELETED is "A Deleted Draft ManualJournal", VOIDED "A Voided Posted ManualJournal"
# (developer.xero.com/documentation/api/types#ManualJournalStatuses, quoted by calcinai/xero-php's
# ManualJournalStatusCode), so only a draft is deleted, only a posted journal voided, and neither comes back.
# A posted journal set back to DRAFT is refused too, as a posted invoice cannot go back to draft: UNSURE.
JOURNAL_MOVES: dict[str | None, tuple[str, ...]] = {
    "DRAFT": ("DRAFT", "POSTED", "DELETED"),
    "POSTED": ("POSTED", "VOIDED"),
    "DELETED": (),
    "VOIDED": (),
    "ARCHIVED": (),
}
# A person archives posted journals "that you don't need to see" on the Posted tab (Xero Central, "Void or
# archive multiple journals", help.xero.com/au/ManualJournals-VoidArchive): the admin API does it. That the
# API archives one too (the spec's Status enum lists ARCHIVED, the status codes describe it not): UNSURE,
# refused here. Only voiding reverses a journal from the general ledger (that page): an archived one stays
# in the books (xero_reports' trial balance).


def build_manual_journal(data: Record, w: Write) -> Outcome:
    org = w.org
    errors: list[str] = []
    warnings: list[str] = []
    narration = _text(data, "Narration")
    if not narration:
        errors.append("Narration must be supplied.")
    status = _text(data, "Status").upper() or "DRAFT"
    was = (w.existing or {}).get("Status")
    archived = w.trusted and (was, status) == IN_THE_BOOKS  # a person archiving a posted journal
    if status not in JOURNAL_MOVES.get(was, ("DRAFT", "POSTED")) and not archived:
        # Xero's words for a status it refuses: "The status 'VOID' cannot be applied to the document"
        # (XeroAPI/xero-mcp-server#99); that it uses them for a refused move too is UNSURE
        errors.append(f"The status '{status}' cannot be applied to the document")
    amount_types = _text(data, "LineAmountTypes") or "NoTax"
    when = _date_or_error(data, "Date", errors, w.today)
    raw_lines = data.get("JournalLines") or []
    lines: list[Record] = []
    debits = credits = Decimal(0)
    for raw in raw_lines if isinstance(raw_lines, list) else []:
        line, amount = _journal_line(org, raw, status, amount_types, errors, warnings)
        lines.append(line)
        debits += max(amount, Decimal(0))
        credits += min(amount, Decimal(0))
    if len(lines) < 2:
        errors.append("A manual journal must have at least two journal lines.")
    if debits + credits != 0:
        errors.append(f"The total debits ({debits:.2f}) must equal total credits ({credits:.2f})")
    # voiding takes a posted journal out of a locked period's books, which the lock forbids as it forbids
    # posting into it ("No edits in a locked period", a public research note summing up Xero's pages): UNSURE
    if when and status in ("DRAFT", "POSTED", "VOIDED") and (problem := lock_date_error(org, when)):
        errors.append(problem)
    record = {
        "ManualJournalID": data.get("ManualJournalID"),
        "Narration": narration,
        "Date": when,
        "Status": status,
        "LineAmountTypes": amount_types,
        "JournalLines": lines,
        "ShowOnCashBasisReports": bool(data.get("ShowOnCashBasisReports", True)),
        "HasAttachments": False,
    }
    if data.get("Url"):
        record["Url"] = str(data["Url"])
    return Outcome(record, errors, warnings)


# Xero refuses manual journal lines on the Accounts Receivable / Payable system accounts; its help says to
# journal to a secondary account (help.xero.com/nz/Q_Accruals_ARAP; ../shared/providers/xero.md "Added
# 2026-11-30"). Its Manual Journals page names retained earnings and bank accounts too: "There are a few
# accounts that you can't use when entering manual journals in Xero. These include system accounts
# (accounts receivable, accounts payable & retained earnings) and bank accounts. You will receive a 400
# validation error if you try and use these reserved accounts. Consider setting up one or more clearing
# accounts if you need to journal to a bank account." (developer.xero.com/documentation/api/accounting/
# manualjournals, POST ManualJournals). SystemAccount values: the spec's Account schema. The wording of
# Xero's messages is not published: these name the account and the way out.
LEDGER_SYSTEM_ACCOUNTS = frozenset({"DEBTORS", "CREDITORS", "RETAINEDEARNINGS"})


def _journal_line(
    org: Organisation, raw: Any, status: str, amount_types: str, errors: list[str], warnings: list[str]
) -> tuple[Record, Decimal]:
    raw = raw if isinstance(raw, dict) else {}
    tax_type = _text(raw, "TaxType") or "NONE"
    if tax_type not in enum("TaxType"):
        # a tax type Xero does not know (its display name, say): XeroAPI/xero-mcp-server#210 quotes "The
        # TaxType code 'GST on Income' is not valid"; the spec's TaxType enum lists the codes
        errors.append(f"The TaxType code '{tax_type}' is not valid")
    elif amount_types != "NoTax" and tax_type in TAXED_TYPES:
        # Xero computes the line's tax from its TaxType and posts it to the tax account ("TaxAmount: The
        # calculated tax amount based on the TaxType and LineAmount", Manual Journals page); the sandbox's
        # books have no tax account, so it refuses what it cannot post instead of posting it untaxed.
        # The sandbox's own refusal, not Xero's.
        errors.append(
            f"The sandbox does not post tax on manual journals: send LineAmountTypes NoTax or a line TaxType "
            f"without tax (not '{tax_type}')."
        )
    try:
        # rounded to cents, not refused: "All monetary calculations in Xero are to two decimals places" and
        # "All summary values such as Total, LineAmount etc will remain at two decimal places only" (Xero's
        # Rounding in Xero guide, developer.xero.com/documentation/api-guides/rounding-in-xero). That a
        # journal line's LineAmount is rounded (not refused) and that a half rounds up are UNSURE; the
        # balance below is checked on the rounded lines.
        amount = money(raw.get("LineAmount"))
    except ValueError:
        errors.append("Each journal line must have a valid LineAmount.")
        amount = Decimal(0)
    code, account_id = _text(raw, "AccountCode"), _text(raw, "AccountID")
    # A line naming its account by AccountID alone is taken: the spec's ManualJournalLine has AccountID
    # (added by Xero, XeroAPI/Xero-OpenAPI#251) and Xero made AccountId "a valid alternative to AccountCode"
    # on invoice lines in 2023 (calcinai/xero-php#906), but the Manual Journals page still lists AccountCode
    # as mandatory for a journal line: that Xero takes AccountID alone on a journal line is UNSURE.
    account = org.account(code=code) if code else org.account(account_id=account_id) if account_id else None
    if code and account is None:
        warnings.append(f"Account code '{code}' has been removed as it does not match a recognised account.")
    elif account_id and account is None:
        errors.append(f"The account '{account_id}' does not exist.")
    elif account is not None and account["Status"] != "ACTIVE":
        errors.append(
            f"The account '{account['Code']}' has been archived, or deleted. "
            "Each line item must reference a valid account."
        )
    elif account is not None and account.get("SystemAccount") in LEDGER_SYSTEM_ACCOUNTS:
        errors.append(
            f"Account '{account['Code']} {account['Name']}' is a system account "
            f"({account['SystemAccount']}) and can't be used in a manual journal. "
            "Journal to a secondary account instead."
        )
    elif account is not None and account["Type"] == "BANK":
        errors.append(
            f"Account '{account['Code']} {account['Name']}' is a bank account and can't be used in a manual "
            "journal. Journal to a clearing account instead."
        )
    elif account is not None and account["Type"] == "INVENTORY":
        # "Inventory account types are system accounts that you can't journal to or from" (Xero Central,
        # Track your inventory, quoted by a public research note; xero.md 4.2 notes it UNSURE); the
        # tracked-inventory guide speaks of "restrictions posting to accounts with type INVENTORY via the API"
        errors.append(
            f"Account '{account['Code']} {account['Name']}' is an inventory account and can't be used in a "
            "manual journal."
        )
    if account is None and status == "POSTED":
        errors.append("Each journal line must have a valid account code.")
    line: Record = {
        "Description": _text(raw, "Description"),
        "TaxType": tax_type,
        "LineAmount": amount,
        "TaxAmount": Decimal(0),
        "Tracking": list(raw.get("Tracking") or []),
        "IsBlank": False,
    }
    if account is not None:
        line.update(AccountCode=account["Code"], AccountID=account["AccountID"])
    return line, amount


def build_invoice(data: Record, w: Write) -> Outcome:
    return build_document("Invoices", data, w)


def build_credit_note(data: Record, w: Write) -> Outcome:
    return build_document("CreditNotes", data, w)


# The statuses an invoice or credit note may move to DELETED or VOIDED from (a new one may be seeded in any).
# Xero's Invoices page, "Deleting and voiding invoices" (linked from pyxero#350; its rules as Databuzz's
# support article "How do I delete an Invoice in Xero" gives them): "you can delete a DRAFT or SUBMITTED
# invoice by updating the Status to DELETED"; "if an invoice has been AUTHORISED it cannot be deleted but you
# can set its status to VOIDED". A paid one is voided only once its payments are removed (Xero's own help as
# help.nostressaccounting.com's "Delete or void an invoice" restates it), so one with AmountPaid is refused.
# Credit notes alike: a draft deleted, an approved one voided (xero-help.caltrix.asia, "How to delete or void
# an invoice and credit note in Xero"). Nothing leaves DELETED or VOIDED.
DOCUMENT_ENDS = {"DELETED": ("DRAFT", "SUBMITTED"), "VOIDED": ("AUTHORISED",)}


def _status_refused(collection: str, was: Record, status: str) -> str | None:
    """Xero's refusal of moving a stored document (``was``) to ``status``, if it refuses it.

    Xero's words for an invalid status change: "Invoice not of valid status for modification" (named by
    XeroAPI's MJMortimer in XeroAPI/Xero-NetStandard#79, the answer xero-php-oauth2#257 quotes); a credit
    note's, the same with its name: UNSURE."""
    before = was.get("Status")
    if before is None or before == status:
        return None
    ends = DOCUMENT_ENDS.get(status)
    paid = money(was.get("AmountPaid") or 0) != 0
    if before in DOCUMENT_ENDS or (ends is not None and (before not in ends or paid)):
        name = "Invoice" if collection == "Invoices" else "Credit Note"
        return f"{name} not of valid status for modification"
    return None


# What an app may create a document as: the spec's Invoice.Status, "DRAFT, SUBMITTED, AUTHORISED" on create;
# PAID follows payments, VOIDED and DELETED follow from an existing document (DOCUMENT_ENDS)
CREATABLE = ("DRAFT", "SUBMITTED", "AUTHORISED")


def _write_refused(collection: str, data: Record, w: Write, status: str) -> str | None:
    """Xero's refusal of an app's write that a person's (the admin's seeding) may make: a new document in a
    status it cannot start in, a document moved to PAID (payments do that), an edit of a paid one, and a sales
    document's number already taken (xero.md section 3: "PUT of an ACCREC invoice with an existing
    InvoiceNumber fails (numbers unique)", section 4.6: "CreditNoteNumber (ACCRECCREDIT unique/auto)"). Xero's
    words for the first two are not published (UNSURE); the third's are ALLOCATED_DOCUMENT, the fourth's
    "Invoice # must be unique." as integrators quote it (UNSURE)."""
    name = "Invoice" if collection == "Invoices" else "Credit Note"
    was = w.existing
    if was is None and status not in CREATABLE:
        return f"{name} Status must be one of {', '.join(CREATABLE)} when it is created."
    if was is not None and status == "PAID" and was.get("Status") != "PAID":
        return f"{name} Status cannot be set to PAID: apply payments instead."
    if was is not None and money(was.get("AmountPaid") or 0) != 0:
        return ALLOCATED_DOCUMENT
    number_field, kind = (
        ("InvoiceNumber", "ACCREC") if collection == "Invoices" else ("CreditNoteNumber", "ACCRECCREDIT")
    )
    number = _text(data, number_field).lower()
    own = (was or {}).get(ID_FIELDS[collection])
    if number and _text(data, "Type").upper() == kind:
        taken = any(
            r.get("Type") == kind
            and str(r.get(number_field) or "").lower() == number
            and r[ID_FIELDS[collection]] != own
            for r in w.org.records[collection].values()
        )
        if taken:
            return f"{name} # must be unique."
    return None


def build_document(collection: str, data: Record, w: Write) -> Outcome:
    """Invoices and credit notes, seeded by the admin API or written by an app: totals, tax and amounts
    computed."""
    org = w.org
    errors: list[str] = []
    kind = _text(data, "Type").upper()
    if kind not in DOCUMENT_TYPES[collection]:
        errors.append(f"Type must be one of {', '.join(DOCUMENT_TYPES[collection])}.")
    status = _text(data, "Status").upper() or "DRAFT"
    if status not in DOCUMENT_STATUSES:
        errors.append(f"Status '{status}' is not valid.")
    elif refused := (
        (w.existing and _status_refused(collection, w.existing, status))
        or (not w.trusted and _write_refused(collection, data, w, status))
    ):
        errors.append(refused)
    contact = _document_contact(org, data.get("Contact"), errors)
    when = _date_or_error(data, "Date", errors, w.today)
    currency = _text(data, "CurrencyCode") or org.base_currency
    rate = Decimal(1)
    if data.get("CurrencyRate") not in (None, ""):
        rate = money(data["CurrencyRate"], Decimal("0.000001"))
    elif currency != org.base_currency:
        errors.append("A CurrencyRate is required for a document in a foreign currency.")
    amount_types = _text(data, "LineAmountTypes") or "Exclusive"
    sales = kind in ("ACCREC", "ACCRECCREDIT")
    # Spec LineItem.DiscountRate / DiscountAmount: "only supported on ACCREC invoices" (and quotes)
    discounts = collection == "Invoices" and kind == "ACCREC"
    lines = [
        _document_line(org, raw, amount_types, sales, errors, discounts=discounts)
        for raw in data.get("LineItems") or []
    ]
    line_total = sum((line["LineAmount"] for line in lines), Decimal(0))
    tax = sum((line["TaxAmount"] for line in lines), Decimal(0))
    subtotal = line_total - tax if amount_types == "Inclusive" else line_total
    total = subtotal + tax
    record: Record = {
        "Type": kind,
        "Contact": contact,
        "Date": when,
        "Status": status,
        "LineAmountTypes": amount_types,
        "LineItems": lines,
        "SubTotal": subtotal,
        "TotalTax": tax,
        "Total": total,
        "CurrencyCode": currency,
        "CurrencyRate": rate,
        "Reference": _text(data, "Reference"),
        "HasAttachments": False,
        "HasErrors": False,
        "SentToContact": bool(data.get("SentToContact", False)),
        "Payments": [],
    }
    due = _date_or_error(data, "DueDate", errors, None)
    if due:
        record["DueDate"] = due
    # allocations live on the stored documents (xero_allocations); an edit keeps them, whatever it sends
    was = w.existing or {}
    allocations = list(was.get("Allocations" if collection == "CreditNotes" else "CreditNotes") or [])
    credited = sum((a.get("Amount", a.get("AppliedAmount", 0)) for a in allocations), Decimal(0))
    if allocations and _moves_allocation(was, record):
        errors.append(ALLOCATED_DOCUMENT)
    # AmountPaid is read-only to an app (spec Invoice.AmountPaid): only the admin's seeding sets it
    paid_given = data if w.trusted else was
    paid = total - credited if status == "PAID" else money(paid_given.get("AmountPaid") or 0)
    if status == "PAID":
        record["FullyPaidOnDate"] = (allocations and was.get("FullyPaidOnDate")) or when
    if collection == "Invoices":
        number = _text(data, "InvoiceNumber") or (org.next_number("INV") if kind == "ACCREC" else "")
        record.update(
            InvoiceID=data.get("InvoiceID"),
            InvoiceNumber=number,
            AmountPaid=paid,
            AmountCredited=credited,
            IsDiscounted=any("DiscountRate" in line or "DiscountAmount" in line for line in lines),
            CreditNotes=allocations,
            Prepayments=[],
            Overpayments=[],
            AmountDue=Decimal(0) if status in ("VOIDED", "DELETED") else total - paid - credited,
        )
        if data.get("Url"):
            record["Url"] = str(data["Url"])
    else:
        number = _text(data, "CreditNoteNumber") or (org.next_number("CN") if kind == "ACCRECCREDIT" else "")
        remaining = Decimal(0) if status in ("PAID", "VOIDED", "DELETED") else total - paid - credited
        record.update(
            CreditNoteID=data.get("CreditNoteID"),
            CreditNoteNumber=number,
            RemainingCredit=remaining,
            Allocations=allocations,
        )
    return Outcome(record, errors)


def _moves_allocation(was: Record, record: Record) -> bool:
    """Whether an edit changes what an allocation was made against: the document's type, contact, currency,
    total or status (voiding or deleting included). Xero refuses such an edit while the document has an
    allocation; the allocation must be removed first (ALLOCATED_DOCUMENT)."""
    return any(was.get(key) != record.get(key) for key in ("Type", "CurrencyCode", "Total", "Status")) or (
        was.get("Contact") or {}
    ).get("ContactID") != record["Contact"].get("ContactID")


def _document_contact(org: Organisation, ref: Any, errors: list[str]) -> Record:
    ref = ref if isinstance(ref, dict) else {}
    contacts = org.records["Contacts"].values()
    found = next(
        (
            c
            for c in contacts
            if (ref.get("ContactID") and c["ContactID"] == str(ref["ContactID"]))
            or (ref.get("Name") and c["Name"].lower() == str(ref["Name"]).lower())
        ),
        None,
    )
    if found is None:
        errors.append("A valid Contact (ContactID or Name of an existing contact) is required.")
        return {}
    return {"ContactID": found["ContactID"], "Name": found["Name"], "ContactStatus": found["ContactStatus"]}


def _document_line(
    org: Organisation, raw: Any, amount_types: str, sales: bool, errors: list[str], *, discounts: bool
) -> Record:
    raw = raw if isinstance(raw, dict) else {}
    discount: Record = {}
    try:
        quantity = money(raw.get("Quantity", 1), Decimal("0.0001"))
        unit = money(raw.get("UnitAmount", 0), Decimal("0.0001"))
        discount = _discount(raw, discounts, errors, gross=quantity * unit if "UnitAmount" in raw else None)
        # Spec LineItem.LineAmount: after the discount, "LineAmount = Quantity * Unit Amount *
        # ((100 - DiscountRate)/100) or LineAmount = (Quantity * UnitAmount) - DiscountAmount"
        amount = (
            money(raw["LineAmount"])
            if "LineAmount" in raw and "UnitAmount" not in raw
            else money(
                quantity * unit * (100 - discount.get("DiscountRate", 0)) / 100
                - discount.get("DiscountAmount", 0)
            )
        )
    except ValueError:
        errors.append("Quantity, UnitAmount, LineAmount and discounts must be numbers.")
        quantity = unit = amount = Decimal(0)
    item_code = _text(raw, "ItemCode")
    if item_code and not any(
        str(i["Code"]).lower() == item_code.lower() for i in org.records["Items"].values()
    ):
        errors.append(f"Item code '{item_code}' is not valid.")
    tax_type = _text(raw, "TaxType") or (
        "NONE" if amount_types == "NoTax" else "OUTPUT" if sales else "INPUT"
    )
    rate = (
        TAX_RATES.get(org.country, Decimal(0)) if tax_type in TAXED_TYPES and amount_types != "NoTax" else 0
    )
    tax = money(amount * rate / (1 + rate)) if amount_types == "Inclusive" else money(amount * rate)
    line: Record = {
        "LineItemID": raw.get("LineItemID") or new_id(),
        "Description": _text(raw, "Description"),
        "Quantity": quantity,
        "UnitAmount": unit,
        "TaxType": tax_type,
        "TaxAmount": tax,
        "LineAmount": amount,
        **discount,
        "Tracking": list(raw.get("Tracking") or []),
    }
    if item_code:
        line["ItemCode"] = item_code
    if raw.get("AccountCode"):
        line["AccountCode"] = str(raw["AccountCode"])
    return line


def _discount(raw: Record, allowed: bool, errors: list[str], *, gross: Decimal | None) -> Record:
    """A line's ``DiscountRate`` (percent) or ``DiscountAmount``, where the spec allows one. A discount is
    taken from the line's Quantity x UnitAmount (``gross``, when given): spec LineItem.LineAmount,
    "LineAmount = (Quantity * UnitAmount) - DiscountAmount", and Xero refuses a discount beyond it (a rate
    over 100 %, an amount over the line's) with a validation error, as it refuses any line a document cannot
    carry (../shared/providers/xero.md section 4.5; the sandbox's wording of the message: UNSURE)."""
    given = {k: money(raw[k], Decimal("0.0001")) for k in ("DiscountRate", "DiscountAmount") if raw.get(k)}
    if given and not allowed:
        errors.append("Discounts are only supported on ACCREC invoices.")
        return {}
    if len(given) > 1:
        errors.append("A line item can have a DiscountRate or a DiscountAmount, not both.")
        return {}
    over = gross is not None and given.get("DiscountAmount", 0) > abs(gross)
    if any(v < 0 for v in given.values()) or given.get("DiscountRate", 0) > 100 or over:
        errors.append("A discount must be between zero and the line's amount.")
        return {}
    return given


_BUILDERS: dict[str, Callable[[Record, Write], Outcome]] = {
    "Accounts": build_account,
    "Items": build_item,
    "Contacts": build_contact,
    "ManualJournals": build_manual_journal,
    "Invoices": build_invoice,
    "CreditNotes": build_credit_note,
}


# ---- list queries and rendering ---------------------------------------------------------------------


@dataclass
class ListQuery:
    where: Predicate | None = None
    modified_since: datetime | None = None
    order: str | None = None
    ids: list[str] | None = None
    statuses: list[str] | None = None
    include_archived: bool = False
    search: str | None = None


# The fields searchTerm looks in. Xero's Contacts page: "a case-insensitive text search across the fields:
# Name, FirstName, LastName, ContactNumber, CompanyNumber, EmailAddress" (its example: SearchTerm=p finds what
# Name.StartsWith("P") does, so a part of a field matches); its Invoices page: "across the fields:
# InvoiceNumber, Reference" (developer.xero.com/documentation/api/accounting/contacts and .../invoices; the
# spec's descriptions agree). No other list takes it.
SEARCH_FIELDS = {
    "Contacts": ("Name", "FirstName", "LastName", "ContactNumber", "CompanyNumber", "EmailAddress"),
    "Invoices": ("InvoiceNumber", "Reference"),
}
# summaryOnly=true: "The following fields will be excluded from the response" (Xero's Invoices and Contacts
# pages, "Retrieving a smaller lightweight response using the summaryOnly parameter"), and "when this
# parameter is used, pagination is enforced by default".
SUMMARY_LEAVES_OUT = {
    "Invoices": ("Payments", "HasAttachments", "LineItems", "CISDeduction"),
    "Contacts": (
        "Addresses",
        "Balances",
        "ContactGroups",
        "ContactPersons",
        "IsCustomer",
        "IsSupplier",
        "PurchasesDefaultAccountCode",
        "PurchasesTrackingCategories",
        "SalesDefaultAccountCode",
        "SalesTrackingCategories",
    ),
}


def select(org: Organisation, collection: str, query: ListQuery) -> list[Record]:
    records = list(org.records[collection].values())
    if query.modified_since is not None:
        records = [r for r in records if r["UpdatedDateUTC"] >= query.modified_since]
    if query.ids:
        wanted = {i.lower() for i in query.ids}
        records = [r for r in records if r[ID_FIELDS[collection]].lower() in wanted]
    if query.statuses:
        records = [r for r in records if r.get("Status") in query.statuses]
    if collection == "Contacts" and not query.include_archived:
        records = [r for r in records if r["ContactStatus"] != "ARCHIVED"]
    if query.where is not None:
        records = [r for r in records if query.where(r)]
    if query.search and collection in SEARCH_FIELDS:
        term = query.search.casefold()
        records = [
            r
            for r in records
            if any(term in str(r.get(f) or "").casefold() for f in SEARCH_FIELDS[collection])
        ]
    records.sort(key=lambda r: (r["UpdatedDateUTC"], r[ID_FIELDS[collection]]))
    for clause in reversed([c.strip() for c in (query.order or "").split(",") if c.strip()]):
        name, _, direction = clause.partition(" ")
        present = [r for r in records if lookup(r, name.split(".")) is not None]
        missing = [r for r in records if lookup(r, name.split(".")) is None]
        present.sort(
            key=lambda r: _sort_key(lookup(r, name.split("."))), reverse=direction.strip().upper() == "DESC"
        )
        records = present + missing
    return records


def _sort_key(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    return value.lower() if isinstance(value, str) else value


def render(collection: str, record: Record, *, with_lines: bool = True, places: Decimal = CENT) -> Record:
    """A stored record as Xero returns it (line items only on paged or single reads), unit prices and
    amounts to the ``places`` the request asked for (``unit_places``)."""
    wire = dict(record)
    if collection in DOCUMENT_TYPES:
        wire["UpdatedDateUTCString"] = record["UpdatedDateUTC"].strftime("%Y-%m-%dT%H:%M:%S")
        wire["LineItems"] = [
            {**line, "UnitAmount": money(line["UnitAmount"], places)} for line in record["LineItems"]
        ]
    for key in ("PurchaseDetails", "SalesDetails"):
        if "UnitPrice" in record.get(key, {}):
            wire[key] = {**record[key], "UnitPrice": money(record[key]["UnitPrice"], places)}
    lines = LINE_FIELDS.get(collection)
    if lines and not with_lines:
        wire[lines] = []
    return wire
