"""The local HTTP API behaves like API Gateway in front of the api function."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from infra.local.devauth import DevIdentityProvider
from tests.conftest import APP_ORIGIN, Api


def test_request_with_valid_token_reaches_api_function_with_callers_organisation(api: Api) -> None:
    response = api.call("GET", "/me", organisation="org-42")
    assert response.status == 200
    assert response.json() == {"organisation_id": "org-42"}
    assert api.gateway.invocations == {"ApiFunction": 1}


def test_request_without_token_is_refused_before_the_function_runs(api: Api) -> None:
    response = api.call("GET", "/me", organisation=None)
    assert response.status == 401
    assert response.json() == {"message": "Unauthorized"}
    assert api.gateway.invocations == {}


def test_token_signed_by_another_issuer_key_is_refused(api: Api) -> None:
    forged = DevIdentityProvider(issuer=api.identity.issuer, audience=api.identity.audience).mint("org-a")
    response = api.call("GET", "/me", organisation=None, headers={"authorization": f"Bearer {forged}"})
    assert response.status == 401


def test_expired_token_is_refused(api: Api) -> None:
    expired = api.identity.mint("org-a", ttl_seconds=60, now=1_000_000)
    assert (
        api.call("GET", "/me", organisation=None, headers={"authorization": f"Bearer {expired}"}).status
        == 401
    )


def test_token_without_organisation_claim_is_forbidden(api: Api, identity: DevIdentityProvider) -> None:
    other_claim = DevIdentityProvider(
        issuer=identity.issuer, audience=identity.audience, organisation_claim="tenant"
    )
    other_claim._key = identity._key  # same signer, but the organisation sits under another claim
    token = other_claim.mint("org-a")
    response = api.call("GET", "/me", organisation=None, headers={"authorization": f"Bearer {token}"})
    assert response.status == 403
    assert response.json()["error"] == "Forbidden"


def test_unknown_route_is_a_json_404(api: Api) -> None:
    response = api.call("GET", "/no/such/thing")
    assert response.status == 404
    assert response.json()["error"] == "NotFound"
    assert "/no/such/thing" in response.json()["message"]


def test_invalid_json_body_is_a_400_naming_the_problem(api: Api) -> None:
    response = api.call(
        "POST", "/integrations/qbo/connect", body=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status == 400
    assert response.json()["error"] == "InvalidRequest"
    assert "json" in response.json()["message"].lower()


def test_unknown_body_field_is_a_400_naming_the_field(api: Api) -> None:
    response = api.call("POST", "/integrations/qbo/connect", json_body={"switch_compnay": True})
    assert response.status == 400
    assert "switch_compnay" in response.json()["message"]


def test_wrong_content_type_is_415(api: Api) -> None:
    response = api.call(
        "POST", "/me", body=b"a=b", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 415
    assert "application/json" in response.json()["message"]


def test_cors_preflight_answers_the_app_origin_only(api: Api) -> None:
    allowed = api.call(
        "OPTIONS",
        "/me",
        organisation=None,
        headers={"origin": APP_ORIGIN, "access-control-request-method": "GET"},
    )
    assert allowed.status == 204
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    # a browser may send an Idempotency-Key, and read Retry-After and Idempotent-Replayed
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].split(",")
    answer = api.call("GET", "/me", headers={"origin": APP_ORIGIN})
    assert {"retry-after", "idempotent-replayed"} <= set(
        answer.headers["access-control-expose-headers"].split(",")
    )
    other = api.call(
        "OPTIONS",
        "/me",
        organisation=None,
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in other.headers


def test_concurrent_requests_never_see_each_others_caller(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """One invocation at a time per function, as in a Lambda container: the resolver's current event is
    module state, so two requests sharing it at once would answer each other's organisation. The first
    request holds its event until every other request has reached the gateway's invocation."""
    from functions.api import app as api_app

    organisations = [f"org-{n}" for n in range(8)]
    arrived, everyone_in = itertools.count(1), threading.Event()
    real_invoke, real_caller = api.gateway._invoke, api_app.caller_organisation

    def counting_invoke(function: Any, event: dict[str, Any]) -> Any:
        if next(arrived) == len(organisations):
            everyone_in.set()
        return real_invoke(function, event)

    def waiting_caller(resolver: Any) -> str:
        assert everyone_in.wait(timeout=10), "the requests never overlapped"
        return real_caller(resolver)

    monkeypatch.setattr(api.gateway, "_invoke", counting_invoke)
    monkeypatch.setattr(api_app, "caller_organisation", waiting_caller)
    with ThreadPoolExecutor(len(organisations)) as pool:
        answers = list(pool.map(lambda org: api.call("GET", "/me", organisation=org).json(), organisations))
    assert [a["organisation_id"] for a in answers] == organisations


BODY_ROUTES = [
    ("POST", "/receipts"),
    ("POST", "/builds"),
    ("POST", "/integrations/qbo/connect"),
    ("POST", "/integrations/qbo/suppliers"),
    ("POST", "/products/import-from-provider"),
    ("PUT", "/integrations/qbo/export-settings"),
    ("PUT", "/integrations/qbo/sales-tracking"),
]


NOT_JSON = ["text/plain", "application/xml", "application/x-www-form-urlencoded"]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("content_type", NOT_JSON)
def test_a_body_route_answers_a_body_that_is_not_json_with_415(
    api: Api, method: str, path: str, content_type: str
) -> None:
    response = api.call(method, path, body=b"quantity=1", headers={"content-type": content_type})
    assert response.status == 415, response.body
    assert response.json() == {
        "error": "UnsupportedMediaType",
        "message": f"send the body as application/json, not {content_type}",
    }


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", "multipart/mixed; boundary=x"]
)
def test_a_body_route_answers_a_multipart_body_with_415_whatever_its_boundary(
    api: Api, method: str, path: str, content_type: str
) -> None:
    """Powertools reads a multipart body on a JSON route, and one that names no boundary raised a 500."""
    part = b'--x\r\nContent-Disposition: form-data; name="quantity"\r\n\r\n1\r\n--x--\r\n'
    response = api.call(method, path, body=part, headers={"content-type": content_type})
    assert response.status == 415, response.body
    assert response.json()["error"] == "UnsupportedMediaType"


def test_a_media_type_is_read_whatever_its_case(api: Api) -> None:
    response = api.call(
        "POST",
        "/integrations/qbo/connect",
        body=b'{"switch_compnay": true}',
        headers={"content-type": "Application/JSON; charset=UTF-8"},
    )
    assert response.status == 400, response.body  # read as JSON: the misspelt field is named
    assert "switch_compnay" in response.json()["message"]


def test_malformed_json_has_the_one_error_shape_and_says_what_is_wrong(api: Api) -> None:
    json_type = {"content-type": "application/json"}
    response = api.call("POST", "/receipts", body=b'{"lines": [', headers=json_type)
    assert response.status == 400
    answer = response.json()
    assert set(answer) == {"error", "message", "details"} and answer["error"] == "InvalidRequest"
    assert answer["message"].startswith("the body is not valid JSON: ")
    assert "decode error" not in answer["message"] and "invalid request" not in answer["message"]
    assert answer["details"] == [{"field": "body", "problem": answer["message"].removeprefix("the body is ")}]


def test_messages_carry_the_validators_own_words_without_pydantics_prefix(api: Api) -> None:
    line = {"product_id": "bolt", "quantity": "1", "rejected": "2", "unit_cost": "1"}
    response = api.call(
        "POST", "/receipts", json_body={"received_at": "2026-11-02T09:00:00Z", "lines": [line]}
    )
    assert response.status == 400
    assert response.json()["details"] == [
        {"field": "lines.0", "problem": "rejected cannot exceed the quantity received"}
    ]
    assert "Value error" not in response.json()["message"]


@pytest.mark.parametrize("path", ["/receipts", "/integrations/qbo/connect"])
def test_a_json_body_that_is_not_utf8_text_is_a_400_not_a_500(api: Api, path: str) -> None:
    response = api.call("POST", path, body=b"\x80\x81{", headers={"content-type": "application/json"})
    assert response.status == 400, response.body
    assert response.json()["message"] == "the body is not valid JSON: it is not UTF-8 text (byte 0)"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "it nests arrays or objects too deeply"),
        (b'{"lines": ' + b"1" * 5_000 + b"}", "a number in it has more digits than can be read"),
    ],
)
@pytest.mark.parametrize("path", ["/receipts", "/integrations/qbo/connect", "/products/import"])
def test_json_too_deep_or_with_a_huge_number_is_a_400_not_a_500(
    api: Api, path: str, body: bytes, problem: str
) -> None:
    response = api.call("POST", path, body=body, headers={"content-type": "application/json"})
    assert response.status == 400, response.body
    answer = response.json()
    assert answer["error"] in ("InvalidRequest", "BadRequest"), answer
    if path != "/products/import":
        assert answer["message"] == f"the body is not valid JSON: {problem}"
        assert answer["details"] == [{"field": "body", "problem": f"not valid JSON: {problem}"}]
