"""QBO Reports API in the sandbox: the TrialBalance report, computed from what was posted to the company, and
the accounts' CurrentBalance from the same ledger.

Shape: Intuit's TrialBalance reference (developer.intuit.com/app/developer/qbo/docs/api/accounting/
report-entities/trialbalance), whose sample object is ``{"Header": {"ReportName": "TrialBalance", "Option":
[{"Name": "NoReportData", "Value": "false"}], "DateMacro", "ReportBasis": "Accrual", "StartPeriod",
"EndPeriod", "Currency": "USD", "Time"}, "Rows": {"Row": [{"ColData": [{"id": "35", "value": "Checking"},
{"value": "4151.74"}, {"value": ""}]}, ..., {"group": "GrandTotal", "type": "Section", "Summary":
{"ColData": [{"value": "TOTAL"}, {"value": "36587.47"}, {"value": "36587.47"}]}}]}, "Columns": {"Column":
[{"ColType": "Account", "ColTitle": ""}, {"ColType": "Money", "ColTitle": "Debit"}, {"ColType": "Money",
"ColTitle": "Credit"}]}}`` (the same sample is quoted in public QBO clients' tests). Query parameters
(same page; Intuit's "Run reports" workflow): ``start_date``, ``end_date``, ``accounting_method``
(Cash|Accrual, default Accrual), ``date_macro``, ``minorversion``.

What the ledger holds (the sandbox's model, not all of QBO's):
- JournalEntry lines, at their TxnDate (home currency; a foreign journal at its ExchangeRate);
- InventoryAdjustment lines: the quantity change valued at the item's PurchaseCost (QBO itself values them
  at FIFO cost, ../shared/providers/qbo.md §InventoryAdjustment; PurchaseCost is the only cost the
  sandbox tracks), debiting the item's asset account and crediting AdjustAccountRef (reversed for a
  decrease), at the adjustment's TxnDate;
- the opening value of an inventory item created with a quantity (QtyOnHand x PurchaseCost, debit its
  asset account, credit Opening Balance Equity, dated InvStartDate), as QBO books "Inventory Starting
  Value". Left out when the company has no Opening Balance Equity account.
- sales documents (Invoice, SalesReceipt, CreditMemo, RefundReceipt) at their TxnDate, as QBO posts them
  (Intuit "Managing Inventory", developer.intuit.com/app/developer/qbo/docs/concepts/manage-inventory: a
  sale "decreases the value of Inventory Asset account by the original cost of the item"; Intuit's
  "Inventory overview and setup", community.intuit.com/articles/1145670: the sale "increases the Cost of
  Goods Sold account (COGS) by the original cost of the item and increases the Sales of Product Income
  account by the amount your customer paid you for the item"):
  * each item line's Amount (bundle lines: each component's) credited to the item's IncomeAccountRef; a
    discount line debited to its DiscountAccountRef (QBO's "Discounts given" when none);
  * a tax-inclusive document's tax (``TxnTaxDetail.TotalTax``) credited to the tax agency's liability,
    reported by name ("Tax Payable"; QBO names it after the agency, UNSURE of the exact name);
  * the document's total debited to Accounts Receivable (invoices: ARAccountRef, else the company's A/R
    account) or to DepositToAccountRef (sales receipts; QBO's Undeposited Funds when none);
  * for each tracked Inventory item the document moved (Company.sale_moves, kept by the sandbox as it
    changes QtyOnHand), the quantity at the item's PurchaseCost credited to its AssetAccountRef and debited
    to its ExpenseAccountRef (COGS). QBO values this at FIFO cost (developer.intuit.com/app/developer/qbo/
    docs/workflows/manage-inventory/fifo); the sandbox uses PurchaseCost, as for adjustments above;
  * credit memos and refund receipts post the reverse; a voided document (amounts and quantities 0) posts
    nothing, a deleted one is gone. Foreign documents post at their ExchangeRate, to the home A/R account
    (QBO keeps a separate A/R account per currency; the sandbox does not).
  An account QBO creates on its own that the company lacks in the sandbox (Accounts Receivable,
  Undeposited Funds, Discounts given, Tax Payable) is reported by name only, without an id.

Figures: balance-sheet accounts carry everything dated on or before ``end_date``; income and expense
accounts only from the start of the fiscal year holding ``end_date`` (CompanyInfo FiscalYearStartMonth
January in the sandbox), earlier years' net going to Retained Earnings, as a trial balance does after the
year end. Accounts with a zero balance are left out. Cash basis: the sandbox reports the accrual figures
(it models no payments, so it cannot tell what was paid) but echoes the basis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from infra.sandboxes.qbo_books import Company

CENT = Decimal("0.01")
BASES = ("Cash", "Accrual")
PROFIT_AND_LOSS = ("Revenue", "Expense")
# QBO lists trial balance rows in chart-of-accounts order: by account type, then number / name.
TYPE_ORDER = (
    "Bank",
    "Accounts Receivable",
    "Other Current Asset",
    "Fixed Asset",
    "Other Asset",
    "Accounts Payable",
    "Credit Card",
    "Other Current Liability",
    "Long Term Liability",
    "Equity",
    "Income",
    "Cost of Goods Sold",
    "Expense",
    "Other Income",
    "Other Expense",
)


class ReportError(ValueError):
    """A report request QBO refuses (rendered by the sandbox as a ValidationFault)."""


class Report(Protocol):
    """A report computed from a company's ledger: the body of ``GET .../reports/<name>``."""

    def __call__(
        self, company: Company, params: Mapping[str, str], *, today: date, time: str
    ) -> dict[str, Any]: ...


SALES = ("Invoice", "SalesReceipt", "CreditMemo", "RefundReceipt")
RETURNS = ("CreditMemo", "RefundReceipt")  # post the reverse of a sale
# Accounts QBO creates by itself: AccountType by name, for a company that lacks them in the sandbox
SYSTEM_ACCOUNTS = {
    "Accounts Receivable (A/R)": "Accounts Receivable",
    "Undeposited Funds": "Other Current Asset",
    "Discounts given": "Income",
    "Tax Payable": "Other Current Liability",
}
TAX_PAYABLE = "Tax Payable"


@dataclass(frozen=True)
class Entry:
    account_id: str  # an Account Id, or a SYSTEM_ACCOUNTS name
    on: date
    amount: Decimal  # debit positive, credit negative, home currency


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _number(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


def ledger(company: Company) -> Iterator[Entry]:
    """Every posting the sandbox's general ledger holds (see the module docstring for what is in it)."""
    for journal in company.records["JournalEntry"].values():
        on = date.fromisoformat(journal["TxnDate"])
        rate = _number(journal.get("ExchangeRate") or 1)
        for line in journal["Line"]:
            detail = line["JournalEntryLineDetail"]
            amount = cents(_number(line["Amount"]) * rate)
            signed = amount if detail["PostingType"] == "Debit" else -amount
            yield Entry(str(detail["AccountRef"]["value"]), on, signed)
    for adjustment_id, moves in company.stock_moves.items():
        adjustment = company.records["InventoryAdjustment"].get(adjustment_id)
        if adjustment is None:
            continue
        on = date.fromisoformat(adjustment["TxnDate"])
        offset = str(adjustment["AdjustAccountRef"]["value"])
        for item_id, diff in moves:
            item = company.records["Item"][item_id]
            value = cents(diff * _number(item.get("PurchaseCost")))
            yield Entry(str(item["AssetAccountRef"]["value"]), on, value)
            yield Entry(offset, on, -value)
    for entity in SALES:
        for document in company.records[entity].values():
            yield from _sale_entries(company, entity, document)
    equity = next(
        (
            a["Id"]
            for a in company.records["Account"].values()
            if a.get("AccountSubType") == "OpeningBalanceEquity"
        ),
        None,
    )
    if equity is not None:
        for item_id, (on, value) in company.openings.items():
            opened = company.records["Item"].get(item_id)
            if opened is None or not value:
                continue
            yield Entry(str(opened["AssetAccountRef"]["value"]), on, value)
            yield Entry(str(equity), on, -value)


def current_balances(company: Company) -> dict[str, Decimal]:
    """Each balance-sheet account's ``CurrentBalance`` from everything in the ledger: Intuit's Account
    reference, "CurrentBalance ... read only, filterable, sortable. Specifies the balance amount for the
    current Account. Valid for Balance Sheet accounts." An asset's balance is its debits less its credits, a
    liability's or equity's its credits less its debits (an A/P balance owed is positive: UNSURE, inferred
    from QBO's chart of accounts, which shows balances so); income and expense accounts carry none (0).
    Transactions dated after today count too (UNSURE: the reference says nothing of dates)."""
    sign = {"Asset": Decimal(1), "Liability": Decimal(-1), "Equity": Decimal(-1)}
    balances: dict[str, Decimal] = defaultdict(Decimal)
    for entry in ledger(company):
        balances[entry.account_id] += entry.amount
    return {
        account_id: sign.get(account.get("Classification", ""), Decimal(0))
        * balances.get(account_id, Decimal(0))
        for account_id, account in company.records["Account"].items()
    }


def _sale_entries(company: Company, entity: str, document: dict[str, Any]) -> Iterator[Entry]:
    """A sales document's postings (see the module docstring); a sale's credits are negative."""
    on = date.fromisoformat(document["TxnDate"])
    rate = _number(document.get("ExchangeRate") or 1)
    sign = Decimal(1) if entity in RETURNS else Decimal(-1)  # income: credited by a sale
    items = company.records["Item"]
    posted: list[Entry] = []
    for line in document.get("Line", []):
        kind = line.get("DetailType")
        if kind == "SalesItemLineDetail":
            parts = [line]
        elif kind == "GroupLineDetail":
            parts = line["GroupLineDetail"].get("Line", [])
        elif kind == "DiscountLineDetail":
            ref = line["DiscountLineDetail"].get("DiscountAccountRef") or {}
            account = str(ref.get("value") or "Discounts given")
            posted.append(Entry(account, on, -sign * cents(_number(line.get("Amount")) * rate)))
            continue
        else:
            continue  # SubTotalLineDetail, DescriptionOnly: no posting
        for part in parts:
            item = items.get(str(part["SalesItemLineDetail"]["ItemRef"]["value"]), {})
            account = str((item.get("IncomeAccountRef") or {}).get("value") or "")
            amount = cents(_number(part.get("Amount")) * rate)
            if account and amount:
                posted.append(Entry(account, on, sign * amount))
    tax = cents(_number((document.get("TxnTaxDetail") or {}).get("TotalTax") or 0) * rate)
    if tax and document.get("GlobalTaxCalculation") == "TaxInclusive":
        posted.append(Entry(TAX_PAYABLE, on, sign * tax))
    if entity in ("SalesReceipt", "RefundReceipt"):
        debtor = str((document.get("DepositToAccountRef") or {}).get("value") or "Undeposited Funds")
    else:
        debtor = str((document.get("ARAccountRef") or {}).get("value") or _receivable(company))
    balance = -sum((e.amount for e in posted), Decimal(0))
    if balance:
        yield Entry(debtor, on, balance)
    yield from (e for e in posted if e.amount)
    for item_id, change in company.sale_moves.get((entity, document["Id"]), {}).items():
        item = items[item_id]
        value = cents(change * _number(item.get("PurchaseCost")))
        if value:
            yield Entry(str(item["AssetAccountRef"]["value"]), on, value)
            yield Entry(str(item["ExpenseAccountRef"]["value"]), on, -value)


def _receivable(company: Company) -> str:
    receivable = sorted(
        (a for a in company.records["Account"].values() if a.get("AccountType") == "Accounts Receivable"),
        key=lambda a: int(a["Id"]) if str(a["Id"]).isdigit() else 0,
    )
    return str(receivable[0]["Id"]) if receivable else "Accounts Receivable (A/R)"


def _date(params: Mapping[str, str], name: str) -> date | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None


# Intuit's report references, date_macro: "Predefined date range. Use if you want the report to cover a
# standard report date range; otherwise, use the start_date and end_date", default "This Fiscal
# Year-to-date", supported values exactly these (e.g. developer.intuit.com/app/developer/qbo/docs/api/
# accounting/report-entities/trialbalance). The sandbox's fiscal year is the calendar year
# (FiscalYearStartMonth January), so a fiscal quarter is a calendar quarter. UNSURE: that a week starts on
# Sunday (QBO US), that "Next 4 Weeks" starts today, and that an explicit start_date / end_date wins over
# the macro.
DATE_MACROS = frozenset(
    ["Today", "Yesterday", "Next 4 Weeks"]
    + [f"{when} {unit}" for when in ("This", "Last", "Next") for unit in ("Week", "Month", "Fiscal Quarter")]
    + ["This Fiscal Year", "Last Fiscal Year", "Next Fiscal Year"]
    + [f"{when} {unit}-to-date" for when in ("This", "Last") for unit in ("Week", "Month", "Fiscal Quarter")]
    + ["This Fiscal Year-to-date", "Last Fiscal Year-to-date"]
)
MONTHS_IN = {"Month": 1, "Fiscal Quarter": 3, "Fiscal Year": 12}


def macro_period(macro: str, today: date) -> tuple[date, date]:
    """The first and last day a ``date_macro`` names (none given: This Fiscal Year-to-date)."""
    macro = macro or "This Fiscal Year-to-date"
    if macro not in DATE_MACROS:
        raise ReportError(f"date_macro {macro!r} is not one of the supported values")
    if macro in ("Today", "Yesterday"):
        day = today - timedelta(days=macro == "Yesterday")
        return day, day
    if macro == "Next 4 Weeks":
        return today, today + timedelta(days=27)
    when, _, unit = macro.removesuffix("-to-date").partition(" ")
    shift = {"This": 0, "Last": -1, "Next": 1}[when]
    if unit == "Week":
        this_start = today - timedelta(days=today.isoweekday() % 7)  # Sunday
        start = this_start + timedelta(weeks=shift)
        end = start + timedelta(days=6)
    else:
        span = MONTHS_IN[unit]
        first = (today.year * 12 + today.month - 1) // span * span
        this_start, start = _month_start(first), _month_start(first + shift * span)
        end = _month_start(first + (shift + 1) * span) - timedelta(days=1)
    if macro.endswith("-to-date"):  # as far into the period as today is into this one
        end = min(end, start + (today - this_start))
    return start, end


def _month_start(months: int) -> date:
    return date(months // 12, months % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """What a report covers: ``start_date`` / ``end_date`` or the ``date_macro``'s days, and the basis."""

    start: date
    end: date
    basis: str

    @property
    def fiscal_start(self) -> date:
        """The first day of the fiscal year holding ``end`` (FiscalYearStartMonth: January in the
        sandbox's CompanyInfo)."""
        return date(self.end.year, 1, 1)


def report_period(params: Mapping[str, str], today: date) -> Period:
    """The period and basis a report's query parameters ask for (the module docstring's parameters)."""
    macro = params.get("date_macro", "").strip()
    macro_start, macro_end = macro_period(macro, today)
    end = _date(params, "end_date") or macro_end
    start = _date(params, "start_date") or (macro_start if macro else date(end.year, 1, 1))
    if start > end:
        raise ReportError("start_date must not be after end_date")
    basis = params.get("accounting_method", "").strip() or "Accrual"
    if basis not in BASES:
        raise ReportError(f"accounting_method {basis!r} must be Cash or Accrual")
    return Period(start, end, basis)


def chart(company: Company) -> dict[str, dict[str, Any]]:
    """Every account a posting may name, by Id: the company's and those QBO makes by itself (by name)."""
    return {
        **{name: _system_account(name, kind) for name, kind in SYSTEM_ACCOUNTS.items()},
        **company.records["Account"],
    }


def trial_balance(company: Company, params: Mapping[str, str], *, today: date, time: str) -> dict[str, Any]:
    """The TrialBalance report body for ``GET /v3/company/<realm>/reports/TrialBalance``."""
    period = report_period(params, today)
    start, end, basis, fiscal_start = period.start, period.end, period.basis, period.fiscal_start
    accounts = chart(company)
    balances: dict[str, Decimal] = defaultdict(Decimal)
    earlier_profit = Decimal(0)
    for entry in ledger(company):
        if entry.on > end:
            continue
        account = accounts.get(entry.account_id, {})
        if account.get("Classification") in PROFIT_AND_LOSS and entry.on < fiscal_start:
            earlier_profit += entry.amount
        else:
            balances[entry.account_id] += entry.amount
    retained = next(
        (a["Id"] for a in accounts.values() if a.get("AccountSubType") == "RetainedEarnings"), None
    )
    lines: list[tuple[dict[str, str], Decimal]] = []
    if earlier_profit and retained is not None:
        balances[retained] += earlier_profit
    elif earlier_profit:  # QBO always has its Retained Earnings system account; a bare company may not
        lines.append(({"value": "Retained Earnings"}, earlier_profit))
    ordered = sorted(
        (a for a in accounts.values() if balances.get(a["Id"])),
        key=lambda a: (
            TYPE_ORDER.index(a["AccountType"]) if a["AccountType"] in TYPE_ORDER else len(TYPE_ORDER),
            str(a.get("AcctNum") or ""),
            a["Name"],
        ),
    )
    lines = [(account_cell(company, a), balances[a["Id"]]) for a in ordered] + lines
    rows = [_row(account, balance) for account, balance in lines]
    if rows:
        debits = sum((b for _, b in lines if b > 0), Decimal(0))
        credits = sum((-b for _, b in lines if b < 0), Decimal(0))
        total = [{"value": "TOTAL"}, {"value": f"{debits:.2f}"}, {"value": f"{credits:.2f}"}]
        rows.append({"group": "GrandTotal", "type": "Section", "Summary": {"ColData": total}})
    header: dict[str, Any] = {
        "Time": time,
        "ReportName": "TrialBalance",
        "ReportBasis": basis,
        "StartPeriod": start.isoformat(),
        "EndPeriod": end.isoformat(),
        "Currency": company.home_currency,
        "Option": [{"Name": "NoReportData", "Value": "false" if rows else "true"}],
    }
    return {
        "Header": header,
        "Columns": {
            "Column": [
                {"ColType": "Account", "ColTitle": ""},
                {"ColType": "Money", "ColTitle": "Debit"},
                {"ColType": "Money", "ColTitle": "Credit"},
            ]
        },
        "Rows": {"Row": rows} if rows else {},
    }


def _system_account(name: str, kind: str) -> dict[str, Any]:
    classification = {"Income": "Revenue", "Other Current Liability": "Liability"}.get(kind, "Asset")
    return {
        "Id": name,
        "Name": name,
        "FullyQualifiedName": name,
        "AccountType": kind,
        "Classification": classification,
    }


def account_cell(company: Company, account: dict[str, Any]) -> dict[str, str]:
    """The account column: id and name; an account the company lacks in the sandbox by name only."""
    if account["Id"] in company.records["Account"]:
        return {"id": account["Id"], "value": account["FullyQualifiedName"]}
    return {"value": account["FullyQualifiedName"]}


def _row(account: dict[str, str], balance: Decimal) -> dict[str, Any]:
    debit, credit = (f"{balance:.2f}", "") if balance > 0 else ("", f"{-balance:.2f}")
    return {"ColData": [account, {"value": debit}, {"value": credit}]}
