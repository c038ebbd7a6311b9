"""Whole cold start of each Lambda handler, as a ratio to a bare boto3 cold start, in an environment shaped
like Lambda's (DESIGN.md, "Benchmarks: cold starts")."""

from __future__ import annotations

import ast
import compileall
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from py_compile import PycInvalidationMode
from typing import Any

import boto3
import httpx
from moto.server import ThreadedMotoServer
from packaging.requirements import Requirement

from bench.bench_exports import configure_exports
from infra.layer_models import write_models
from infra.local.moto_speed import set_up_once
from infra.local.stack import FAKE_AWS_ENV, LocalStack, create_from_template
from infra.local.template import load_template
from infra.local.testbed import PARAMETERS, PUBLIC_BASE_URL, QBO_TEST_APP, environment
from infra.sandboxes.common import Clock, serve
from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from shared.aws import clear_cached_clients
from shared.bodies import ReceiptLineRequest, ReceiptRequest
from shared.services import connections, credentials, inventory, tokens

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
RUNS = 9
TARGET_RATIO = 1.5

# The functions' literal environment from the template (Powertools and pydantic settings), as in Lambda.
LAMBDA_ENV = {
    name: value
    for name, value in load_template()["Globals"]["Function"]["Environment"]["Variables"].items()
    if isinstance(value, str)
}


def _api_event(path: str) -> dict[str, Any]:
    """The sample API event (an authorised person of demo-org) for another path: GET /integrations is what
    the settings page asks first."""
    event: dict[str, Any] = json.loads((EVENTS / "api-get-me.json").read_text())
    event["rawPath"] = path
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["requestContext"]["http"]["path"] = path
    return event


def _sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


# each function's first realistic event: the API's first page, a consent declined, the scheduled passes;
# the export's (one receipt journal posted to the QBO sandbox, a fresh receipt for every sample) is made
# by export_events
FIRST_EVENTS = {
    "ApiFunction": _api_event("/integrations"),
    "OauthCallbackFunction": _sample("oauth-callback-declined.json"),
    "TokenRefreshFunction": _sample("schedule.json"),
    "SalesPullFunction": _sample("schedule.json"),
}

CONTEXT = """
class Context:
    function_name = {name!r}
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    memory_limit_in_mb = 512
    aws_request_id = "c0ld-5tart"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 30_000
"""

HANDLER_SAMPLE = """
import sys, time
started = time.perf_counter()
sys.path[:0] = [{task!r}, {layer!r}]
import app
answer = app.lambda_handler({event!r}, Context())
elapsed = time.perf_counter() - started
assert {check}, answer
print(elapsed)
"""

BASELINE_SAMPLE = """
import sys, time
started = time.perf_counter()
sys.path[:0] = [{layer!r}]
import boto3
dynamodb = boto3.client("dynamodb")
dynamodb.get_item(TableName={table!r}, Key={{"pk": {{"S": "ORG#demo-org"}}, "sk": {{"S": "CONNECTION#qbo"}}}})
print(time.perf_counter() - started)
"""

# What any export worker pays, whatever its own code: the baseline, the packages an export needs (pydantic,
# Powertools' logger, httpx, cryptography's AES-GCM for the sealed tokens), a KMS client and the export's
# count of AWS requests made as GetItems (one made above); no provider call, and no TLS set-up (the
# sandbox is plain http, as the export's samples reach it)
FLOOR_SAMPLE = BASELINE_SAMPLE.replace(
    "print(",
    """import pydantic, httpx
from aws_lambda_powertools import Logger
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
Logger(service="floor")
boto3.client("kms")
key = {{"pk": {{"S": "ORG#demo-org"}}, "sk": {{"S": "CONNECTION#qbo"}}}}
for _ in range({more}):
    dynamodb.get_item(TableName={table!r}, Key=key)
print(""",
)

# an extra, untimed run of each handler counts the AWS requests its first event makes
COUNTING = """
import collections, sys
sys.path[:0] = [{layer!r}]
import botocore.client
calls = collections.Counter()
make_call = botocore.client.BaseClient._make_api_call
def counted(client, operation, parameters):
    calls[client.meta.service_model.service_name + "." + operation] += 1
    return make_call(client, operation, parameters)
botocore.client.BaseClient._make_api_call = counted
"""
COUNTS_PRINTED = """
print(dict(calls))
"""

# what a first event must answer for its figure to count (a failing event would be a fast one)
CHECKS = {
    "ApiFunction": "answer['statusCode'] == 200",
    "OauthCallbackFunction": "answer['statusCode'] == 400",
    "TokenRefreshFunction": "'queued' in answer",
    "ExportFunction": "answer == {'batchItemFailures': []}",
    "SalesPullFunction": "'queued' in answer",
}


def runtime_distributions() -> list[metadata.Distribution]:
    """requirements.txt's packages and everything they require (their extras left out), as installed."""
    wanted = [
        Requirement(line.split("#")[0].strip())
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    found: dict[str, metadata.Distribution] = {}
    while wanted:
        requirement = wanted.pop()
        key = requirement.name.lower().replace("_", "-")
        if key in found or (
            requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})
        ):
            continue
        distribution = metadata.distribution(requirement.name)
        found[key] = distribution
        wanted.extend(Requirement(text) for text in distribution.requires or [])
    return list(found.values())


def build_layer(target: Path) -> None:
    """What `make build-SharedLayer` puts in /opt/python, from this machine's installed packages."""
    shutil.copytree(ROOT / "shared", target / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    for distribution in runtime_distributions():
        for file in distribution.files or []:
            source = Path(str(distribution.locate_file(file)))
            if ".." in file.parts or "__pycache__" in file.parts or not source.is_file():
                continue
            destination = target / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    write_models(target)
    if not compileall.compile_dir(
        target, quiet=1, workers=0, invalidation_mode=PycInvalidationMode.UNCHECKED_HASH
    ):
        raise SystemExit("the layer did not compile")


def task_roots(folder: Path, stack: LocalStack) -> dict[str, Path]:
    """Each function's CodeUri folder, copied without bytecode, as /var/task holds it."""
    roots = {}
    for logical_id, spec in stack.functions.items():
        source = ROOT / Path(*spec.module.split(".")[:-1])
        roots[logical_id] = folder / logical_id
        shutil.copytree(source, roots[logical_id], ignore=shutil.ignore_patterns("__pycache__"))
    return roots


@contextmanager
def emulator() -> Iterator[tuple[LocalStack, dict[str, str], QboSandbox]]:
    """moto's server with the template's resources and the QBO sandbox on a loopback port, and the
    environment a function sees there. The server's transactions cost what DynamoDB's do, not a copy of the
    whole table (``infra.local.moto_speed``)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with set_up_once():
        yield from _emulated()


def _emulated() -> Iterator[tuple[LocalStack, dict[str, str], QboSandbox]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    aws = {**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    qbo = QboSandbox(seed=True, clock=Clock(real_time=True))
    qbo_server = serve(qbo)
    qbo.register_app(*QBO_TEST_APP, [f"{PUBLIC_BASE_URL}/oauth/qbo/callback"])
    parameters = {
        **PARAMETERS,
        "QboAuthorizeUrl": f"{qbo.base_url}/connect/oauth2",
        "QboTokenUrl": f"{qbo.base_url}/oauth2/v1/tokens/bearer",
        "QboRevokeUrl": f"{qbo.base_url}/v2/oauth2/tokens/revoke",
        "QboApiUrl": qbo.base_url,
    }
    try:
        with environment(aws):
            stack = create_from_template(parameters)
            boto3.client("secretsmanager").put_secret_value(
                SecretId=stack.physical("ProviderSecret"),
                SecretString=json.dumps(
                    {"qbo": {"client_id": QBO_TEST_APP[0], "client_secret": QBO_TEST_APP[1]}}
                ),
            )
        yield stack, {**aws, **LAMBDA_ENV, **stack.environment}, qbo
    finally:
        qbo_server.shutdown()
        server.stop()


def export_events(env: dict[str, str], count: int) -> list[dict[str, Any]]:
    """`count` export jobs, each for a receipt of its own, of an organisation connected to the QBO sandbox
    with journals configured: each sample's first event posts one journal, as a first export does."""
    with environment(env):
        _forget_clients()
        try:
            started = connections.start_connect("org-cold", "qbo", switch_company=False, now=_now())
            with httpx.Client(follow_redirects=False) as browser:
                params = walk_consent(
                    browser, started.authorize_url, username="demo@partsemble.test", password="demo"
                )
            connections.complete_callback("qbo", params, started.cookie_value, _now())
            product_id = configure_exports("org-cold")
            line = ReceiptLineRequest(product_id=product_id, quantity=Decimal(3), unit_cost=Decimal("0.08"))
            receipts = [
                inventory.record_receipt("org-cold", ReceiptRequest(received_at=_now(), lines=[line]), _now())
                for _ in range(count)
            ]
        finally:
            _forget_clients()
    events = []
    for number, view in enumerate(receipts):
        event = _sample("export-sqs.json")
        record = event["Records"][0]
        record["messageId"] = f"cold-start-{number}"
        job = {"organisation_id": "org-cold", "kind": "receipt", "record_id": view.receipt.receipt_id}
        record["body"] = json.dumps(job)
        events.append(event)
    return events


def _forget_clients() -> None:
    """Clients, settings and provider credentials made for another environment are not reused."""
    clear_cached_clients()
    credentials.clear()
    tokens.provider.cache_clear()


def _now() -> datetime:
    return datetime.now(UTC)


def journals_posted(qbo: QboSandbox) -> int:
    return sum(
        1
        for journal in qbo.list_records(DEMO_REALM_ID, "JournalEntry")
        if str(journal.get("DocNumber", "")).startswith("PS-")
    )


def sample(code: str, env: dict[str, str], cwd: Path) -> float:
    return float(run(code, env, cwd).splitlines()[-1])


def first_event_calls(code: str, layer: Path, env: dict[str, str], cwd: Path) -> dict[str, int]:
    counting = COUNTING.format(layer=str(layer)) + code + COUNTS_PRINTED
    calls: dict[str, int] = ast.literal_eval(run(counting, env, cwd).splitlines()[-1])
    return calls


def run(code: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-S", "-E", "-B", "-c", code],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"a cold-start sample failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, emulator() as (stack, env, qbo):
        layer = Path(folder) / "opt" / "python"
        build_layer(layer)
        roots = task_roots(Path(folder) / "task", stack)
        # one event per timed sample and two for the counting runs (the second counted: an organisation's
        # first export also reads and caches its home currency, as the timed ones find it)
        events = {name: [event] * (RUNS + 2) for name, event in FIRST_EVENTS.items()}
        events["ExportFunction"] = export_events(env, RUNS + 2)
        baseline = BASELINE_SAMPLE.format(layer=str(layer), table=stack.physical("Table"))
        codes = {"baseline": [baseline] * (RUNS + 2)}
        for logical_id, root in roots.items():
            codes[logical_id] = [
                CONTEXT.format(name=logical_id)
                + HANDLER_SAMPLE.format(
                    task=str(root), layer=str(layer), event=event, check=CHECKS[logical_id]
                )
                for event in events[logical_id]
            ]
        calls = {
            name: [
                first_event_calls(code[run], layer, {**env, "AWS_LAMBDA_FUNCTION_NAME": name}, Path(folder))
                for run in (RUNS, RUNS + 1)
            ][-1]
            for name, code in codes.items()
        }
        more = sum(calls["ExportFunction"].values()) - 1
        codes["floor"] = [
            FLOOR_SAMPLE.format(layer=str(layer), table=stack.physical("Table"), more=more)
        ] * RUNS
        samples: dict[str, list[float]] = {name: [] for name in codes}
        for run in range(RUNS):  # alternating: the baseline, then each handler, round after round
            for name, code in codes.items():
                env_of = {**env, "AWS_LAMBDA_FUNCTION_NAME": name}
                samples[name].append(sample(code[run], env_of, Path(folder)))
        if journals_posted(qbo) != RUNS + 2:
            raise SystemExit(f"each export sample should post one journal: {journals_posted(qbo)} posted")
    baseline_seconds = statistics.median(samples.pop("baseline"))
    floor_seconds = statistics.median(samples.pop("floor"))
    baseline_calls = calls.pop("baseline")
    print(
        f"whole cold start (imports + first event against moto's server), layer-shaped environment, "
        f"median of {RUNS} alternating samples"
    )
    print(
        f"  baseline: import boto3 + one client + one GetItem   {baseline_seconds * 1000:6.0f} ms   "
        f"AWS requests {_requests(baseline_calls)}"
    )
    print(
        "  floor of any export worker: + pydantic, Powertools, httpx, cryptography, a KMS client,\n"
        f"    {more + 1} GetItems (the export's count of requests), no provider call"
        f"{floor_seconds * 1000:14.0f} ms   {floor_seconds / baseline_seconds:4.2f}x baseline"
    )
    for logical_id, seconds in samples.items():
        median = statistics.median(seconds)
        ratio = median / baseline_seconds
        verdict = "ok" if ratio <= TARGET_RATIO else f"over the {TARGET_RATIO}x target"
        print(
            f"  {logical_id:24} {median * 1000:6.0f} ms   {ratio:4.2f}x baseline   {verdict:22}"
            f"first event's AWS requests {_requests(calls[logical_id])}"
        )


def _requests(calls: dict[str, int]) -> str:
    return f"{sum(calls.values())} ({', '.join(f'{name} {count}' for name, count in sorted(calls.items()))})"


if __name__ == "__main__":
    main()
