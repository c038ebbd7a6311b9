"""`make bench`: runs every bench/bench_*.py (or those named on the command line) and prints figures."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

BENCHES = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=BENCHES, metavar="bench", help=", ".join(BENCHES))
    names = parser.parse_args(argv).names  # a name that is no bench is refused before any runs

    from infra.local.template import load_template

    for name, value in load_template()["Globals"]["Function"]["Environment"]["Variables"].items():
        if name.startswith("POWERTOOLS_") and isinstance(value, str):
            os.environ.setdefault(name, value)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # figures, not log lines
    for name in names or BENCHES:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"({name} took {time.perf_counter() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
