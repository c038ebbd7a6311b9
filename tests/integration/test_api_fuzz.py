"""Schemathesis over the whole OpenAPI document the API serves at /docs?format=json: valid and invalid
inputs for every operation, a bounded number of examples each, and no answer may be a 5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.core import NOT_SET

from functions.api import app as api_app
from tests.conftest import Api

EXAMPLES = 12  # per operation and generation mode: the whole run stays well under a minute
DOCUMENT = json.loads(api_app.with_docs().get_openapi_json_schema())
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def test_the_fuzzed_document_is_the_one_the_api_serves(api: Api) -> None:
    served = api.call("GET", "/docs?format=json")
    assert served.status == 200
    assert {k: v for k, v in served.json().items() if k != "info"} == {
        k: v for k, v in DOCUMENT.items() if k != "info"
    }


def request_of(case: Any) -> tuple[str, dict[str, str], bytes]:
    """The case as the gateway's target, headers and body (what an HTTP client would send)."""
    path = case.path
    for name, value in (case.path_parameters or {}).items():
        path = path.replace(f"{{{name}}}", quote(str(value), safe=""))
    query = {k: v for k, v in (case.query or {}).items() if v is not None}
    target = f"{path}?{urlencode(query, doseq=True)}" if query else path
    headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
    body = b""
    if case.body is not NOT_SET:
        body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        headers.setdefault("content-type", case.media_type or "application/json")
    return target, headers, body


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is a 500 to fix, not noise
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gets_a_5xx(case: Any, api: Api) -> None:
    target, headers, body = request_of(case)
    response = api.call(case.method, target, headers=headers, body=body)
    assert response.status < 500, (case.method, target, headers, body[:500], response.status, response.body)
    operation = DOCUMENT["paths"][case.path].get(case.method.lower())  # negative cases try other methods
    if operation is not None:  # what a client is told to expect of it
        declared = sorted(operation["responses"])
        assert str(response.status) in declared, (
            case.method,
            target,
            response.status,
            response.body,
            declared,
        )
