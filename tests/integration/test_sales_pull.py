"""Sales pull from both sandboxes: first pull from the chosen date, incremental reads (QBO change data
capture and its fallbacks, Xero If-Modified-Since), cursor and lease, failures, bad documents, schedule."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import httpx
import pytest

from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import BRACKET_20, DEMO_REALM_ID, HARBOR
from infra.sandboxes.xero_admin import AdminError
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from shared.errors import ProviderError
from shared.providers import http
from shared.providers.qbo import api as qbo_api
from shared.providers.qbo import sales as qbo_sales
from shared.providers.xero import api as xero_api
from shared.providers.xero.mapping import instant
from shared.services import sales
from shared.store import sales as sales_store
from shared.store.rate_budget import DynamoRateBudget
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_margins import products_by_sku, receive

D = Decimal
QBO_API = f"/v3/company/{DEMO_REALM_ID}/"
XERO_API = "/api.xro/2.0/"
HARBOUR = demo_id(AU_TENANT_ID, "contact", "harbour")


pytestmark = pytest.mark.usefixtures("no_real_sleep")


def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, response.body
    return response.json()


def track(api: Api, provider: str, start: str = "2026-08-01") -> dict[str, Any]:
    view: dict[str, Any] = ok(
        api.call(
            "PUT",
            f"/integrations/{provider}/sales-tracking",
            json_body={"enabled": True, "start_date": start},
        )
    )
    return view


def _stored_bodies() -> dict[str, str]:
    return {sales.PulledSale.model_validate_json(d).document_id: d for d in sales_store.documents("org-a")}


def pull(api: Api) -> dict[str, Any]:
    """'Pull now' (202, queued), the queue drained by the poller as Lambda would, then what it did: the last
    pull's figures from ``GET /sales/status`` and the documents it stored (new or changed)."""
    before = _stored_bodies()
    queued = api.pull_sales()
    assert len(queued) == 1
    view = next(v for v in ok(api.call("GET", "/sales/status")) if v["provider"] == queued[0]["provider"])
    after = _stored_bodies()
    stored = [i for i, body in after.items() if before.get(i) != body]
    return {"read": view["last_pull"]["read"], "stored": stored, "cursor": view["cursor"], "view": view}


def qbo_invoice(sandboxes: Sandboxes, number: str, day: str, qty: int) -> dict[str, Any]:
    return sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "Invoice",
        {
            "DocNumber": number,
            "TxnDate": day,
            "CustomerRef": {"value": HARBOR},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {
                        "ItemRef": {"value": BRACKET_20},
                        "Qty": qty,
                        "UnitPrice": "4.50",
                    },
                }
            ],
        },
    )


def test_qbo_first_pull_reads_from_the_start_date_then_one_cdc_call_reads_the_changes(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    view = track(api, "qbo")
    assert (view["enabled"], view["home_currency"], view["cursor"]) == (True, "USD", None)

    calls = sandboxes.qbo.call_count("GET", QBO_API)
    first = pull(api)
    assert sandboxes.qbo.call_count("GET", QBO_API) - calls == 4  # a query per document kind
    assert first["read"] == 8 and len(first["stored"]) == 8  # the demo's sales but the deleted invoice
    status = ok(api.call("GET", "/sales/status"))[0]
    assert status["cursor"] == first["cursor"] and status["last_pull"]["ok"] and not status["pulling"]

    calls = sandboxes.qbo.call_count("GET", QBO_API)
    again = pull(api)
    assert sandboxes.qbo.call_count("GET", QBO_API) - calls == 1  # the CDC call, nothing else
    assert again["stored"] == []

    sandboxes.qbo.clock.advance(60)
    added = qbo_invoice(sandboxes, "2001", "2026-11-10", 3)
    gone = next(
        r["Id"] for r in sandboxes.qbo.list_records(DEMO_REALM_ID, "Invoice") if r["DocNumber"] == "1002"
    )
    sandboxes.qbo.delete_record(DEMO_REALM_ID, "Invoice", gone)
    changed = pull(api)
    assert sorted(changed["stored"]) == sorted(
        [f"qbo:{DEMO_REALM_ID}:Invoice:{added['Id']}", f"qbo:{DEMO_REALM_ID}:Invoice:{gone}"]
    )
    excluded = ok(api.call("GET", "/margins"))["excluded"]
    assert [(e["number"], e["reason"]) for e in excluded] == [("1002", "deleted in the provider")]


def test_qbo_reads_by_query_past_the_cdc_window_and_past_its_1000_object_cap(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    pull(api)
    qbo = sandboxes.qbo
    # 1005 changes: CDC answers with its first 1000; the live documents are then read by query
    qbo.clock.advance(60)
    for n in range(1005):
        qbo_invoice(sandboxes, f"B{n:04d}", "2026-11-05", 1)
    calls = qbo.call_count("GET", QBO_API)
    capped = pull(api)
    assert len(capped["stored"]) == 1005
    assert (
        qbo.call_count("GET", QBO_API) - calls == 1 + 2 + 1 + 1 + 1
    )  # CDC, 2 pages of invoices, one per other kind (sales receipts, credit memos, refund receipts)

    # 31 days later the cursor is past CDC's look-back: queries by last-updated time instead
    later = datetime.now(UTC) + timedelta(days=31)
    qbo.clock.set(later)
    qbo_invoice(sandboxes, "L0001", "2026-12-20", 2)
    calls = qbo.call_count("GET", QBO_API + "cdc")
    result = sales.pull_changes("org-a", "qbo", now=later)
    assert qbo.call_count("GET", QBO_API + "cdc") == calls
    assert len(result.stored) == 1


def test_qbo_past_the_cdc_window_a_document_deleted_meanwhile_is_read_as_deleted(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A month without pulls: the query QBO is read by then never returns a deleted document, so each held
    one is asked for by id; the read goes on across parts and moves the cursor only once all were asked."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    pull(api)
    qbo = sandboxes.qbo
    numbers = {r["Id"]: r["DocNumber"] for r in qbo.list_records(DEMO_REALM_ID, "Invoice")}
    gone = next(i for i, n in numbers.items() if n == "1002")
    later = datetime.now(UTC) + timedelta(days=31)
    qbo.clock.set(later - timedelta(days=30))
    qbo.delete_record(DEMO_REALM_ID, "Invoice", gone)
    qbo.clock.set(later)
    held = [i for i, d in _stored_bodies().items() if '"status":"deleted"' not in d]
    monkeypatch.setattr(qbo_sales, "BY_ID", 2)  # the held documents asked for two at a time
    asked: list[str] = []
    read = qbo_api.QboApi.get

    def noted(self: qbo_api.QboApi, session: Any, path: str, **params: str) -> dict[str, Any]:
        asked.append(params.get("query", ""))
        return read(self, session, path, **params)

    monkeypatch.setattr(qbo_api.QboApi, "get", noted)
    cursor = sales_store.get_tracking("org-a", "qbo").cursor  # type: ignore[union-attr]
    parts: list[sales.PullResult] = []
    while not parts or parts[-1].more:
        parts.append(sales.pull_changes("org-a", "qbo", now=later, part_pages=1))
        tracking = sales_store.get_tracking("org-a", "qbo")
        assert tracking is not None and (tracking.cursor == cursor) == parts[-1].more
    assert len(parts) > 3
    by_id = Counter(q.split()[3] for q in asked if " WHERE Id IN " in q)
    assert by_id == {k: -(-n // 2) for k, n in Counter(i.split(":")[2] for i in held).items()}
    stored = {i: sales.PulledSale.model_validate_json(d) for i, d in _stored_bodies().items()}
    deleted = [i for i, d in stored.items() if d.status == "deleted"]
    assert f"qbo:{DEMO_REALM_ID}:Invoice:{gone}" in deleted
    assert all(stored[i].status != "deleted" for i in held if i.rsplit(":", 1)[1] != gone)
    excluded = ok(api.call("GET", "/margins"))["excluded"]
    assert ("1002", "deleted in the provider") in [(e["number"], e["reason"]) for e in excluded]


@pytest.mark.parametrize(
    "broken",
    [{"time": "2026-12-06T10:00:00-08:00"}, {"QueryResponse": []}, {"QueryResponse": {"Invoice": {}}}],
)
def test_qbo_a_broken_answer_to_the_held_documents_read_by_id_deletes_none_of_them(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, broken: dict[str, Any]
) -> None:
    """Past the CDC window the held documents are asked for by id, and those QBO does not name are taken as
    deleted: an answer not of a query's shape fails the pull (its error shown, the cursor kept), rather than
    reading as "none found" and dropping every sale asked for from the margins."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    pull(api)
    before = _stored_bodies()
    later = datetime.now(UTC) + timedelta(days=31)
    sandboxes.qbo.clock.set(later)
    read = qbo_api.QboApi.get

    def by_id_broken(self: qbo_api.QboApi, session: Any, path: str, **params: str) -> dict[str, Any]:
        return broken if " WHERE Id IN " in params.get("query", "") else read(self, session, path, **params)

    monkeypatch.setattr(qbo_api.QboApi, "get", by_id_broken)
    cursor = sales_store.get_tracking("org-a", "qbo").cursor  # type: ignore[union-attr]
    with pytest.raises(ProviderError):
        while sales.pull_changes("org-a", "qbo", now=later).more:
            pass
    assert _stored_bodies() == before  # no held document read as deleted
    tracking = sales_store.get_tracking("org-a", "qbo")
    assert tracking is not None and tracking.cursor == cursor
    monkeypatch.setattr(qbo_api.QboApi, "get", read)  # QBO answers again: the next pull reads it all
    while sales.pull_changes("org-a", "qbo", now=later).more:
        pass
    assert all('"status":"deleted"' not in body for body in _stored_bodies().values())
    assert ok(api.call("GET", "/margins"))["excluded"] == []


def test_qbo_a_pull_from_a_new_start_date_reads_a_document_deleted_since_as_deleted(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A new start date reads the documents from it again, by query: one deleted since the last pull (which
    CDC would have named, but the cursor starts over) is asked for by id and read as deleted."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    pull(api)
    qbo = sandboxes.qbo
    gone = next(r["Id"] for r in qbo.list_records(DEMO_REALM_ID, "Invoice") if r["DocNumber"] == "1002")
    qbo.clock.advance(60)
    qbo.delete_record(DEMO_REALM_ID, "Invoice", gone)
    qbo.clock.advance(120)
    track(api, "qbo", start="2026-07-01")
    again = pull(api)
    assert again["stored"] == [f"qbo:{DEMO_REALM_ID}:Invoice:{gone}"]
    excluded = ok(api.call("GET", "/margins"))["excluded"]
    assert ("1002", "deleted in the provider") in [(e["number"], e["reason"]) for e in excluded]


def test_xero_pulls_accrec_documents_and_then_only_what_changed(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    view = track(api, "xero")
    assert view["home_currency"] == "AUD"
    xero = sandboxes.xero
    calls = xero.call_count("GET", XERO_API)
    first = pull(api)
    assert xero.call_count("GET", XERO_API) - calls == 2  # one page of invoices, one of credit notes
    # ACCREC only (no bills or supplier credits); the draft is kept, not costed; the deleted one never seen
    assert first["read"] == 9 and len(first["stored"]) == 8
    assert all(":Invoice:" in d or ":CreditNote:" in d for d in first["stored"])

    calls = xero.call_count("GET", XERO_API)
    assert pull(api)["stored"] == [] and xero.call_count("GET", XERO_API) - calls == 2

    xero.clock.advance(60)
    inv4 = demo_id(AU_TENANT_ID, "invoice", "INV-0004")
    xero.edit_record(AU_TENANT_ID, "Invoices", inv4, {"Status": "VOIDED"})
    assert pull(api)["stored"] == [f"xero:Invoice:{inv4}"]
    docs = {d["number"]: d for d in ok(api.call("GET", "/margins"))["documents"]}
    assert docs["INV-0004"]["status"] == "voided"


def test_xero_a_deleted_draft_moves_no_stock_and_a_voided_invoice_gives_its_stock_back_once(
    api: Api, sandboxes: Sandboxes
) -> None:
    """In Xero a person deletes a draft (it never was a sale: nothing moves) and voids an approved invoice
    (deleting one is refused, as Xero refuses it): the void gives the units it took back, once, however many
    pulls read it."""
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    xero = sandboxes.xero
    bracket = products_by_sku(api, "xero", [demo_id(AU_TENANT_ID, "item", "BRACKET-L")])["BRACKET-L"]
    receive(api, [("L", bracket, "40", "2.40")])

    def on_hand() -> Decimal:
        return Decimal(ok(api.call("GET", f"/products/{bracket}/lots"))["on_hand"])

    def reasons() -> dict[str, str]:
        return {e["number"]: e["reason"] for e in ok(api.call("GET", "/margins"))["excluded"]}

    track(api, "xero")
    pull(api)
    assert on_hand() == 40 and reasons()["INV-0007"] == "a draft: not a sale until it is approved"
    xero.clock.advance(60)
    xero.delete_record(AU_TENANT_ID, "Invoices", demo_id(AU_TENANT_ID, "invoice", "INV-0007"))
    sale = xero.add_record(
        AU_TENANT_ID,
        "Invoices",
        {
            "InvoiceNumber": "INV-0009",
            "Type": "ACCREC",
            "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "kiwi")},
            "Date": "2026-11-04",
            "Status": "AUTHORISED",
            "LineItems": [
                {"ItemCode": "BRACKET-L", "Description": "Bracket", "Quantity": "10", "UnitAmount": "5.90"}
            ],
        },
    )
    pull(api)
    assert on_hand() == 30 and reasons()["INV-0007"] == "deleted in the provider"
    with pytest.raises(AdminError, match="Invoice not of valid status for modification"):
        xero.delete_record(AU_TENANT_ID, "Invoices", sale["InvoiceID"])
    xero.clock.advance(60)
    xero.void_record(AU_TENANT_ID, "Invoices", sale["InvoiceID"])
    assert pull(api)["stored"] == [f"xero:Invoice:{sale['InvoiceID']}"]
    assert on_hand() == 40
    xero.clock.advance(60)
    pull(api)  # read again in the cursor's overlap: nothing given back twice
    assert on_hand() == 40
    docs = {d["number"]: d for d in ok(api.call("GET", "/margins"))["documents"]}
    assert docs["INV-0009"]["status"] == "voided" and docs["INV-0009"]["lines"] == []


def test_xero_an_answer_without_its_collection_fails_the_pull_and_keeps_the_cursor(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Xero's envelope always holds the collection asked for (empty when nothing changed): an answer without
    it fails the pull with the cursor kept, never reads as "nothing changed" and moves the cursor past the
    documents changed meanwhile."""
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    track(api, "xero")
    xero = sandboxes.xero
    pull(api)
    cursor = sales_store.get_tracking("org-a", "xero").cursor  # type: ignore[union-attr]
    xero.clock.advance(600)
    inv4 = demo_id(AU_TENANT_ID, "invoice", "INV-0004")
    xero.edit_record(AU_TENANT_ID, "Invoices", inv4, {"Status": "VOIDED"})
    xero.clock.advance(600)
    request = xero_api.XeroApi._request
    envelope = {"Status": "OK", "DateTimeUTC": f"/Date({int(xero.clock.now().timestamp() * 1000)})/"}

    def without_collection(
        self: xero_api.XeroApi, session: Any, method: str, collection: str, **kw: Any
    ) -> Any:
        if method == "GET" and collection in ("Invoices", "CreditNotes"):
            return envelope
        return request(self, session, method, collection, **kw)

    monkeypatch.setattr(xero_api.XeroApi, "_request", without_collection)
    with pytest.raises(ProviderError):
        sales.pull_changes("org-a", "xero", now=xero.clock.now())
    assert sales_store.get_tracking("org-a", "xero").cursor == cursor  # type: ignore[union-attr]
    monkeypatch.setattr(xero_api.XeroApi, "_request", request)
    assert pull(api)["stored"] == [f"xero:Invoice:{inv4}"]  # the void is read once Xero answers again


def test_xero_a_document_stamped_just_before_the_cursor_but_seen_after_the_pull_is_still_read(
    api: Api, sandboxes: Sandboxes
) -> None:
    """Xero's change stamps may lag what a read sees: a document stamped a minute before the latest stamp a
    pull read, visible only after that pull, is read by the next one (the cursor keeps a 5-minute overlap)."""
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    track(api, "xero")
    xero = sandboxes.xero
    pull(api)
    xero.clock.advance(600)
    inv4 = demo_id(AU_TENANT_ID, "invoice", "INV-0004")
    read = xero.edit_record(AU_TENANT_ID, "Invoices", inv4, {"Reference": "seen at once"})
    assert pull(api)["stored"] == [f"xero:Invoice:{inv4}"]
    xero.clock.advance(-60)  # committed with the stamp of a minute before, seen only now
    inv2 = demo_id(AU_TENANT_ID, "invoice", "INV-0002")
    late = xero.edit_record(AU_TENANT_ID, "Invoices", inv2, {"Status": "VOIDED"})
    xero.clock.advance(120)
    assert instant(late["UpdatedDateUTC"]) < instant(read["UpdatedDateUTC"])  # behind what the pull read
    assert pull(api)["stored"] == [f"xero:Invoice:{inv2}"]
    docs = {d["number"]: d for d in ok(api.call("GET", "/margins"))["documents"]}
    assert docs["INV-0002"]["status"] == "voided"


def test_pulls_of_one_connection_never_overlap(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    now = datetime.now(UTC)
    assert sales_store.try_acquire_pull_lease(
        "org-a", "qbo", owner="other", now=int(now.timestamp()), ttl_s=600
    )
    refused = api.call("POST", "/sales/pull")
    assert refused.status == 409 and refused.json()["error"] == "PullRunning"
    assert ok(api.call("GET", "/sales/status"))[0]["pulling"]
    # a lease that outlived its holder (a crashed pull) is taken over
    result = sales.pull_changes("org-a", "qbo", now=now + timedelta(seconds=601))
    assert len(result.stored) == 8


def test_a_failed_or_crashed_pull_is_repeated_never_skipped_or_counted_twice(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    sandboxes.qbo.inject("500", method="GET", path_prefix=QBO_API + "query", count=http.MAX_ATTEMPTS)
    api.pull_sales()  # queued at once; the worker's pull fails, and says so in the status
    status = ok(api.call("GET", "/sales/status"))[0]
    assert status["cursor"] is None and not status["last_pull"]["ok"] and not status["pulling"]
    assert sales_store.documents("org-a") == []  # nothing half-stored: the reads come first

    first = pull(api)
    totals = ok(api.call("GET", "/margins"))["totals"]
    # a crash after the documents were stored but before the cursor moved: the next pull reads them again
    sales_store.save_tracking(
        "org-a", "qbo", enabled=True, start_date="2026-08-01", home_currency="USD", reset_cursor=True
    )
    again = pull(api)
    assert again["read"] == first["read"] and again["stored"] == []
    assert ok(api.call("GET", "/margins"))["totals"] == totals
    assert len(sales_store.documents("org-a")) == len(first["stored"])


def test_a_pull_retried_after_it_died_says_what_the_pull_stored(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull that stored its documents and died before its cursor moved (Lambda's timeout): the pull that
    takes over reads them again, finds them as the dead one stored them, and counts them as the pull's (not
    0); a later pull reading one of them again in its overlap does not."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    now = datetime.now(UTC)

    def killed(*args: Any, **kwargs: Any) -> bool:
        raise TimeoutError("the function's time ran out")

    monkeypatch.setattr(sales_store, "advance_cursor", killed)
    with pytest.raises(TimeoutError):
        sales.pull_changes("org-a", "qbo", now=now)
    monkeypatch.undo()
    held = set(_stored_bodies())
    assert len(held) == 8 and ok(api.call("GET", "/sales/status"))[0]["cursor"] is None

    sandboxes.qbo.clock.advance(60)
    late = "qbo:" + DEMO_REALM_ID + ":Invoice:" + qbo_invoice(sandboxes, "LATE-1", "2026-11-20", 2)["Id"]
    retried = sales.pull_changes("org-a", "qbo", now=now + timedelta(seconds=sales.LEASE_SECONDS + 1))
    assert set(retried.stored) == {*held, late} and retried.cursor is not None
    assert ok(api.call("GET", "/sales/status"))[0]["last_pull"]["stored"] == 9

    sandboxes.qbo.clock.advance(60)  # LATE-1 was stamped within the 5 minutes the next pull reads again
    later = sales.pull_changes("org-a", "qbo", now=now + timedelta(minutes=5))
    assert (later.read, later.stored) == (1, [])
    assert ok(api.call("GET", "/sales/status"))[0]["last_pull"]["stored"] == 0


def test_bad_documents_are_reported_and_never_block_the_rest(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    ok(api.call("POST", "/integrations/xero/sync/items"))
    ok(
        api.call(
            "POST",
            "/products/import-from-provider",
            json_body={"provider": "xero", "item_ids": [demo_id(AU_TENANT_ID, "item", "WIDGET-10")]},
        )
    )
    track(api, "xero")
    xero = sandboxes.xero

    def invoice(number: str, day: str, lines: list[dict[str, Any]], **extra: Any) -> None:
        xero.add_record(
            AU_TENANT_ID,
            "Invoices",
            {
                "InvoiceNumber": number,
                "Type": "ACCREC",
                "Date": day,
                "Contact": {"ContactID": HARBOUR},
                "Status": "AUTHORISED",
                "LineItems": lines,
                **extra,
            },
        )

    widget = {"ItemCode": "WIDGET-10", "Description": "Widget", "UnitAmount": "6.00"}
    invoice("BAD-QTY", "2026-09-01", [{**widget, "Quantity": "0"}, {**widget, "Quantity": "-2"}])
    invoice("NO-ITEM", "2026-09-02", [{"Description": "Freight", "Quantity": "1", "UnitAmount": "15.00"}])
    invoice("ODD-CCY", "2026-09-03", [{**widget, "Quantity": "1"}], CurrencyCode="X1", CurrencyRate="2")
    invoice("EARLY", "2026-07-15", [{**widget, "Quantity": "1"}])
    invoice("GOOD", "2026-09-04", [{**widget, "Quantity": "1"}])
    pull(api)

    report = ok(api.call("GET", "/margins"))
    docs = {d["number"]: d for d in report["documents"]}
    assert "EARLY" not in docs  # the first pull reads from the start date
    issues = docs["BAD-QTY"]["issues"]
    assert [(D(i.split()[4].rstrip(":")), i.endswith("left out of costing")) for i in issues] == [
        (D(0), True),
        (D(-2), True),
    ]  # "line <id> has quantity <n>: left out of costing"
    assert [u["description"] for u in docs["NO-ITEM"]["unmapped"]] == ["Freight"]
    assert "unknown currency 'X1': margins not computed" in docs["ODD-CCY"]["issues"]
    assert D(docs["GOOD"]["figures"]["revenue"]) == D("6.00")

    xero.clock.advance(60)
    early = next(r for r in xero.list_records(AU_TENANT_ID, "Invoices") if r["InvoiceNumber"] == "EARLY")
    xero.edit_record(AU_TENANT_ID, "Invoices", early["InvoiceID"], {"Reference": "re-sent"})
    pull(api)
    excluded = {e["number"]: e["reason"] for e in ok(api.call("GET", "/margins"))["excluded"]}
    assert excluded["EARLY"] == "dated before the first pull date (2026-08-01)"


def test_lines_keep_their_product_when_the_item_code_changes(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    item = demo_id(AU_TENANT_ID, "item", "PANEL-A")
    ok(api.call("POST", "/integrations/xero/sync/items"))
    product = ok(
        api.call("POST", "/products/import-from-provider", json_body={"provider": "xero", "item_ids": [item]})
    )["created"][0]
    track(api, "xero")
    pull(api)
    sandboxes.xero.edit_record(AU_TENANT_ID, "Items", item, {"Code": "PANEL-A2"})
    ok(api.call("POST", "/integrations/xero/sync/items"))
    docs = {d["number"]: d for d in ok(api.call("GET", "/margins"))["documents"]}
    assert [line["product_id"] for line in docs["INV-0002"]["lines"]] == [product["product_id"]]
    assert docs["INV-0002"]["unmapped"] == []


def test_the_schedule_pulls_every_tracked_connection(api: Api, sandboxes: Sandboxes, aws: LocalStack) -> None:
    connect(api, sandboxes, "qbo")
    connect(api, sandboxes, "xero", organisation="org-b", choose=[AU_TENANT_ID])
    track(api, "qbo")
    report = Scheduler(aws).fire("SalesPullFunction")
    # a message per connected connection: each does its books' hour; org-b pulls nothing (it tracks no sales)
    assert (report["due"], report["queued"], report["failed"]) == (2, 2, 0)
    assert ok(api.call("GET", "/sales/status"))[0]["last_pull"] is None  # queued, not pulled by the schedule
    assert Poller(aws).drain() == 2
    assert ok(api.call("GET", "/sales/status"))[0]["last_pull"]["stored"] == 8
    assert ok(api.call("GET", "/sales/status", organisation="org-b")) == []


def test_pull_now_answers_at_once_and_the_status_shows_it_pulling_until_it_ends(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    calls = sandboxes.qbo.call_count("GET", QBO_API)
    answer = api.call("POST", "/sales/pull")
    assert answer.status == 202 and [q["provider"] for q in answer.json()] == ["qbo"]
    assert sandboxes.qbo.call_count("GET", QBO_API) == calls  # nothing pulled inside the API's request
    status = ok(api.call("GET", "/sales/status"))[0]
    assert status["pulling"] and status["requested_at"] and status["last_pull"] is None
    assert Poller(aws).drain() == 1
    status = ok(api.call("GET", "/sales/status"))[0]
    assert not status["pulling"] and status["last_pull"]["ok"] and status["last_pull"]["stored"] == 8


def test_pull_now_clicked_again_or_at_once_queues_one_pull(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    before = sales_store.tracked("org-a")  # what a request made at the same moment read
    assert api.call("POST", "/sales/pull").status == 202
    again = api.call("POST", "/sales/pull")  # queued, not begun: left to it
    assert again.status == 409 and again.json()["error"] == "PullRunning", again.body
    # a request that read before the first one marked its pull: its conditional mark finds it changed
    with monkeypatch.context() as stale, pytest.raises(sales.PullRunning):
        stale.setattr(sales.store, "tracked", lambda organisation_id: before)
        sales.pull_now("org-a", datetime.now(UTC))
    assert Poller(aws).drain() == 1  # one pull for the three requests
    assert api.call("POST", "/sales/pull").status == 202  # ended: the next one is queued
    assert Poller(aws).drain() == 1


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_a_large_first_pull_goes_on_across_messages_with_its_place_and_moves_the_cursor_at_the_end(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    if provider == "qbo":
        connect(api, sandboxes, "qbo")
        monkeypatch.setattr(qbo_api, "PAGE", 2)
    else:
        connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
        monkeypatch.setattr(xero_api, "PAGE", 4)  # few calls: Xero's budget is 60 a minute
    monkeypatch.setattr(sales, "PART_PAGES", 1)  # each message reads one page, then queues the next part
    track(api, provider)
    answer = api.call("POST", "/sales/pull")
    assert answer.status == 202
    poller = Poller(aws)
    first = poller.poll_once()
    assert first.received == 1
    middle = ok(api.call("GET", "/sales/status"))[0]
    assert middle["pulling"] and middle["cursor"] is None and middle["last_pull"]["more"]
    poller.drain()
    done = ok(api.call("GET", "/sales/status"))[0]
    assert not done["pulling"] and not done["last_pull"]["more"] and done["last_pull"]["parts"] > 2
    assert done["cursor"] is not None and done["last_pull"]["ok"]
    assert done["last_pull"]["stored"] == len(_stored_bodies()) == 8  # every part counted once


def _lose_queued_parts(aws: LocalStack) -> int:
    """The queued next part is gone (its worker died at every receive; it went to the dead-letter queue)."""
    sqs, url = boto3.client("sqs"), aws.physical("SalesPullQueue")
    lost = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in lost:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(lost)


def test_a_pull_whose_next_part_never_runs_shows_stalled_and_the_next_pull_goes_on_from_it(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    monkeypatch.setattr(qbo_api, "PAGE", 2)
    monkeypatch.setattr(sales, "PART_PAGES", 1)
    track(api, "qbo")
    assert api.call("POST", "/sales/pull").status == 202
    assert Poller(aws).poll_once().received == 1  # the first part; it queues the next
    assert _lose_queued_parts(aws) == 1
    going = ok(api.call("GET", "/sales/status"))[0]
    assert going["pulling"] and not going["stalled"]  # its next part may still come (a delayed message)

    later = datetime.now(UTC) + sales.STALE_AFTER + timedelta(minutes=1)
    (stalled,) = sales.status("org-a", later)
    assert not stalled.pulling and stalled.stalled and stalled.last_pull and stalled.last_pull.more

    assert api.call("POST", "/sales/pull").status == 202  # free, and goes on from where it stopped
    Poller(aws).drain()
    done = ok(api.call("GET", "/sales/status"))[0]
    assert not done["pulling"] and not done["stalled"] and done["last_pull"]["ok"]
    assert done["last_pull"]["stored"] == len(_stored_bodies()) == 8  # the first part's counted too
    assert done["last_pull"]["parts"] > 2


def test_a_failed_part_keeps_the_counts_of_the_parts_before_it(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    monkeypatch.setattr(qbo_api, "PAGE", 2)
    monkeypatch.setattr(sales, "PART_PAGES", 1)
    track(api, "qbo")
    assert api.call("POST", "/sales/pull").status == 202
    poller = Poller(aws)
    assert poller.poll_once().received == 1
    first = ok(api.call("GET", "/sales/status"))[0]["last_pull"]
    assert first["ok"] and first["stored"] == 2 and first["parts"] == 1

    sandboxes.qbo.inject("503", path_prefix=QBO_API + "query", count=http.MAX_ATTEMPTS)
    assert poller.poll_once().received == 1  # the next part fails
    failed = ok(api.call("GET", "/sales/status"))[0]
    assert not failed["last_pull"]["ok"] and "unavailable" in failed["last_pull"]["error"]
    assert (failed["last_pull"]["read"], failed["last_pull"]["stored"]) == (first["read"], first["stored"])
    assert failed["last_pull"]["parts"] == 2
    assert not failed["pulling"] and failed["stalled"]  # nothing carries it on until the next pull

    assert api.call("POST", "/sales/pull").status == 202
    poller.drain()
    done = ok(api.call("GET", "/sales/status"))[0]
    assert done["last_pull"]["ok"] and not done["stalled"] and not done["pulling"]
    assert done["last_pull"]["stored"] == len(_stored_bodies()) == 8


def test_tracking_keeps_the_organisation_time_zone_from_the_provider_or_as_the_user_names_it(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "xero", organisation="org-b", choose=[AU_TENANT_ID])
    # Xero's Organisation.Timezone AUSEASTERNSTANDARDTIME is Sydney (CLDR windowsZones)
    xero = ok(
        api.call(
            "PUT",
            "/integrations/xero/sales-tracking",
            organisation="org-b",
            json_body={"enabled": True, "start_date": "2026-08-01"},
        )
    )
    assert xero["time_zone"] == "Australia/Sydney"
    connect(api, sandboxes, "qbo")
    # QBO's answers carry the company's offset (each company's own zone): a fixed zone of that offset
    sandboxes.qbo.update_company(DEMO_REALM_ID, time_zone="America/New_York")
    offset = sandboxes.qbo.now().astimezone(ZoneInfo("America/New_York")).utcoffset()
    assert offset is not None
    assert track(api, "qbo")["time_zone"] == f"Etc/GMT+{-int(offset.total_seconds()) // 3600}"

    path = "/integrations/qbo/sales-tracking"
    chosen = ok(api.call("PUT", path, json_body={"enabled": True, "time_zone": "America/New_York"}))
    assert chosen["time_zone"] == "America/New_York"
    kept = ok(api.call("PUT", path, json_body={"enabled": False}))  # unchanged unless named
    assert kept["time_zone"] == "America/New_York"
    for wrong in ("Mars/Olympus_Mons", "../etc/passwd", ""):
        refused = api.call("PUT", path, json_body={"enabled": True, "time_zone": wrong})
        assert refused.status == 400 and "time_zone" in refused.body.decode(), refused.body


@pytest.mark.parametrize(
    "wrong", ["localtime", "posixrules", "right/Europe/London", "posix/Europe/London", "Factory"]
)
def test_a_zoneinfo_file_that_is_no_iana_zone_is_refused_as_the_time_zone(
    api: Api, sandboxes: Sandboxes, wrong: str
) -> None:
    """The host's zoneinfo directory holds files that load as zones but name none: "localtime" is the
    machine's own zone, Python reads the leap-second tree an hour off (right/Europe/London at UTC+1 in
    December 2026), and "Factory" is tzdata's placeholder for a machine whose zone is not set."""
    connect(api, sandboxes, "qbo")
    path = "/integrations/qbo/sales-tracking"
    refused = api.call("PUT", path, json_body={"enabled": True, "time_zone": wrong})
    assert refused.status == 400, refused.body
    assert [d["field"] for d in refused.json()["details"]] == ["time_zone"]
    assert ok(api.call("GET", "/sales/status")) == []


def _edit_once_read(marker: str, edit: Any) -> Any:
    """A sandbox hook: once a page holding ``marker`` (a document's number) has been answered, and before the
    caller reads it, ``edit()`` runs (a person edits that document in the provider while the pull pages)."""
    done: list[bool] = []

    def hook(request: httpx.Request, response: httpx.Response) -> None:
        if not done and f'"{marker}"' in response.content.decode():
            done.append(True)
            edit()

    return hook


def test_qbo_a_document_edited_between_page_reads_is_never_skipped(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QBO orders a query by last-updated time, so an edited document moves to the end and the ones after
    it slide back a place: an offset (STARTPOSITION) then steps over one of them, and the cursor (the pull's
    start) passes it for good. Pages keyed on the last-updated time read it."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    qbo = sandboxes.qbo
    monkeypatch.setattr(qbo_api, "PAGE", 2)
    mine = []
    for n in range(5):  # updated one second apart, after the demo's documents
        qbo.clock.advance(1)
        mine.append(qbo_invoice(sandboxes, f"E{n}", "2026-11-02", 1))
    qbo.clock.advance(3600)  # an hour old by the first pull: older than the cursor's overlap

    def edit_first() -> None:
        qbo.clock.advance(1)
        qbo.edit_record(DEMO_REALM_ID, "Invoice", mine[0]["Id"], {"PrivateNote": "re-sent"})

    qbo.after("GET", QBO_API + "query", _edit_once_read("E0", edit_first))
    pull(api)
    qbo.clock.advance(60)
    pull(api)  # the next pull (change data capture since the cursor) must not need to catch up either

    stored = {d.split(":")[-1] for d in _stored_ids()}
    assert {r["Id"] for r in mine} <= stored
    edited = next(
        d
        for d in map(sales.PulledSale.model_validate_json, sales_store.documents("org-a"))
        if d.document_id == f"qbo:{DEMO_REALM_ID}:Invoice:{mine[0]['Id']}"
    )
    assert edited.note == "re-sent"  # one version per document: the latest


def test_qbo_a_full_page_ending_on_a_record_without_a_stamp_does_not_end_the_read(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page can only be keyed on a last-updated time it carries: a full page whose last record has none
    goes on by position within the same query (the sandbox, like SQL, puts records without the property
    last), so none of the records after it is skipped."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    monkeypatch.setattr(qbo_api, "PAGE", 2)
    invoices = sorted(
        sandboxes.qbo.company(DEMO_REALM_ID).records["Invoice"].values(), key=lambda r: int(r["Id"])
    )
    assert len(invoices) > 3
    for record in invoices[1:]:  # a record as QBO might send it, its MetaData without LastUpdatedTime
        record["MetaData"].pop("LastUpdatedTime")
    pull(api)
    stored = {d.split(":")[-1] for d in _stored_ids() if ":Invoice:" in d}
    live = {r["Id"] for r in invoices if r.get("status") != "Deleted"}
    assert stored == live


def test_xero_a_document_edited_between_page_reads_is_never_skipped(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Xero pages (``page``) a list ordered by UpdatedDateUTC: an edit mid-pull shifts the pages the same way,
    and the cursor (the latest stamp read, the edited document's) passes the skipped one for good."""
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    track(api, "xero")
    xero = sandboxes.xero
    monkeypatch.setattr(xero_api, "PAGE", 2)
    # pages of 2 make many calls: Partsemble's own pacing (60 a minute) is not what this test is about
    monkeypatch.setattr(DynamoRateBudget, "acquire", lambda self, key, **limits: 0.0)
    monkeypatch.setattr(DynamoRateBudget, "release", lambda self, key: None)
    mine = []
    for n in range(5):
        xero.clock.advance(1)
        mine.append(
            xero.add_record(
                AU_TENANT_ID,
                "Invoices",
                {
                    "InvoiceNumber": f"E{n}",
                    "Type": "ACCREC",
                    "Date": "2026-11-02",
                    "Contact": {"ContactID": HARBOUR},
                    "Status": "AUTHORISED",
                    "LineItems": [{"Description": "Widget", "Quantity": "1", "UnitAmount": "6.00"}],
                },
            )
        )
    xero.clock.advance(3600)

    def edit_first() -> None:
        xero.clock.advance(1)
        xero.edit_record(AU_TENANT_ID, "Invoices", mine[0]["InvoiceID"], {"Reference": "re-sent"})

    xero.after("GET", XERO_API + "Invoices", _edit_once_read("E0", edit_first))
    pull(api)
    xero.clock.advance(60)
    pull(api)

    stored = {d.split(":")[-1] for d in _stored_ids()}
    assert {r["InvoiceID"] for r in mine} <= stored


def _stored_ids() -> set[str]:
    return set(_stored_bodies())


def test_a_killed_pull_frees_pull_now_within_a_minute(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    now = datetime.now(UTC)
    # a pull took the lease, then its function was killed (it never renews nor releases it)
    assert sales_store.try_acquire_pull_lease(
        "org-a", "qbo", owner="killed", now=int(now.timestamp()), ttl_s=sales.LEASE_SECONDS
    )
    with pytest.raises(sales.PullRunning):
        sales.pull_changes("org-a", "qbo", now=now + timedelta(seconds=30))
    assert len(sales.pull_changes("org-a", "qbo", now=now + timedelta(seconds=61)).stored) == 8


def test_a_live_pull_renews_its_lease_between_pages(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    monkeypatch.setattr(qbo_api, "PAGE", 2)
    start = datetime.now(UTC)
    ticks = [start]

    def clock() -> datetime:  # each look at the clock: 45 s later (a slow provider)
        ticks.append(ticks[-1] + timedelta(seconds=45))
        return ticks[-1]

    refused: list[bool] = []

    def intrude(
        request: httpx.Request, response: httpx.Response
    ) -> None:  # another pull, at the time the pull has reached
        at = int(ticks[-1].timestamp())
        refused.append(
            not sales_store.try_acquire_pull_lease("org-a", "qbo", owner="other", now=at, ttl_s=60)
        )

    sandboxes.qbo.after("GET", QBO_API + "query", intrude)
    result = sales.pull_changes("org-a", "qbo", now=start, clock=clock)
    assert len(ticks) > 3 and (ticks[-1] - start).total_seconds() > sales.LEASE_SECONDS
    assert refused and all(refused)  # never free while the pull lives, long past one lease
    assert len(result.stored) == 8
    assert not ok(api.call("GET", "/sales/status"))[0]["pulling"]  # released at the end


def test_a_first_pull_rate_limited_at_its_first_part_shows_pulling_until_it_comes_back(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """QuickBooks throttles the very first page: the part is queued again for when the budget allows, and
    the page shows the pull going on (not idle after a failed pull, not stalled)."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    sandboxes.qbo.inject("429", path_prefix=QBO_API + "query", count=http.MAX_ATTEMPTS)
    assert api.call("POST", "/sales/pull").status == 202
    poller = Poller(aws)
    assert poller.poll_once().received == 1  # the first part, throttled
    throttled = ok(api.call("GET", "/sales/status"))[0]
    assert not throttled["last_pull"]["ok"] and throttled["last_pull"]["more"], throttled["last_pull"]
    assert throttled["pulling"] and not throttled["stalled"]
    queue = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.physical("SalesPullQueue"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )
    assert queue["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"  # it comes back by itself


def _expire_connection() -> None:
    """The provider stopped accepting the connection (revoked there) and the service noticed."""
    from shared.services import tokens
    from shared.store import connections as connection_store

    connection = connection_store.get_connection("org-a", "qbo")
    assert connection is not None and connection.grant_id
    grant = connection_store.get_grant(connection.grant_id)
    assert grant is not None
    tokens.expire_grant(grant, reason="qbo: invalid_grant", now=datetime.now(UTC))


def test_pull_now_on_an_expired_connection_is_refused_naming_reconnect(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    _expire_connection()
    refused = api.call("POST", "/sales/pull")
    assert refused.status == 409 and refused.json()["error"] == "AuthExpired", refused.body
    assert "reconnect" in refused.json()["message"]
    status = ok(api.call("GET", "/sales/status"))[0]
    assert not status["pulling"] and status["requested_at"] is None  # nothing queued
    connect(api, sandboxes, "qbo")
    assert api.pull_sales()[0]["provider"] == "qbo"  # once reconnected, at once
    assert ok(api.call("GET", "/sales/status"))[0]["last_pull"]["stored"] == 8


def test_pull_now_refused_says_what_is_missing_a_connection_or_tracking(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A disconnected provider keeps its tracking on and is not pulled: the refusal says to connect, not to
    turn on tracking that is already on; a connection that tracks nothing is told to turn tracking on."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    refused = api.call("POST", "/sales/pull")
    assert refused.status == 409, refused.body
    assert "not connected" in refused.json()["message"] and "connect it" in refused.json()["message"]
    assert "turn it on" not in refused.json()["message"]
    assert ok(api.call("GET", "/sales/status"))[0]["requested_at"] is None  # nothing queued
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    refused = api.call("POST", "/sales/pull")
    assert (
        refused.status == 409
        and refused.json()["message"] == "sales tracking is off for Xero; turn it on first"
    )


@pytest.mark.parametrize("meanwhile", ["connection expired", "tracking turned off", "disconnected"])
def test_a_pull_now_that_ends_before_it_begins_shows_why_and_the_next_is_accepted_at_once(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, meanwhile: str
) -> None:
    """Between "pull now" and its worker the connection expired, tracking was turned off or the connection
    was disconnected: the worker pulls nothing, and says so; the status no longer shows it pulling, and the
    next "pull now" (once it can pull) is queued at once, not refused as already queued for 15 minutes."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    assert api.call("POST", "/sales/pull").status == 202
    if meanwhile == "connection expired":
        _expire_connection()
    elif meanwhile == "tracking turned off":
        off = {"enabled": False, "start_date": "2026-08-01"}
        ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=off))
    else:
        ok(api.call("POST", "/integrations/qbo/disconnect"))
    assert Poller(aws).drain() == 1
    (status,) = ok(api.call("GET", "/sales/status"))
    assert not status["pulling"] and not status["last_pull"]["ok"], status
    assert {
        "connection expired": "reconnect",
        "tracking turned off": "not pulled: sales tracking was turned off",
        "disconnected": "not pulled: this organisation is no longer connected to QuickBooks Online",
    }[meanwhile] in status["last_pull"]["error"]
    assert sales_store.documents("org-a") == []
    if meanwhile != "tracking turned off":
        connect(api, sandboxes, "qbo")
    track(api, "qbo")
    assert api.pull_sales()[0]["provider"] == "qbo"  # accepted at once
    (status,) = ok(api.call("GET", "/sales/status"))
    assert status["last_pull"]["ok"] and status["last_pull"]["stored"] == 8 and not status["pulling"]


def test_an_unexpected_error_of_a_pull_is_logged_with_its_traceback_and_no_token(
    api: Api,
    sandboxes: Sandboxes,
    aws: LocalStack,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from shared.observability import logger

    connect(api, sandboxes, "qbo")
    track(api, "qbo")

    def broken(*_: Any) -> list[Any]:
        raise TypeError(
            "a bug near Authorization: Bearer leaky-access-token-42 and refresh_token=leaky-refresh-7"
        )

    monkeypatch.setattr(sales, "_changed", broken)
    assert api.call("POST", "/sales/pull").status == 202
    caplog.handler.setFormatter(logger.registered_formatter)  # lines as the function writes them
    caplog.clear()
    assert Poller(aws).drain() == 1  # the record failed: it comes back after its visibility timeout
    assert ok(api.call("GET", "/sales/status"))[0]["last_pull"]["error"] == "unexpected error (TypeError)"
    lines = [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]
    (logged,) = [line for line in lines if line.get("message") == "sales pull failed unexpectedly"]
    assert logged["level"] == "ERROR" and logged["organisation_id"] == "org-a" and logged["provider"] == "qbo"
    assert "Traceback" in logged["exception"] and "in broken" in logged["exception"]
    assert "leaky-access-token-42" not in caplog.text and "leaky-refresh-7" not in caplog.text


def test_a_pull_that_never_began_does_not_overwrite_one_that_ended_meanwhile(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A "pull now" refused before it began is recorded only over the last pull it saw: one that ended
    after that keeps its own figures."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    pull(api)
    seen = sales_store.get_tracking("org-a", "qbo")
    assert seen is not None and seen.last_pull is not None and seen.last_pull.ok
    failed = seen.last_pull.model_copy(update={"ok": False, "error": "not pulled: reconnect"})
    now = int(datetime.now(UTC).timestamp())
    sandboxes.qbo.clock.advance(60)
    pull(api)  # a real pull ends after the refused one read the tracking
    ended = sales_store.get_tracking("org-a", "qbo")
    assert ended is not None and ended.last_pull is not None
    assert not sales_store.end_unpulled("org-a", "qbo", now=now, last_pull=failed, seen=seen.last_pull.at)
    assert sales_store.get_tracking("org-a", "qbo").last_pull == ended.last_pull  # type: ignore[union-attr]
    assert sales_store.end_unpulled("org-a", "qbo", now=now, last_pull=failed, seen=ended.last_pull.at)
    assert sales_store.get_tracking("org-a", "qbo").last_pull == failed  # type: ignore[union-attr]
