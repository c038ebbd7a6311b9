"""The rules of tracked sales documents, without AWS: sale times, exclusions, restocking credits, kit revenue
allocation and which sale a credit returns its goods to."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from shared.domain.catalog import Product
from shared.domain.costing import SaleDocument, SaleLine
from shared.domain.sales import (
    KnownSale,
    entry_order,
    excluded_because,
    kit_lines,
    match_credit,
    restocks,
    sale_time,
    zone,
)

D = Decimal


def product(product_id: str, unit_cost: str | None) -> Product:
    return Product(
        product_id=product_id,
        sku=product_id.upper(),
        name=product_id,
        unit_cost=None if unit_cost is None else D(unit_cost),
    )


def document(document_id: str, at: datetime, products: list[str], kind: str = "invoice") -> SaleDocument:
    lines = tuple(
        SaleLine(line_id=str(i), product_id=p, quantity=D(1), amount=D("10.00"))
        for i, p in enumerate(products, 1)
    )
    return SaleDocument.model_validate(
        {"document_id": document_id, "kind": kind, "at": at, "currency": "USD", "lines": lines}
    )


def test_a_sale_takes_its_goods_at_the_end_of_its_local_day() -> None:
    at = sale_time(date(2026, 3, 9), zone("America/New_York"))
    assert at.astimezone(UTC) == datetime(2026, 3, 10, 3, 59, 59, 999999, tzinfo=UTC)  # EDT, UTC-4


def test_an_unknown_time_zone_names_itself() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")


@pytest.mark.parametrize(
    ("status", "issued", "reason"),
    [
        ("deleted", date(2026, 5, 1), "deleted in the provider"),
        ("draft", date(2026, 5, 1), "a draft: not a sale until it is approved"),
        ("active", None, "the document has no date"),
        ("active", date(2026, 3, 31), "dated before the first pull date (2026-04-01)"),
        ("active", date(2026, 4, 1), ""),
        ("voided", date(2026, 4, 2), ""),  # a void is costed: it takes back what its sale moved
    ],
)
def test_which_documents_are_not_costed_and_why(status: str, issued: date | None, reason: str) -> None:
    assert excluded_because(status, issued, date(2026, 4, 1)) == reason


def test_without_a_start_date_any_dated_document_counts() -> None:
    assert excluded_because("active", date(2000, 1, 1), None) == ""


@pytest.mark.parametrize(
    ("note", "restocked"),
    [
        ("", True),
        ("customer changed their mind", True),
        ("Not restockable: dented", False),
        ("no restock", False),
        ("SCRAPPED on arrival", False),
        ("write-off", False),
        ("restocked in bay 4", True),
    ],
)
def test_a_credit_restocks_unless_its_note_says_otherwise(note: str, restocked: bool) -> None:
    assert restocks(note) is restocked


def test_a_kit_line_splits_its_revenue_by_component_cost_to_the_cent() -> None:
    parts = [(product("frame", "3.00"), D(1)), (product("bolt", "0.50"), D(4))]  # weights 3.00 and 2.00
    lines = kit_lines("7", D(3), D("100.01"), parts)
    assert [(x.line_id, x.product_id, x.quantity, x.amount) for x in lines] == [
        ("7.1", "frame", D(3), D("60.01")),
        ("7.2", "bolt", D(12), D("40.00")),
    ]
    assert sum(x.amount for x in lines if x.amount is not None) == D("100.01")


def test_a_kit_with_an_uncosted_component_splits_by_quantity() -> None:
    parts = [(product("frame", "3.00"), D(1)), (product("bolt", None), D(3))]
    assert [x.amount for x in kit_lines("1", D(1), D("10.00"), parts)] == [D("2.50"), D("7.50")]


def test_a_kit_line_without_an_amount_leaves_its_parts_without_one() -> None:
    parts = [(product("frame", "3.00"), D(2))]
    assert [(x.quantity, x.amount) for x in kit_lines("1", D(5), None, parts)] == [(D(10), None)]


NY = ZoneInfo("America/New_York")


def at(day: int) -> datetime:
    return datetime(2026, 6, day, 23, tzinfo=NY)


def test_a_credit_returns_to_the_sale_it_names() -> None:
    sales = [KnownSale(document("S1", at(1), ["a"]), "c1", "1001")]
    credit = document("C1", at(5), ["a"], kind="credit_note")
    assert match_credit(credit, "someone else", ["unknown", "S1"], sales) == ("S1", "", ())


def test_a_product_the_named_sale_has_none_of_returns_to_the_customers_latest_sale_of_it_or_to_none() -> None:
    sales = [
        KnownSale(document("S0", at(1), ["b"]), "c1", "1000"),
        KnownSale(document("S1", at(2), ["a"]), "c1", "1001"),
        KnownSale(document("S2", at(3), ["b"]), "c2", "1002"),  # another customer's
        KnownSale(document("S3", at(9), ["c"]), "c1", "1003"),  # after the credit
    ]
    credit = document("C1", at(5), ["a", "b", "c"], kind="credit_note")
    assert match_credit(credit, "c1", ["S1"], sales) == ("S1", "", (("b", "S0"), ("c", None)))
    # another sale it names with the product comes first, before the customer's latest one
    assert match_credit(credit, "c1", ["S1", "S2"], sales) == ("S1", "", (("b", "S2"), ("c", None)))


def test_an_unnamed_credit_returns_to_the_customers_latest_sale_holding_all_its_products() -> None:
    sales = [
        KnownSale(document("S1", at(1), ["a", "b"]), "c1", "1001"),
        KnownSale(document("S2", at(2), ["a"]), "c1", "1002"),  # later, but holds only one of the two
        KnownSale(document("S3", at(3), ["a", "b"]), "c2", "1003"),  # another customer's
        KnownSale(document("S4", at(9), ["a", "b"]), "c1", "1004"),  # after the credit
    ]
    credit = document("C1", at(5), ["a", "b"], kind="credit_note")
    match = match_credit(credit, "c1", [], sales)
    assert match.sale_id == "S1"
    assert match.note == "the credit names no sale; its goods return to the lots of 1001"


def test_an_unnamed_credit_returns_to_a_sale_of_its_day_entered_before_it_not_after() -> None:
    """Of one day's documents, entered in this order: S1, the credit, S2 (``entry_order``). The credit
    returns what S1 took: S2 had taken nothing yet when the credit was entered."""
    day = at(5)
    entered = [datetime(2026, 3, 9, hour, tzinfo=UTC) for hour in (9, 10, 11)]
    s1, credit, s2 = (
        document(name, day, ["a"], kind).model_copy(update={"seq": entry_order(kind, when)})
        for name, kind, when in zip(
            ("S1", "C1", "S2"), ("invoice", "credit_note", "invoice"), entered, strict=True
        )
    )
    sales = [KnownSale(s1, "c1", "1001"), KnownSale(s2, "c1", "1002")]
    assert match_credit(credit, "c1", [], sales).sale_id == "S1"
    # without entry times (Xero), a day's sales come before its credits: the latest of them
    plain = [KnownSale(document(n, day, ["a"]), "c1", n) for n in ("S1", "S2")]
    late = document("C1", day, ["a"], "credit_note").model_copy(
        update={"seq": entry_order("credit_note", None)}
    )
    assert match_credit(late, "c1", [], plain).sale_id == "S2"


def test_an_unnamed_credit_falls_back_to_the_latest_sale_with_any_of_its_products() -> None:
    sales = [
        KnownSale(document("S1", at(1), ["a"]), "c1", ""),
        KnownSale(document("S2", at(2), ["b"]), "c1", ""),
    ]
    credit = document("C1", at(5), ["a", "b"], kind="credit_note")
    assert match_credit(credit, "c1", [], sales) == (
        "S2",
        "the credit names no sale; its goods return to the lots of S2",  # no number: the document id
        (("a", "S1"),),  # the product S2 has none of: to the latest sale of it
    )


def test_a_credit_naming_only_a_sale_that_is_gone_says_so_and_returns_to_the_customers_latest() -> None:
    sales = [KnownSale(document("S2", at(2), ["a"]), "c1", "1002")]  # S1, which it names, was voided
    credit = document("C1", at(5), ["a"], kind="credit_note")
    assert match_credit(credit, "c1", ["S1"], sales) == (
        "S2",
        "the credit names no sale Partsemble costs (voided, deleted, later, ...); its goods return to the "
        "lots of 1002",
        (),
    )


def test_a_credit_with_no_matching_sale_matches_none() -> None:
    sales = [KnownSale(document("S1", at(1), ["a"]), "c1", "1001")]
    credit = document("C1", at(5), ["z"], kind="credit_note")
    assert match_credit(credit, "c1", [], sales) == (None, "", ())
