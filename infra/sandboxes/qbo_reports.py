"""QBO Reports API in the sandbox: the TrialBalance report, computed from what was posted to the company.

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
  at FIFO cost, /work/shared/providers/qbo.md §InventoryAdjustment; PurchaseCost is the only cost the
  sandbox tracks), debiting the item's asset account and crediting AdjustAccountRef (reversed for a
  decrease), at the adjustment's TxnDate;
- the opening value of an inventory item created with a quantity (QtyOnHand x PurchaseCost, debit its
  asset account, credit Opening Balance Equity, dated InvStartDate), as QBO books "Inventory Starting
  Value". Left out when the company has no Opening Balance Equity account.
Sales documents (invoices, sales receipts, credit memos) are NOT posted to the sandbox's ledger: it does
not model their accounting (A/R, Undeposited Funds, income, COGS relief), so they never appear here.

Figures: balance-sheet accounts carry everything dated on or before ``end_date``; income and expense
accounts only from the start of the fiscal year holding ``end_date`` (CompanyInfo FiscalYearStartMonth
January in the sandbox), earlier years' net going to Retained Earnings, as a trial balance does after the
year end. Accounts with a zero balance are left out. Cash basis: the sandbox reports the same figures (its
ledger holds only journals and adjustments, which QBO shows on both bases) but echoes the basis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.sandboxes.qbo import Company

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


@dataclass(frozen=True)
class Entry:
    account_id: str
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
            item = company.records["Item"].get(item_id)
            if item is None or not value:
                continue
            yield Entry(str(item["AssetAccountRef"]["value"]), on, value)
            yield Entry(str(equity), on, -value)


def _date(params: Mapping[str, str], name: str) -> date | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None


def trial_balance(company: Company, params: Mapping[str, str], *, today: date, time: str) -> dict[str, Any]:
    """The TrialBalance report body for ``GET /v3/company/<realm>/reports/TrialBalance``."""
    end = _date(params, "end_date") or today
    fiscal_start = date(end.year, 1, 1)  # FiscalYearStartMonth: January (the sandbox's CompanyInfo)
    start = _date(params, "start_date") or fiscal_start
    if start > end:
        raise ReportError("start_date must not be after end_date")
    basis = params.get("accounting_method", "").strip() or "Accrual"
    if basis not in BASES:
        raise ReportError(f"accounting_method {basis!r} must be Cash or Accrual")
    accounts = company.records["Account"]
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
    lines = [({"id": a["Id"], "value": a["FullyQualifiedName"]}, balances[a["Id"]]) for a in ordered] + lines
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


def _row(account: dict[str, str], balance: Decimal) -> dict[str, Any]:
    debit, credit = (f"{balance:.2f}", "") if balance > 0 else ("", f"{-balance:.2f}")
    return {"ColData": [account, {"value": debit}, {"value": credit}]}
