"""`python -m bench NAME ...` as the README has it: a name that is no bench is refused before any runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_mistyped_bench_is_refused_naming_the_benches_and_nothing_runs() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "bench", "bench_fifo", "bench_fifi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 2, ran.stderr
    assert "invalid choice: 'bench_fifi'" in ran.stderr and "bench_token_refresh" in ran.stderr
    assert "===" not in ran.stdout  # bench_fifo, named first, did not run before the refusal
