"""Xero's Balance Sheet and Profit and Loss reports in the sandbox, summed from the general ledger the Trial
Balance reads (xero_journals), in the ReportWithRows shape.

Sources: the spec's ``/Reports/BalanceSheet`` example (xero_accounting.yaml) and Xero's Reports page
(developer.xero.com/documentation/api/accounting/reports, as copied in public repositories), whose words
are quoted beside each rule. Money is text with two decimals, as in both examples.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from infra.sandboxes.xero_books import Organisation, Record, ms_date
from infra.sandboxes.xero_journals import accounts as chart
from infra.sandboxes.xero_journals import entries
from infra.sandboxes.xero_reports import PROFIT_AND_LOSS, ReportError, financial_year_start, report_date

MONTHS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}
# Balance sheet sections by account Type, in the spec example's order (Bank, Current Assets, Fixed Assets;
# Current Liabilities). Where Xero puts INVENTORY, PREPAYMENT, NONCURRENT, TERMLIAB, LIABILITY and PAYG
# accounts is not in the examples: UNSURE (Xero's default layout, as its report screens show it).
ASSET_SECTIONS = (
    ("Bank", ("BANK",)),
    ("Current Assets", ("CURRENT", "INVENTORY", "PREPAYMENT")),
    ("Fixed Assets", ("FIXED",)),
    ("Non-current Assets", ("NONCURRENT",)),
)
LIABILITY_SECTIONS = (
    ("Current Liabilities", ("CURRLIAB", "PAYG")),
    ("Non-current Liabilities", ("TERMLIAB", "LIABILITY")),
)
# Profit and loss sections by account Type. The Reports page's example shows the " Income" section ("Total
# Income") and the last row "NET PROFIT"; the other titles are Xero's default layout: UNSURE.
INCOME = ("Income", ("REVENUE", "SALES"), Decimal(-1))
COST_OF_SALES = ("Less Cost of Sales", ("DIRECTCOSTS",), Decimal(1))
OTHER_INCOME = ("Plus Other Income", ("OTHERINCOME",), Decimal(-1))
OPERATING_EXPENSES = ("Less Operating Expenses", ("EXPENSE", "OVERHEADS", "DEPRECIATN"), Decimal(1))


def _periods(params: Mapping[str, str], *, default_timeframe: str) -> tuple[int, int]:
    """(comparison periods, months in each): ``periods`` "The number of periods to compare (integer between
    1 and 11)" and ``timeframe`` "The period size to compare to (MONTH, QUARTER, YEAR)" (Reports page)."""
    text = params.get("periods", "").strip()
    timeframe = params.get("timeframe", "").strip().upper() or default_timeframe
    if timeframe not in MONTHS:
        raise ReportError(f"timeframe '{timeframe}' must be one of MONTH, QUARTER, YEAR")
    if not text:
        return 0, MONTHS[timeframe]
    if not text.isdigit() or not 1 <= int(text) <= 11:
        raise ReportError(f"periods '{text}' must be a whole number between 1 and 11")
    return int(text), MONTHS[timeframe]


def _no_tracking(params: Mapping[str, str], names: tuple[str, ...]) -> None:
    """The sandbox's organisations have no tracking categories, so no option or category can be named
    (Xero's own refusal of an unknown one is not documented: UNSURE)."""
    for name in names:
        if params.get(name, "").strip():
            raise ReportError(f"{name} '{params[name]}' is not a tracking option of this organisation")


def months_back(day: date, months: int) -> date:
    """The same day ``months`` earlier; a month's last day stays its month's last day."""
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    last = calendar.monthrange(year, month + 1)[1]
    at_end = day.day == calendar.monthrange(day.year, day.month)[1]
    return date(year, month + 1, last if at_end else min(day.day, last))


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _money(amount: Decimal) -> str:
    return f"{amount + Decimal(0):.2f}"  # + 0: a negated zero reads 0.00


def _long(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def _us(day: date) -> str:
    return f"{day.month}/{day.day}/{day.year}"


def _account_row(account: Record, figures: list[Decimal]) -> Record:
    attributes = [{"Value": account["AccountID"], "Id": "account"}]
    cells = [account["Name"], *(_money(f) for f in figures)]
    return {"RowType": "Row", "Cells": [{"Value": v, "Attributes": attributes} for v in cells]}


def _plain_row(kind: str, title: str, figures: list[Decimal]) -> Record:
    return {"RowType": kind, "Cells": [{"Value": title}, *({"Value": _money(f)} for f in figures)]}


def _envelope(
    org: Organisation, kind: str, name: str, title: str, period: str, rows: list[Record], now: datetime
) -> dict[str, Any]:
    return {
        "ReportID": kind,
        "ReportName": name,
        "ReportType": kind,
        "ReportTitles": [title, org.name, period],
        "ReportDate": _long(now.date()),  # the day the report is run (both examples)
        "UpdatedDateUTC": ms_date(now),
        "Fields": [],
        "Rows": rows,
    }


def balance_sheet(
    org: Organisation, params: Mapping[str, str], *, today: date, now: datetime
) -> dict[str, Any]:
    """``GET /Reports/BalanceSheet``. ``date`` "The date of the Balance Sheet report"; without one, the end of
    the current month (the spec example's "As at 30 April 2019" run on 12 April 2019). Without ``periods`` it
    "also returns the value at the end of the same month for the previous year" (Reports page; its example's
    columns "28 Feb 2018", "28 Feb 2017"); with them, one column per earlier period of ``timeframe``
    (MONTH when not given: UNSURE), newest first (the spec example: 30 Apr, 31 Mar, 28 Feb 2019).

    Figures at each column's date: assets their debit balance; liabilities and equity their credit balance
    (the spec example: Total Liabilities taken from Total Assets gives Net Assets); "Current Year Earnings"
    the profit of the financial year to the date, with ``fromDate`` / ``toDate`` attributes; Retained
    Earnings its balance plus the profit of earlier years, ``fromDate`` "" and ``toDate`` the column's date
    (as the spec example shows them). ``paymentsOnly=true``: only journals on cash-basis reports."""
    _no_tracking(params, ("trackingOptionID1", "trackingOptionID2"))
    on = report_date(params, "date", _month_end(today))
    periods, span = _periods(params, default_timeframe="MONTH" if params.get("periods") else "YEAR")
    dates = [months_back(on, k * span) for k in range(max(periods, 1) + 1)]
    payments_only = params.get("paymentsOnly", "").strip().lower() == "true"
    accounts = chart(org)
    retained = next(a for a in accounts.values() if a.get("SystemAccount") == "RETAINEDEARNINGS")
    balances: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(dates))
    earnings = [Decimal(0)] * len(dates)
    for account_id, when, amount in entries(org, dates[0], payments_only):
        cls = accounts.get(account_id, {}).get("Class", "ASSET")
        for n, column in enumerate(dates):
            if when > column:
                continue
            if cls not in PROFIT_AND_LOSS:
                balances[account_id][n] += amount
            elif when >= financial_year_start(org, column):
                earnings[n] -= amount
            else:  # earlier years' profit: in Retained Earnings
                balances[retained["AccountID"].lower()][n] += amount
    header = [{"Value": ""}, *({"Value": f"{d.day} {d:%b %Y}"} for d in dates)]
    rows: list[Record] = [{"RowType": "Header", "Cells": header}]
    assets = _sections(rows, "Assets", ASSET_SECTIONS, accounts, balances, Decimal(1), len(dates))
    liabilities = _sections(
        rows, "Liabilities", LIABILITY_SECTIONS, accounts, balances, Decimal(-1), len(dates)
    )
    net = [a - b for a, b in zip(assets, liabilities, strict=True)]
    rows.append({"RowType": "Section", "Title": "", "Rows": [_plain_row("Row", "Net Assets", net)]})
    equity = [
        (a["Name"], _account_row(a, [-f for f in balances[i]]), [-f for f in balances[i]])
        for i, a in accounts.items()
        if a["Class"] == "EQUITY" and any(balances.get(i, ()))
    ]
    for row in (r for name, r, _ in equity if name == retained["Name"]):
        for n, cell in enumerate(row["Cells"][1:]):
            cell["Attributes"] = [*cell["Attributes"], *_span("", dates[n])]
    if any(earnings):
        cells = [{"Value": "Current Year Earnings"}] + [
            {"Value": _money(f), "Attributes": _span(_us(financial_year_start(org, d)), d)}
            for f, d in zip(earnings, dates, strict=True)
        ]
        equity.append(("Current Year Earnings", {"RowType": "Row", "Cells": cells}, earnings))
    equity.sort(key=lambda e: e[0])
    total = [sum((f[n] for _, _, f in equity), Decimal(0)) for n in range(len(dates))]
    equity_rows = [r for _, r, _ in equity] + [_plain_row("SummaryRow", "Total Equity", total)]
    rows.append({"RowType": "Section", "Title": "Equity", "Rows": equity_rows})
    return _envelope(org, "BalanceSheet", "Balance Sheet", "Balance Sheet", f"As at {_long(on)}", rows, now)


def _span(start: str, end: date) -> list[Record]:
    return [{"Value": start, "Id": "fromDate"}, {"Value": _us(end), "Id": "toDate"}]


def _sections(
    rows: list[Record],
    title: str,
    sections: tuple[tuple[str, tuple[str, ...]], ...],
    accounts: dict[str, Record],
    balances: Mapping[str, list[Decimal]],
    sign: Decimal,
    width: int,
) -> list[Decimal]:
    """Appends a class's sections (its title over them, each with its accounts and "Total <section>", then
    "Total <title>", as the spec example lays out Assets and Liabilities); returns the class's totals."""
    rows.append({"RowType": "Section", "Title": title, "Rows": []})
    totals = [Decimal(0)] * width
    for name, types in sections:
        listed = sorted(
            (a for i, a in accounts.items() if a["Type"] in types and any(balances.get(i, ()))),
            key=lambda a: a["Name"],
        )
        if not listed:
            continue
        figures = [[sign * f for f in balances[a["AccountID"].lower()]] for a in listed]
        subtotal = [sum(column, Decimal(0)) for column in zip(*figures, strict=True)]
        section_rows = [_account_row(a, f) for a, f in zip(listed, figures, strict=True)]
        section_rows.append(_plain_row("SummaryRow", f"Total {name}", subtotal))
        rows.append({"RowType": "Section", "Title": name, "Rows": section_rows})
        totals = [t + s for t, s in zip(totals, subtotal, strict=True)]
    rows.append(
        {"RowType": "Section", "Title": "", "Rows": [_plain_row("SummaryRow", f"Total {title}", totals)]}
    )
    return totals


def profit_and_loss(
    org: Organisation, params: Mapping[str, str], *, today: date, now: datetime
) -> dict[str, Any]:
    """``GET /Reports/ProfitAndLoss``: "Returns a profit and loss for the current month by default";
    ``fromDate`` "Defaults to the begining of the current month", ``toDate`` "Defaults to the end of the
    current month"; with ``periods`` "the specified date range will apply to each period" (Reports page),
    earlier periods after the first column. Income and other income credit-positive, costs and expenses
    debit-positive; "Gross Profit" is income less cost of sales, "NET PROFIT" all income less all costs."""
    _no_tracking(
        params, ("trackingCategoryID", "trackingCategoryID2", "trackingOptionID", "trackingOptionID2")
    )
    start = report_date(params, "fromDate", today.replace(day=1))
    end = report_date(params, "toDate", _month_end(today))
    if start > end:
        raise ReportError("fromDate must not be after toDate")
    periods, span = _periods(params, default_timeframe="MONTH")
    ranges = [(months_back(start, k * span), months_back(end, k * span)) for k in range(periods + 1)]
    payments_only = params.get("paymentsOnly", "").strip().lower() == "true"
    accounts = chart(org)
    moved: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(ranges))
    for account_id, when, amount in entries(org, end, payments_only):
        for n, (first, last) in enumerate(ranges):
            if first <= when <= last:
                moved[account_id][n] += amount
    header = [{"Value": ""}, *({"Value": f"{last.day} {last:%b %y}"} for _, last in ranges)]
    rows: list[Record] = [{"RowType": "Header", "Cells": header}]
    width = len(ranges)
    income = _pl_section(rows, INCOME, accounts, moved, width)
    costs = _pl_section(rows, COST_OF_SALES, accounts, moved, width)
    gross = [i - c for i, c in zip(income, costs, strict=True)]
    if any(costs):
        rows.append({"RowType": "Section", "Title": "", "Rows": [_plain_row("Row", "Gross Profit", gross)]})
    other = _pl_section(rows, OTHER_INCOME, accounts, moved, width)
    expenses = _pl_section(rows, OPERATING_EXPENSES, accounts, moved, width)
    net = [g + o - e for g, o, e in zip(gross, other, expenses, strict=True)]
    rows.append({"RowType": "Section", "Title": "", "Rows": [_plain_row("Row", "NET PROFIT", net)]})
    period = f"{_long(start)} to {_long(end)}"
    return _envelope(org, "ProfitAndLoss", "Profit and Loss", "Profit & Loss", period, rows, now)


def _pl_section(
    rows: list[Record],
    section: tuple[str, tuple[str, ...], Decimal],
    accounts: dict[str, Record],
    moved: Mapping[str, list[Decimal]],
    width: int,
) -> list[Decimal]:
    """Appends a profit and loss section with its accounts and "Total <name>" (the Reports page's example:
    "Total Income") when it has any; returns its totals."""
    title, types, sign = section
    listed = sorted(
        (a for i, a in accounts.items() if a["Type"] in types and any(moved.get(i, ()))),
        key=lambda a: a["Name"],
    )
    if not listed:
        return [Decimal(0)] * width
    figures = [[sign * f for f in moved[a["AccountID"].lower()]] for a in listed]
    totals = [sum(column, Decimal(0)) for column in zip(*figures, strict=True)]
    name = title.removeprefix("Less ").removeprefix("Plus ")
    section_rows = [_account_row(a, f) for a, f in zip(listed, figures, strict=True)]
    section_rows.append(_plain_row("SummaryRow", f"Total {name}", totals))
    rows.append({"RowType": "Section", "Title": title, "Rows": section_rows})
    return totals
