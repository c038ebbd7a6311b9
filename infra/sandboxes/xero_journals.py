"""The Xero sandbox's general ledger: the journals Xero posts for what an organisation records, kept in the
order they were posted, and ``GET /Journals`` reading them. The reports (xero_reports) sum these journals.

What posts (the spec's ``GET /Journals`` example, xero_accounting.yaml ``/Journals``, shows each shape):
- a manual journal with Status POSTED or ARCHIVED (``IN_THE_BOOKS``): its lines' LineAmount, SourceType
  MANJOURNAL. Drafts, deleted and voided journals are not in the books; archiving only hides a posted one.
- an invoice or credit note with Status AUTHORISED or PAID (``POSTED_DOCUMENTS``; Xero's Invoices page: a
  draft or submitted document is not yet posted), SourceType its Type (ACCREC, ACCPAY, ACCRECCREDIT,
  ACCPAYCREDIT). The spec's ACCPAY example: each line's net amount on its account, with ``TaxAmount`` and
  ``GrossAmount`` (net + tax) and its TaxType; one line of the total tax on the GST account; the total
  on Accounts Payable (AccountsReceivable for a sale), Description "". Sales and supplier credits post
  credits to their lines, purchases and customer credits debits. A foreign document posts in the base
  currency: each amount divided by its CurrencyRate ("units of the document currency per unit of the
  base currency", ../shared/providers/xero.md), to the cent, the receivable / payable line taking what
  balances the journal.
- a change to what a record posts (voided, deleted, or edited once posted) adds a journal reversing the one
  it posted, dated as it was, and a journal of what it posts now, if anything: the journals are a log
  ("Journals are ordered oldest to newest" and numbered, read onwards by ``offset``: Journals page), so a
  posted one is never changed. That a void's reversal is a journal of the same source dated as the original
  is UNSURE (Xero documents no example; dated so, the reports of any date leave the voided document out,
  as Xero's do); a record seeded VOIDED or DELETED posts nothing.

Left out (the sandbox models none of it): payments (ACCRECPAYMENT / ACCPAYPAYMENT journals: a PAID
document's receivable stays on the books), the cost of tracked inventory items sold (Xero posts it on the
invoice), tax on manual journals (refused by xero_books), and tracking categories (always []).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.sandboxes.xero_books import Organisation

Record = dict[str, Any]

IN_THE_BOOKS = ("POSTED", "ARCHIVED")  # manual journals in the general ledger (xero_books.JOURNAL_MOVES)
POSTED_DOCUMENTS = ("AUTHORISED", "PAID")
# Documents that debit their lines (a purchase, a customer's credit); the others credit them
DEBITING = frozenset({"ACCPAY", "ACCRECCREDIT"})
RECEIVABLE = frozenset({"ACCREC", "ACCRECCREDIT"})
CENT = Decimal("0.01")
# "A maximum of 100 journals will be returned in any response" (developer.xero.com/documentation/api/journals)
PAGE = 100
# TaxName by TaxType: NZ's from the spec's Journals example ("15% GST on Expenses"); AU's and the names of
# the others are Xero's standard tax rates as its TaxRates list shows them: UNSURE
TAX_NAMES = {
    "NONE": "No GST",
    "OUTPUT": "GST on Income",
    "INPUT": "GST on Expenses",
    "OUTPUT2": "15% GST on Income",
    "INPUT2": "15% GST on Expenses",
}


@dataclass(frozen=True)
class JournalLine:
    account_id: str
    net: Decimal  # NetAmount: a debit positive, a credit negative, in the base currency
    tax: Decimal = Decimal(0)
    tax_type: str = ""
    description: str = ""
    line_id: str = ""  # JournalLineID, given as the journal is posted

    def reversed(self) -> JournalLine:
        return replace(self, net=-self.net, tax=-self.tax)


@dataclass(frozen=True)
class Journal:
    journal_id: str
    number: int
    on: date
    created: datetime
    source_type: str
    source_id: str
    reference: str
    cash_basis: bool  # on cash-basis reports (a manual journal's ShowOnCashBasisReports)
    lines: tuple[JournalLine, ...]


@dataclass(frozen=True)
class Posting:
    """What one record puts in the general ledger: compared before and after it changes."""

    on: date
    source_type: str
    reference: str
    cash_basis: bool
    lines: tuple[JournalLine, ...]


_ID_FIELDS = {"ManualJournals": "ManualJournalID", "Invoices": "InvoiceID", "CreditNotes": "CreditNoteID"}


def record_change(org: Organisation, collection: str, after: Record) -> None:
    """Appends to ``org.journals`` what storing ``after`` changes in what its record posts (module
    docstring). What the record posted before is what was journaled for it (``org.postings``), not what its
    earlier version would post now: an account renamed or removed since leaves the reversal exact."""
    if collection not in _ID_FIELDS:
        return
    source_id = str(after[_ID_FIELDS[collection]])
    was, now = org.postings.get(source_id.lower()), posting(org, collection, after)
    if was == now:
        return
    created = after["UpdatedDateUTC"]
    if was is not None:
        _append(org, was, source_id, created, tuple(line.reversed() for line in was.lines))
    if now is not None:
        _append(org, now, source_id, created, now.lines)
        org.postings[source_id.lower()] = now
    else:
        org.postings.pop(source_id.lower(), None)


def _append(
    org: Organisation, what: Posting, source_id: str, created: datetime, lines: tuple[JournalLine, ...]
) -> None:
    org.journals.append(
        Journal(
            str(uuid.uuid4()),
            len(org.journals) + 1,
            what.on,
            created,
            what.source_type,
            source_id,
            what.reference,
            what.cash_basis,
            tuple(replace(line, line_id=str(uuid.uuid4())) for line in lines),
        )
    )


def posting(org: Organisation, collection: str, record: Record) -> Posting | None:
    """What a record posts, or None when it is not in the books or posts no line (no line names an
    account)."""
    found = _posting(org, collection, record)
    return found if found is not None and found.lines else None


def _posting(org: Organisation, collection: str, record: Record) -> Posting | None:
    if collection == "ManualJournals":
        if record["Status"] not in IN_THE_BOOKS:
            return None
        lines = tuple(
            JournalLine(str(line["AccountID"]).lower(), line["LineAmount"], description=_text(line))
            for line in record["JournalLines"]
            if line.get("AccountID") and line["LineAmount"]
        )
        # Reference: the journal's Narration (UNSURE: the spec's examples show documents' journals only)
        cash_basis = bool(record.get("ShowOnCashBasisReports", True))
        return Posting(record["Date"], "MANJOURNAL", str(record["Narration"]), cash_basis, lines)
    if record["Status"] not in POSTED_DOCUMENTS:
        return None
    return _document(org, record)


def _document(org: Organisation, document: Record) -> Posting:
    kind = document["Type"]
    sign = Decimal(1) if kind in DEBITING else Decimal(-1)
    rate = Decimal(document.get("CurrencyRate") or 1)
    inclusive = document.get("LineAmountTypes") == "Inclusive"
    lines: list[JournalLine] = []
    for item in document["LineItems"]:
        account = _line_account(org, item, kind in RECEIVABLE)
        tax = _cents(item["TaxAmount"] / rate)
        net = _cents((item["LineAmount"] - (item["TaxAmount"] if inclusive else 0)) / rate)
        if account is not None and (net or tax):
            lines.append(JournalLine(account, sign * net, sign * tax, item["TaxType"], _text(item)))
    total_tax = sum((line.tax for line in lines), Decimal(0))
    if total_tax:
        lines.append(JournalLine(tax_account(org)["AccountID"].lower(), total_tax))
    control = "DEBTORS" if kind in RECEIVABLE else "CREDITORS"
    balance = -sum((line.net for line in lines), Decimal(0))
    if balance:
        lines.insert(0, JournalLine(system_account(org, control)["AccountID"].lower(), balance))
    # Reference: the document's (the spec's example: "Red Fish, Blue Fish" on a sale, "" on a bill; UNSURE)
    return Posting(document["Date"], kind, str(document.get("Reference") or ""), False, tuple(lines))


def _line_account(org: Organisation, line: Record, sales: bool) -> str | None:
    """The account a document line posts to: its AccountCode, else its item's sales / purchase account."""
    code = str(line.get("AccountCode") or "")
    if not code and line.get("ItemCode"):
        item = org.find("Items", str(line["ItemCode"])) or {}
        code = str((item.get("SalesDetails" if sales else "PurchaseDetails") or {}).get("AccountCode") or "")
    account = org.account(code=code) if code else None
    return account["AccountID"].lower() if account else None


# The system accounts a document posts to (spec Account.SystemAccount: DEBTORS, CREDITORS, GST, ...). An
# organisation always has them in Xero; one the sandbox's chart lacks is made up here, named as in Xero's
# default charts (the spec's examples: "Accounts Receivable" 610, "Accounts Payable" 800, "GST" 820,
# "Retained Earnings") with a fixed id, and reported like any other account.
SYSTEM_ACCOUNTS = {
    "DEBTORS": ("Accounts Receivable", "CURRENT", "ASSET"),
    "CREDITORS": ("Accounts Payable", "CURRLIAB", "LIABILITY"),
    "GST": ("GST", "CURRLIAB", "LIABILITY"),
    "RETAINEDEARNINGS": ("Retained Earnings", "EQUITY", "EQUITY"),
}


def system_account(org: Organisation, kind: str) -> Record:
    found = next((a for a in org.records["Accounts"].values() if a.get("SystemAccount") == kind), None)
    if found is not None:
        return found
    name, account_type, cls = SYSTEM_ACCOUNTS[kind]
    account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-sandbox:{org.tenant_id}:{kind}"))
    return {
        "AccountID": account_id,
        "Code": "",
        "Name": name,
        "Type": account_type,
        "Class": cls,
        "SystemAccount": kind,
    }


def tax_account(org: Organisation) -> Record:
    return system_account(org, "GST")


def accounts(org: Organisation) -> dict[str, Record]:
    """Every account a journal may name, by lower-case AccountID: the chart and the system accounts."""
    made = {a["AccountID"].lower(): a for a in (system_account(org, k) for k in SYSTEM_ACCOUNTS)}
    return {**made, **{a["AccountID"].lower(): a for a in org.records["Accounts"].values()}}


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _text(line: Record) -> str:
    return str(line.get("Description") or "")


def entries(org: Organisation, until: date, payments_only: bool) -> Iterator[tuple[str, date, Decimal]]:
    """(account id, date, net amount) of every journal line dated on or before ``until``."""
    for journal in org.journals:
        if journal.on > until or (payments_only and not journal.cash_basis):
            continue
        for line in journal.lines:
            yield line.account_id, journal.on, line.net


class JournalsError(ValueError):
    """A Journals request Xero refuses."""


def select_journals(
    org: Organisation, params: Mapping[str, str], modified_since: datetime | None
) -> list[Journal]:
    """``GET /Journals``: those numbered above ``offset`` ("journals with a JournalNumber greater than the
    offset will be returned"), created since If-Modified-Since, on a cash basis with ``paymentsOnly=true``
    (the spec's getJournals parameters), oldest first, at most ``PAGE``."""
    text = params.get("offset", "").strip()
    try:
        offset = int(text) if text else 0
    except ValueError:
        raise JournalsError(f"offset '{text}' must be a whole number") from None
    payments_only = params.get("paymentsOnly", "").strip().lower() == "true"
    found = [
        j
        for j in org.journals
        if j.number > offset
        and (modified_since is None or j.created >= modified_since)
        and (not payments_only or j.cash_basis)
    ]
    return found[:PAGE]


def find_journal(org: Organisation, key: str) -> Journal | None:
    """``GET /Journals/{JournalID}`` or ``/Journals/{JournalNumber}`` (the spec's getJournal and
    getJournalByNumber)."""
    if key.isdigit():
        return next((j for j in org.journals if j.number == int(key)), None)
    return next((j for j in org.journals if j.journal_id == key.lower()), None)


def to_wire(org: Organisation, journal: Journal, *, with_source: bool = True) -> Record:
    """A journal as Xero returns it. SourceID and SourceType are "not returned when calling an individual
    journal by JournalID or JournalNumber" (developer.xero.com/documentation/api/journals)."""
    chart = accounts(org)
    wire: Record = {
        "JournalID": journal.journal_id,
        "JournalDate": journal.on,
        "JournalNumber": journal.number,
        "CreatedDateUTC": journal.created,
        "Reference": journal.reference,
    }
    if with_source:
        wire.update(SourceID=journal.source_id, SourceType=journal.source_type)
    wire["JournalLines"] = [_line_wire(chart.get(line.account_id, {}), line) for line in journal.lines]
    return wire


def _line_wire(account: Record, line: JournalLine) -> Record:
    wire: Record = {
        "JournalLineID": line.line_id,
        "AccountID": account.get("AccountID", line.account_id),
        "AccountCode": account.get("Code", ""),
        "AccountType": account.get("Type", ""),
        "AccountName": account.get("Name", ""),
        "Description": line.description,
        "NetAmount": line.net,
        "GrossAmount": line.net + line.tax,
        "TaxAmount": line.tax,
    }
    if line.tax_type:
        wire.update(TaxType=line.tax_type, TaxName=TAX_NAMES.get(line.tax_type, line.tax_type))
    wire["TrackingCategories"] = []
    return wire
