"""The sample events in events/ (for `sam local invoke`) are real: each runs through its function's handler
on the local stack and gets the answer such an event gets in AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.local.context import LocalLambdaContext
from infra.local.stack import LocalStack
from tests.conftest import Sandboxes

EVENTS = Path(__file__).resolve().parents[2] / "events"


def invoke(aws: LocalStack, function: str, sample: str) -> Any:
    event = json.loads((EVENTS / sample).read_text())
    spec = aws.functions[function]
    return spec.handler()(event, LocalLambdaContext(function, spec.timeout))


def test_every_sample_event_runs_through_its_handler(aws: LocalStack, sandboxes: Sandboxes) -> None:
    me = invoke(aws, "ApiFunction", "api-get-me.json")
    assert me["statusCode"] == 200 and json.loads(me["body"]) == {"organisation_id": "demo-org"}
    declined = invoke(aws, "OauthCallbackFunction", "oauth-callback-declined.json")
    assert declined["statusCode"] == 400, declined["body"]  # the person declined in the provider's consent
    assert "Not connected to QuickBooks Online" in declined["body"]
    # a job naming no stored record settles at once (dead-lettered with the reason), nothing comes back
    assert invoke(aws, "ExportFunction", "export-sqs.json") == {"batchItemFailures": []}
    assert invoke(aws, "TokenRefreshFunction", "connection-sqs.json") == {"batchItemFailures": []}
    for function in ("TokenRefreshFunction", "SalesPullFunction", "ExportFunction"):
        answer = invoke(aws, function, "schedule.json")
        assert isinstance(answer, dict) and answer.get("queued", 0) == 0, (function, answer)
    assert {p.name for p in EVENTS.glob("*.json")} == {
        "api-get-me.json", "oauth-callback-declined.json", "export-sqs.json", "connection-sqs.json",
        "schedule.json",
    }  # fmt: skip
