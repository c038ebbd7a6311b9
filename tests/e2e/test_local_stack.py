"""`make run` as a newcomer uses it: the local stack on free loopback ports, spoken to over HTTP."""

from __future__ import annotations

import json
import re
import subprocess

import httpx
import pytest

from infra.sandboxes.consent import walk_consent
from tests.e2e.conftest import ROOT, Running

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


def _connect_qbo(app: httpx.Client) -> httpx.Response:
    """The popup's flow: connect, consent at the sandbox, then the callback with the browser's cookie."""
    started = app.post("/integrations/qbo/connect", json={})
    assert started.status_code == 200, started.text
    authorize_url = started.json()["authorize_url"]
    cookie = started.headers["set-cookie"].split(";")[0]
    with httpx.Client(timeout=20) as browser:
        params = walk_consent(browser, authorize_url, username="demo@partsemble.test", password="demo")
    return app.get("/oauth/qbo/callback", params=params, headers={"cookie": cookie})


def test_connect_qbo_over_http_and_see_health(local_stack: Running) -> None:
    auth = {"authorization": f"Bearer {local_stack.token}"}
    with httpx.Client(base_url=local_stack.url, headers=auth, timeout=20) as app:
        landed = _connect_qbo(app)
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


def test_a_mistyped_local_helper_is_a_404_naming_the_helpers_not_a_401(local_stack: Running) -> None:
    refused = httpx.post(f"{local_stack.url}/_local/schedules/TokenRefresh")  # the logical id is ...Function
    assert refused.status_code == 404, refused.text
    assert "POST /_local/schedules/TokenRefreshFunction" in refused.json()["message"]
    assert httpx.get(f"{local_stack.url}/_local/settle").status_code == 404  # a helper is POST only


def test_every_schedule_runs_locally_without_a_crash(local_stack: Running) -> None:
    """The handlers run with the template's environment (the metrics namespace among it): each schedule
    answers what it did instead of failing after its work."""
    with httpx.Client(base_url=local_stack.url, timeout=60) as app:
        for function in ("TokenRefreshFunction", "SalesPullFunction", "ExportFunction"):
            fired = app.post(f"/_local/schedules/{function}")
            assert fired.status_code == 200, (function, fired.text)


def _readme_example(after: str) -> str:
    """The first ```sh block of README.md after the words ``after``, as a reader copies it."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", readme[readme.index(after) :], re.DOTALL)
    assert block, f"README.md has no sh example after {after!r}"
    return block.group(1)


def test_the_readmes_receipt_and_build_example_works_as_written(local_stack: Running) -> None:
    """The README's receipt and build by hand, pasted into bash as written (its port moved to this stack's)
    after the steps it names: connect QuickBooks Online, sync the items and make them products."""
    organisation = {"organisation_id": "org-readme"}  # a token of its own, as the README's first line mints
    token = httpx.post(f"{local_stack.url}/_local/token", json=organisation).json()["token"]
    with httpx.Client(
        base_url=local_stack.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as app:
        assert _connect_qbo(app).status_code == 200
        assert app.post("/integrations/qbo/sync/items").status_code == 200
        items = [i["item_id"] for i in app.get("/integrations/qbo/items").json()["items"]]
        made = app.post("/products/import-from-provider", json={"provider": "qbo", "item_ids": items})
        assert made.status_code == 200, made.text
        script = _readme_example("A receipt and a").replace("http://127.0.0.1:3000", local_stack.url)
        script = script.replace('"demo-org"', '"org-readme"')
        ran = subprocess.run(
            ["bash", "-euo", "pipefail"], input=script, capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, ran.stderr
        answers = [json.loads(line) for line in re.sub(r"\}\{", "}\n{", ran.stdout).splitlines()]
        receipt, build = answers
        assert (receipt["accepted_cost"], receipt["rejected_cost"]) == ("9.60", "2.40"), receipt
        assert build["cost"] == "4.80", build  # 4 blanks of the receipt's lot at 1.20
        assert app.post("/_local/settle").status_code == 200
        exports = app.get("/exports").json()["items"]
        assert sorted(e["kind"] for e in exports) == ["build", "receipt", "rejection"]
