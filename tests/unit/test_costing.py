"""Sales costing: margins per line, document, product and period; credits, voids, edits and bad documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.domain.books import effects
from shared.domain.costing import (
    SaleDocument,
    SaleLine,
    UnmatchedReturn,
    apply_sales,
    margins,
    movement_id,
)
from shared.domain.ledger import Ledger, ReceiptIn

D = Decimal
T0 = datetime(2025, 1, 10, 12, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def stocked() -> Ledger:
    """F: lot L1 4 units at 5.00 each, then lot L2 10 units at 6.00 each."""
    return Ledger(
        [
            ReceiptIn(
                movement_id="L1",
                document_id="R1",
                at=day(0),
                product_id="F",
                quantity=D(4),
                lot_id="L1",
                cost=D("20.00"),
            ),
            ReceiptIn(
                movement_id="L2",
                document_id="R2",
                at=day(1),
                product_id="F",
                quantity=D(10),
                lot_id="L2",
                cost=D("60.00"),
            ),
        ]
    )


def doc(document_id: str, at: int, *lines: tuple[str | None, str, str], **fields: Any) -> SaleDocument:
    """Lines are (product, quantity, line amount)."""
    sale_lines = tuple(
        SaleLine(line_id=str(i), product_id=p, quantity=D(q), amount=D(a))
        for i, (p, q, a) in enumerate(lines, 1)
    )
    return SaleDocument(
        document_id=document_id,
        at=day(at),
        lines=sale_lines,
        **{"kind": "invoice", "currency": "USD", **fields},
    )


def test_margin_of_a_foreign_currency_invoice_uses_its_own_rate_and_names_the_lots() -> None:
    ledger = stocked()
    invoice = doc("INV1", 2, ("F", "6", "100.00"), currency="EUR", rate=D("1.10"))
    apply_sales(ledger, [invoice])
    report = margins(ledger, [invoice], home_currency="USD")
    (line,) = report.documents[0].lines
    # revenue 100.00 EUR x 1.10 = 110.00; COGS 4 x 5.00 (L1) + 2 x 6.00 (L2) = 32.00; margin 78.00 = 70.91 %
    assert (line.figures.revenue, line.figures.cogs, line.figures.margin) == (
        D("110.00"),
        D("32.00"),
        D("78.00"),
    )
    assert line.figures.margin_pct == D("70.91")
    assert [(lot.lot_id, lot.quantity) for lot in line.lots] == [("L1", 4), ("L2", 2)]
    assert report.by_product["F"] == report.by_period["2025-01"] == report.totals == line.figures


def test_a_sale_beyond_stock_has_no_margin_and_flags_the_uncosted_quantity() -> None:
    ledger = stocked()
    invoice = doc("INV1", 2, ("F", "16", "160.00"))
    apply_sales(ledger, [invoice])
    figures = margins(ledger, [invoice], home_currency="USD").documents[0].figures
    # 14 units costed (20.00 + 60.00 = 80.00), 2 units found no stock: margin unknown, not 160 - 80
    assert (figures.cogs, figures.uncosted, figures.margin, figures.margin_pct) == (D("80.00"), 2, None, None)


def test_a_credit_note_returns_the_original_lots_cost_and_reverses_revenue() -> None:
    ledger = stocked()
    invoice = doc("INV1", 2, ("F", "6", "120.00"))
    credit = doc("CN1", 3, ("F", "3", "60.00"), kind="credit_note", original_document_id="INV1")
    later = doc("INV2", 4, ("F", "1", "20.00"))
    apply_sales(ledger, [invoice, credit, later])
    report = margins(ledger, [invoice, credit, later], home_currency="USD")
    returned = report.documents[1].lines[0]
    # back most-recent first: 2 x 6.00 (L2) + 1 x 5.00 (L1) = 17.00
    assert (returned.figures.revenue, returned.figures.cogs) == (D("-60.00"), D("-17.00"))
    assert [(lot.lot_id, lot.quantity) for lot in returned.lots] == [("L2", 2), ("L1", 1)]
    assert report.documents[2].lines[0].lots[0].lot_id == "L1"  # the returned unit sells first again
    # 120 + (-60) + 20 = 80.00 revenue; 32.00 - 17.00 + 5.00 = 20.00 COGS
    assert (report.totals.revenue, report.totals.cogs, report.totals.margin) == (
        D("80.00"),
        D("20.00"),
        D("60.00"),
    )


def test_a_credit_not_restocked_takes_its_cost_out_of_cogs_as_the_books_move_it_to_waste() -> None:
    ledger = stocked()
    invoice = doc("INV1", 2, ("F", "2", "40.00"))
    credit = doc(
        "CN1", 3, ("F", "2", "40.00"), kind="credit_note", original_document_id="INV1", restock=False
    )
    apply_sales(ledger, [invoice, credit])
    report = margins(ledger, [invoice, credit], home_currency="USD")
    sold, returned = report.documents[0].figures, report.documents[1].lines[0].figures
    assert (returned.revenue, returned.cogs) == (D("-40.00"), -sold.cogs) and sold.cogs == D("10.00")
    assert ledger.on_hand("F") == 12  # nothing back in stock
    # the books: cost of goods sold 10.00 - 10.00 (to waste); the report's total ties to it
    posted = effects(ledger, lambda at: at.date()).values()
    assert report.totals.cogs == sum((b.get("cogs", D(0)) for b in posted), D(0)) == 0
    assert sum((b.get("waste", D(0)) for b in posted), D(0)) == D("10.00")


def test_voiding_and_deleting_documents_recost_the_others_by_replay() -> None:
    ledger = stocked()
    first, second = doc("INV1", 2, ("F", "4", "80.00")), doc("INV2", 3, ("F", "1", "20.00"))
    apply_sales(ledger, [first, second])
    assert margins(ledger, [second], home_currency="USD").totals.cogs == D("6.00")
    for status in ("voided", "deleted"):
        gone = first.model_copy(update={"status": status})
        apply_sales(ledger, [gone])
        report = margins(ledger, [gone, second], home_currency="USD")
        assert report.documents[0].lines == () and report.totals.cogs == D("5.00")
        apply_sales(ledger, [first])


def test_an_edited_document_is_recosted_like_a_fresh_replay() -> None:
    ledger = stocked()
    documents = [doc(f"INV{i}", 2 + i, ("F", "1", "20.00")) for i in range(5)]
    apply_sales(ledger, documents)
    edited = documents[0].model_copy(
        update={"lines": (SaleLine(line_id="1", product_id="F", quantity=D(3)),)}
    )
    apply_sales(ledger, [edited])
    fresh = stocked()
    apply_sales(fresh, [edited, *documents[1:]])
    assert ledger.entries() == fresh.entries()
    # INV1 now takes 3 of L1's 4; INV2 the last L1 unit (5.00); INV3 the first of L2 (6.00)
    assert [margins(ledger, [d], home_currency="USD").totals.cogs for d in documents[1:3]] == [
        D("5.00"),
        D("6.00"),
    ]


def test_bad_lines_and_documents_are_reported_without_blocking_the_rest() -> None:
    ledger = stocked()
    documents = [
        doc("BAD1", 2, (None, "1", "9.00"), ("F", "0", "0"), ("F", "-1", "-10.00"), ("F", "1", "20.00")),
        doc("DUP", 2, ("F", "1", "20.00")).model_copy(
            update={"lines": 2 * doc("x", 0, ("F", "1", "20.00")).lines}
        ),
        doc("BAD2", 2, ("F", "1", "20.00"), currency="euro"),
        doc("BAD3", 2, ("F", "1", "20.00"), currency="GBP"),
        doc("CN", 2, ("F", "1", "20.00"), kind="credit_note"),
        doc("GOOD", 3, ("F", "1", "25.00")),
    ]
    apply_sales(ledger, documents)
    report = margins(ledger, documents, home_currency="USD")
    issues = {d.document.document_id: d.issues for d in report.documents}
    assert issues["BAD1"] == (
        "line 1 has no item mapped to a product: left out of costing",
        "line 2 has quantity 0: left out of costing",
        "line 3 has quantity -1: left out of costing",
    )
    assert issues["DUP"] == ("line 1 repeats an earlier line's id: left out of costing",)
    assert issues["BAD2"] == ("unknown currency 'euro': margins not computed",)
    assert issues["BAD3"] == ("no exchange rate from GBP to USD: margins not computed",)
    assert issues["CN"] == ()  # matches no sale: restocked at L2's 6.00 (the latest lot), never uncosted
    assert (report.documents[4].figures.cogs, report.documents[4].figures.uncosted) == (D("-6.00"), 0)
    assert report.documents[5].figures.margin == D(
        "19.00"
    )  # GOOD: 25.00 - the second L1 unit at 5.00... see below
    assert report.documents[0].figures.revenue == report.documents[1].figures.revenue == D("20.00")


def test_a_document_the_ledger_refuses_does_not_block_the_others() -> None:
    ledger = stocked()
    # a movement id already used by a stock movement: the ledger refuses that document's movements
    ledger.change(
        add=[
            ReceiptIn(
                movement_id=movement_id("X", 0, "1"),  # the first line's
                document_id="R9",
                at=day(0),
                product_id="G",
                quantity=D(1),
                lot_id="R9",
                cost=D(1),
            )
        ]
    )
    clash, good = doc("X", 2, ("F", "1", "20.00")), doc("INV1", 3, ("F", "1", "25.00"))
    assert apply_sales(ledger, [clash, good]) == {"X": "a movement id is already in the ledger"}
    assert margins(ledger, [good], home_currency="USD").totals.margin == D("20.00")  # 25.00 - 5.00 (L1)


def test_a_credit_matching_no_sale_restocks_at_the_latest_earlier_lot_and_never_blanks_the_period() -> None:
    ledger = stocked()
    ledger.change(  # a lot received after the credit: not the one it is costed from
        add=[
            ReceiptIn(
                movement_id="L3",
                document_id="R3",
                at=day(5),
                product_id="F",
                quantity=D(1),
                lot_id="L3",
                cost=D("7.00"),
            )
        ]
    )
    invoice = doc("INV1", 2, ("F", "3", "30.00"))
    credit = doc("CN7", 3, ("F", "2", "18.00"), kind="credit_note", seq=1)
    later = doc("INV2", 4, ("F", "12", "120.00"))
    assert apply_sales(ledger, [invoice, credit, later]) == {}
    report = margins(ledger, [invoice, credit, later], home_currency="USD")
    returned = report.documents[1]
    # 2 units back as a new lot at L2's unit cost 6.00 (L3 came later): revenue -18.00, COGS -12.00
    assert returned.returns == (
        UnmatchedReturn(line_id="1", product_id="F", quantity=D(2), outcome="restocked", unit_cost=D(6)),
    )
    assert (returned.figures.revenue, returned.figures.cogs, returned.figures.margin) == (
        D("-18.00"),
        D("-12.00"),
        D("-6.00"),
    )
    assert [(lot.lot_id, lot.quantity, lot.cost) for lot in returned.lines[0].lots] == [("CN7/1", 2, 12)]
    # INV2 takes FIFO: the last L1 unit (5.00), all of L2 (60.00), then 1 of the returned lot (6.00) = 71.00
    assert [(lot.lot_id, lot.quantity) for lot in report.documents[2].lines[0].lots] == [
        ("L1", 1),
        ("L2", 10),
        ("CN7/1", 1),
    ]
    # January: 30.00 - 18.00 + 120.00 = 132.00 revenue; 15.00 - 12.00 + 71.00 = 74.00 COGS; a margin
    assert (report.by_period["2025-01"].revenue, report.by_period["2025-01"].cogs) == (
        D("132.00"),
        D("74.00"),
    )
    assert report.by_period["2025-01"].margin == D("58.00")


def test_a_credit_matching_no_sale_writes_off_what_is_not_restockable_or_has_no_lot_to_cost_it() -> None:
    ledger = stocked()
    scrapped = doc("CN8", 3, ("F", "2", "18.00"), kind="credit_note", seq=1, restock=False)
    too_early = doc("CN9", -1, ("F", "1", "9.00"), kind="credit_note", seq=1)  # before any lot of F
    apply_sales(ledger, [scrapped, too_early])
    report = margins(ledger, [scrapped, too_early], home_currency="USD")
    assert [(r.outcome, r.quantity) for d in report.documents for r in d.returns] == [
        ("written_off", 2),
        ("no_lot", 1),
    ]
    # revenue reversed, nothing back in stock (14 on hand as before), the margin known: -27.00
    assert (report.totals.revenue, report.totals.cogs, report.totals.margin) == (D("-27.00"), 0, D("-27.00"))
    assert ledger.on_hand("F") == 14


def test_totals_round_the_exact_cost_once_as_the_books_post_it() -> None:
    """Eight sales of one unit of a lot of 8 at 0.125: each line shows 0.13, and the total is 1.00, the
    general ledger's cost of goods sold, not 8 x 0.13 = 1.04."""
    lot = ReceiptIn(
        movement_id="L1", document_id="R1", at=day(0), product_id="F", quantity=D(8), lot_id="L1", cost=D(1)
    )
    ledger = Ledger([lot])
    sales = [doc(f"INV{n}", 1 + n, ("F", "1", "2.00")) for n in range(8)]
    apply_sales(ledger, sales)
    report = margins(ledger, sales, home_currency="USD")
    assert [d.figures.cogs for d in report.documents] == [D("0.13")] * 8
    assert (report.totals.cogs, report.totals.margin) == (D("1.00"), D("15.00"))
    assert [f.cogs for f in report.by_product.values()] == [D("1.00")]
    assert report.model_dump(mode="json")["totals"]["cogs"] == "1.00"


def test_a_credit_line_returns_to_its_own_sale_or_is_restocked_as_matching_none() -> None:
    """The credit's sale (INV2) has none of F: its F line returns to INV1's lots (its ``returns_to``), or,
    with none of the customer's sales holding F, is restocked as a credit matching no sale (``""``)."""
    ledger = stocked()
    ledger.change(
        add=[
            ReceiptIn(
                movement_id="G1", document_id="R3", at=day(0), product_id="G", quantity=D(5), lot_id="G1",
                cost=D("5.00"),
            )
        ]
    )  # fmt: skip
    first, second = doc("INV1", 2, ("F", "5", "100.00")), doc("INV2", 3, ("G", "1", "9.00"))
    line = SaleLine(line_id="1", product_id="F", quantity=D(2), amount=D("40.00"), returns_to="INV1")
    credit = doc("CN1", 4, kind="credit_note", original_document_id="INV2").model_copy(
        update={"lines": (line,)}
    )
    apply_sales(ledger, [first, second, credit])
    returned = margins(ledger, [credit], home_currency="USD").documents[0]
    # INV1 took L1's 4 at 5.00 and one of L2 at 6.00: the last taken come back first (6.00 + 5.00)
    assert returned.lines[0].figures.cogs == D("-11.00") and returned.returns == ()
    assert ledger.on_hand("F") == 14 - 5 + 2 and ledger.on_hand("G") == 4

    alone = credit.model_copy(update={"lines": (line.model_copy(update={"returns_to": ""}),)})
    apply_sales(ledger, [alone])
    report = margins(ledger, [alone], home_currency="USD").documents[0]
    assert [(r.outcome, r.unit_cost) for r in report.returns] == [("restocked", D(6))]  # L2's unit cost
    assert report.lines[0].figures.cogs == D("-12.00")


def test_a_credit_returning_more_than_its_sale_took_names_the_units_left_uncosted() -> None:
    ledger = stocked()
    invoice = doc("INV1", 2, ("F", "2", "40.00"))
    credits = [
        doc("CN1", 3, ("F", "1", "20.00"), kind="credit_note", original_document_id="INV1"),
        doc("CN2", 4, ("F", "3", "60.00"), kind="credit_note", original_document_id="INV1"),
    ]
    apply_sales(ledger, [invoice, *credits])
    first, second = margins(ledger, credits, home_currency="USD").documents
    assert first.issues == () and first.figures.uncosted == 0
    assert second.figures.uncosted == 2 and second.figures.margin is None
    assert second.issues == ("line 1 returns 2 more than its sale took (less earlier credits): not costed",)
    assert ledger.on_hand("F") == 14  # the two units the sale took are back; the two more are not


def test_a_credit_for_a_sale_beyond_stock_gives_back_its_uncosted_units_first() -> None:
    """The sale's last units found no lot: a credit undoes those first, so they leave the uncosted quantity
    (negative on the credit) and a sale credited back to what stock covered has its margin again."""
    ledger = stocked()
    invoice = doc("INV1", 2, ("F", "16", "160.00"))  # 14 from L1 and L2 (80.00), 2 uncosted
    credit = doc("CN1", 3, ("F", "3", "30.00"), kind="credit_note", original_document_id="INV1")
    apply_sales(ledger, [invoice, credit])
    report = margins(ledger, [invoice, credit], home_currency="USD")
    sale, back = report.documents
    assert (sale.figures.uncosted, sale.figures.cogs, sale.figures.margin) == (2, D("80.00"), None)
    # the 2 uncosted units come back first (no cost), then one of L2's at 6.00
    assert (back.figures.uncosted, back.figures.cogs, back.figures.margin) == (-2, D("-6.00"), None)
    assert back.issues == (
        "line 1 gives back 2 unit(s) its sale found no stock for: no cost to return, shown as a negative"
        " uncosted quantity",
    )
    # 13 units sold from stock for 130.00 at 74.00: nothing uncosted, a margin of 56.00
    assert report.totals.model_dump(mode="json") == {
        "revenue": "130.00",
        "cogs": "74.00",
        "uncosted": "0",
        "incomplete": False,
        "margin": "56.00",
        "margin_pct": "43.08",
    }
    assert report.by_product["F"] == report.totals and ledger.on_hand("F") == 1

    # a later sale beyond stock by 2: in a range holding the credit and it (not the first sale), the credit's
    # units given back do not make up for the later sale's uncosted ones
    later = doc("INV2", 4, ("F", "3", "30.00"))  # the unit the credit restocked, then 2 uncosted
    apply_sales(ledger, [later])
    ranged = margins(ledger, [credit, later], home_currency="USD").totals
    assert (ranged.uncosted, ranged.cogs, ranged.margin) == (0, D("0.00"), None)


def lines_of(document: SaleDocument, *lines: tuple[str, str, str, str]) -> SaleDocument:
    """The document with these lines, in this order: (line id, product, quantity, line amount)."""
    made = tuple(SaleLine(line_id=i, product_id=p, quantity=D(q), amount=D(a)) for i, p, q, a in lines)
    return document.model_copy(update={"lines": made})


def test_lines_of_one_product_take_stock_in_the_documents_order_not_their_ids_text_order() -> None:
    """Line "2" listed before line "10" sells from the older lot first: as text "10" sorts before "2", and
    the dearer line used to take L1's cheaper units."""
    for first, second in (("2", "10"), ("10", "2")):
        ledger = stocked()
        invoice = lines_of(doc("INV1", 2), (first, "F", "4", "60.00"), (second, "F", "3", "30.00"))
        apply_sales(ledger, [invoice])
        one, two = margins(ledger, [invoice], home_currency="USD").documents[0].lines
        # the first listed takes L1's 4 at 5.00 (20.00), the second 3 of L2's at 6.00 (18.00)
        assert (one.line_id, one.figures.cogs, one.figures.margin) == (first, D("20.00"), D("40.00"))
        assert [(lot.lot_id, lot.quantity) for lot in one.lots] == [("L1", 4)]
        assert (two.line_id, two.figures.cogs, two.figures.margin) == (second, D("18.00"), D("12.00"))
        assert [(lot.lot_id, lot.quantity) for lot in two.lots] == [("L2", 3)]


def test_the_order_of_a_documents_lines_changes_no_days_books_nor_any_later_cost() -> None:
    """Documents stored before lines took stock in the document's order were costed in their ids' text
    order: costed now in the document's order, each line may bear other lots, but the document's lines of
    a product draw the same lots between them, so every day's cost of goods sold and inventory per account
    (what was posted), the lots left and every later document's cost stay as they were."""
    a_lot = ReceiptIn(
        movement_id="L3", document_id="R3", at=day(1), product_id="F", quantity=D(3), lot_id="L3",
        cost=D("10.00"),
    )  # fmt: skip

    def costed(*order: int) -> tuple[Ledger, list[SaleDocument]]:
        ledger = stocked()
        ledger.change(add=[a_lot])  # L3: 3 units at 3.333.., its cost split into thirds at each draw
        rows = [("2", "F", "5", "60.00"), ("10", "F", "1", "9.00"), ("11", "F", "8", "80.00")]
        invoice = lines_of(doc("INV1", 2), *(rows[i] for i in order))
        credit = lines_of(
            doc("CN1", 3, kind="credit_note", original_document_id="INV1"), ("1", "F", "4", "40.00")
        )
        later = doc("INV2", 4, ("F", "5", "60.00"))  # beyond stock: 17 - 14 + 4 = 7 left
        documents = [invoice, credit, later]
        apply_sales(ledger, documents)
        return ledger, documents

    ledger, documents = costed(0, 1, 2)
    report = margins(ledger, documents, home_currency="USD")
    for order in ((2, 1, 0), (1, 0, 2), (1, 2, 0)):
        other, reordered = costed(*order)
        assert effects(other, lambda at: at.date()) == effects(ledger, lambda at: at.date())
        assert other.layers("F") == ledger.layers("F")
        again = margins(other, reordered, home_currency="USD")
        assert again.totals == report.totals and again.documents[1:] == report.documents[1:]
        assert again.documents[0].figures == report.documents[0].figures
