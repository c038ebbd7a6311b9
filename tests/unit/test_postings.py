"""Postings: balanced journals to the cent, QBO inventory adjustments, refusals with a clear reason."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.domain.books import record_day
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
    AdjustmentLine,
    InventoryAdjustment,
    Journal,
    JournalLine,
    MissingAccount,
    NothingToPost,
    PostingAccounts,
    UnmappedItem,
    adjustment_for,
    idempotency_key,
    journal_of,
    posted_on,
)

D = Decimal
AT = datetime(2025, 6, 30, 22, 15, tzinfo=timezone(timedelta(hours=-5)))  # 1 July in UTC, 30 June locally
ACCOUNTS = PostingAccounts(
    home_currency="USD",
    company="9130350000000001",
    build_debit="FG",
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


def test_a_journal_moves_each_account_by_its_change_debits_first() -> None:
    journal = journal_of(
        {"FG": D("10.00"), "RM": D("-6.67"), "INV": D("-3.33"), "WASTE": D("0")},
        marker="exp-1", on=date(2025, 6, 30), currency="USD", narration="Build B1",
    )  # fmt: skip
    assert lines(journal) == [
        ("FG", "debit", D("10.00")),
        ("INV", "credit", D("3.33")),
        ("RM", "credit", D("6.67")),
    ]
    assert (journal.marker, journal.currency, journal.date) == ("exp-1", "USD", date(2025, 6, 30))


def test_a_journal_worth_nothing_is_nothing_to_post() -> None:
    with pytest.raises(NothingToPost, match="Receipt R1: nothing to post"):
        journal_of({"INV": D(0)}, marker="m", on=date(2025, 1, 1), currency="USD", narration="Receipt R1")


def test_an_unbalanced_journal_cannot_exist() -> None:
    debit = JournalLine(account_id="A", side="debit", amount=D("1.00"), description="")
    credit = JournalLine(account_id="B", side="credit", amount=D("0.99"), description="")
    with pytest.raises(ValidationError, match="does not balance"):
        Journal(marker="m", date=date(2025, 1, 1), currency="USD", narration="", lines=(debit, credit))


def test_a_missing_account_is_named() -> None:
    with pytest.raises(MissingAccount, match="no account is set for cogs"):
        ACCOUNTS.account("cogs")


AS_GIVEN = record_day(None)  # an organisation with no time zone set: each time's own date


def test_build_adjustment_takes_components_out_and_puts_the_finished_good_in() -> None:
    adjustment = adjustment_for(three_part_build(), ACCOUNTS, PRODUCTS, marker="exp-2", day=AS_GIVEN)
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
    received = adjustment_for(receipt, ACCOUNTS, PRODUCTS, marker="m1", day=AS_GIVEN)
    written_off = adjustment_for(rejection, ACCOUNTS, PRODUCTS, marker="m2", day=AS_GIVEN)
    assert [(x.item_id, x.quantity_diff) for x in received.lines] == [("item-A", 9)]
    assert [(x.item_id, x.quantity_diff) for x in written_off.lines] == [("item-A", -2)]
    assert (received.account_id, written_off.account_id) == ("ADJ", "WASTE")


def test_an_unmapped_item_is_refused_naming_the_product() -> None:
    products = {**PRODUCTS, "B": Product(product_id="B", sku="BR-20", name="Bracket 20mm")}
    with pytest.raises(UnmappedItem, match="unmapped item: BR-20 Bracket 20mm"):
        adjustment_for(three_part_build(), ACCOUNTS, products, marker="m", day=AS_GIVEN)


def test_an_item_quickbooks_keeps_no_quantity_of_is_left_out_of_the_adjustment() -> None:
    """A component linked to a non-inventory or service item: QBO refuses an adjustment line for it, so the
    adjustment moves the tracked items only; one with nothing tracked has nothing to post."""
    untracked = Product(product_id="B", sku="NI", name="Supplies", provider_item_id="item-B", untracked=True)
    adjustment = adjustment_for(
        three_part_build(), ACCOUNTS, {**PRODUCTS, "B": untracked}, marker="m", day=AS_GIVEN
    )
    assert [line.item_id for line in adjustment.lines] == ["item-A", "item-C", "item-F"]
    line = ReceiptLine(line_id="1", product_id="B", accepted=D(3), unit_cost=D(1))
    receipt = Receipt(receipt_id="R1", received_at=AT, lines=(line,))
    with pytest.raises(NothingToPost, match="keeps no quantity"):
        adjustment_for(receipt, ACCOUNTS, {"B": untracked}, marker="m", day=AS_GIVEN)


def test_idempotency_key_is_stable_for_a_retry_and_changes_with_the_posting() -> None:
    def journal(marker: str) -> Journal:
        change = {"FG": D("1.00"), "RM": D("-1.00")}
        return journal_of(change, marker=marker, on=date(2025, 1, 1), currency="USD", narration="Build")

    first = journal("exp-1")
    assert idempotency_key(first) == idempotency_key(journal("exp-1"))
    assert idempotency_key(first) != idempotency_key(journal("exp-2"))
    assert idempotency_key(first).startswith("exp-1-") and len(idempotency_key(first)) <= 128


def test_a_document_is_dated_later_only_when_the_day_chosen_is_after_its_own() -> None:
    line = AdjustmentLine(item_id="5", product_id="P", quantity_diff=Decimal("2"), description="Build B-1")
    adjustment = InventoryAdjustment(
        marker="m", date=date(2026, 11, 3), account_id="3", memo="Build B-1", lines=(line,)
    )
    later = posted_on(adjustment, date(2026, 11, 6))
    assert later.date == date(2026, 11, 6) and later.lines == adjustment.lines
    assert later.memo == "Build B-1 (of 2026-11-03; dated 2026-11-06 as that period is locked)"
    assert posted_on(adjustment, date(2026, 11, 3)) == adjustment == posted_on(adjustment, None)
