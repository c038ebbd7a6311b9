"""Xero Reports API in the sandbox: the Trial Balance, computed from the organisation's general ledger
(xero_journals), in the shape of the Xero OpenAPI spec's example (DESIGN.md, "The Xero sandbox's trial
balance", cites the sources)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from infra.sandboxes.xero_books import Organisation, Record, ms_date, parse_date
from infra.sandboxes.xero_journals import accounts as chart
from infra.sandboxes.xero_journals import entries

SECTIONS = (
    ("Revenue", "REVENUE"),
    ("Expenses", "EXPENSE"),
    ("Assets", "ASSET"),
    ("Liabilities", "LIABILITY"),
    ("Equity", "EQUITY"),
)
DEBIT_NORMAL = frozenset({"ASSET", "EXPENSE"})
PROFIT_AND_LOSS = frozenset({"REVENUE", "EXPENSE"})
COLUMNS = ("Account", "Debit", "Credit", "YTD Debit", "YTD Credit")


class ReportError(ValueError):
    """A report request Xero refuses."""


class Report(Protocol):
    """A report computed from an organisation's ledger: the ``Reports`` entry of ``GET /Reports/<name>``."""

    def __call__(
        self, org: Organisation, params: Mapping[str, str], *, today: date, now: datetime
    ) -> dict[str, Any]: ...


def financial_year_start(org: Organisation, on: date) -> date:
    """The first day of the financial year holding ``on`` (Organisation FinancialYearEndDay/Month)."""
    wire = org.to_wire()
    end_month, end_day = int(wire["FinancialYearEndMonth"]), int(wire["FinancialYearEndDay"])
    year_end = date(on.year, end_month, end_day)
    last_end = year_end if year_end < on else date(on.year - 1, end_month, end_day)
    return date.fromordinal(last_end.toordinal() + 1)


def report_date(params: Mapping[str, str], name: str, default: date) -> date:
    """A report's date parameter (``YYYY-MM-DD``), ``default`` when not given."""
    text = params.get(name, "").strip()
    try:
        return parse_date(text) if text else default
    except ValueError:
        raise ReportError(f"'{text}' is not a valid date for the report") from None


def trial_balance(
    org: Organisation, params: Mapping[str, str], *, today: date, now: datetime
) -> dict[str, Any]:
    """The ``Reports`` entry (a ReportWithRow) for ``GET /api.xro/2.0/Reports/TrialBalance``."""
    on = report_date(params, "date", today)
    payments_only = params.get("paymentsOnly", "").strip().lower() == "true"
    year_start = financial_year_start(org, on)
    month_start = on.replace(day=1)
    accounts = chart(org)
    ytd: dict[str, Decimal] = defaultdict(Decimal)
    month: dict[str, Decimal] = defaultdict(Decimal)
    earlier_profit = Decimal(0)
    for account_id, when, amount in entries(org, on, payments_only):
        cls = accounts[account_id]["Class"] if account_id in accounts else "ASSET"
        if cls in PROFIT_AND_LOSS and when < year_start:
            earlier_profit += amount
        else:
            ytd[account_id] += amount
        if when >= month_start:
            month[account_id] += amount
    retained = next((i for i, a in accounts.items() if a.get("SystemAccount") == "RETAINEDEARNINGS"), None)
    if retained is not None and earlier_profit:
        ytd[retained] += earlier_profit
    last_year_end = date.fromordinal(year_start.toordinal() - 1)
    rows: list[Record] = [{"RowType": "Header", "Cells": [{"Value": c} for c in COLUMNS]}]
    totals = [Decimal(0)] * 4
    for title, cls in SECTIONS:
        listed = sorted(
            (a for i, a in accounts.items() if a["Class"] == cls and (ytd.get(i) or month.get(i))),
            key=lambda a: (a["Name"], a.get("Code") or ""),
        )
        section_rows = []
        for account in listed:
            account_id = account["AccountID"].lower()
            pairs = _pair(month[account_id], cls) + _pair(ytd[account_id], cls)
            attributes = [{"Value": account["AccountID"], "Id": "account"}]
            if account_id == retained:
                attributes += [
                    {"Value": "", "Id": "fromDate"},
                    {"Value": f"{last_year_end:%m/%d/%Y}", "Id": "toDate"},
                ]
            name = f"{account['Name']} ({account['Code']})" if account.get("Code") else account["Name"]
            cells = [{"Value": value, "Attributes": attributes} for value in (name, *pairs)]
            section_rows.append({"RowType": "Row", "Cells": cells})
            for n, value in enumerate(pairs):
                totals[n] += Decimal(value or 0)
        if section_rows:
            rows.append({"RowType": "Section", "Title": title, "Rows": section_rows})
    summary = [{"Value": "Total"}, *({"Value": f"{t:.2f}"} for t in totals)]
    rows.append({"RowType": "Section", "Title": "", "Rows": [{"RowType": "SummaryRow", "Cells": summary}]})
    as_at = f"{on.day} {on:%B %Y}"
    return {
        "ReportID": "TrialBalance",
        "ReportName": "Trial Balance",
        "ReportType": "TrialBalance",
        "ReportTitles": ["Trial Balance", org.name, f"As at {as_at}"],
        "ReportDate": as_at,
        "UpdatedDateUTC": ms_date(now),
        "Fields": [],
        "Rows": rows,
    }


def _pair(amount: Decimal, cls: str) -> tuple[str, str]:
    """(debit, credit) text: the figure on its side, "" on the other; a zero on the normal side."""
    if amount > 0 or (amount == 0 and cls in DEBIT_NORMAL):
        return f"{amount:.2f}", ""
    return "", f"{-amount:.2f}"
