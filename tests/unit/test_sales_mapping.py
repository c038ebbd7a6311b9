"""Sales documents as the providers send them, mapped to revenue net of discounts and tax (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from infra.sandboxes.xero_where import enum
from shared.providers.qbo.sales import sale as qbo_sale
from shared.providers.xero.sales import sale as xero_sale
from shared.providers.xero.zones import WINDOWS_ZONES

D = Decimal


def qbo_line(line_id: str, amount: str, **detail: Any) -> dict[str, Any]:
    return {
        "Id": line_id,
        "Amount": amount,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "5"}, "Qty": 1, **detail},
    }


def test_qbo_tax_inclusive_lines_count_their_amount_without_tax_and_a_flat_discount() -> None:
    # An AU company's tax-inclusive invoice: Amount excludes GST, TaxInclusiveAmt includes it
    record = {
        "Id": "7",
        "GlobalTaxCalculation": "TaxInclusive",
        "TxnDate": "2026-10-01",
        "TotalAmt": "165.00",
        "Line": [
            qbo_line("1", "100.00", TaxInclusiveAmt="110.00"),
            qbo_line("2", "50.00", TaxInclusiveAmt="55.00"),
            {"Amount": "150.00", "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
            {
                "Amount": "15.01",
                "DetailType": "DiscountLineDetail",
                "DiscountLineDetail": {"PercentBased": False},
            },
        ],
    }
    lines = qbo_sale("Invoice", record, "9130350000000001").lines
    # revenue from Amount (100.00, 50.00), never TaxInclusiveAmt; the 15.01 discount over 100 : 50 is
    # 10.0066.. and 5.0033..: floors 10.00 + 5.00, the last cent to the larger remainder -> 10.01 and 5.00
    assert [line.amount for line in lines] == [D("89.99"), D("45.00")]


def test_qbo_percent_discount_without_an_amount_is_worked_out_from_the_lines_above() -> None:
    record = {
        "Id": "8",
        "Line": [
            qbo_line("1", "33.35"),
            qbo_line("2", "33.35"),
            qbo_line("3", "33.35"),
            {
                "DetailType": "DiscountLineDetail",
                "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": "10"},
            },
        ],
    }
    # 10 % of 100.05 = 10.005 -> 10.01; 3.3366.. each: 3.33 x 3 leaves 2 cents, to the first two (ties)
    assert [line.amount for line in qbo_sale("Invoice", record, "9130350000000001").lines] == [
        D("30.01"),
        D("30.01"),
        D("30.02"),
    ]


def test_qbo_lines_come_in_the_documents_order_by_line_number_else_as_listed() -> None:
    """A line added in an edit gets a new Id wherever it is placed: line 10 added above line 2."""
    listed = [
        {**qbo_line("2", "40.00"), "LineNum": 2},
        {
            "Id": "10",
            "LineNum": 1,
            "Amount": "20.00",
            "DetailType": "GroupLineDetail",
            "GroupLineDetail": {
                "GroupItemRef": {"value": "77"},
                "Line": [qbo_line("", "15.00"), qbo_line("", "5.00")],
            },
        },
        {"Amount": "60.00", "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
    ]
    lines = qbo_sale("Invoice", {"Id": "9", "Line": listed}, "9130350000000001").lines
    assert [(line.line_id, line.amount) for line in lines] == [
        ("10.1", D("15.00")),
        ("10.2", D("5.00")),
        ("2", D("40.00")),
    ]
    unnumbered = [{k: v for k, v in line.items() if k != "LineNum"} for line in listed]
    lines = qbo_sale("Invoice", {"Id": "9", "Line": unnumbered}, "9130350000000001").lines
    assert [line.line_id for line in lines] == ["2", "10.1", "10.2"]


def test_xero_line_without_a_line_amount_is_discounted_and_net_of_included_tax() -> None:
    record = {
        "CreditNoteID": "c1",
        "LineAmountTypes": "Inclusive",
        "LineItems": [{"Quantity": "3", "UnitAmount": "10.00", "DiscountRate": "20", "TaxAmount": "2.18"}],
    }
    # 3 x 10.00 x 80 % = 24.00 including 2.18 GST -> 21.82
    assert xero_sale("CreditNotes", record, "tenant-1").lines[0].amount == D("21.82")


def test_every_time_zone_xero_names_is_an_iana_zone() -> None:
    """Xero's Organisation.Timezone takes any value of the spec's TimeZone enum: none may fall back to UTC."""
    named = enum("TimeZone")
    assert len(named) == 141
    assert {name for name in named if name not in WINDOWS_ZONES} == set()
    for name in named:
        ZoneInfo(WINDOWS_ZONES[name])


@pytest.mark.parametrize(
    ("xero", "day"),
    [
        ("CENTRALSTANDARDTIME(MEXICO)", date(2026, 11, 30)),  # UTC-6
        ("UTC08", date(2026, 11, 30)),  # "UTC-08", Etc/GMT+8
        ("LORDHOWESTANDARDTIME", date(2026, 12, 1)),  # UTC+11 in summer
        ("NEPALSTANDARDTIME", date(2026, 12, 1)),  # UTC+5:45
    ],
)
def test_a_time_zone_dates_the_organisations_day(xero: str, day: date) -> None:
    sent = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # a browser's toISOString of a late-evening record
    assert sent.astimezone(ZoneInfo(WINDOWS_ZONES[xero])).date() == day
