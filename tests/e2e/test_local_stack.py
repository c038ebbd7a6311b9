"""`make run` as a newcomer uses it: the local stack on free loopback ports, spoken to over HTTP."""

from __future__ import annotations

import httpx
import pytest

from infra.sandboxes.consent import walk_consent
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e


def test_printed_token_reaches_the_api_function(local_stack: Running) -> None:
    response = httpx.get(f"{local_stack.url}/me", headers={"authorization": f"Bearer {local_stack.token}"})
    assert response.status_code == 200
    assert response.json() == {"organisation_id": "demo-org"}
    assert httpx.get(f"{local_stack.url}/me").status_code == 401


def test_a_token_is_minted_for_the_organisation_asked_and_a_bad_body_is_a_400(local_stack: Running) -> None:
    minted = httpx.post(f"{local_stack.url}/_local/token", json={"organisation_id": "org-b"})
    me = httpx.get(f"{local_stack.url}/me", headers={"authorization": f"Bearer {minted.json()['token']}"})
    assert me.status_code == 200 and "org-b" in me.text, me.text
    for body in (b"not json", b"[1]", b'{"organisation_id": 7}', b'{"organisation_id": ""}'):
        refused = httpx.post(f"{local_stack.url}/_local/token", content=body)
        assert refused.status_code == 400 and "organisation_id" in refused.json()["message"], body


def test_connect_qbo_over_http_and_see_health(local_stack: Running) -> None:
    auth = {"authorization": f"Bearer {local_stack.token}"}
    with httpx.Client(base_url=local_stack.url, headers=auth, timeout=20) as app:
        started = app.post("/integrations/qbo/connect", json={})
        assert started.status_code == 200, started.text
        authorize_url = started.json()["authorize_url"]
        cookie = started.headers["set-cookie"].split(";")[0]
        with httpx.Client(timeout=20) as browser:
            params = walk_consent(browser, authorize_url, username="demo@partsemble.test", password="demo")
        landed = app.get("/oauth/qbo/callback", params=params, headers={"cookie": cookie})
        assert landed.status_code == 200
        assert "Partsemble Demo Manufacturing (US)" in landed.text
        views = {v["provider"]: v for v in app.get("/integrations").json()}
        assert views["qbo"]["status"] == "connected"
        report = app.post("/_local/schedules/TokenRefreshFunction")
        assert report.status_code == 200 and report.json()["queued"] == 1  # then checked (the queue drained)
        assert {v["provider"]: v for v in app.get("/integrations").json()}["qbo"]["last_checked_at"]


def test_openapi_document_and_swagger_ui_are_served(local_stack: Running) -> None:
    document = httpx.get(f"{local_stack.url}/docs", params={"format": "json"})
    assert document.status_code == 200
    assert "/integrations/{provider}/connect" in document.json()["paths"]
    assert "swagger" in httpx.get(f"{local_stack.url}/docs").text.lower()


def test_every_schedule_runs_locally_without_a_crash(local_stack: Running) -> None:
    """The handlers run with the template's environment (the metrics namespace among it): each schedule
    answers what it did instead of failing after its work."""
    with httpx.Client(base_url=local_stack.url, timeout=60) as app:
        for function in ("TokenRefreshFunction", "SalesPullFunction", "ExportFunction"):
            fired = app.post(f"/_local/schedules/{function}")
            assert fired.status_code == 200, (function, fired.text)
