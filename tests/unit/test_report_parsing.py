"""Trial balance reports -> account balances (pure): the providers' own sample shapes."""

from __future__ import annotations

from decimal import Decimal

from shared.providers.qbo.reports import balances as qbo_balances
from shared.providers.xero.reports import balances as xero_balances


def test_qbo_rows_nested_in_sections_are_read_and_summaries_skipped() -> None:
    report = {
        "Columns": {"Column": [{"ColTitle": ""}, {"ColTitle": "Debit"}, {"ColTitle": "Credit"}]},
        "Rows": {
            "Row": [
                {"ColData": [{"id": "35", "value": "Checking"}, {"value": "4,151.74"}, {"value": ""}]},
                {
                    "type": "Section",
                    "Rows": {
                        "Row": [
                            {"ColData": [{"id": "13", "value": "Meals"}, {"value": ""}, {"value": "46.00"}]}
                        ]
                    },
                    "Summary": {"ColData": [{"value": "Total"}, {"value": ""}, {"value": "46.00"}]},
                },
                {"group": "GrandTotal", "type": "Section", "Summary": {"ColData": [{"value": "TOTAL"}]}},
            ]
        },
    }
    assert qbo_balances(report) == {"35": Decimal("4151.74"), "13": Decimal("-46.00")}


def test_xero_balance_is_read_from_the_ytd_columns_by_their_titles() -> None:
    def row(account: str, *values: str) -> dict[str, object]:
        attributes = [{"Value": account, "Id": "account"}]
        return {
            "RowType": "Row",
            "Cells": [{"Value": v, "Attributes": attributes} for v in ("name", *values)],
        }

    report = {
        "Rows": [
            {
                "RowType": "Header",
                "Cells": [{"Value": t} for t in ("Account", "Debit", "Credit", "YTD Debit", "YTD Credit")],
            },
            {"RowType": "Section", "Title": "Assets", "Rows": [row("a-1", "1190.00", "", "36555.04", "")]},
            {"RowType": "Section", "Title": "Revenue", "Rows": [row("r-1", "", "0.00", "", "80.00")]},
            {
                "RowType": "Section",
                "Title": "",
                "Rows": [{"RowType": "SummaryRow", "Cells": [{"Value": "Total"}]}],
            },
        ]
    }
    assert xero_balances(report) == {"a-1": Decimal("36555.04"), "r-1": Decimal("-80.00")}
