"""The books bench reports what its random history did: a receipt counts as back-dated when it is dated
before something the history had already recorded, and only then."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from bench import bench_books
from infra.local.stack import LocalStack
from tests.conftest import Sandboxes


def test_the_books_bench_counts_the_receipts_it_back_dated(aws: LocalStack, sandboxes: Sandboxes) -> None:
    organisation, parts = bench_books.prepare(sandboxes, "xero", "journals")
    history = bench_books.History(sandboxes, "xero", organisation, parts)
    start = bench_books.START
    history.receipt(0, start)
    history.receipt(1, start + timedelta(days=1))  # after everything recorded
    history.receipt(2, start - timedelta(days=3))  # before both: back-dated
    history.receipt(3, start + timedelta(days=1))  # at the latest time recorded, not before it
    history.build(4, start + timedelta(days=2))
    history.receipt(5, start + timedelta(days=1, hours=12))  # before the build
    assert history.kinds == Counter({"receipt": 3, "back-dated receipt": 2, "build": 1})
