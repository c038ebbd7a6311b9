"""QBO's BalanceSheet and ProfitAndLoss reports in the sandbox, summed from the ledger the TrialBalance
reads (qbo_reports.ledger), with its query parameters (start_date, end_date, date_macro,
accounting_method).

Shape: Intuit's report references (developer.intuit.com/app/developer/qbo/docs/api/accounting/
report-entities/balancesheet and .../profitandloss; their samples as copied in public repositories), whose
rules are quoted beside the code: nested ``Section`` rows with a ``Header``, ``Rows`` and a ``Summary``,
each with its ``group``; leaf ``Data`` rows of ``ColData`` [{"id", "value": account name}, {"value":
amount}]; ``Columns`` "Account" and "Money"/"Total" with their ColKey MetaData; Header ``Option``
AccountingStandard GAAP and NoReportData, ``SummarizeColumnsBy`` "Total". Sub-accounts are listed flat
(the sandbox's charts have none nested). A report with no account to show has ``NoReportData`` "true" and
no rows, as the sandbox's TrialBalance (UNSURE for these two reports).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from infra.sandboxes.qbo_reports import (
    PROFIT_AND_LOSS,
    Period,
    ReportError,
    account_cell,
    chart,
    ledger,
    report_period,
)

if TYPE_CHECKING:
    from datetime import date

    from infra.sandboxes.qbo_books import Company

COLUMNS = {
    "Column": [
        {"ColType": "Account", "ColTitle": "", "MetaData": [{"Name": "ColKey", "Value": "account"}]},
        {"ColType": "Money", "ColTitle": "Total", "MetaData": [{"Name": "ColKey", "Value": "total"}]},
    ]
}
# Filters the references list (customer, vendor, item, class, department) and summarize_column_by other than
# Total: the sandbox's ledger carries none of what they select by, so it refuses them rather than answer
# figures that ignore them (its own refusal, not QBO's).
FILTERS = ("customer", "vendor", "item", "class", "department")


@dataclass(frozen=True)
class Group:
    """A report section: its ``group``, Header title (None: a Summary-only section), the AccountTypes listed
    in it (or its subsections), and the sign turning a debit balance into the figure shown."""

    group: str
    title: str | None
    types: tuple[str, ...] = ()
    sign: Decimal = Decimal(1)
    parts: tuple[Group, ...] = ()


CREDIT = Decimal(-1)
# The BalanceSheet reference's sample: ASSETS (TotalAssets) holding Current Assets (CurrentAssets: Bank
# Accounts, Accounts Receivable, Other current assets) and Fixed Assets; LIABILITIES AND EQUITY
# (TotalLiabilitiesAndEquity) holding Liabilities (Current Liabilities: Accounts Payable, Credit Cards, Other
# Current Liabilities; Long-Term Liabilities) and Equity. Other Assets (group OtherAssets) is not in the
# sample: its title and group are UNSURE.
BALANCE_SHEET = (
    Group(
        "TotalAssets",
        "ASSETS",
        parts=(
            Group(
                "CurrentAssets",
                "Current Assets",
                parts=(
                    Group("BankAccounts", "Bank Accounts", ("Bank",)),
                    Group("AR", "Accounts Receivable", ("Accounts Receivable",)),
                    Group("OtherCurrentAssets", "Other current assets", ("Other Current Asset",)),
                ),
            ),
            Group("FixedAssets", "Fixed Assets", ("Fixed Asset",)),
            Group("OtherAssets", "Other Assets", ("Other Asset",)),
        ),
    ),
    Group(
        "TotalLiabilitiesAndEquity",
        "LIABILITIES AND EQUITY",
        sign=CREDIT,
        parts=(
            Group(
                "Liabilities",
                "Liabilities",
                sign=CREDIT,
                parts=(
                    Group(
                        "CurrentLiabilities",
                        "Current Liabilities",
                        sign=CREDIT,
                        parts=(
                            Group("AP", "Accounts Payable", ("Accounts Payable",), CREDIT),
                            Group("CreditCards", "Credit Cards", ("Credit Card",), CREDIT),
                            Group(
                                "OtherCurrentLiabilities",
                                "Other Current Liabilities",
                                ("Other Current Liability",),
                                CREDIT,
                            ),
                        ),
                    ),
                    Group("LongTermLiabilities", "Long-Term Liabilities", ("Long Term Liability",), CREDIT),
                ),
            ),
            Group("Equity", "Equity", ("Equity",), CREDIT),
        ),
    ),
)
# The ProfitAndLoss reference's group values (US: Income COGS GrossProfit Expenses NetOperatingIncome
# OtherExpenses NetOtherIncome NetIncome; GB adds OtherIncome) and titles ("Total Income", "Cost of Goods
# Sold", "Gross Profit", "Total Expenses", "Net Operating Income", "Other Expenses", "Net Other Income",
# "Net Income": its sample and a captured live response).
INCOME = Group("Income", "Income", ("Income",), CREDIT)
COGS = Group("COGS", "Cost of Goods Sold", ("Cost of Goods Sold",))
EXPENSES = Group("Expenses", "Expenses", ("Expense",))
OTHER_INCOME = Group("OtherIncome", "Other Income", ("Other Income",), CREDIT)
OTHER_EXPENSES = Group("OtherExpenses", "Other Expenses", ("Other Expense",))


def _check_supported(params: Mapping[str, str]) -> None:
    if given := [name for name in FILTERS if params.get(name, "").strip()]:
        raise ReportError(f"the sandbox's reports take no {', '.join(given)} filter")
    summarize = params.get("summarize_column_by", "").strip() or "Total"
    if summarize != "Total":
        raise ReportError(f"the sandbox's reports summarize columns by Total only, not {summarize!r}")


def _money(amount: Decimal) -> str:
    return f"{amount + Decimal(0):.2f}"  # + 0: a negated zero reads 0.00


def _summary(title: str, amount: Decimal | None) -> dict[str, Any]:
    return {"ColData": [{"value": title}, {"value": "" if amount is None else _money(amount)}]}


Extra = Mapping[str, list[tuple[dict[str, Any], Decimal]]]


def _section(
    company: Company,
    part: Group,
    accounts: dict[str, dict[str, Any]],
    balances: Mapping[str, Decimal],
    extra: Extra | None = None,
) -> tuple[dict[str, Any] | None, Decimal]:
    """A section with its accounts' Data rows (by name), then the ``extra`` rows of its group (row, figure),
    then its subsections; None when it has none. Its Summary reads "Total <title>" (the samples' "Total
    Bank Accounts", "Total Current Assets"), the top sections' "TOTAL ASSETS", "TOTAL LIABILITIES AND
    EQUITY"."""
    listed = sorted(
        (a for a in accounts.values() if a["AccountType"] in part.types and balances.get(a["Id"])),
        key=lambda a: a["FullyQualifiedName"],
    )
    figures = [part.sign * balances[a["Id"]] for a in listed]
    rows: list[dict[str, Any]] = [
        {"ColData": [account_cell(company, a), {"value": _money(f)}], "type": "Data"}
        for a, f in zip(listed, figures, strict=True)
    ]
    added = (extra or {}).get(part.group, [])
    rows += [row for row, _ in added]
    total = sum(figures, Decimal(0)) + sum((f for _, f in added), Decimal(0))
    for sub in part.parts:
        section, amount = _section(company, sub, accounts, balances, extra)
        if section is not None:
            rows.append(section)
            total += amount
    if not rows:
        return None, Decimal(0)
    title = part.title or ""
    label = f"TOTAL {title}" if title.isupper() else f"Total {title}"
    return _wrap(part, rows, _summary(label, total)), total


def _wrap(part: Group, rows: list[dict[str, Any]] | None, summary: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if part.title is not None:
        section["Header"] = {"ColData": [{"value": part.title}, {"value": ""}]}
    if rows:
        section["Rows"] = {"Row": rows}
    return {**section, "type": "Section", "group": part.group, "Summary": summary}


def _report(
    company: Company, name: str, period: Period, rows: list[dict[str, Any]], time: str, *, data: bool
) -> dict[str, Any]:
    header = {
        "Time": time,
        "ReportName": name,
        "ReportBasis": period.basis,
        "StartPeriod": period.start.isoformat(),
        "EndPeriod": period.end.isoformat(),
        "SummarizeColumnsBy": "Total",
        "Currency": company.home_currency,
        "Option": [
            {"Name": "AccountingStandard", "Value": "GAAP"},
            {"Name": "NoReportData", "Value": "false" if data else "true"},
        ],
    }
    return {"Header": header, "Columns": COLUMNS, "Rows": {"Row": rows} if data else {}}


def balance_sheet(company: Company, params: Mapping[str, str], *, today: date, time: str) -> dict[str, Any]:
    """``GET /v3/company/<realm>/reports/BalanceSheet``: each balance-sheet account's balance on
    ``end_date`` (assets debit-positive, liabilities and equity credit-positive, as in the sample); in
    Equity, after the accounts, the row "Net Income" (``group`` NetIncome, no id: the sample) of the fiscal
    year to ``end_date``, earlier years' profit going to Retained Earnings as in the TrialBalance."""
    _check_supported(params)
    period = report_period(params, today)
    accounts = chart(company)
    balances: dict[str, Decimal] = defaultdict(Decimal)
    net_income = earlier = Decimal(0)
    for entry in ledger(company):
        if entry.on > period.end:
            continue
        if accounts.get(entry.account_id, {}).get("Classification") not in PROFIT_AND_LOSS:
            balances[entry.account_id] += entry.amount
        elif entry.on >= period.fiscal_start:
            net_income -= entry.amount
        else:
            earlier += entry.amount
    retained = next((a for a in accounts.values() if a.get("AccountSubType") == "RetainedEarnings"), None)
    if retained is None and earlier:  # QBO always has its Retained Earnings account; a bare company may not
        retained = {
            "Id": "Retained Earnings",
            "FullyQualifiedName": "Retained Earnings",
            "AccountType": "Equity",
        }
        accounts["Retained Earnings"] = retained
    if retained is not None:
        balances[retained["Id"]] += earlier
    extra: Extra = {}
    if net_income:
        row = {"ColData": [{"value": "Net Income"}, {"value": _money(net_income)}], "type": "Data"}
        extra = {"Equity": [({**row, "group": "NetIncome"}, net_income)]}
    rows = [
        section
        for part in BALANCE_SHEET
        if (section := _section(company, part, accounts, balances, extra)[0]) is not None
    ]
    return _report(company, "BalanceSheet", period, rows, time, data=bool(rows))


def profit_and_loss(company: Company, params: Mapping[str, str], *, today: date, time: str) -> dict[str, Any]:
    """``GET /v3/company/<realm>/reports/ProfitAndLoss``: each income and expense account's movement from
    ``start_date`` to ``end_date`` (income credit-positive, costs debit-positive). As in the reference's
    sample, Income, Gross Profit, Expenses, Net Operating Income and Net Income are always there (an empty
    section with its Header and a blank total); Cost of Goods Sold, Other Income, Other Expenses and Net
    Other Income only with figures (the sample has no COGS section; a captured live response shows Other
    Expenses and Net Other Income with them: UNSURE for none)."""
    _check_supported(params)
    period = report_period(params, today)
    accounts = chart(company)
    moved: dict[str, Decimal] = defaultdict(Decimal)
    for entry in ledger(company):
        account = accounts.get(entry.account_id, {})
        if period.start <= entry.on <= period.end and account.get("Classification") in PROFIT_AND_LOSS:
            moved[entry.account_id] += entry.amount
    if not any(moved.values()):
        return _report(company, "ProfitAndLoss", period, [], time, data=False)
    rows: list[dict[str, Any]] = []

    def add(part: Group, *, always: bool) -> Decimal:
        section, total = _section(company, part, accounts, moved)
        if section is not None:
            rows.append(section)
        elif always:
            rows.append(_wrap(part, None, _summary(f"Total {part.title}", None)))
        return total

    def line(group: str, title: str, amount: Decimal) -> None:
        rows.append({"type": "Section", "group": group, "Summary": _summary(title, amount)})

    income = add(INCOME, always=True)
    gross = income - add(COGS, always=False)
    line("GrossProfit", "Gross Profit", gross)
    operating = gross - add(EXPENSES, always=True)
    line("NetOperatingIncome", "Net Operating Income", operating)
    others = len(rows)
    other = add(OTHER_INCOME, always=False) - add(OTHER_EXPENSES, always=False)
    if len(rows) > others:  # an Other Income or Other Expenses section was added
        line("NetOtherIncome", "Net Other Income", other)
    line("NetIncome", "Net Income", operating + other)
    return _report(company, "ProfitAndLoss", period, rows, time, data=True)
