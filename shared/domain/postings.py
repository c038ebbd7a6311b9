"""What an accounting system records: journals (amounts per account, from ``shared.domain.books``) and QBO
inventory adjustments. A receipt and its QA rejection post separately (two journals, two markers): each is
exported by its own message, and a rejection recorded after QA does not reopen the receipt already posted.

QBO's inventory adjustments carry quantities only (QBO values them): a build takes its components out and
puts the finished good in; a receipt puts in everything received, accepted or rejected, and its rejection
takes the rejected units straight back out to the waste account, so QBO ends where our ledger does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from pydantic import ConfigDict, Field, model_validator

from shared.domain.inventory import BuildRecord, Product, Receipt, Rejection
from shared.errors import BadRequest
from shared.model import Model
from shared.money import ZERO, total

Cents = Annotated[Decimal, Field(gt=0, decimal_places=2)]
_VALUE = ConfigDict(frozen=True, extra="forbid")
Record = Receipt | Rejection | BuildRecord
Side = Literal["debit", "credit"]


class PostingError(BadRequest):
    """A record that cannot be posted as it stands: a permanent export failure with this message."""


class UnmappedItem(PostingError):
    pass


class MissingAccount(PostingError):
    pass


class NothingToPost(PostingError):
    pass


class PostingAccounts(Model):
    """The organisation's accounts by role (provider account ids); a posting needs only its own roles."""

    model_config = _VALUE
    home_currency: str = Field(pattern=r"^[A-Z]{3}$")
    company: str  # the company (QBO realm, Xero tenant) whose accounts these are: its books, its plans
    build_debit: str | None = None  # finished goods asset: built lots sit here
    receiving_debit: str | None = None  # inventory asset: received lots sit here
    receiving_credit: str | None = None  # accounts payable or a receiving clearing account
    waste: str | None = None
    adjustment: str | None = None  # QBO inventory mode: the adjustment's offset account
    cogs: str | None = None  # cost of goods sold, debited by each business day's sales
    rounding: str | None = None  # optional: takes the cents rounding leaves, so no other account is off
    subassembly: str | None = None  # optional WIP account for built lots that other builds consume

    def account(self, role: str) -> str:
        if role == "subassembly" and not self.subassembly:  # without a WIP account they are finished goods
            role = "build_debit"
        account_id: str | None = getattr(self, role)
        if not account_id:
            raise MissingAccount(f"no account is set for {role.replace('_', ' ')} in the export settings")
        return account_id


class JournalLine(Model):
    model_config = _VALUE
    account_id: str
    side: Side
    amount: Cents
    description: str
    supplier_id: str | None = None  # the provider's supplier the line is owed to (QBO: the A/P line's vendor)


class Journal(Model):
    model_config = _VALUE
    marker: str = Field(min_length=1)  # the export id, written to PrivateNote / Narration
    date: date
    currency: str
    narration: str
    lines: tuple[JournalLine, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _balanced(self) -> Journal:
        debits = total(line.amount for line in self.lines if line.side == "debit")
        credits = total(line.amount for line in self.lines if line.side == "credit")
        if debits != credits:
            raise ValueError(f"journal does not balance: debits {debits}, credits {credits}")
        return self


class AdjustmentLine(Model):
    model_config = _VALUE
    item_id: str
    product_id: str
    quantity_diff: Decimal = Field(allow_inf_nan=False)
    description: str


class InventoryAdjustment(Model):
    model_config = _VALUE
    marker: str = Field(min_length=1)
    date: date
    account_id: str  # QBO AdjustAccountRef
    memo: str
    lines: tuple[AdjustmentLine, ...] = Field(min_length=1)


Posting = Journal | InventoryAdjustment


def marker_tag(marker: str) -> str:
    """The tag a document's note (QBO PrivateNote, Xero Narration) ends with. A search after an unknown
    outcome matches this whole tag, never the bare export id: a true-up's narration names each export it
    corrects by its id, and taking that true-up for one of them would leave the export never posted."""
    return f"[Partsemble export {marker}]"


def noted(text: str, marker: str) -> str:
    """A document's note: what a person reads, then the export's tag."""
    return f"{text} {marker_tag(marker)}"


P = TypeVar("P", Journal, InventoryAdjustment)


def journal_of(
    change: Mapping[str, Decimal], *, marker: str, on: date, currency: str, narration: str
) -> Journal:
    """A journal moving each account by ``change`` (cents, debits positive); ``NothingToPost`` when all
    are zero."""
    lines = tuple(
        JournalLine(
            account_id=account_id,
            side="debit" if amount > 0 else "credit",
            amount=abs(amount),
            description=narration,
        )
        for account_id, amount in sorted(change.items(), key=lambda item: (item[1] < 0, item[0]))
        if amount
    )
    if not lines:
        raise NothingToPost(f"{narration}: nothing to post (its value rounds to 0.00 in every account)")
    return Journal(marker=marker, date=on, currency=currency, narration=narration, lines=lines)


def adjustment_for(
    record: Record,
    accounts: PostingAccounts,
    products: Mapping[str, Product],
    *,
    marker: str,
    day: Callable[[datetime], date],
) -> InventoryAdjustment:
    """QBO inventory mode: quantities by QBO item; every product must be mapped to an item first. ``day``
    dates it (``books.record_day``)."""
    if isinstance(record, BuildRecord):
        build = record.build
        moves = [(c.product_id, -c.quantity) for c in record.components] + [
            (build.product_id, build.quantity)
        ]
        on, role, memo = day(build.built_at), "adjustment", f"Build {build.build_id}"
    elif isinstance(record, Receipt):
        moves = [(line.product_id, line.received) for line in record.lines]
        on, role, memo = day(record.received_at), "adjustment", f"Receipt {record.receipt_id}"
    else:
        moves = [(line.product_id, -line.quantity) for line in record.lines]
        on, role, memo = day(record.rejected_at), "waste", f"QA rejection on receipt {record.receipt_id}"
    unmapped = sorted({p for p, _ in moves if not (products.get(p) and products[p].provider_item_id)})
    if unmapped:
        names = ", ".join(products[p].label if p in products else p for p in unmapped)
        raise UnmappedItem(f"unmapped item: {names} has no QuickBooks item; map it before exporting {memo}")
    # an item QBO keeps no quantity of (non-inventory, service) is left out: QBO refuses the whole adjustment
    # for it, which would keep the tracked items' quantities from ever reaching QBO
    lines = tuple(
        AdjustmentLine(
            item_id=str(products[p].provider_item_id),
            product_id=p,
            quantity_diff=diff,
            description=f"{memo}: {products[p].label}",
        )
        for p, diff in moves
        if diff != ZERO and not products[p].untracked
    )
    if not lines:
        raise NothingToPost(f"{memo}: nothing to post (QuickBooks keeps no quantity of its items)")
    return InventoryAdjustment(
        marker=marker, date=on, account_id=accounts.account(role), memo=memo, lines=lines
    )


def posted_on(posting: P, day: date | None) -> P:
    """The posting dated ``day`` when that is later than its own date (its own date is in a period the
    provider has locked, and a person chose the day), saying so in its narration or memo."""
    if day is None or day <= posting.date:
        return posting
    note = f" (of {posting.date.isoformat()}; dated {day.isoformat()} as that period is locked)"
    if isinstance(posting, Journal):
        return posting.model_copy(update={"date": day, "narration": posting.narration + note})
    return posting.model_copy(update={"date": day, "memo": posting.memo + note})


def idempotency_key(posting: Posting) -> str:
    """Same posting, same key (a retry can never post twice); a changed record gives a new key."""
    digest = hashlib.sha256(posting.model_dump_json().encode()).hexdigest()[:32]
    return f"{posting.marker[:80]}-{digest}"


def naming_supplier(journal: Journal, account_id: str, supplier_id: str) -> Journal:
    """The journal with every line on ``account_id`` owed to ``supplier_id`` (QBO's A/P lines need one)."""
    lines = tuple(
        line.model_copy(update={"supplier_id": supplier_id}) if line.account_id == account_id else line
        for line in journal.lines
    )
    return journal.model_copy(update={"lines": lines})
