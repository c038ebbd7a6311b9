"""QBO account balances from the Reports API's TrialBalance (``GET /v3/company/<realm>/reports/TrialBalance``
with ``end_date`` and ``accounting_method``), read through the tenant's rate budget like every other call.

The report (Intuit's TrialBalance reference, developer.intuit.com/app/developer/qbo/docs/api/accounting/
report-entities/trialbalance): ``Columns.Column`` names the columns (ColType "Account", then "Money"
columns titled "Debit" and "Credit"); each account is a row of ``Rows.Row`` whose ``ColData`` holds the
account as ``{"id": <Account Id>, "value": <name>}`` then its debit and credit as text ("" when empty); the
grand total is a ``{"type": "Section", "group": "GrandTotal", "Summary": ...}`` row. Rows may also be nested
in Sections (``Rows.Row`` inside a row), so the walk descends into them and never reads a Summary."""

from __future__ import annotations

from calendar import month_name
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from shared.domain.books import financial_year_start as year_start
from shared.errors import ProviderError
from shared.providers.base import Session
from shared.providers.company import report_amount
from shared.providers.qbo.api import QboApi


def account_balances(api: QboApi, session: Session, as_of: date) -> dict[str, Decimal]:
    body = api.get(session, "reports/TrialBalance", end_date=as_of.isoformat(), accounting_method="Accrual")
    return balances(body)


def financial_year_start(api: QboApi, session: Session, on: date) -> date:
    """``CompanyInfo.FiscalYearStartMonth`` names the month the fiscal year starts ("January" ... "December";
    Intuit's CompanyInfo reference, developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/
    companyinfo; provider facts qbo.md, CompanyInfo). January when absent or unknown."""
    info = api.get(session, f"companyinfo/{session.tenant_id}").get("CompanyInfo") or {}
    return fiscal_year_start(str(info.get("FiscalYearStartMonth") or ""), on)


# ---- JSON -> values (pure) ----------------------------------------------------------------------------
def balances(report: dict[str, Any]) -> dict[str, Decimal]:
    """Account id -> debit minus credit, for every account row of a TrialBalance report."""
    titles = [str(c.get("ColTitle") or "") for c in (report.get("Columns") or {}).get("Column") or []]
    try:
        debit, credit = titles.index("Debit"), titles.index("Credit")
    except ValueError:
        raise ProviderError("qbo", "the trial balance report has no Debit and Credit columns") from None
    found: dict[str, Decimal] = {}
    for cells in _account_rows(report.get("Rows") or {}):
        account_id = str(cells[0].get("id") or "")
        if not account_id or len(cells) <= max(debit, credit):
            continue
        balance = report_amount(cells[debit].get("value"), "qbo") - report_amount(
            cells[credit].get("value"), "qbo"
        )
        if balance:
            found[account_id] = found.get(account_id, Decimal(0)) + balance
    return found


def fiscal_year_start(start_month: str, on: date) -> date:
    """The first day of the fiscal year holding ``on`` for a year starting in the month named."""
    months = [m.lower() for m in month_name]
    first = months.index(start_month.strip().lower()) if start_month.strip().lower() in months[1:] else 1
    end_month = 12 if first == 1 else first - 1
    return year_start(on, end_month, 31)


def _account_rows(rows: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    for row in rows.get("Row") or []:
        if row.get("ColData"):
            yield row["ColData"]
        if row.get("Rows"):
            yield from _account_rows(row["Rows"])
