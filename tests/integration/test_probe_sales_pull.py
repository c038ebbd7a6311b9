"""Adversarial probes of the sales pull: crashes part way, repeated and overlapping deliveries, a large first
pull continuing across messages while documents change in the provider, provider faults, same-second stamps
at page boundaries, and "pull now" against a running pull. Each probe checks what a user and an accountant
care about: the documents the service holds are the provider's live documents at their latest version, none
twice, and the margins equal those of a clean single pull."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import BRACKET_20, CHECKING, DEMO_REALM_ID, HARBOR
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared.contracts import ConnectionJob
from shared.providers import http
from shared.providers.qbo import api as qbo_api
from shared.providers.xero import api as xero_api
from shared.providers.xero.mapping import instant as xero_instant
from shared.providers.xero.mapping import stamp as xero_stamp
from shared.services import sales
from shared.store import sales as sales_store
from shared.store.rate_budget import DynamoRateBudget
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_sales_pull import HARBOUR, ok, qbo_invoice

D = Decimal
QBO_API = f"/v3/company/{DEMO_REALM_ID}/"
XERO_API = "/api.xro/2.0/"
START = "2026-08-01"
QBO_PULLED = ("Invoice", "SalesReceipt", "CreditMemo", "RefundReceipt")

pytestmark = pytest.mark.usefixtures("no_real_sleep")


def track(api: Api, provider: str, start: str = START) -> None:
    body = {"enabled": True, "start_date": start}
    ok(api.call("PUT", f"/integrations/{provider}/sales-tracking", json_body=body))


def status(api: Api) -> dict[str, Any]:
    view: dict[str, Any] = ok(api.call("GET", "/sales/status"))[0]
    return view


def held() -> dict[str, sales.PulledSale]:
    """Every document the service holds, by id (each stored once: the store is keyed by id)."""
    found = [sales.PulledSale.model_validate_json(d) for d in sales_store.documents("org-a")]
    ids = [d.document_id for d in found]
    assert len(ids) == len(set(ids))
    return {d.document_id: d for d in found}


def qbo_live(sandboxes: Sandboxes, start: str = START) -> dict[str, str]:
    """QBO's live sales documents dated from the start date: id -> SyncToken."""
    live = {}
    for entity in QBO_PULLED:
        for record in sandboxes.qbo.list_records(DEMO_REALM_ID, entity):
            if str(record.get("TxnDate") or "") >= start:
                live[f"qbo:{DEMO_REALM_ID}:{entity}:{record['Id']}"] = str(record.get("SyncToken", ""))
    return live


def xero_live(sandboxes: Sandboxes) -> dict[str, str]:
    """Xero's live (not deleted) ACCREC invoices and credit notes dated from the start date: id -> stamp."""
    live = {}
    for collection, kind, field in (
        ("Invoices", "ACCREC", "InvoiceID"),
        ("CreditNotes", "ACCRECCREDIT", "CreditNoteID"),
    ):
        for record in sandboxes.xero.list_records(AU_TENANT_ID, collection):
            when = xero_instant(record.get("Date"))
            issued = when.date().isoformat() if when else ""
            if record.get("Type") != kind or record.get("Status") == "DELETED" or issued < START:
                continue
            live[f"xero:{collection.removesuffix('s')}:{record[field]}"] = str(
                xero_stamp(record.get("UpdatedDateUTC"))
            )
    return live


def assert_qbo_in_step(sandboxes: Sandboxes, start: str = START) -> None:
    """The service holds every live QBO document at its latest version, and takes the others as deleted."""
    live, mine = qbo_live(sandboxes, start), held()
    kept = {
        i: d.version.split("@")[0]
        for i, d in mine.items()
        if d.status != "deleted" and d.issued and d.issued.isoformat() >= start
    }
    assert kept == live


def assert_xero_in_step(sandboxes: Sandboxes) -> None:
    live, mine = xero_live(sandboxes), held()
    kept = {
        i: d.version
        for i, d in mine.items()
        if d.status != "deleted" and d.issued and d.issued.isoformat() >= START
    }
    assert {i: v for i, v in kept.items()} == live


def margins_now(api: Api) -> dict[str, Any]:
    report: dict[str, Any] = ok(api.call("GET", "/margins"))
    return {
        "totals": report["totals"],
        "documents": sorted(
            (d["document_id"], d["status"], d["figures"]["revenue"]) for d in report["documents"]
        ),
    }


def clean_margins(api: Api) -> dict[str, Any]:
    """The margins of a clean single pull of the provider as it is now: every document read again from the
    start date (the cursor forgotten) over what is held."""
    sales_store.save_tracking(
        "org-a",
        "qbo" if status(api)["provider"] == "qbo" else "xero",
        enabled=True,
        start_date=START,
        home_currency=status(api)["home_currency"],
        reset_cursor=True,
    )
    api.pull_sales()
    return margins_now(api)


def xero_invoice(
    sandboxes: Sandboxes, number: str, day: str, qty: str = "1", status: str = "AUTHORISED"
) -> dict[str, Any]:
    return sandboxes.xero.add_record(
        AU_TENANT_ID,
        "Invoices",
        {
            "InvoiceNumber": number,
            "Type": "ACCREC",
            "Date": day,
            "Contact": {"ContactID": HARBOUR},
            "Status": status,
            "LineItems": [{"Description": "Widget", "Quantity": qty, "UnitAmount": "6.00"}],
        },
    )


def free_xero_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 2 make many calls: Partsemble's own pacing (60 a minute) is not what these probes test."""
    monkeypatch.setattr(DynamoRateBudget, "acquire", lambda self, key, **limits: 0.0)
    monkeypatch.setattr(DynamoRateBudget, "release", lambda self, key: None)


# ---- a crash part way -------------------------------------------------------------------------------------
def test_qbo_a_pull_that_dies_while_storing_its_documents_loses_and_doubles_nothing(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB fails on a later write of the batch: some documents are stored, the cursor is not moved; the
    next pull (after more edits in QBO) holds exactly QBO's documents, and the margins are a clean pull's."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    real = sales_store.put_documents

    def half_then_die(organisation_id: str, documents: dict[str, str]) -> None:
        items = list(documents.items())
        real(organisation_id, dict(items[: len(items) // 2]))
        raise RuntimeError("ProvisionedThroughputExceededException on a later write")

    with monkeypatch.context() as broken:
        broken.setattr(sales_store, "put_documents", half_then_die)
        api.pull_sales()
    view = status(api)
    assert view["cursor"] is None and not view["last_pull"]["ok"] and not view["pulling"]
    assert 0 < len(held()) < len(qbo_live(sandboxes))

    sandboxes.qbo.clock.advance(60)
    first = next(r for r in sandboxes.qbo.list_records(DEMO_REALM_ID, "Invoice") if r["DocNumber"] == "1001")
    sandboxes.qbo.edit_record(
        DEMO_REALM_ID, "Invoice", first["Id"], {"PrivateNote": "edited after the crash"}
    )
    api.pull_sales()
    assert status(api)["last_pull"]["ok"]
    assert_qbo_in_step(sandboxes)
    assert margins_now(api) == clean_margins(api)


def test_qbo_a_pull_that_dies_between_storing_and_moving_the_cursor_is_repeated_exactly(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    api.pull_sales()
    before = margins_now(api)
    sandboxes.qbo.clock.advance(120)
    added = qbo_invoice(sandboxes, "C-1", "2026-11-03", 2)
    gone = next(r for r in sandboxes.qbo.list_records(DEMO_REALM_ID, "Invoice") if r["DocNumber"] == "1002")
    sandboxes.qbo.delete_record(DEMO_REALM_ID, "Invoice", gone["Id"])

    def die(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("the function was killed")

    with monkeypatch.context() as broken:
        broken.setattr(sales_store, "advance_cursor", die)
        with pytest.raises(RuntimeError):
            sales.pull_changes("org-a", "qbo", now=datetime.now(UTC))
    # the lease outlives its holder, then the next pull reads the same changes again
    sales.pull_changes("org-a", "qbo", now=datetime.now(UTC) + timedelta(seconds=sales.LEASE_SECONDS + 1))
    assert_qbo_in_step(sandboxes)
    after = margins_now(api)
    assert after != before and f"qbo:{DEMO_REALM_ID}:Invoice:{added['Id']}" in dict.fromkeys(
        d[0] for d in after["documents"]
    )
    assert after == clean_margins(api)


# ---- a large first pull while the provider changes between its messages -----------------------------------
def test_qbo_large_first_pull_across_messages_with_edits_voids_and_deletes_between_them(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    qbo = sandboxes.qbo
    monkeypatch.setattr(qbo_api, "PAGE", 2)
    monkeypatch.setattr(sales, "PART_PAGES", 1)
    mine = []
    for n in range(6):
        qbo.clock.advance(1)
        mine.append(qbo_invoice(sandboxes, f"L{n}", "2026-11-02", 1))
    qbo.clock.advance(3600)
    track(api, "qbo")
    assert api.call("POST", "/sales/pull").status == 202
    poller = Poller(aws)
    step = 0
    while poller.poll_once().received:
        step += 1
        qbo.clock.advance(30)
        if step == 2:  # read already: edited (its stamp moves past every page), then voided
            qbo.edit_record(DEMO_REALM_ID, "Invoice", mine[0]["Id"], {"PrivateNote": "re-sent"})
        if step == 3:
            qbo.void_record(DEMO_REALM_ID, "Invoice", mine[1]["Id"])
        if step == 4:  # one read already, one not yet: deleted
            qbo.delete_record(DEMO_REALM_ID, "Invoice", mine[2]["Id"])
            qbo.delete_record(DEMO_REALM_ID, "Invoice", mine[5]["Id"])
            qbo_invoice(sandboxes, "L-new", "2026-11-03", 4)
        assert step < 60
    view = status(api)
    assert view["last_pull"]["ok"] and not view["pulling"] and view["cursor"]
    qbo.clock.advance(60)
    api.pull_sales()  # the next (change data capture) pull brings whatever changed while the first ran
    assert_qbo_in_step(sandboxes)
    assert margins_now(api) == clean_margins(api)


def test_xero_large_first_pull_across_messages_with_edits_voids_and_deletes_between_them(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    xero = sandboxes.xero
    monkeypatch.setattr(xero_api, "PAGE", 2)
    monkeypatch.setattr(sales, "PART_PAGES", 1)
    free_xero_budget(monkeypatch)
    mine = []
    for n in range(6):
        xero.clock.advance(1)
        # L2 and L5 drafts: Xero deletes only a draft (or one awaiting approval), an approved one is voided
        mine.append(
            xero_invoice(sandboxes, f"L{n}", "2026-11-02", status="DRAFT" if n in (2, 5) else "AUTHORISED")
        )
    xero.clock.advance(3600)
    track(api, "xero")
    assert api.call("POST", "/sales/pull").status == 202
    poller = Poller(aws)
    step = 0
    while poller.poll_once().received:
        step += 1
        xero.clock.advance(30)
        if step == 2:
            xero.edit_record(AU_TENANT_ID, "Invoices", mine[0]["InvoiceID"], {"Reference": "re-sent"})
        if step == 3:
            xero.void_record(AU_TENANT_ID, "Invoices", mine[1]["InvoiceID"])
        if step == 4:
            xero.delete_record(AU_TENANT_ID, "Invoices", mine[2]["InvoiceID"])
            xero.delete_record(AU_TENANT_ID, "Invoices", mine[5]["InvoiceID"])
            xero_invoice(sandboxes, "L-new", "2026-11-03", "4")
        assert step < 60
    view = status(api)
    assert view["last_pull"]["ok"] and not view["pulling"] and view["cursor"]
    xero.clock.advance(60)
    api.pull_sales()
    assert_xero_in_step(sandboxes)
    assert margins_now(api) == clean_margins(api)


# ---- QBO refund receipts -----------------------------------------------------------------------------------
def test_qbo_a_refund_receipt_is_pulled_like_the_other_sales_documents(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A RefundReceipt gives a customer's money back for goods returned: QBO restocks its units and posts it
    as the reverse of a sale. It is a sales document the service must hold, or the margins keep the cost and
    the revenue of a sale that was undone."""
    connect(api, sandboxes, "qbo")
    track(api, "qbo")
    refund = sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "RefundReceipt",
        {
            "DocNumber": "RR-1",
            "TxnDate": "2026-11-04",
            "CustomerRef": {"value": HARBOR},
            "DepositToAccountRef": {"value": CHECKING},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": "9.00",
                    "SalesItemLineDetail": {"ItemRef": {"value": BRACKET_20}, "Qty": 2, "UnitPrice": "4.50"},
                }
            ],
        },
    )
    api.pull_sales()
    assert f"qbo:{DEMO_REALM_ID}:RefundReceipt:{refund['Id']}" in held()
    assert_qbo_in_step(sandboxes)
    documents = ok(api.call("GET", "/margins"))["documents"]
    (refunded,) = [d for d in documents if d["number"] == "RR-1"]
    assert refunded["kind"] == "credit_note"  # margined as a credit, like the credit memo CM-3001


# ---- same-second stamps at page boundaries -----------------------------------------------------------------
@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_documents_stamped_in_one_second_across_page_and_part_boundaries_are_each_read_once(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    """Seven documents share one second; pages of 2 and one page per message put that second across
    several pages and several parts, and one of them is edited (into a later second) between two parts."""
    if provider == "qbo":
        connect(api, sandboxes, "qbo")
        monkeypatch.setattr(qbo_api, "PAGE", 2)
        clock = sandboxes.qbo.clock
        mine = [qbo_invoice(sandboxes, f"S{n}", "2026-11-02", n + 1) for n in range(7)]
    else:
        connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
        monkeypatch.setattr(xero_api, "PAGE", 2)
        free_xero_budget(monkeypatch)
        clock = sandboxes.xero.clock
        mine = [xero_invoice(sandboxes, f"S{n}", "2026-11-02", str(n + 1)) for n in range(7)]
    monkeypatch.setattr(sales, "PART_PAGES", 1)
    clock.advance(3600)
    track(api, provider)
    assert api.call("POST", "/sales/pull").status == 202
    poller = Poller(aws)
    step = 0
    while poller.poll_once().received:
        step += 1
        if step == 3:
            clock.advance(1)
            if provider == "qbo":
                sandboxes.qbo.edit_record(DEMO_REALM_ID, "Invoice", mine[1]["Id"], {"PrivateNote": "again"})
            else:
                sandboxes.xero.edit_record(
                    AU_TENANT_ID, "Invoices", mine[1]["InvoiceID"], {"Reference": "again"}
                )
        assert step < 60
    assert status(api)["last_pull"]["ok"]
    if provider == "qbo":
        assert_qbo_in_step(sandboxes)
    else:
        assert_xero_in_step(sandboxes)
    assert margins_now(api) == clean_margins(api)


# ---- provider faults during a pull -------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["429", "timeout"])  # a 503: test_sales_pull.py
def test_qbo_a_fault_on_a_later_part_is_shown_and_the_pull_goes_on_from_its_place(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    connect(api, sandboxes, "qbo")
    monkeypatch.setattr(qbo_api, "PAGE", 2)
    monkeypatch.setattr(sales, "PART_PAGES", 1)
    track(api, "qbo")
    assert api.call("POST", "/sales/pull").status == 202
    poller = Poller(aws)
    assert poller.poll_once().received == 1
    sandboxes.qbo.inject(fault, path_prefix=QBO_API + "query", count=http.MAX_ATTEMPTS)
    assert poller.poll_once().received == 1  # the next part meets the fault every time
    view = status(api)
    assert view["cursor"] is None and not view["last_pull"]["ok"] and view["last_pull"]["error"]
    if fault == "429":  # queued again by itself, for when the budget allows: it comes back then
        assert view["pulling"] and not view["stalled"]
        job = ConnectionJob(organisation_id="org-a", provider="qbo", reason="continue")
        assert sales.pull_job(job, now=datetime.now(UTC)).pulled == 1
    else:  # waits for the next pull, and says so
        assert not view["pulling"] and view["stalled"]
        assert api.call("POST", "/sales/pull").status == 202
    sandboxes.qbo.clock.advance(900)
    poller.drain()
    view = status(api)
    assert view["last_pull"]["ok"] and not view["pulling"] and not view["stalled"] and view["cursor"]
    assert_qbo_in_step(sandboxes)
    assert view["last_pull"]["stored"] == len(held())


# ---- the books' hour after a pull that did not read everything ---------------------------------------------
def _cogs_exports(api: Api) -> list[dict[str, Any]]:
    return [e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] in ("cogs", "trueup")]


def _qbo_journal_amounts(api: Api, sandboxes: Sandboxes, account: str) -> dict[str, Decimal]:
    """Per journal date, what our posted exports moved on ``account`` (debits positive)."""
    posted = {e["document_id"] for e in ok(api.call("GET", "/exports"))["items"] if e["status"] == "posted"}
    moved: dict[str, Decimal] = {}
    for journal in sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry"):
        if journal["Id"] not in posted:
            continue
        for line in journal["Line"]:
            detail = line["JournalEntryLineDetail"]
            if detail["AccountRef"]["value"] == account:
                sign = 1 if detail["PostingType"] == "Debit" else -1
                moved[journal["TxnDate"]] = moved.get(journal["TxnDate"], D(0)) + sign * D(
                    str(line["Amount"])
                )
    return moved


def test_qbo_a_day_is_not_closed_on_the_documents_of_a_pull_that_failed(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """The hourly message pulls, then closes the business days that ended (plus 6 hours' grace for late
    documents). When its pull fails (QuickBooks 503), the invoices entered in QuickBooks on that day since the
    last pull are not read: the day must not be closed on the documents held, or its cost of goods sold is
    posted short and only a true-up dated days later corrects it."""
    from tests.integration.test_exports import setup_qbo

    bracket = setup_qbo(api, sandboxes)["bracket"]
    ok(
        api.call(
            "POST",
            "/receipts",
            json_body={
                "receipt_id": "R-1",
                "received_at": "2026-11-02T09:00:00-08:00",
                "lines": [{"product_id": bracket, "quantity": "100", "unit_cost": "1.25"}],
            },
        ),
        201,
    )
    body = {"enabled": True, "start_date": "2026-11-05", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))
    qbo_invoice(sandboxes, "D-1", "2026-11-10", 2)
    api.pull_sales()
    sandboxes.qbo.clock.advance(600)
    qbo_invoice(sandboxes, "D-2", "2026-11-10", 3)  # entered on the day, before it closed
    Poller(aws).drain()

    # 10 Nov ends 08:00 UTC; with the grace the hourly message of 15:00 UTC closes it, but its pull fails
    sandboxes.qbo.inject("503", path_prefix=QBO_API + "cdc", count=http.MAX_ATTEMPTS)
    hourly = ConnectionJob(organisation_id="org-a", provider="qbo")
    report = sales.pull_job(hourly, now=datetime(2026, 11, 11, 15, tzinfo=UTC))
    assert report.failed == 1
    assert not status(api)["last_pull"]["ok"]
    Poller(aws).drain()
    # the next hour's pull succeeds: the books then hold 5 brackets' cost for 10 Nov
    sales.pull_job(hourly, now=datetime(2026, 11, 11, 16, tzinfo=UTC))
    Poller(aws).drain()
    sales.pull_job(hourly, now=datetime(2026, 11, 12, 16, tzinfo=UTC))
    Poller(aws).drain()
    cogs = _qbo_journal_amounts(api, sandboxes, "2")

    assert sum(cogs.values()) == D("6.25")  # the books equal the ledger in total...
    # ...and the day's journal holds the day's cost: no true-up for documents that were there all along
    assert cogs == {"2026-11-10": D("6.25")}, cogs
    assert [e["kind"] for e in _cogs_exports(api)] == ["cogs"]


# ---- the same message twice, at once -----------------------------------------------------------------------
def test_qbo_the_hourly_message_delivered_twice_at_once_pulls_once_and_posts_each_day_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.integration.test_exports import setup_qbo

    bracket = setup_qbo(api, sandboxes)["bracket"]
    receipt = {"product_id": bracket, "quantity": "100", "unit_cost": "1.25"}
    body = {"receipt_id": "R-1", "received_at": "2026-11-02T09:00:00-08:00", "lines": [receipt]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    tracking = {"enabled": True, "start_date": "2026-11-05", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    for n, (day, qty) in enumerate([("2026-11-10", 2), ("2026-11-10", 3), ("2026-11-11", 4)]):
        sandboxes.qbo.clock.advance(1)
        qbo_invoice(sandboxes, f"T-{n}", day, qty)
    Poller(aws).drain()  # the receipt's journal
    hourly = ConnectionJob(organisation_id="org-a", provider="qbo")
    when = datetime(2026, 11, 12, 16, tzinfo=UTC)  # both days closed
    with ThreadPoolExecutor(2) as both:
        reports = list(both.map(lambda _: sales.pull_job(hourly, now=when), range(2)))
    assert sorted(r.pulled for r in reports) in ([0, 1], [1, 1])
    assert sum(r.books_exports_queued for r in reports) == 2  # one COGS export per day, whoever closed it
    Poller(aws).drain()
    assert_qbo_in_step(sandboxes, "2026-11-05")
    cogs = _qbo_journal_amounts(api, sandboxes, "2")
    assert cogs == {"2026-11-10": D("6.25"), "2026-11-11": D("5.00")}
    numbers = [j.get("DocNumber") for j in sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")]
    assert len(numbers) == len(set(numbers))  # no journal twice


# ---- "pull now" while a scheduled pull is running ----------------------------------------------------------
def test_qbo_pull_now_between_the_parts_of_a_scheduled_pull_reads_what_was_entered_before_it(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hourly pull (a large one, going on across messages) has read the invoices; the person enters one
    more and presses "pull now", which is accepted (202) between two parts. When the status stops saying
    pulling, with a last pull that ended after the request, the invoice entered before it is held."""
    connect(api, sandboxes, "qbo")
    monkeypatch.setattr(qbo_api, "PAGE", 2)
    monkeypatch.setattr(sales, "PART_PAGES", 1)
    track(api, "qbo")
    hourly = ConnectionJob(organisation_id="org-a", provider="qbo")
    assert sales.pull_job(hourly, now=datetime.now(UTC)).continued == 1  # part 1; the next is queued
    poller = Poller(aws)
    assert poller.poll_once().received == 1  # part 2: into the sales receipts
    assert poller.poll_once().received == 1  # part 3
    sandboxes.qbo.clock.advance(60)
    late = qbo_invoice(sandboxes, "PN-1", "2026-11-20", 1)
    answer = api.call("POST", "/sales/pull")
    assert answer.status == 202, answer.body
    poller.drain()
    view = status(api)
    assert not view["pulling"] and view["last_pull"]["ok"]
    assert view["last_pull"]["at"] >= view["requested_at"]
    assert f"qbo:{DEMO_REALM_ID}:Invoice:{late['Id']}" in held()
    assert_qbo_in_step(sandboxes)
