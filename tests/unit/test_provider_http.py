"""The provider HTTP call: rate budget, retries with jitter, Retry-After, one token refresh, error mapping.
The provider is a scripted httpx transport; the budget is a stand-in that records what it was asked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import httpx
import pytest

from shared.errors import AuthExpired, ProviderRejected, ProviderUnavailable, RateLimited
from shared.providers import http
from shared.providers.base import Session
from shared.providers.limits import QBO_LIMITS, XERO_LIMITS, ProviderLimits

URL = "https://provider.test/v3/company/42/query"
Reply = httpx.Response | type[httpx.TransportError]
E = TypeVar("E", bound=Exception)


class Budget:
    """Admits every call (or waits as scripted) and records in-flight slots and daily counts."""

    def __init__(self, waits: list[float] | None = None) -> None:
        self.waits = list(waits or [])
        self.in_flight = 0
        self.calls = 0
        self.daily: list[int] = []

    def acquire(
        self, key: str, *, window_seconds: int, window_cap: int, concurrent: int, daily_reserve: int
    ) -> float:
        if self.waits:
            return self.waits.pop(0)
        self.in_flight += 1
        self.calls += 1
        return 0.0

    def release(self, key: str) -> None:
        self.in_flight -= 1

    def note_daily_remaining(self, key: str, remaining: int) -> None:
        self.daily.append(remaining)


class Tokens:
    def __init__(self) -> None:
        self.refreshes = 0

    def __call__(self, refused: bool) -> str:
        self.refreshes += refused
        return f"token-{self.refreshes}"


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    waits: list[float] = []
    monkeypatch.setattr(http, "sleep", waits.append)
    monkeypatch.setattr(http, "jitter", lambda low, high: high)  # the top of each backoff range
    yield waits


def provider(replies: list[Reply], seen: list[httpx.Request]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = replies.pop(0)
        if isinstance(reply, httpx.Response):
            return reply
        raise reply("scripted", request=request)

    return httpx.Client(transport=httpx.MockTransport(handle))


def run(
    replies: list[Reply],
    *,
    budget: Budget | None = None,
    tokens: Tokens | None = None,
    limits: ProviderLimits = QBO_LIMITS,
    method: str = "GET",
    retry_unknown_outcome: bool = True,
    retry_after_limit: float | None = None,
) -> tuple[httpx.Response, list[httpx.Request], Budget]:
    seen: list[httpx.Request] = []
    budget = budget or Budget()
    session = Session(
        tenant_id="42", token=tokens or Tokens(), budget=budget, retry_after_limit=retry_after_limit
    )
    response = http.call(
        provider(replies, seen),
        session,
        "qbo",
        limits,
        method,
        URL,
        retry_unknown_outcome=retry_unknown_outcome,
    )
    return response, seen, budget


def raises(kind: type[E], replies: list[Reply], **kwargs: object) -> E:
    with pytest.raises(kind) as caught:
        run(replies, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_429_waits_as_long_as_retry_after_says(slept: list[float]) -> None:
    response, seen, budget = run([httpx.Response(429, headers={"retry-after": "7"}), httpx.Response(200)])
    assert response.status_code == 200 and len(seen) == 2
    assert slept == [7.0]
    assert budget.in_flight == 0  # every slot given back


def test_429_without_retry_after_backs_off_exponentially(slept: list[float]) -> None:
    run([httpx.Response(429), httpx.Response(429), httpx.Response(429), httpx.Response(200)])
    assert slept == [0.5, 1.0, 2.0]


def test_a_retry_after_beyond_the_inline_limit_is_handed_to_the_caller(slept: list[float]) -> None:
    error = raises(RateLimited, [httpx.Response(429, headers={"retry-after": "3600"})])
    assert error.retry_after == 3600
    assert slept == []


def test_a_session_s_retry_after_limit_hands_longer_waits_to_the_caller(slept: list[float]) -> None:
    """The export worker waits out at most a couple of seconds in place: a minute's 429 is the queue's."""
    error = raises(RateLimited, [httpx.Response(429, headers={"retry-after": "7"})], retry_after_limit=2.0)
    assert (error.retry_after, slept) == (7, [])
    response, _, _ = run(
        [httpx.Response(429, headers={"retry-after": "2"}), httpx.Response(200)], retry_after_limit=2.0
    )
    assert (response.status_code, slept) == (200, [2.0])
    # without a Retry-After the short backoff is still taken in place
    run([httpx.Response(429), httpx.Response(429), httpx.Response(200)], retry_after_limit=0.1)
    assert slept == [2.0, 0.5, 1.0]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(503),
        httpx.ReadTimeout,
        httpx.RemoteProtocolError,
        httpx.ConnectError,
    ],
)
def test_reads_repeat_after_5xx_timeouts_and_dropped_connections(slept: list[float], failure: Reply) -> None:
    response, seen, _ = run([failure, failure, httpx.Response(200, json={"ok": True})])
    assert response.json() == {"ok": True} and len(seen) == 3
    assert slept == [0.5, 1.0]


def test_retries_are_bounded(slept: list[float]) -> None:
    raises(ProviderUnavailable, [httpx.Response(503)] * http.MAX_ATTEMPTS)
    assert len(slept) == http.MAX_ATTEMPTS - 1
    assert max(slept) <= http.BACKOFF_CAP


def test_a_write_whose_outcome_is_unknown_is_not_repeated(slept: list[float]) -> None:
    raises(ProviderUnavailable, [httpx.ReadTimeout], method="POST", retry_unknown_outcome=False)
    raises(ProviderUnavailable, [httpx.Response(500)], method="POST", retry_unknown_outcome=False)
    response, seen, _ = run(
        [httpx.Response(429), httpx.Response(200)], method="POST", retry_unknown_outcome=False
    )
    assert response.status_code == 200 and len(seen) == 2  # a 429 was never processed: safe to repeat


def test_a_refused_token_is_refreshed_once_and_the_call_repeated(slept: list[float]) -> None:
    tokens = Tokens()
    response, seen, _ = run([httpx.Response(401), httpx.Response(200)], tokens=tokens)
    assert response.status_code == 200 and tokens.refreshes == 1
    assert [r.headers["authorization"] for r in seen] == ["Bearer token-0", "Bearer token-1"]
    assert slept == []
    again = Tokens()
    raises(AuthExpired, [httpx.Response(401), httpx.Response(401)], tokens=again)
    assert again.refreshes == 1  # never a refresh loop


def test_validation_errors_carry_the_providers_words_and_are_not_retried(slept: list[float]) -> None:
    fault = {
        "Fault": {
            "Error": [
                {
                    "Message": "Duplicate Name Exists Error",
                    "Detail": "The name supplied already exists.",
                    "code": "6240",
                }
            ],
            "type": "ValidationFault",
        }
    }
    error = raises(ProviderRejected, [httpx.Response(400, json=fault)])
    assert "Duplicate Name Exists Error - The name supplied already exists. (code 6240)" in str(error)
    assert slept == []


def test_the_budget_paces_calls_before_the_provider_has_to(slept: list[float]) -> None:
    _, seen, budget = run([httpx.Response(200)], budget=Budget(waits=[4.0, 0.25]))
    assert slept == [4.0, 0.25] and len(seen) == 1 and budget.calls == 1


def test_a_long_pacing_wait_becomes_rate_limited(slept: list[float]) -> None:
    error = raises(RateLimited, [httpx.Response(200)], budget=Budget(waits=[3600.0]))
    assert error.retry_after == 3600.0


def test_xero_daily_allowance_is_read_from_each_response(slept: list[float]) -> None:
    _, _, budget = run([httpx.Response(200, headers={"x-daylimit-remaining": "4210"})], limits=XERO_LIMITS)
    assert budget.daily == [4210]
    _, _, quiet = run([httpx.Response(200, headers={"x-daylimit-remaining": "4210"})], limits=QBO_LIMITS)
    assert quiet.daily == []


def _most_in_any_span(calls: list[float], span: float) -> int:
    ends = iter(calls)
    most, inside, end = 0, 0, next(ends, None)
    for start in calls:  # spans starting at each call hold the most
        while end is not None and end < start + span:
            inside, end = inside + 1, next(ends, None)
        most = max(most, inside)
        inside -= 1
    return most


def test_window_caps_keep_any_minute_and_any_second_within_the_providers_limits() -> None:
    """A budget that fills every window to its cap, its calls bunched at the window's end, then at the next
    one's start (the worst a fixed window allows), still holds any 60 s span, and for QuickBooks any 1 s span
    (10 a second per realm and app, qbo.md section 2.6), within the provider's limit."""
    for limits in (QBO_LIMITS, XERO_LIMITS):
        width, cap = limits.window_seconds, limits.window_cap
        calls: list[float] = []
        for window in range(600 // width):
            start = window * width
            at = start + width - 0.001 if window % 2 == 0 else start
            calls.extend([at] * cap)
        assert _most_in_any_span(calls, 60) <= limits.per_minute
        if limits.per_second:
            assert _most_in_any_span(calls, 1) <= limits.per_second
    assert (QBO_LIMITS.per_second, QBO_LIMITS.window_seconds, QBO_LIMITS.window_cap) == (10, 1, 5)
    assert (QBO_LIMITS.concurrent, XERO_LIMITS.concurrent) == (10, 5)
