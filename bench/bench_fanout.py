"""The scheduled passes fanned out, in simulated time (nothing sleeps): 10,000 connections, provider calls
of 300 ms, the template's settings (schedule, SQS event source BatchSize and MaximumConcurrency, function
timeouts) and the per-tenant limits of shared/providers/limits.py. Shows every connection checked within one
5-minute tick and every tracked connection pulled within the hour (large first pulls going on across
messages), with peak concurrency within the bound and no invocation over its timeout; prints the largest
number of connections one tick (and one hour of pulls) can hold with these settings.
Run: python -m bench bench_fanout"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Any

from infra.local.scheduler import rate_seconds
from infra.local.template import load_template
from shared.providers.limits import QBO_LIMITS, XERO_LIMITS
from shared.services import sales
from shared.store.connections import SHARD_READERS
from shared.store.keys import CONNECTION_SHARDS as SHARDS

LATENCY = 0.300  # one provider call
DYNAMO = 0.006  # one DynamoDB request
KMS = 0.015
SEND_BATCH = 0.015  # one SendMessageBatch (10 messages)
QUERY_PAGE = 0.025  # one 1 MB page of the connections index (projected rows: ~150 bytes, ~6,500 a page)
ROWS_PER_PAGE = 6500
BATCH_GET = 0.012  # one BatchGetItem of 100 tracking rows
COLD_START = 1.2  # a new concurrent environment's first invocation

XERO_APP_PER_MINUTE = 10_000  # Xero's per-app limit across all tenants
XERO_SHARE = 0.5  # half the connections are Xero


@dataclass
class Settings:
    rate: int
    timeout: int
    batch: int
    concurrency: int


def settings_of(function: str) -> Settings:
    resource = load_template()["Resources"][function]["Properties"]
    schedule = next(e for e in resource["Events"].values() if e["Type"] == "Schedule")
    queue = next(e for e in resource["Events"].values() if e["Type"] == "SQS")["Properties"]
    return Settings(
        rate_seconds(schedule["Properties"]["Schedule"]),
        int(resource["Timeout"]),
        int(queue.get("BatchSize", 10)),
        int(queue["ScalingConfig"]["MaximumConcurrency"]),
    )


@dataclass(order=True)
class Job:
    available: float
    connection: int = field(compare=False)
    pages_left: int = field(compare=False, default=0)  # a first pull's pages still to read


@dataclass
class Outcome:
    enumerated_at: float = 0.0
    finished_at: float = 0.0
    peak_concurrency: int = 0
    longest_invocation: float = 0.0
    invocations: int = 0
    messages: int = 0
    peak_xero_per_minute: int = 0
    peak_tenant_per_window: float = 0.0  # the most of one tenant's window cap used
    connections_done: set[int] = field(default_factory=set)


def enumerate_time(n: int, extra_per_row: float = 0.0) -> list[float]:
    """When each connection's message is on the queue: the index's shards read ``SHARD_READERS`` at a time,
    each page by page, then sent ten to a request."""
    partitions = SHARDS
    pages_each = max(1, math.ceil(n / partitions / ROWS_PER_PAGE))
    t = math.ceil(partitions / SHARD_READERS) * pages_each * QUERY_PAGE  # every row is read before a send
    times = []
    for i in range(n):
        t += extra_per_row
        if i % 10 == 9 or i == n - 1:
            t += SEND_BATCH
        times.append(t)
    return times


def simulate(s: Settings, jobs: list[Job], work: Any, outcome: Outcome, horizon: float) -> Outcome:
    """Lambda's SQS poller: up to ``concurrency`` invocations at once, each taking up to ``batch`` messages
    already on the queue and doing them one after another."""
    queue = list(jobs)
    heapq.heapify(queue)
    slots: list[float] = [0.0] * s.concurrency  # when each concurrent environment is free
    warm = [False] * s.concurrency
    running: list[tuple[float, float]] = []
    calls_per_minute: dict[int, int] = {}
    while queue:
        first = heapq.heappop(queue)
        slot = min(range(s.concurrency), key=lambda k: slots[k])
        start = max(slots[slot], first.available)
        batch = [first]
        while queue and len(batch) < s.batch and queue[0].available <= start + 1.0:  # batching window 1 s
            batch.append(heapq.heappop(queue))
        start = max(start, max(j.available for j in batch))
        t = start + (0.0 if warm[slot] else COLD_START)
        warm[slot] = True
        for job in batch:
            t, follow_up = work(job, t, calls_per_minute, outcome)
            outcome.messages += 1
            if follow_up is not None:
                heapq.heappush(queue, follow_up)
            else:
                outcome.connections_done.add(job.connection)
        slots[slot] = t
        outcome.invocations += 1
        outcome.longest_invocation = max(outcome.longest_invocation, t - start)
        outcome.finished_at = max(outcome.finished_at, t)
        running.append((start, t))
    edges = sorted([(a, 1) for a, _ in running] + [(b, -1) for _, b in running], key=lambda e: (e[0], e[1]))
    now = 0
    for _, step in edges:
        now += step
        outcome.peak_concurrency = max(outcome.peak_concurrency, now)
    xero = max(calls_per_minute.values(), default=0)
    outcome.peak_xero_per_minute = xero
    return outcome


def check_work(job: Job, t: float, per_minute: dict[int, int], outcome: Outcome) -> tuple[float, None]:
    """One connection check: read the connection, refresh when near expiry (about one tick in eleven: an
    hour's token with a 10-minute margin), prove the tenant answers, write last_checked_at."""
    t += DYNAMO
    calls = 1
    if job.connection % 11 == 0:
        t += DYNAMO + KMS + LATENCY + KMS + DYNAMO  # lease, open, refresh, seal, store
        calls += 1
    t += LATENCY + DYNAMO
    if job.connection % 2 == 0:  # a Xero connection
        minute = int(t // 60)
        per_minute[minute] = per_minute.get(minute, 0) + calls
    cap = (XERO_LIMITS if job.connection % 2 == 0 else QBO_LIMITS).window_cap
    outcome.peak_tenant_per_window = max(outcome.peak_tenant_per_window, calls / cap)
    return t, None


def run_ticks(n: int, s: Settings) -> Outcome:
    outcome = Outcome()
    ready = enumerate_time(n)
    outcome.enumerated_at = ready[-1] if ready else 0.0
    jobs = [Job(ready[i], i) for i in range(n)]
    return simulate(s, jobs, check_work, outcome, s.rate)


FIRST_PULL_SHARE = 0.01  # one connection in a hundred pulls for the first time: a year of documents
FIRST_PULL_PAGES = 120  # 120 pages of 1,000 documents


def pull_work(job: Job, t: float, per_minute: dict[int, int], outcome: Outcome) -> tuple[float, Job | None]:
    """One part of a pull: lease, read pages within the tenant's budget (Xero 60/min: 8 calls per 10 s
    window; QBO 500/min), store, move the cursor (or save the place and queue the next part)."""
    began = t
    xero = job.connection % 2 == 0
    limits = XERO_LIMITS if xero else QBO_LIMITS
    t += 4 * DYNAMO  # tracking, connection, lease, token read
    pages = job.pages_left or (2 if xero else 1)  # incremental: two collections (Xero) / one CDC call (QBO)
    read = 0
    window_calls = 0
    seconds = limits.window_seconds
    window = int(t // seconds)
    while read < pages:
        if int(t // seconds) != window:
            window, window_calls = int(t // seconds), 0
        if window_calls >= limits.window_cap:  # the budget says wait for the next window
            t = (window + 1) * seconds
            continue
        window_calls += 1
        t += LATENCY + (0.4 if job.pages_left else 0)  # a full page of 1,000 documents: bigger answers
        t += 0.15 if job.pages_left else DYNAMO  # its documents compared and stored (batch writes)
        read += 1
        outcome.peak_tenant_per_window = max(outcome.peak_tenant_per_window, window_calls / limits.window_cap)
        if xero:
            minute = int(t // 60)
            per_minute[minute] = per_minute.get(minute, 0) + 1
        if read >= sales.PART_PAGES or t - began >= sales.PART_SECONDS:
            break
    t += 2 * DYNAMO
    left = pages - read if job.pages_left else 0
    if left > 0:
        return t + SEND_BATCH, Job(t + SEND_BATCH, job.connection, left)
    return t, None


def run_hour(n: int, s: Settings) -> Outcome:
    outcome = Outcome()
    ready = enumerate_time(n, extra_per_row=BATCH_GET / 100)
    outcome.enumerated_at = ready[-1] if ready else 0.0
    rng = random.Random(7)
    jobs = [Job(ready[i], i, FIRST_PULL_PAGES if rng.random() < FIRST_PULL_SHARE else 0) for i in range(n)]
    return simulate(s, jobs, pull_work, outcome, s.rate)


def largest(s: Settings, run: Any, limit: float) -> int:
    low, high = 1, 1_000_000
    while low < high:
        mid = (low + high + 1) // 2
        outcome = run(mid, s)
        if outcome.finished_at <= limit and outcome.longest_invocation <= s.timeout:
            low = mid
        else:
            high = mid - 1
    return low


def report(title: str, n: int, s: Settings, outcome: Outcome, within: float) -> None:
    print(
        f"{title}: {n:,} connections; MaximumConcurrency {s.concurrency}, BatchSize {s.batch}, timeout {s.timeout} s"  # noqa: E501
    )
    print(f"  enumerated and queued by   {outcome.enumerated_at:8.1f} s")
    print(
        f"  all done by                {outcome.finished_at:8.1f} s   (within {within:.0f} s: {outcome.finished_at <= within})"  # noqa: E501
    )
    print(f"  connections done           {len(outcome.connections_done):8,}")
    print(f"  messages / invocations     {outcome.messages:,} / {outcome.invocations:,}")
    print(f"  peak concurrency           {outcome.peak_concurrency:8}   (bound {s.concurrency})")
    print(f"  longest invocation         {outcome.longest_invocation:8.1f} s (timeout {s.timeout} s)")
    print(
        f"  peak Xero calls a minute   {outcome.peak_xero_per_minute:8,}   (app limit {XERO_APP_PER_MINUTE:,})"  # noqa: E501
    )
    print(
        f"  peak calls of one tenant in a window, of its cap: {outcome.peak_tenant_per_window} "
        f"(caps: Xero {XERO_LIMITS.window_cap} a {XERO_LIMITS.window_seconds} s window, "
        f"QBO {QBO_LIMITS.window_cap} a {QBO_LIMITS.window_seconds} s window)"
    )
    assert len(outcome.connections_done) == n
    assert outcome.peak_concurrency <= s.concurrency
    assert outcome.longest_invocation <= s.timeout


def main() -> None:
    n = 10_000
    checks = settings_of("TokenRefreshFunction")
    outcome = run_ticks(n, checks)
    report("Connection checks, one tick", n, checks, outcome, checks.rate)
    print(
        f"  largest number of connections one {checks.rate // 60}-minute tick holds: "
        f"{largest(checks, run_ticks, checks.rate):,}"
    )
    pulls = settings_of("SalesPullFunction")
    outcome = run_hour(n, pulls)
    report(
        f"Sales pulls, one hour ({FIRST_PULL_SHARE:.0%} first pulls of {FIRST_PULL_PAGES} pages)",
        n,
        pulls,
        outcome,
        pulls.rate,
    )
    print(f"  largest number of tracked connections one hour holds: {largest(pulls, run_hour, pulls.rate):,}")


if __name__ == "__main__":
    main()
