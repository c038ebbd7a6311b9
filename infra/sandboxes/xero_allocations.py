"""Credit note allocations in the Xero sandbox: ``PUT /CreditNotes/{CreditNoteID}/Allocations``.

An allocation sets part of a credit note's remaining credit against an invoice's amount due. It is kept on
the credit note (its ``Allocations``) and on the invoice (its ``CreditNotes`` and ``AmountCredited``), so a
read of either document shows it. The same rules serve the API and the admin helpers (``xero_admin``): a
credit note seeded or edited with ``Allocations`` is allocated exactly as a PUT would allocate it.

Sources: the spec's createCreditNoteAllocation (../shared/specs/xero/xero_accounting.yaml; the Allocation
schema requires Amount, Invoice and Date) and the refusals Xero's users copied into public issues, named
beside each rule. Words marked UNSURE are the sandbox's own: Xero's are not published.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from infra.sandboxes.xero_books import (
    Organisation,
    Outcome,
    Record,
    lock_date_error,
    money,
    new_id,
    parse_date,
)

# The invoice type each credit note type is set against: a customer credit (ACCRECCREDIT) against a sales
# invoice, a supplier credit (ACCPAYCREDIT) against a bill. Xero's refusal of the wrong pairing, as a user
# of waynerobinson/xeroizer#320 got it allocating an ACCPAYCREDIT to a sales invoice: "Credit Note cannot be
# allocated to an incorrect invoice t..." (the issue's text is cut there: its last word, UNSURE).
INVOICE_TYPE_FOR = {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}
WRONG_TYPE = "Credit Note cannot be allocated to an incorrect invoice type"
# Xero's words for an amount beyond what is left, both of the credit note (calcinai/xero-php#251: a $100
# note with $40 allocated, sent $40 + $60 again) and of the invoice (xeroizer#320: a paid invoice).
OVER_AMOUNT = "Credit Note cannot be allocated as amount is greater than amount outstanding"
# Xero's words for an invoice already paid off (xeroizer#320).
PAID_OFF = "The invoice you are trying to allocate to has already been paid off"


def check_allocations(org: Organisation, note: Record, elements: list[Any]) -> list[Outcome]:
    """Each element checked in turn; an element sees the credit and amounts due the earlier good elements of
    the same request used, as if they were applied one after another. Each Outcome's record is the
    allocation to store (or, refused, the element echoed as Xero echoes it: an Allocation)."""
    credit_left = note["RemainingCredit"]
    due_left: dict[str, Decimal] = {}
    outcomes: list[Outcome] = []
    for element in elements:
        outcome = check_allocation(org, note, element, credit_left, due_left)
        if not outcome.errors:
            credit_left -= outcome.record["Amount"]
            invoice_id = outcome.record["Invoice"]["InvoiceID"].lower()
            due_left[invoice_id] = due_left[invoice_id] - outcome.record["Amount"]
        outcomes.append(outcome)
    return outcomes


def check_allocation(
    org: Organisation,
    note: Record,
    element: Any,
    credit_left: Decimal,
    due_left: dict[str, Decimal],
) -> Outcome:
    """One allocation element against the credit note's ``credit_left`` and the invoices' ``due_left``
    (filled in here from the invoice's AmountDue the first time an invoice is named)."""
    if not isinstance(element, dict):
        return Outcome({}, ["The element is not a valid object."])
    errors: list[str] = []
    amount = _amount(element, errors)
    when = _date(element, errors)
    ref: Record = element["Invoice"] if isinstance(element.get("Invoice"), dict) else {}
    invoice = org.records["Invoices"].get(str(ref.get("InvoiceID") or "").lower())
    errors += _note_errors(note)
    if invoice is None:
        # an Invoice naming no invoice of the organisation; Xero's words are not published (UNSURE)
        errors.append("The invoice could not be found.")
    else:
        errors += _pair_errors(note, invoice)
        left = due_left.setdefault(invoice["InvoiceID"].lower(), invoice["AmountDue"])
        if amount > 0 and (amount > credit_left or amount > left) and OVER_AMOUNT not in errors:
            errors.append(OVER_AMOUNT)
    if when is not None and (problem := lock_date_error(org, when)):
        # an allocation is dated and posts on its date; Xero keeps locked periods closed to new postings
        # ("No edits in a locked period", a public research note on Xero's pages): UNSURE for allocations
        errors.append(problem)
    record: Record = {
        "AllocationID": str(element.get("AllocationID") or new_id()),
        "Amount": amount,
        "Date": when if when is not None else element.get("Date"),
        "Invoice": invoice_reference(invoice) if invoice else {"InvoiceID": ref.get("InvoiceID")},
    }
    return Outcome(record, errors)


def _amount(element: Record, errors: list[str]) -> Decimal:
    """The Amount, which must be more than zero: XeroAPI/xero-node#239, an allocation sent with
    AppliedAmount in place of Amount "causes a validation error about amount being 0" (the words, UNSURE)."""
    try:
        amount = money(element.get("Amount", 0))
    except ValueError:
        errors.append("The Amount must be a number.")
        return Decimal(0)
    if amount <= 0:
        errors.append("The Amount must be greater than zero.")
    return amount


def _date(element: Record, errors: list[str]) -> date | None:
    """The Date: required by the spec's Allocation schema (``required: Amount, Invoice, Date``); the words of
    the refusal are the sandbox's (UNSURE)."""
    if element.get("Date") in (None, ""):
        errors.append("A Date is required for the allocation.")
        return None
    try:
        return parse_date(element["Date"])
    except ValueError:
        errors.append(f"The Date '{element['Date']}' is not a valid date.")
        return None


def _note_errors(note: Record) -> list[str]:
    """Only an approved credit note is allocated (../shared/providers/xero.md section 4.6, "Credit note must
    be AUTHORISED before allocation", UNSURE there as a research note; a public how-to for Xero's API says a
    DRAFT one "returns a validation error"): the words are the sandbox's, UNSURE. A fully allocated note
    (PAID) has no credit left, and is refused as any amount over what is left is."""
    if note["Status"] in ("AUTHORISED", "PAID"):
        return []
    return [f"A credit note with status {note['Status']} cannot be allocated; it must be AUTHORISED."]


def _pair_errors(note: Record, invoice: Record) -> list[str]:
    """What makes an invoice one the credit note cannot be set against."""
    errors: list[str] = []
    if INVOICE_TYPE_FOR.get(note["Type"]) != invoice["Type"]:
        errors.append(WRONG_TYPE)
    if invoice["Status"] == "PAID":
        errors += [PAID_OFF, OVER_AMOUNT]  # both, as xeroizer#320 got them for a paid invoice
    elif invoice["Status"] != "AUTHORISED":
        # a draft, submitted, voided or deleted invoice has nothing due to credit (a public how-to for Xero's
        # API: "Deleted or voided invoices cannot receive allocations"); the words are the sandbox's, UNSURE
        errors.append(
            f"An invoice with status {invoice['Status']} cannot have a credit note allocated to it."
        )
    if note["Contact"].get("ContactID") != invoice["Contact"].get("ContactID"):
        # Xero applies a contact's credit to that contact's outstanding invoices only (its Allocate credit
        # screen lists them); that the API refuses another contact's invoice, and its words: UNSURE
        errors.append("The credit note and the invoice must be for the same contact.")
    if note["CurrencyCode"] != invoice["CurrencyCode"]:
        # "cross-currency allocations are not supported and will be rejected" (a public how-to for Xero's
        # API, third party); the words are the sandbox's: UNSURE
        errors.append("The credit note and the invoice must be in the same currency.")
    return errors


def invoice_reference(invoice: Record) -> Record:
    """The invoice as an allocation names it: the spec's Overpayments example shows an allocation's Invoice
    as its InvoiceID and InvoiceNumber with empty lists."""
    return {
        "InvoiceID": invoice["InvoiceID"],
        "InvoiceNumber": invoice["InvoiceNumber"],
        "Payments": [],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "HasErrors": False,
        "IsDiscounted": False,
        "LineItems": [],
    }


def apply_allocation(org: Organisation, note: Record, allocation: Record, now: datetime) -> None:
    """Stores a checked allocation on both documents. The credit note's RemainingCredit and the invoice's
    AmountDue go down by its Amount (the invoice's AmountCredited up); a document with nothing left becomes
    PAID (the spec's CreditNote.FullyPaidOnDate, "Date when credit note was fully paid", here the
    allocation's date: UNSURE). Both documents' UpdatedDateUTC move to ``now``, so an If-Modified-Since read
    finds them: UNSURE, as Xero does not say which changes move UpdatedDateUTC; the amounts a read shows
    change, which a sync polling If-Modified-Since must see."""
    invoice = org.records["Invoices"][allocation["Invoice"]["InvoiceID"].lower()]
    amount = allocation["Amount"]
    note["Allocations"] = [*note["Allocations"], allocation]
    note["RemainingCredit"] -= amount
    invoice["CreditNotes"] = [*invoice["CreditNotes"], _credit_reference(note, amount)]
    invoice["AmountCredited"] += amount
    invoice["AmountDue"] -= amount
    for document, left in ((note, "RemainingCredit"), (invoice, "AmountDue")):
        if document[left] == 0:
            document["Status"] = "PAID"
            document["FullyPaidOnDate"] = allocation["Date"]
        document["UpdatedDateUTC"] = now


def _credit_reference(note: Record, amount: Decimal) -> Record:
    """The credit note as an invoice's CreditNotes lists it: its ids and the amount applied (the spec's
    CreditNote.AppliedAmount, "The amount of applied to an invoice"); without its allocations
    (XeroAPI/xero-python#183: an invoice's credit notes come without them). Its Date is the credit note's
    (XeroAPI/Xero-OpenAPI#266: an invoice list read shows the credit note's own date; a read by id showed
    the invoice's, which Xero confirmed a bug)."""
    return {
        "CreditNoteID": note["CreditNoteID"],
        "CreditNoteNumber": note["CreditNoteNumber"],
        "AppliedAmount": amount,
        "Date": note["Date"],
        "Total": note["Total"],
        "LineItems": [],
    }


def response_element(note: Record, outcome: Outcome, status: str | None) -> Record:
    """An allocation as the PUT answers it: the spec's example names the credit note beside the invoice. A
    refused one was not made, so it has no AllocationID."""
    element: Record = {
        **outcome.record,
        "CreditNote": {"CreditNoteID": note["CreditNoteID"], "LineItems": []},
    }
    if status is not None:
        element["StatusAttributeString"] = status
    if outcome.errors:
        element.pop("AllocationID", None)
        element["ValidationErrors"] = [{"Message": m} for m in outcome.errors]
    return element
