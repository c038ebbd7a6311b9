"""Lazily loaded modules: their code runs once, on first use, even when threads ask for it at once."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lazy import lazy_module

SLOW_MODULE = """
import time
RUNS = globals().get("RUNS", 0) + 1
time.sleep(0.2)  # a module that takes a while to run, as a service with its models does
ANSWER = 42
"""


@pytest.fixture
def slow_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "slow_lazy_probe.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "slow_lazy_probe"
    sys.modules.pop("slow_lazy_probe", None)


def test_the_code_runs_on_first_use_only(slow_module: str) -> None:
    module = lazy_module(slow_module)
    assert type(module).__name__ == "_LazyModule"  # registered, not run
    assert sys.modules[slow_module] is module
    assert module.ANSWER == 42 and module.RUNS == 1
    assert type(module) is types.ModuleType and lazy_module(slow_module) is module


def test_threads_asking_at_once_all_find_the_names_and_the_code_runs_once(slow_module: str) -> None:
    module = lazy_module(slow_module)
    start, found, errors = threading.Barrier(8), [], []

    def use() -> None:
        start.wait()
        try:
            found.append(module.ANSWER)
        except AttributeError as error:  # what the standard library's LazyLoader lets through on 3.11
            errors.append(error)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and found == [42] * 8
    assert module.RUNS == 1
