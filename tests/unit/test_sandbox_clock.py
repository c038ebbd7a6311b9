"""The local run's sandbox clocks follow real time (so Xero's minute windows reset during an hour of trying
it), and still move further only when told to; tests' clocks stand still."""

from __future__ import annotations

from datetime import timedelta

import pytest

from infra.sandboxes import common
from infra.sandboxes.common import DEFAULT_START, Clock


def test_a_real_time_clock_moves_with_the_wall_clock_and_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    wall = [1000.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: wall[0])
    real, still = Clock(real_time=True), Clock()
    wall[0] += 61
    assert real.now() == DEFAULT_START + timedelta(seconds=61)
    assert still.now() == DEFAULT_START
    real.advance(3600)
    assert real.now() == DEFAULT_START + timedelta(seconds=3661)
    real.set(DEFAULT_START)
    wall[0] += 5
    assert real.now() == DEFAULT_START + timedelta(seconds=5)
