"""Postings: balanced journals to the cent, QBO inventory adjustments, refusals with a clear reason."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.domain.inventory import (
    Build,
    BuildRecord,
    Component,
    Product,
    Receipt,
    ReceiptLine,
    receipt_movements,
    record_build,
    rejection_of,
)
from shared.domain.ledger import Ledger
from shared.domain.postings import (
    Journal,
    JournalLine,
    MissingAccount,
    NothingToPost,
    PostingAccounts,
    UnmappedItem,
    adjustment_for,
    idempotency_key,
    journal_for,
    posting_for,
)

D = Decimal
AT = datetime(2025, 6, 30, 22, 15, tzinfo=timezone(timedelta(hours=-5)))  # 1 July in UTC, 30 June locally
ACCOUNTS = PostingAccounts(
    home_currency="USD",
    build_debit="FG",
    build_credit="RM",
    receiving_debit="INV",
    receiving_credit="AP",
    waste="WASTE",
    adjustment="ADJ",
)
PRODUCTS = {
    p: Product(product_id=p, sku=f"SKU-{p}", name=f"Part {p}", provider_item_id=f"item-{p}") for p in "ABCF"
}


def lines(journal: Journal) -> list[tuple[str, str, Decimal]]:
    return [(line.account_id, line.side, line.amount) for line in journal.lines]


def three_part_build() -> BuildRecord:
    """A, B and C each come as 3 units for 10.00; the build takes one of each: 3 x 3.333... = 10.00."""
    ledger = Ledger()
    for p in "ABC":
        line = ReceiptLine(line_id=p, product_id=p, accepted=D(3), line_cost=D("10.00"))
        ledger.change(
            add=receipt_movements(
                Receipt(receipt_id=f"R{p}", received_at=AT - timedelta(days=1), lines=(line,))
            )
        )
    components = tuple(Component(product_id=p, quantity_per_unit=D(1)) for p in "ABC")
    build = Build(build_id="B1", product_id="F", quantity=D(1), built_at=AT, components=components)
    return record_build(ledger, build)


def test_build_journal_balances_by_allocating_the_rounding_remainder() -> None:
    journal = journal_for(three_part_build(), ACCOUNTS, marker="exp-1")
    # debit 10.00; each credit is 3.333... -> rounded alone they would be 3 x 3.33 = 9.99, so the largest
    # remainder (all equal: the first line) takes the extra cent: 3.34 + 3.33 + 3.33 = 10.00
    assert lines(journal) == [
        ("FG", "debit", D("10.00")),
        ("RM", "credit", D("3.34")),
        ("RM", "credit", D("3.33")),
        ("RM", "credit", D("3.33")),
    ]
    assert (journal.marker, journal.currency, journal.date) == ("exp-1", "USD", date(2025, 6, 30))


def test_receipt_and_its_rejection_post_as_two_journals_that_add_up_to_the_supplier_bill() -> None:
    # 3 units billed 10.00 for the line, 1 rejected: accepted 6.666... -> 6.67, rejected 3.333... -> 3.33
    line = ReceiptLine(line_id="1", product_id="A", accepted=D(2), rejected=D(1), line_cost=D("10.00"))
    other = ReceiptLine(line_id="2", product_id="B", accepted=D(4), unit_cost=D("0.125"))  # 0.50
    receipt = Receipt(receipt_id="R1", received_at=AT, lines=(line, other))
    rejection = rejection_of(receipt)
    assert rejection is not None
    received = journal_for(receipt, ACCOUNTS, marker="exp-r")
    rejected = journal_for(rejection, ACCOUNTS, marker="exp-q")
    assert lines(received) == [
        ("AP", "credit", D("7.17")),
        ("INV", "debit", D("6.67")),
        ("INV", "debit", D("0.50")),
    ]
    assert lines(rejected) == [("AP", "credit", D("3.33")), ("WASTE", "debit", D("3.33"))]
    assert received.lines[0].amount + rejected.lines[0].amount == D("10.50")


def test_a_journal_worth_nothing_is_refused_but_half_a_cent_rounds_up() -> None:
    def receipt_at(unit_cost: str) -> Receipt:
        line = ReceiptLine(line_id="1", product_id="A", accepted=D(5), unit_cost=D(unit_cost))
        return Receipt(receipt_id="R1", received_at=AT, lines=(line,))

    assert journal_for(receipt_at("0.001"), ACCOUNTS, marker="m").lines[0].amount == D(
        "0.01"
    )  # 0.005 half up
    with pytest.raises(NothingToPost, match="no value to post"):
        journal_for(receipt_at("0"), ACCOUNTS, marker="m")


def test_an_unbalanced_journal_cannot_exist() -> None:
    debit = JournalLine(account_id="A", side="debit", amount=D("1.00"), description="")
    credit = JournalLine(account_id="B", side="credit", amount=D("0.99"), description="")
    with pytest.raises(ValidationError, match="does not balance"):
        Journal(marker="m", date=date(2025, 1, 1), currency="USD", narration="", lines=(debit, credit))


def test_a_missing_account_is_named() -> None:
    accounts = ACCOUNTS.model_copy(update={"build_credit": None})
    with pytest.raises(MissingAccount, match="no account is set for build credit"):
        journal_for(three_part_build(), accounts, marker="m")


def test_build_adjustment_takes_components_out_and_puts_the_finished_good_in() -> None:
    adjustment = posting_for(
        three_part_build(), ACCOUNTS, PRODUCTS, mode="inventory_adjustment", marker="exp-2"
    )
    assert not isinstance(adjustment, Journal)
    assert [(line.item_id, line.quantity_diff) for line in adjustment.lines] == [
        ("item-A", -1),
        ("item-B", -1),
        ("item-C", -1),
        ("item-F", 1),
    ]
    assert (adjustment.account_id, adjustment.date, adjustment.marker) == ("ADJ", date(2025, 6, 30), "exp-2")


def test_receipt_adjustment_brings_in_all_received_and_the_rejection_writes_off_to_waste() -> None:
    line = ReceiptLine(line_id="1", product_id="A", accepted=D(7), rejected=D(2), unit_cost=D(1))
    receipt = Receipt(receipt_id="R1", received_at=AT, lines=(line,))
    rejection = rejection_of(receipt)
    assert rejection is not None
    received = adjustment_for(receipt, ACCOUNTS, PRODUCTS, marker="m1")
    written_off = adjustment_for(rejection, ACCOUNTS, PRODUCTS, marker="m2")
    assert [(x.item_id, x.quantity_diff) for x in received.lines] == [("item-A", 9)]
    assert [(x.item_id, x.quantity_diff) for x in written_off.lines] == [("item-A", -2)]
    assert (received.account_id, written_off.account_id) == ("ADJ", "WASTE")


def test_an_unmapped_item_is_refused_naming_the_product() -> None:
    products = {**PRODUCTS, "B": Product(product_id="B", sku="BR-20", name="Bracket 20mm")}
    with pytest.raises(UnmappedItem, match="unmapped item: BR-20 Bracket 20mm"):
        adjustment_for(three_part_build(), ACCOUNTS, products, marker="m")


def test_idempotency_key_is_stable_for_a_retry_and_changes_with_the_posting() -> None:
    record = three_part_build()
    first = journal_for(record, ACCOUNTS, marker="exp-1")
    assert idempotency_key(first) == idempotency_key(journal_for(record, ACCOUNTS, marker="exp-1"))
    assert idempotency_key(first) != idempotency_key(journal_for(record, ACCOUNTS, marker="exp-2"))
    assert idempotency_key(first).startswith("exp-1-") and len(idempotency_key(first)) <= 128
