"""The local stack (`make run`) as a subprocess on free loopback ports, one per test module."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60


@dataclass
class Running:
    url: str
    token: str
    qbo_url: str
    xero_url: str
    output: list[str] = field(default_factory=list)


def _keep_reading(stream: IO[str], output: list[str]) -> None:
    """Reads what the stack prints for as long as it runs, so its logging never fills the pipe."""
    for line in stream:
        output.append(line.rstrip())


@pytest.fixture(scope="module")
def local_stack() -> Iterator[Running]:
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.run", "--port", "0", "--qbo-port", "0", "--xero-port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + START_SECONDS
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line.rstrip())
        if line.strip() == "READY":
            break
    threading.Thread(target=_keep_reading, args=(process.stdout, output), daemon=True).start()
    text = "\n".join(output)
    url = re.search(r"running at (http://127\.0\.0\.1:\d+)", text)
    token = re.search(r"valid 12 h\):\s*\n\s+(\S+)", text)
    qbo, xero = (re.search(rf"{name} sandbox:\s*(http://\S+)", text) for name in ("QBO", "Xero"))
    try:
        assert url and token and qbo and xero, f"the local stack did not start:\n{text}"
        yield Running(url.group(1), token.group(1), qbo.group(1), xero.group(1), output)
    finally:
        process.terminate()
        process.wait(timeout=20)
