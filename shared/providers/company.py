"""What both providers read of the company the same way: its home currency, time zone, financial year and
account balances, each from the provider's own module (``sales``, ``reports``), loaded on first use so that
a token refresh or a connection check never pays for them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from types import ModuleType

from shared.errors import ProviderError
from shared.providers.base import Session


class CompanyReads:
    api: object  # the provider's API wrapper, which its modules take first
    sales_module: ModuleType
    reports_module: ModuleType

    def home_currency(self, session: Session) -> str:
        currency: str = self.sales_module.home_currency(self.api, session)
        return currency

    def time_zone(self, session: Session) -> str:
        zone: str = self.sales_module.time_zone(self.api, session)
        return zone

    def financial_year_start(self, session: Session, on: date) -> date:
        start: date = self.reports_module.financial_year_start(self.api, session, on)
        return start

    def account_balances(self, session: Session, as_of: date) -> dict[str, Decimal]:
        balances: dict[str, Decimal] = self.reports_module.account_balances(self.api, session, as_of)
        return balances


def report_amount(value: object, provider: str) -> Decimal:
    """A report cell's amount: text with thousands separators, "" when empty."""
    text = str(value or "").replace(",", "").strip()
    try:
        return Decimal(text) if text else Decimal(0)
    except InvalidOperation:
        raise ProviderError(provider, f"the trial balance holds a non-number: {text!r}") from None
