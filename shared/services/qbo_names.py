"""QBO's names on journal lines: a line on Accounts Payable must name a vendor, one on Accounts Receivable
a customer (error 6000 otherwise; ../shared/providers/qbo.md section 7)."""

from __future__ import annotations

from shared.domain.catalog import Account, name_required
from shared.domain.inventory import BuildRecord, Receipt, Rejection
from shared.domain.postings import Journal, PostingError, naming_supplier
from shared.store import catalog as catalog_store


def _what(record: Receipt | Rejection | BuildRecord) -> str:
    if isinstance(record, Receipt):
        return f"receipt {record.receipt_id}"
    if isinstance(record, Rejection):
        return f"the QA rejection of receipt {record.receipt_id}"
    return f"build {record.build.build_id}"


def with_vendor(organisation_id: str, journal: Journal, record: Receipt | Rejection | BuildRecord) -> Journal:
    """QBO: the lines on Accounts Payable name the record's supplier as their vendor; a record whose supplier
    is no QBO vendor can't be posted there (a permanent failure saying why)."""
    supplier_id = "" if isinstance(record, BuildRecord) else record.supplier_id
    used = catalog_store.get_accounts(
        organisation_id, "qbo", sorted({line.account_id for line in journal.lines})
    )
    for account in sorted(used, key=lambda a: a.account_id):
        if name_required(account) is None:
            continue
        problem = vendor_problem(organisation_id, account, supplier_id, _what(record))
        if problem:
            raise PostingError(problem)
        journal = naming_supplier(journal, account.account_id, supplier_id)
    return journal


def vendor_problem(organisation_id: str, account: Account, supplier_id: str, what: str) -> str | None:
    """Why a QBO journal line on ``account`` can't carry the name QBO needs there (None when it can, or when
    the account needs no name): a line on Accounts Payable needs an active QBO vendor, and Partsemble has
    no customer to put on Accounts Receivable (QBO error 6000, ../shared/providers/qbo.md section 7)."""
    wanted = name_required(account)
    if wanted == "Customer":
        return (
            f"{account.label!r} is Accounts Receivable, where QuickBooks Online needs a customer on every "
            "journal line; choose another account in the export settings"
        )
    if wanted is None:
        return None
    vendor = catalog_store.get_supplier(organisation_id, "qbo", supplier_id) if supplier_id else None
    if vendor is not None and vendor.active:
        return None
    if not supplier_id:
        who = f"{what} has no supplier"
    elif vendor is None:
        who = f"the supplier {supplier_id!r} of {what} is not a QuickBooks Online vendor"
    else:
        who = f"the supplier of {what}, {vendor.name!r}, is inactive in QuickBooks Online"
    return (
        f"{who}, and {account.label!r} is Accounts Payable, where QuickBooks Online needs a vendor on every "
        "journal line: name a vendor synced from QuickBooks Online (supplier_id, supplier_email or "
        "supplier_name), or choose a receiving clearing account as the receiving credit account"
    )
