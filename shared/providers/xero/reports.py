"""Xero account balances from the Trial Balance report (``GET /api.xro/2.0/Reports/TrialBalance?date=``),
read through the tenant's rate budget like every other call.

The answer is the spec's ``ReportWithRows`` (Xero OpenAPI xero_accounting.yaml, path /Reports/TrialBalance):
``Reports[0].Rows`` holds a Header row naming the columns ("Account", "Debit", "Credit", "YTD Debit",
"YTD Credit"), Sections of RowType "Row" (one per account) and a SummaryRow "Total". Every cell of an
account row carries the attribute ``{"Id": "account", "Value": <AccountID>}``. Debit / Credit are the
month's movement; YTD Debit / YTD Credit are the balance at the date (the financial year to date for
revenue and expense accounts), so the balance is read from the YTD columns. Amounts are text ("" when
empty)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from shared.domain.books import financial_year_start as year_start
from shared.errors import ProviderError
from shared.providers.base import Session
from shared.providers.company import report_amount
from shared.providers.xero.api import XeroApi
from shared.providers.xero.sales import organisation

DEBIT, CREDIT = "YTD Debit", "YTD Credit"


def account_balances(api: XeroApi, session: Session, as_of: date) -> dict[str, Decimal]:
    reports = api.report(session, "TrialBalance", {"date": as_of.isoformat()})
    if not reports:
        raise ProviderError("xero", "the trial balance answer holds no report")
    return balances(reports[0])


def financial_year_start(api: XeroApi, session: Session, on: date) -> date:
    """``GET /Organisation`` ``FinancialYearEndDay`` / ``FinancialYearEndMonth`` (Xero OpenAPI
    xero_accounting.yaml, schema Organisation: "Calendar day e.g. 0-31", "Calendar Month e.g. 1-12"); a year
    ending 31 December when they are missing."""
    found = organisation(api, session)
    try:
        end_month, end_day = (
            int(found.get("FinancialYearEndMonth") or 12),
            int(found.get("FinancialYearEndDay") or 31),
        )
    except (TypeError, ValueError):
        raise ProviderError("xero", "the organisation's financial year end is not a date") from None
    if not 1 <= end_month <= 12:
        raise ProviderError("xero", f"the organisation's financial year ends in month {end_month}")
    return year_start(on, end_month, end_day)


# ---- JSON -> values (pure) ----------------------------------------------------------------------------
def balances(report: dict[str, Any]) -> dict[str, Decimal]:
    """AccountID -> YTD debit minus YTD credit, for every account row of a Trial Balance report."""
    rows = report.get("Rows") or []
    header: dict[str, Any] = next((r for r in rows if r.get("RowType") == "Header"), {})
    titles = [str(c.get("Value") or "") for c in header.get("Cells") or []]
    try:
        debit, credit = titles.index(DEBIT), titles.index(CREDIT)
    except ValueError:
        raise ProviderError("xero", "the trial balance has no YTD Debit and YTD Credit columns") from None
    found: dict[str, Decimal] = {}
    for cells in _account_rows(rows):
        account_id = _account_id(cells[0])
        if not account_id or len(cells) <= max(debit, credit):
            continue
        balance = report_amount(cells[debit].get("Value"), "xero") - report_amount(
            cells[credit].get("Value"), "xero"
        )
        if balance:
            found[account_id] = found.get(account_id, Decimal(0)) + balance
    return found


def _account_rows(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for row in rows:
        if row.get("RowType") == "Row" and row.get("Cells"):
            yield row["Cells"]
        if row.get("Rows"):
            yield from _account_rows(row["Rows"])


def _account_id(cell: dict[str, Any]) -> str:
    return next(
        (str(a.get("Value") or "") for a in cell.get("Attributes") or [] if a.get("Id") == "account"), ""
    )
