"""Cold import time of each Lambda handler module, as a ratio to `import boto3` in the same run.

Each import runs in a fresh interpreter (as a cold start does), several times; the median counts. The
handlers import boto3 and the provider clients on first use (the API also each route's service), so a second
figure adds what a first invocation loads as well: the whole cold start, not only the handler's."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from infra.local.template import load_template

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
TARGET_RATIO = 1.5


# The functions' literal environment from the template (Powertools and pydantic settings), as in Lambda.
LAMBDA_ENV = {
    name: value
    for name, value in load_template()["Globals"]["Function"]["Environment"]["Variables"].items()
    if isinstance(value, str)
}


def handler_modules() -> list[str]:
    resources = load_template()["Resources"].values()
    return [
        r["Properties"]["CodeUri"].strip("/").replace("/", ".") + ".app"
        for r in resources
        if r["Type"] == "AWS::Serverless::Function"
    ]


FIRST_USE = "import boto3, shared.providers.qbo.client, shared.providers.xero.client"
# the API loads a route's service on its first call; the settings page starts with GET /integrations
FIRST_USE_EXTRA = {"functions.api.app": ", shared.services.connections"}


def import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {**os.environ, **LAMBDA_ENV}
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(RUNS)
    ]
    return statistics.median(samples)


def main() -> None:
    baseline = import_seconds("boto3")
    print(f"import boto3: {baseline * 1000:.0f} ms (median of {RUNS} fresh interpreters)")
    for module in handler_modules():
        if not (ROOT / module.replace(".", "/")).with_suffix(".py").exists():
            print(f"{module:32} not written yet")
            continue
        seconds = import_seconds(module)
        ratio = seconds / baseline
        verdict = "ok" if ratio <= TARGET_RATIO else f"over the {TARGET_RATIO}x target"
        first_use = import_seconds(f"{module}; {FIRST_USE}{FIRST_USE_EXTRA.get(module, '')}")
        print(
            f"{module:32} {seconds * 1000:6.0f} ms  {ratio:4.2f}x boto3  {verdict:24}"
            f"with first-use imports {first_use * 1000:4.0f} ms ({first_use / baseline:4.2f}x)"
        )


if __name__ == "__main__":
    main()
