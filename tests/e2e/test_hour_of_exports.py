"""An hour of exports at Xero's rate in the local stack (`make run`), in under a minute of wall time.

The sandboxes' clocks follow real time there and move further when told to (`POST /_admin/clock`): the
test moves them through 60 minutes, one a step. Three times in the hour another client of the same Xero
app uses up the organisation's 60 calls of the minute (Xero counts per app and organisation:
../shared/providers/xero.md "2. Rate limits"), so Partsemble's post in that minute meets Xero's 429 with a
Retry-After of about 15 s. Receipts for a Xero organisation and a QuickBooks company are recorded all along
(Partsemble paces its own Xero calls by the real clock, 8 in 10 s, which bounds how many fit in the
minute). Every export must end posted, exactly once in the provider, none left on a 429, and QuickBooks'
exports must not wait behind Xero's Retry-After.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from infra.local.run import XERO_DEMO_APP
from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID, DEMO_PASSWORD, DEMO_USERNAME
from tests.e2e.conftest import Running
from tests.integration.test_exports import QBO_ACCOUNTS, XERO_ACCOUNTS

pytestmark = pytest.mark.e2e

MINUTES = 60  # the sandboxes' hour
STEP_SECONDS = 0.05  # wall time between sandbox minutes, besides the calls of each
XERO_EVERY, QBO_EVERY = 6, 6  # a receipt for each every 6 minutes (Xero's at minutes 0, 6, 12, ...)
BUSY_MINUTES = (6, 24, 42)  # minutes in which another client of the app uses up Xero's 60 calls
BUSY_SECOND = 45  # a used-up minute goes on from here: Xero answers Retry-After: 15 (or a bit less)
SETTLE_SECONDS = 40  # after the hour, for what is still queued (a refused post comes back after 16 s)
QBO_WITHIN_SECONDS = 10.0  # a QuickBooks export posts within this of being recorded: never behind a 15 s wait


class App:
    """The API as one organisation."""

    def __init__(self, stack: Running, organisation: str) -> None:
        minted = httpx.post(f"{stack.url}/_local/token", json={"organisation_id": organisation})
        self.client = httpx.Client(
            base_url=stack.url, headers={"authorization": f"Bearer {minted.json()['token']}"}, timeout=30
        )

    def __call__(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.client.request(method, path, json=body)
        assert response.status_code == status, (method, path, response.text)
        return response.json()


def connect(stack: Running, app: App, provider: str, choose: list[str] | None = None) -> None:
    started = app.client.post(f"/integrations/{provider}/connect", json={})
    assert started.status_code == 200, started.text
    with httpx.Client(timeout=20) as browser:
        params = walk_consent(
            browser,
            started.json()["authorize_url"],
            username=DEMO_USERNAME,
            password=DEMO_PASSWORD,
            choose=choose,
        )
    cookie = started.headers["set-cookie"].split(";")[0]
    landed = httpx.get(f"{stack.url}/oauth/{provider}/callback", params=params, headers={"cookie": cookie})
    assert landed.status_code == 200, landed.text
    (view,) = [v for v in app("GET", "/integrations") if v["provider"] == provider]
    assert view["status"] == "connected", view


def product_for(app: App, provider: str, sku: str) -> str:
    app("POST", f"/integrations/{provider}/sync/items")
    listed = app("GET", f"/integrations/{provider}/items")["items"]
    (item,) = [i["item_id"] for i in listed if i["sku"] == sku]
    imported = app("POST", "/products/import-from-provider", {"provider": provider, "item_ids": [item]})
    product_id: str = (imported["created"] + imported["updated"])[0]["product_id"]
    return product_id


class OtherClient:
    """Another client of Partsemble's Xero app for the same organisation, outside Partsemble's own rate
    budget, calling as fast as Xero lets it."""

    def __init__(self, stack: Running) -> None:
        self.xero, self.redirect = stack.xero_url, f"{stack.url}/oauth/xero/callback"
        query = {
            "response_type": "code",
            "client_id": XERO_DEMO_APP[0],
            "redirect_uri": self.redirect,
            "scope": "offline_access accounting.settings.read",
            "state": "other-client",
        }
        with httpx.Client(timeout=20) as browser:
            params = walk_consent(
                browser,
                f"{self.xero}/identity/connect/authorize?{urlencode(query)}",
                username=DEMO_USERNAME,
                password=DEMO_PASSWORD,
                choose=[AU_TENANT_ID],
            )
        self.client = httpx.Client(base_url=self.xero, timeout=20)  # one connection, kept alive
        self._tokens(
            {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": self.redirect}
        )

    def _tokens(self, form: dict[str, str]) -> None:
        answer = self.client.post("/connect/token", data=form, auth=XERO_DEMO_APP)
        assert answer.status_code == 200, answer.text
        self.access, self.refresh = answer.json()["access_token"], answer.json()["refresh_token"]

    def use_up_the_minute(self) -> int:
        """Calls until Xero answers 429; returns how many calls it let through."""
        let_through = 0
        for _ in range(200):
            headers = {"authorization": f"Bearer {self.access}", "xero-tenant-id": AU_TENANT_ID}
            answer = self.client.get("/api.xro/2.0/Organisation", headers=headers)
            if answer.status_code == 401:  # its 30-minute token ran out in the sandbox's hour
                self._tokens({"grant_type": "refresh_token", "refresh_token": self.refresh})
                continue
            if answer.status_code == 429:
                assert answer.headers["x-rate-limit-problem"] == "minute", answer.headers
                return let_through
            assert answer.status_code == 200, answer.text
            let_through += 1
        pytest.fail("Xero never answered 429")


class Clocks:
    """Both sandboxes' clocks, moved together."""

    def __init__(self, stack: Running) -> None:
        self.sandboxes = [httpx.Client(base_url=url, timeout=20) for url in (stack.qbo_url, stack.xero_url)]

    def now(self) -> datetime:
        return datetime.fromisoformat(self.sandboxes[1].post("/_admin/clock", json={}).json()["now"])

    def set(self, at: datetime) -> None:
        for sandbox in self.sandboxes:
            moved = sandbox.post("/_admin/clock", json={"set": at.isoformat()})
            assert moved.status_code == 200, moved.text


def marked(records: list[dict[str, Any]], field: str) -> list[str]:
    """The Partsemble export markers in the provider's documents (one per document Partsemble posted)."""
    notes = [str(r.get(field) or "") for r in records]
    return [n.split("[Partsemble export ", 1)[1].rstrip("]") for n in notes if "[Partsemble export " in n]


def test_an_hour_of_exports_at_xeros_rate_posts_each_once_and_qbo_never_waits(local_stack: Running) -> None:
    xero, qbo = App(local_stack, "hour-xero"), App(local_stack, "hour-qbo")
    connect(local_stack, xero, "xero", choose=[AU_TENANT_ID])
    connect(local_stack, qbo, "qbo")
    chart = {a["code"]: a["account_id"] for a in xero("POST", "/integrations/xero/sync/accounts")["accounts"]}
    accounts = {role: chart[code] for role, code in XERO_ACCOUNTS.items()}
    xero("PUT", "/integrations/xero/export-settings", {"mode": "journals", "accounts": accounts})
    qbo("POST", "/integrations/qbo/sync/accounts")
    qbo("PUT", "/integrations/qbo/export-settings", {"mode": "journals", "accounts": QBO_ACCOUNTS})
    products = {"xero": product_for(xero, "xero", "BOLT-M8"), "qbo": product_for(qbo, "qbo", "FG-SK-OAK")}
    other = OtherClient(local_stack)

    clocks = Clocks(local_stack)
    start = clocks.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    recorded: dict[str, float] = {}  # QBO receipt -> when it was recorded (wall clock)
    posted_at: dict[str, float] = {}  # QBO receipt -> when its export was first seen posted

    def qbo_exports() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = qbo("GET", "/exports?limit=500")["items"]
        for export in listed:
            if export["status"] == "posted":
                posted_at.setdefault(export["record_id"], time.monotonic())
        return listed

    def posts_tried() -> int:  # Partsemble's journal posts Xero has seen, let through or not
        calls = clocks.sandboxes[1].get("/_admin/calls").json()["calls"]
        return int(calls.get("PUT /api.xro/2.0/ManualJournals", 0))

    refused_in_busy_minutes = 0
    began = time.monotonic()
    for minute in range(MINUTES):
        at = start + timedelta(minutes=minute)
        clocks.set(at)
        busy = minute in BUSY_MINUTES
        if busy:  # the other client has used up this minute by its 56th second
            assert 0 < other.use_up_the_minute() <= 60
            clocks.set(at + timedelta(seconds=BUSY_SECOND))
            tried = posts_tried()
        for provider, app, every, offset in (("xero", xero, XERO_EVERY, 0), ("qbo", qbo, QBO_EVERY, 2)):
            if minute % every == offset:
                line = {"product_id": products[provider], "quantity": "10", "unit_cost": "0.18"}
                receipt_id = f"{provider.upper()}-{minute:02d}"
                body = {"receipt_id": receipt_id, "received_at": f"2026-11-{minute // 3 + 2:02d}T09:00:00Z"}
                app("POST", "/receipts", {**body, "lines": [line]}, status=201)
                if provider == "qbo":
                    recorded[receipt_id] = time.monotonic()
        if busy:  # Partsemble posts this minute's receipt while the minute is used up: Xero says 429
            waited = time.monotonic() + 60 - BUSY_SECOND
            while posts_tried() == tried and time.monotonic() < waited:
                time.sleep(0.1)
            refused_in_busy_minutes += clocks.now() < at + timedelta(minutes=1)
        qbo_exports()
        time.sleep(STEP_SECONDS)
    hour_took = time.monotonic() - began
    assert clocks.now() - start >= timedelta(minutes=MINUTES - 1)  # the sandboxes lived through the hour

    # after the hour: everything posts, at the providers' own pace
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        exports = {"xero": xero("GET", "/exports?limit=500")["items"], "qbo": qbo_exports()}
        if all(e["status"] == "posted" for listed in exports.values() for e in listed):
            break
        stuck = [(e["record_id"], e["status"], e["last_error"]) for v in exports.values() for e in v]
        assert time.monotonic() < deadline, [s for s in stuck if s[1] != "posted"]
        time.sleep(0.25)

    wanted = {"xero": len(range(0, MINUTES, XERO_EVERY)), "qbo": len(range(2, MINUTES, QBO_EVERY))}
    assert {p: len(v) for p, v in exports.items()} == wanted
    assert all(e["last_error"] is None for v in exports.values() for e in v)  # none left on a 429
    # exactly once in each provider: one document per export, each carrying its export's marker
    journals = httpx.get(f"{local_stack.xero_url}/_admin/organisations/{AU_TENANT_ID}/ManualJournals").json()
    entries = httpx.get(f"{local_stack.qbo_url}/_admin/companies/{DEMO_REALM_ID}/JournalEntry").json()[
        "items"
    ]
    xero_marks, qbo_marks = marked(journals, "Narration"), marked(entries, "PrivateNote")
    assert len(xero_marks) == len(set(xero_marks)) == wanted["xero"]
    assert len(qbo_marks) == len(set(qbo_marks)) == wanted["qbo"]
    assert sorted(e["document_id"] for e in exports["xero"]) == sorted(
        j["ManualJournalID"] for j in journals if "[Partsemble export " in str(j.get("Narration"))
    )
    # QuickBooks was never held up by Xero's refused minutes (nor by Partsemble's pacing of Xero)
    late = {r: round(posted_at[r] - recorded[r], 1) for r in recorded if r in posted_at}
    # Partsemble met Xero's 429 (its posts in a used-up minute) and tried again in a later minute
    assert refused_in_busy_minutes >= 1
    assert posts_tried() - wanted["xero"] >= refused_in_busy_minutes
    assert late.keys() == recorded.keys()
    assert max(late.values()) <= QBO_WITHIN_SECONDS, (late, f"the hour took {hour_took:.1f} s of wall time")
