"""`make bench`: runs every bench/bench_*.py (or those named on the command line) and prints figures."""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path


def main(names: list[str]) -> None:
    from infra.local.template import load_template

    for name, value in load_template()["Globals"]["Function"]["Environment"]["Variables"].items():
        if name.startswith("POWERTOOLS_") and isinstance(value, str):
            os.environ.setdefault(name, value)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # figures, not log lines
    modules = names or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    for name in modules:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"({name} took {time.perf_counter() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
