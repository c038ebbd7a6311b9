"""Per-tenant rate limits of each provider as data, and the budget protocol every provider call draws from.

The budget is shared by every concurrent Lambda (it lives in DynamoDB, passed in by the services), so the
service slows itself down before the provider has to. Minute limits are counted in short fixed windows
whose cap is chosen so that *any* 60-second span, however the provider aligns its own minute, holds at
most ``per_minute`` calls: a 60 s span overlaps at most 60/W + 1 windows of W seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

WINDOW_SECONDS = 10


@dataclass(frozen=True)
class ProviderLimits:
    per_minute: int  # the provider's limit per tenant (QBO realm, Xero organisation)
    concurrent: int  # calls in flight per tenant
    per_second: int | None = None  # a limit per second too (counted in 1 s windows instead)
    daily_header: str | None = (
        None  # response header carrying the calls left today, when the provider sends one
    )
    daily_reserve: int = 0  # stop calling when the provider says this few calls remain today

    @property
    def window_seconds(self) -> int:
        return 1 if self.per_second else WINDOW_SECONDS

    @property
    def window_cap(self) -> int:
        """The calls one window admits: any 60 s span overlaps at most 60/W + 1 windows, any 1 s span two
        1 s windows, and neither may hold more than the provider allows."""
        cap = self.per_minute // (60 // self.window_seconds + 1)
        if self.per_second:
            cap = min(cap, self.per_second // 2)
        return max(1, cap)


# QBO: 500 requests a minute per realm, and 10 a second per realm and app (Intuit's limits page, enforced in
# the sandbox since 2025-09-15; ../shared/providers/qbo.md section 2.6, CONFIRMED): 5 a 1 s window, so at
# most 300 a minute
QBO_LIMITS = ProviderLimits(per_minute=500, concurrent=10, per_second=10)
XERO_LIMITS = ProviderLimits(
    per_minute=60, concurrent=5, daily_header="x-daylimit-remaining", daily_reserve=25
)


class RateBudget(Protocol):
    """Admission for one tenant's calls; ``key`` names the provider and tenant."""

    def acquire(
        self, key: str, *, window_seconds: int, window_cap: int, concurrent: int, daily_reserve: int
    ) -> float:
        """0 when a call may start now (it then holds an in-flight slot until ``release``);
        otherwise the seconds to wait before asking again."""
        ...

    def release(self, key: str) -> None: ...

    def note_daily_remaining(self, key: str, remaining: int) -> None: ...


def admit(budget: RateBudget, key: str, limits: ProviderLimits) -> float:
    return budget.acquire(
        key,
        window_seconds=limits.window_seconds,
        window_cap=limits.window_cap,
        concurrent=limits.concurrent,
        daily_reserve=limits.daily_reserve,
    )


def observe(budget: RateBudget, key: str, limits: ProviderLimits, headers: Mapping[str, str]) -> None:
    """Records what a response says about the tenant's remaining daily allowance."""
    if limits.daily_header is None:
        return
    value = headers.get(limits.daily_header)
    if value is not None and value.strip().isdigit():
        budget.note_daily_remaining(key, int(value))
