"""The books rule over HTTP against the sandboxes: what reaches the provider's general ledger equals the
stock ledger per account to the cent, through receipts at fractions of a cent, a day's cost of goods sold,
a back-dated receipt that re-costs what was already posted, and events worth nothing."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import DEMO_REALM_ID, HARBOR
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from shared import aws as shared_aws
from shared.errors import InvalidFields
from shared.providers import http
from shared.services import books, exports, reconciliation, sessions
from shared.store import books as books_store
from shared.store.rate_budget import DynamoRateBudget
from tests.conftest import Api, Sandboxes
from tests.integration.test_exports import ok, setup_qbo, setup_xero

D = Decimal


class Minutes:
    """Xero allows 60 calls a minute: the rate budget's clock and the sandbox's move on a minute at a time,
    and by what the service waits (QuickBooks' pacing, a second at most), never by the machine's speed."""

    def __init__(self, sandboxes: Sandboxes) -> None:
        self.now, self.sandboxes = time.time(), sandboxes

    def next(self) -> None:
        self.wait(61)

    def wait(self, seconds: float) -> None:
        self.now += seconds
        self.sandboxes.xero.clock.advance(seconds)


@pytest.fixture(name="minutes")
def minutes_clock(monkeypatch: pytest.MonkeyPatch, sandboxes: Sandboxes) -> Minutes:
    clock = Minutes(sandboxes)
    monkeypatch.setattr(http, "sleep", clock.wait)
    monkeypatch.setattr(sessions, "DynamoRateBudget", lambda: DynamoRateBudget(clock=lambda: clock.now))
    return clock


def close_days(*, now: datetime) -> int:
    """What the hourly message of org-a's connection does to its books (``sales.pull_job``): how many
    exports it queued."""
    connection = sessions.in_use("org-a")
    assert connection is not None
    return books.close_days_of(connection, now)


def daily_check(*, now: datetime) -> bool:
    """The daily check the hourly message of org-a's connection runs: whether its books are out of balance."""
    connection = sessions.in_use("org-a")
    assert connection is not None
    return reconciliation.check_once_a_day(connection, now)


def receive(api: Api, receipt_id: str, at: str, product_id: str, quantity: str, unit_cost: str) -> None:
    line = {"product_id": product_id, "quantity": quantity, "unit_cost": unit_cost}
    body = {"receipt_id": receipt_id, "received_at": at, "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)


def xero_balances(api: Api, sandboxes: Sandboxes, by: date | None = None) -> dict[str, Decimal]:
    """Per account code, the sum of every manual journal our exports posted (dated ``by`` or before)."""
    posted = {e["document_id"] for e in ok(api.call("GET", "/exports"))["items"] if e["status"] == "posted"}
    balances: dict[str, Decimal] = defaultdict(Decimal)
    for journal in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals"):
        milliseconds = int(str(journal["Date"]).removeprefix("/Date(").split("+")[0])
        dated = datetime.fromtimestamp(milliseconds / 1000, UTC).date()
        if journal["ManualJournalID"] in posted and (by is None or dated <= by):
            for line in journal["JournalLines"]:
                balances[line["AccountCode"]] += D(str(line["LineAmount"]))
    return {code: amount for code, amount in balances.items() if amount}


def statuses(api: Api) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for export in ok(api.call("GET", "/exports"))["items"]:
        found[export["kind"]].append(export["status"])
    return dict(found)


def test_xero_books_follow_sales_and_re_costing_to_the_cent(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    bolt = setup_xero(api, sandboxes)["bolt"]  # BOLT-M8; the demo tenant's time zone is Australia/Sydney
    receive(api, "R-1", "2026-11-02T09:00:00Z", bolt, "3", "3.335")  # 10.005
    sell_bolts(sandboxes, "INV-1101", "2026-11-10", "2")
    ok(
        api.call(
            "PUT",
            "/integrations/xero/sales-tracking",
            json_body={"enabled": True, "start_date": "2026-11-01"},
        )
    )
    api.pull_sales()
    minutes.next()
    Poller(aws).drain()
    assert xero_balances(api, sandboxes) == {"630": D("10.01"), "820": D("-10.01")}

    # 10 Nov ends in Sydney at 13:00 UTC; six hours' grace for late documents, then its COGS is queued once
    assert close_days(now=datetime(2026, 11, 10, 18, 59, tzinfo=UTC)) == 0
    assert close_days(now=datetime(2026, 11, 10, 19, tzinfo=UTC)) == 1
    assert close_days(now=datetime(2026, 11, 11, 8, tzinfo=UTC)) == 0
    Poller(aws).drain()
    # 2 of 3 sold: COGS 6.67, and inventory keeps 3.335, which the books hold as 3.34
    assert xero_balances(api, sandboxes) == {"630": D("3.34"), "820": D("-10.01"), "310": D("6.67")}
    cogs = next(e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "cogs")
    journal = next(
        j
        for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
        if j["ManualJournalID"] == cogs["document_id"]
    )
    assert journal["Date"] == "/Date(1794268800000+0000)/"  # 10 Nov 2026: the day of the sales

    # a receipt back-dated before the sale: the sale now took the 1.00 unit first, so its COGS is 4.335
    receive(api, "R-0", "2026-11-01T09:00:00Z", bolt, "1", "1.00")
    minutes.next()
    Poller(aws).drain()
    assert statuses(api) == {"receipt": ["posted"] * 2, "cogs": ["posted"], "trueup": ["posted"]}
    # inventory: 2 left at 3.335 = 6.67; COGS 4.335 -> 4.34; supplier total 11.005 -> 11.01
    assert xero_balances(api, sandboxes) == {"630": D("6.67"), "820": D("-11.01"), "310": D("4.34")}
    trueup = next(e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup")
    corrected = next(
        j
        for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
        if j["ManualJournalID"] == trueup["document_id"]
    )
    assert cogs["export_id"] in corrected["Narration"]  # it names the export it corrects
    assert {line["AccountCode"]: D(str(line["LineAmount"])) for line in corrected["JournalLines"]} == {
        "310": D("-2.33"),
        "630": D("2.33"),
    }

    # nothing more to correct: the scheduled pass queues nothing
    assert close_days(now=datetime(2026, 11, 12, 7, tzinfo=UTC)) == 0

    # the 10 Nov sales' cost is posted: a start date past that day would take it back into stock the
    # customer has, so it is refused naming the field; that day itself or an earlier one is taken
    def track_from(start: str) -> Any:
        body = {"enabled": True, "start_date": start}
        return api.call("PUT", "/integrations/xero/sales-tracking", json_body=body)

    later = track_from("2026-11-11")
    assert later.status == 400 and later.json()["details"][0]["field"] == "start_date", later.body
    assert "2026-11-10" in later.json()["details"][0]["problem"]
    for start in ("2026-11-10", "2026-10-01"):
        assert track_from(start).status == 200
    assert close_days(now=datetime(2026, 11, 12, 8, tzinfo=UTC)) == 0
    assert xero_balances(api, sandboxes) == {"630": D("6.67"), "820": D("-11.01"), "310": D("4.34")}


def test_a_free_receipt_is_skipped_not_failed(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    bolt = setup_xero(api, sandboxes)["bolt"]
    receive(api, "FREE", "2026-11-02T09:00:00Z", bolt, "5", "0")
    Poller(aws).drain()
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "skipped" and "nothing to post" in export["last_error"]
    assert xero_balances(api, sandboxes) == {}
    for later in ("", "?post_on=2026-11-03"):  # a retry, or a later date, has nothing to post either
        retried = api.call("POST", f"/exports/{export['export_id']}/retry{later}")
        assert retried.status == 409 and "had nothing to post" in retried.json()["message"], retried.body


def test_a_retry_queued_is_answered_as_queued_whatever_the_store_does_next(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A retry has changed the export once its one write is made: a read failing after it must not answer
    503 "nothing was changed" (the person's next retry would then be refused as already under way)."""
    bolt = setup_xero(api, sandboxes)["bolt"]
    sandboxes.xero.set_lock_dates(AU_TENANT_ID, period_lock_date="2026-11-06")
    receive(api, "R-1", "2026-11-02T09:00:00Z", bolt, "5", "1")
    Poller(aws).drain()
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "failed" and "lock date" in export["last_error"]
    sandboxes.xero.set_lock_dates(AU_TENANT_ID)
    client = shared_aws.table().meta.client
    written: list[str] = []

    def after_the_write(**_: Any) -> None:
        if written:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "GetItem")

    def wrote(**_: Any) -> None:
        written.append("requeue")

    client.meta.events.register("after-call.dynamodb.UpdateItem", wrote)
    client.meta.events.register("before-call.dynamodb.GetItem", after_the_write)
    try:
        retried = api.call("POST", f"/exports/{export['export_id']}/retry")
    finally:
        client.meta.events.unregister("after-call.dynamodb.UpdateItem", wrote)
        client.meta.events.unregister("before-call.dynamodb.GetItem", after_the_write)
    assert retried.status == 200 and retried.json()["status"] == "pending", retried.body
    minutes.next()
    Poller(aws).drain()
    assert statuses(api)["receipt"] == ["posted"]
    assert xero_balances(api, sandboxes) == {"630": D("5.00"), "820": D("-5.00")}


def test_a_back_dated_build_that_would_empty_a_later_build_is_refused(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    parts = setup_xero(api, sandboxes)
    receive(api, "R", "2026-11-01T09:00:00Z", parts["blank"], "10", "1")

    def build(build_id: str, day: int) -> Any:
        return api.call(
            "POST",
            "/builds",
            json_body={
                "build_id": build_id,
                "product_id": parts["bracket"],
                "quantity": "10",
                "built_at": f"2026-11-{day:02d}T09:00:00Z",
                "components": [{"product_id": parts["blank"], "quantity_per_unit": "1"}],
            },
        )

    ok(build("B2", 3), 201)
    refused = build("B1", 2)
    assert refused.status == 409, refused.body
    body = refused.json()
    assert "B2" in body["message"] and body["later_records"][0]["document_id"] == "B2"
    assert [b["build"]["build_id"] for b in ok(api.call("GET", "/builds"))["items"]] == ["B2"]


def reconciled(api: Api, as_of: str | None = None) -> tuple[str, dict[str, dict[str, Any]]]:
    path = "/reconciliation" + (f"?as_of={as_of}" if as_of else "")
    answer = ok(api.call("GET", path))
    return answer["status"], {a["code"]: a for a in answer["accounts"]}


def test_xero_reconciliation_balances_and_explains_what_is_not_posted_yet(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    parts = setup_xero(api, sandboxes)
    receive(api, "R-1", "2026-11-02T09:00:00Z", parts["bolt"], "4", "0.125")
    receive(api, "R-2", "2026-11-03T09:00:00Z", parts["bolt"], "1", "0.125")
    minutes.next()
    Poller(aws).drain()
    minutes.next()
    status, accounts = reconciled(api)
    assert status == "balanced", accounts
    assert [(D(accounts[c]["provider_balance"]), D(accounts[c]["subledger"])) for c in ("630", "820")] == [
        (D("0.63"), D("0.63")),
        (D("-0.63"), D("-0.63")),
    ]  # 5 x 0.125 = 0.625, posted as 0.50 then 0.13
    assert all(not a["reasons"] and D(a["unexplained"]) == 0 for a in accounts.values())

    # as it was on 2 Nov: only the first receipt
    minutes.next()
    status, then = reconciled(api, "2026-11-02")
    assert status == "balanced" and D(then["630"]["provider_balance"]) == D("0.50")

    # a receipt whose export has not run yet: the difference is named, not unexplained
    receive(api, "R-3", "2026-11-04T09:00:00Z", parts["bolt"], "2", "1.005")
    minutes.next()
    status, accounts = reconciled(api)
    assert status == "explained"
    (reason,) = accounts["630"]["reasons"]
    assert reason["kind"] == "not_exported" and "receipt R-3" in reason["note"]
    assert D(accounts["630"]["difference"]) == D("-2.01") and D(accounts["630"]["unexplained"]) == 0


def test_the_daily_check_raises_a_discrepancy_once_a_day(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    parts = setup_xero(api, sandboxes)
    receive(api, "R-1", "2026-11-02T09:00:00Z", parts["bolt"], "10", "1.00")
    minutes.next()
    Poller(aws).drain()
    today = datetime.now(UTC)
    assert daily_check(now=today) == 0
    sandboxes.xero.add_record(  # someone writes stock off by hand in Xero
        AU_TENANT_ID,
        "ManualJournals",
        {
            "Narration": "stock count",
            "Date": "2026-11-05",
            "Status": "POSTED",
            "JournalLines": [
                {"AccountCode": "630", "LineAmount": "-3.00"},
                {"AccountCode": "480", "LineAmount": "3.00"},
            ],
        },
    )
    assert daily_check(now=today) == 0  # already checked today
    minutes.next()
    assert daily_check(now=today + timedelta(days=1)) == 1
    minutes.next()
    status, accounts = reconciled(api)
    assert status == "discrepancy"
    (reason,) = accounts["630"]["reasons"]
    assert (reason["kind"], D(reason["amount"])) == ("others_entries", D("-3.00"))


def qbo_balances(api: Api, sandboxes: Sandboxes) -> dict[str, Decimal]:
    """Per QBO account id, the sum of every journal entry our exports posted (debits positive)."""
    posted = {e["document_id"] for e in ok(api.call("GET", "/exports"))["items"] if e["status"] == "posted"}
    balances: dict[str, Decimal] = defaultdict(Decimal)
    for journal in sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry"):
        if journal["Id"] in posted:
            for line in journal["Line"]:
                detail = line["JournalEntryLineDetail"]
                sign = 1 if detail["PostingType"] == "Debit" else -1
                balances[detail["AccountRef"]["value"]] += sign * D(str(line["Amount"]))
    return {account: amount for account, amount in balances.items() if amount}


def test_qbo_journal_books_follow_a_sale_edited_after_its_day_was_posted(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    bracket = setup_qbo(api, sandboxes)[
        "bracket"
    ]  # item 5, Wall Bracket 20mm; the company is on Pacific time
    receive(api, "R-1", "2026-11-02T09:00:00-08:00", bracket, "3", "0.125")  # 0.375
    receive(api, "R-2", "2026-11-02T10:00:00-08:00", bracket, "3", "0.333")  # 0.999
    qbo = sandboxes.qbo
    sale = qbo.create_record(
        DEMO_REALM_ID,
        "Invoice",
        {
            "DocNumber": "B-1",
            "TxnDate": "2026-11-10",
            "CustomerRef": {"value": HARBOR},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "5"}, "Qty": 4, "UnitPrice": "4.50"},
                }
            ],
        },
    )
    body = {"enabled": True, "start_date": "2026-11-01", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))
    api.pull_sales()
    assert close_days(now=datetime(2026, 11, 11, 15, tzinfo=UTC)) == 1  # 10 Nov ended 08:00 UTC
    Poller(aws).drain()
    # receipts 0.375 + 0.999 = 1.374; the sale takes 3 x 0.125 + 1 x 0.333 = 0.708, 0.666 left: rounded
    # alone, 0.71 + 0.67 would exceed the supplier total 1.37, so inventory (nearer its half cent) holds 0.66
    assert qbo_balances(api, sandboxes) == {"1": D("0.66"), "5": D("-1.37"), "2": D("0.71")}

    # a late edit in QBO: 2 units only. The day's COGS becomes 0.25; a true-up corrects it, never an edit
    qbo.clock.advance(60)
    qbo.edit_record(
        DEMO_REALM_ID,
        "Invoice",
        sale["Id"],
        {
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "5"}, "Qty": 2, "UnitPrice": "4.50"},
                }
            ]
        },
    )
    api.pull_sales()
    assert close_days(now=datetime(2026, 11, 12, 15, tzinfo=UTC)) == 1  # the true-up
    Poller(aws).drain()
    assert statuses(api)["trueup"] == ["posted"]
    # inventory 1.124 (1.12), COGS 0.25, supplier total 1.374 (1.37)
    assert qbo_balances(api, sandboxes) == {"1": D("1.12"), "5": D("-1.37"), "2": D("0.25")}
    minutes.next()
    _, accounts = reconciled(api)
    books_accounts = {a["account_id"]: a for a in accounts.values() if a["account_id"] in ("1", "2", "5")}
    assert {a: D(x["posted"]) for a, x in books_accounts.items()} == {
        a: D(x["subledger"]) for a, x in books_accounts.items()
    }
    assert all(D(a["unexplained"]) == 0 for a in accounts.values()), accounts


def sell_bolts(sandboxes: Sandboxes, number: str, day: str, quantity: str, *, credit: bool = False) -> None:
    """An approved invoice (or, with ``credit``, a credit note) to the demo customer for bolts at 20.00."""
    collection, number_field, kind = (
        ("CreditNotes", "CreditNoteNumber", "ACCRECCREDIT")
        if credit
        else ("Invoices", "InvoiceNumber", "ACCREC")
    )
    sandboxes.xero.add_record(
        AU_TENANT_ID,
        collection,
        {
            number_field: number,
            "Type": kind,
            "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "harbour")},
            "Date": day,
            "Status": "AUTHORISED",
            "LineItems": [
                {"ItemCode": "BOLT-M8", "Description": "Bolt", "Quantity": quantity, "UnitAmount": "20"}
            ],
        },
    )


def cogs_on_both_sides_of_the_year_start(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Xero's financial year starts on 16 November; R-1 (4 bolts at 2.50) received, and the COGS journals of
    10 November (2 sold) and 20 November (1 sold) posted."""
    sandboxes.xero.set_financial_year_end(AU_TENANT_ID, 11, 15)
    bolt = setup_xero(api, sandboxes)["bolt"]
    receive(api, "R-1", "2026-11-06T09:00:00Z", bolt, "4", "2.50")
    sell_bolts(sandboxes, "INV-LAST-YEAR", "2026-11-10", "2")
    sell_bolts(sandboxes, "INV-THIS-YEAR", "2026-11-20", "1")
    body = {"enabled": True, "start_date": "2026-11-05"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=body))
    api.pull_sales()
    minutes.next()
    assert close_days(now=datetime(2026, 11, 22, tzinfo=UTC)) == 2  # COGS of 10 and 20 November
    Poller(aws).drain()
    minutes.next()


def test_cost_of_goods_sold_is_reconciled_for_the_financial_year_as_the_trial_balance_reports_it(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Xero's trial balance reports income and expenses for the financial year to date; COGS posted in an
    earlier year sits in retained earnings, so it leaves Partsemble's figures too, and nothing is flagged."""
    cogs_on_both_sides_of_the_year_start(api, aws, sandboxes, minutes)
    assert xero_balances(api, sandboxes) == {"630": D("2.50"), "820": D("-10.00"), "310": D("7.50")}

    status, accounts = reconciled(api, "2026-11-30")
    assert status == "balanced", accounts
    cogs = accounts["310"]  # this year: only the 20 November sale; 5.00 went to retained earnings
    assert (D(cogs["provider_balance"]), D(cogs["posted"]), D(cogs["subledger"])) == (D("2.50"),) * 3
    assert (D(accounts["630"]["subledger"]), D(accounts["820"]["subledger"])) == (D("2.50"), D("-10.00"))

    minutes.next()
    status, before = reconciled(api, "2026-11-15")  # the last day of the earlier year: its COGS counts
    assert status == "balanced", before
    assert D(before["310"]["provider_balance"]) == D(before["310"]["subledger"]) == D("5.00")


def test_units_sold_without_stock_are_named_until_the_receipt_they_came_from_costs_them(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A sale of more than was in stock books cost of goods sold for what lots covered only: the books still
    equal the stock ledger, so the reconciliation names the units left without a cost; once the receipt they
    came from is recorded, dated before the sale, the true-up posts their cost and the note goes."""
    bolt = setup_xero(api, sandboxes)["bolt"]
    receive(api, "R-1", "2026-11-06T09:00:00Z", bolt, "4", "2.50")
    sell_bolts(sandboxes, "INV-SHORT", "2026-11-10", "6")
    body = {"enabled": True, "start_date": "2026-11-05"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=body))
    api.pull_sales()
    minutes.next()
    assert close_days(now=datetime(2026, 11, 12, tzinfo=UTC)) == 1
    Poller(aws).drain()
    minutes.next()
    assert xero_balances(api, sandboxes)["310"] == D("10.00")  # the 4 units the receipt covered
    answer = ok(api.call("GET", "/reconciliation"))
    assert answer["status"] == "balanced", answer
    (note,) = [n for n in answer["notes"] if n.startswith("Sold without stock")]
    assert "2 of BOLT-M8" in note and "the first on 2026-11-10" in note, note

    receive(api, "R-0", "2026-11-05T09:00:00Z", bolt, "2", "3.00")  # where the 2 units came from
    minutes.next()
    Poller(aws).drain()
    minutes.next()
    assert xero_balances(api, sandboxes)["310"] == D("16.00")  # 2 x 3.00 + 4 x 2.50
    answer = ok(api.call("GET", "/reconciliation"))
    assert answer["status"] == "balanced", answer
    assert not [n for n in answer["notes"] if n.startswith("Sold without stock")], answer["notes"]


def test_the_sold_without_stock_note_dates_units_from_the_first_sale_still_uncovered(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A credit that gives back every unit a sale left uncovered clears them; a later sale short of stock
    is then the first the note names, not the one the credit undid."""
    bolt = setup_xero(api, sandboxes)["bolt"]
    receive(api, "R-1", "2026-11-06T09:00:00Z", bolt, "4", "2.50")
    sell_bolts(sandboxes, "INV-SHORT", "2026-11-10", "6")  # 2 without stock
    sell_bolts(sandboxes, "CN-SHORT", "2026-11-11", "2", credit=True)
    # the credit undid the 2 no lot covered (no stock comes back with them): all 3 later ones are without
    sell_bolts(sandboxes, "INV-LATER", "2026-11-13", "3")
    body = {"enabled": True, "start_date": "2026-11-05"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=body))
    api.pull_sales()
    answer = ok(api.call("GET", "/reconciliation"))
    (note,) = [n for n in answer["notes"] if n.startswith("Sold without stock")]
    assert "3 of BOLT-M8" in note and "the first on 2026-11-13" in note, note


def test_a_products_lots_are_what_is_left_after_the_sales_the_books_cost(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """GET /products/{id}/lots values what the inventory account holds: sales took from the lots FIFO, a
    credit gives units back to the lots its sale took them from; one that matched no sale is a lot of its
    own."""
    bolt = setup_xero(api, sandboxes)["bolt"]
    receive(api, "R-1", "2026-11-06T09:00:00Z", bolt, "5", "2.00")
    receive(api, "R-2", "2026-11-07T09:00:00Z", bolt, "5", "3.00")
    sell_bolts(sandboxes, "INV-SPARES", "2026-11-10", "6")
    ok(
        api.call(
            "PUT",
            "/integrations/xero/sales-tracking",
            json_body={"enabled": True, "start_date": "2026-11-05"},
        )
    )

    def lots() -> tuple[list[tuple[str, str, Decimal, Decimal]], Decimal]:
        """(source, document, quantity, value) per lot, and the books' raw materials account, once the
        day's cost of goods sold is posted."""
        minutes.next()  # a minute of its own: the rate budget
        api.pull_sales()
        minutes.next()
        close_days(now=datetime(2026, 11, 16, tzinfo=UTC))
        Poller(aws).drain()
        minutes.next()
        answer = ok(api.call("GET", f"/products/{bolt}/lots"))
        assert D(answer["value"]) == sum((D(lot["value"]) for lot in answer["lots"]), D(0))
        found = [
            (lot["source"], lot["document_id"], D(lot["quantity"]), D(lot["value"])) for lot in answer["lots"]
        ]
        assert D(answer["value"]) == xero_balances(api, sandboxes)["630"]
        return found, D(answer["on_hand"])

    assert lots() == ([("receipt", "R-2", 4, 12)], 4)  # 5 x 2.00 and 1 x 3.00 sold
    sell_bolts(sandboxes, "CN-1", "2026-11-12", "2", credit=True)  # back to the lots INV-SPARES took from
    assert lots() == ([("receipt", "R-1", 1, 2), ("receipt", "R-2", 5, 15)], 6)
    sandboxes.xero.add_record(
        AU_TENANT_ID,
        "CreditNotes",
        {
            "CreditNoteNumber": "CN-2",
            "Type": "ACCRECCREDIT",
            "Contact": {"ContactID": demo_id(AU_TENANT_ID, "contact", "kiwi")},  # who never bought a bolt
            "Date": "2026-11-13",
            "Status": "AUTHORISED",
            "LineItems": [
                {"ItemCode": "BOLT-M8", "Description": "Bolt", "Quantity": "1", "UnitAmount": "20"}
            ],
        },
    )
    found, on_hand = lots()
    assert on_hand == 7
    assert found[-1][0] == "credit" and found[-1][2:] == (1, 3), found  # at the latest lot's cost


def test_units_a_build_used_without_stock_are_named_until_the_receipt_they_came_from_costs_them(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A component sold (a spare part) before a build that uses it: the stored ledger holds no sales, so the
    build is recorded, and in the books the sale took the stock first. The build's lot is posted at what
    lots covered only: the books still equal the stock ledger, so the reconciliation names the units the
    build used without a cost, as it names units sold without stock, until their receipt is recorded."""
    parts = setup_xero(api, sandboxes)
    bolt = parts["bolt"]
    receive(api, "R-1", "2026-11-06T09:00:00Z", bolt, "5", "2.00")
    sell_bolts(sandboxes, "INV-SPARES", "2026-11-10", "4")
    body = {"enabled": True, "start_date": "2026-11-05"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=body))
    api.pull_sales()
    minutes.next()
    build = {
        "build_id": "B-SHORT",
        "product_id": parts["bracket"],
        "quantity": "1",
        "built_at": "2026-11-11T09:00:00Z",
        "components": [{"product_id": bolt, "quantity_per_unit": "3"}],
    }
    ok(api.call("POST", "/builds", json_body=build), 201)  # 5 bolts on the stored ledger, 1 after the sale
    assert close_days(now=datetime(2026, 11, 13, tzinfo=UTC)) >= 1
    Poller(aws).drain()
    minutes.next()
    assert xero_balances(api, sandboxes)["632"] == D("2.00")  # the one bolt a lot covered
    answer = ok(api.call("GET", "/reconciliation"))
    (note,) = [n for n in answer["notes"] if n.startswith("Built without stock")]
    assert "2 of BOLT-M8" in note and "the first on 2026-11-11" in note, note

    receive(api, "R-0", "2026-11-05T09:00:00Z", bolt, "2", "3.00")  # where the 2 units came from
    minutes.next()
    Poller(aws).drain()
    minutes.next()
    # the sale now takes R-0 first: the build 3 x 2.00
    assert xero_balances(api, sandboxes)["632"] == D("6.00")
    answer = ok(api.call("GET", "/reconciliation"))
    assert not [n for n in answer["notes"] if n.startswith("Built without stock")], answer["notes"]


def test_a_document_refused_for_a_locked_period_is_posted_on_a_later_day_a_person_chooses(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Xero refuses journals dated on or before its lock date; the export fails saying so, nothing is
    re-dated silently, and a retry with ``post_on`` posts it on that day, naming its own date."""
    bolt = setup_xero(api, sandboxes)["bolt"]
    sandboxes.xero.set_lock_dates(
        AU_TENANT_ID, period_lock_date="2026-11-05"
    )  # the accountant closed October
    receive(api, "R-LOCKED", "2026-11-03T09:00:00Z", bolt, "4", "2.50")
    minutes.next()
    Poller(aws).drain()
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "failed" and "lock date" in export["last_error"]
    retry = f"/exports/{export['export_id']}/retry"

    # no later than tomorrow where the organisation is: 20:00 UTC on 4 December is 5 December in Auckland
    tracking = {"enabled": True, "start_date": "2026-11-01", "time_zone": "Pacific/Auckland"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=tracking))
    evening = datetime(2026, 12, 4, 20, tzinfo=UTC)
    with pytest.raises(InvalidFields, match="no later than 2026-12-06"):
        exports.retry("org-a", export["export_id"], post_on=date(2026, 12, 7), now=evening)
    refused = api.call("POST", retry + "?post_on=2026-11-03")  # not after its own date
    assert refused.status == 400 and refused.json()["details"][0]["field"] == "query.post_on", refused.body
    ok(api.call("POST", retry + "?post_on=2026-11-06"))
    minutes.next()
    Poller(aws).drain()
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "posted"
    journal = next(
        j
        for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
        if j["ManualJournalID"] == export["document_id"]
    )
    assert journal["Date"] == "/Date(1793923200000+0000)/"  # 6 Nov 2026
    assert "of 2026-11-03; dated 2026-11-06 as that period is locked" in journal["Narration"]
    assert xero_balances(api, sandboxes) == {"630": D("10.00"), "820": D("-10.00")}

    minutes.next()
    status, accounts = reconciled(api)
    assert status == "balanced", accounts
    minutes.next()
    status, then = reconciled(api, "2026-11-04")  # received, but in the books only from 6 Nov: explained
    assert status == "explained", then
    (reason,) = then["630"]["reasons"]
    assert (reason["kind"], D(reason["amount"]), D(then["630"]["unexplained"])) == (
        "posted_later",
        D("-10.00"),
        0,
    )

    posted_again = api.call("POST", retry + "?post_on=2026-11-07")
    assert posted_again.status == 409  # posted: nothing to retry, and its date stays


def build_brackets(api: Api, parts: dict[str, str], build_id: str, day: int, quantity: str = "1") -> None:
    """Brackets from blanks, one blank each, on a day of November 2026."""
    body = {
        "build_id": build_id,
        "product_id": parts["bracket"],
        "quantity": quantity,
        "built_at": f"2026-11-{day:02d}T09:00:00Z",
        "components": [{"product_id": parts["blank"], "quantity_per_unit": "1"}],
    }
    ok(api.call("POST", "/builds", json_body=body), 201)


def reasons_of(account: dict[str, Any]) -> dict[str, Decimal]:
    found: dict[str, Decimal] = defaultdict(Decimal)
    for reason in account["reasons"]:
        found[reason["kind"]] += D(reason["amount"])
    return dict(found)


def test_a_past_date_names_the_true_up_found_now_that_corrects_it(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A build exported at 5.00 costs 10.00 once a receipt is back-dated before it. Until the true-up is
    planned, the reconciliation of a past date names it as due (the subledger of that date already holds
    the new cost), and the back-dated receipt as not exported yet."""
    parts = setup_xero(api, sandboxes)
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    build_brackets(api, parts, "B", 6, "5")
    minutes.next()
    Poller(aws).drain()
    assert xero_balances(api, sandboxes) == {"630": D("5.00"), "632": D("5.00"), "820": D("-10.00")}

    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")  # not exported yet
    minutes.next()
    status, accounts = reconciled(api, "2026-11-07")
    assert status == "explained", accounts
    assert reasons_of(accounts["632"]) == {"trueup_due": D("-5.00")}  # the build now holds 10.00
    assert reasons_of(accounts["630"]) == {"trueup_due": D("5.00"), "not_exported": D("-20.00")}
    assert reasons_of(accounts["820"]) == {"not_exported": D("20.00")}
    assert all(D(a["unexplained"]) == 0 for a in accounts.values()), accounts


def test_a_later_true_up_explains_only_what_it_corrects_of_exports_dated_by_then(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """One true-up (dated today) corrects a build of 6 November and one of 10 November by 5.00 each: as of
    7 November only the first build's 5.00 is corrected later; the second is not in that date's books."""
    parts = setup_xero(api, sandboxes)
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    build_brackets(api, parts, "B1", 6, "5")
    build_brackets(api, parts, "B2", 10, "5")
    minutes.next()
    Poller(aws).drain()
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")  # both builds now cost 10.00
    minutes.next()
    Poller(aws).drain()
    assert statuses(api)["trueup"] == ["posted"]
    assert xero_balances(api, sandboxes) == {"630": D("10.00"), "632": D("20.00"), "820": D("-30.00")}

    minutes.next()
    status, accounts = reconciled(api, "2026-11-07")
    assert status == "explained", accounts
    finished = accounts["632"]  # the first build, at 5.00 then, is worth 10.00 now
    assert (D(finished["provider_balance"]), D(finished["subledger"])) == (D("5.00"), D("10.00"))
    assert reasons_of(accounts["632"]) == {"corrected_later": D("-5.00")}  # the true-up adds 5.00 later
    assert reasons_of(accounts["630"]) == {"corrected_later": D("5.00")}
    assert all(D(a["unexplained"]) == 0 for a in accounts.values()), accounts


def test_a_true_up_of_more_exports_than_a_transaction_holds_names_each_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for two restated exports per transaction, a back-dated receipt re-costs three builds:
    each correction is posted once and remembered, so a later change of the fourth build names only it."""
    monkeypatch.setattr(books_store, "MAX_RESTATED", 2)
    parts = setup_xero(api, sandboxes)
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    for day in (6, 7, 8, 9):
        build_brackets(api, parts, f"B{day}", day)
    minutes.next()
    Poller(aws).drain()
    exported = {e["record_id"]: e["export_id"] for e in ok(api.call("GET", "/exports"))["items"]}

    def trueups() -> list[str]:
        ids = [e["document_id"] for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup"]
        journals = sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
        return [j["Narration"] for j in journals if j["ManualJournalID"] in ids]

    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "3", "2")  # B6, B7, B8 cost 2.00, not 1.00
    minutes.next()
    Poller(aws).drain()
    minutes.next()
    Poller(aws).drain()
    first = trueups()
    assert all(s == "posted" for s in statuses(api)["trueup"])
    for build in ("B6", "B7", "B8"):
        assert sum(exported[build] in n for n in first) == 1, (build, first)
    assert not any(exported["B9"] in n for n in first)
    assert xero_balances(api, sandboxes) == {"630": D("9.00"), "632": D("7.00"), "820": D("-16.00")}

    receive(api, "R-3", "2026-11-04T09:00:00Z", parts["blank"], "1", "4")  # now only B9 changes: 4.00
    minutes.next()
    Poller(aws).drain()
    minutes.next()
    Poller(aws).drain()
    (last,) = [n for n in trueups() if n not in first]
    assert exported["B9"] in last
    assert not any(exported[b] in last for b in ("B6", "B7", "B8")), last
    assert xero_balances(api, sandboxes) == {"630": D("10.00"), "632": D("10.00"), "820": D("-20.00")}
    minutes.next()
    status, accounts = reconciled(api)
    assert status == "balanced", accounts


def test_a_past_date_adds_up_the_cents_of_true_ups_that_each_correct_part_of_it(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A back-dated receipt re-costs eight builds by half a cent each; with room for two restated exports
    per transaction, four true-ups each correct one build of 6 November and one of 10 November. As of 7
    November, the four half cents corrected later are 0.02, not four roundings of a half cent up (0.04)."""
    monkeypatch.setattr(books_store, "MAX_RESTATED", 2)
    parts = setup_xero(api, sandboxes)
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "8", "1")
    for pairs in ("AB", "CD"):  # sorted by record id, each true-up restates one build of each day
        for pair in pairs:
            build_brackets(api, parts, f"{pair}1", 6)
            build_brackets(api, parts, f"{pair}2", 10)
        minutes.next()  # Xero's 60 calls a minute
        Poller(aws).drain()
    assert statuses(api)["build"] == ["posted"] * 8
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "8", "1.005")
    for _ in range(3):
        minutes.next()
        Poller(aws).drain()
    assert statuses(api)["trueup"] == ["posted"] * 4, statuses(api)
    assert xero_balances(api, sandboxes) == {"630": D("8.00"), "632": D("8.04"), "820": D("-16.04")}

    minutes.next()
    status, accounts = reconciled(api, "2026-11-07")
    assert status == "explained", accounts
    assert reasons_of(accounts["632"]) == {"corrected_later": D("-0.02")}, accounts["632"]
    assert reasons_of(accounts["630"]) == {"corrected_later": D("0.02")}, accounts["630"]
    assert all(D(a["unexplained"]) == 0 for a in accounts.values()), accounts


def test_a_retried_export_that_a_true_up_corrected_is_reconciled_on_an_earlier_date(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A build refused for a locked period is re-costed by a back-dated receipt (a true-up corrects it by
    1.00), then retried on today's values (a second true-up takes the 1.00 back). As of 7 November the build
    is in the provider at its value now: nothing is corrected later."""
    parts = setup_xero(api, sandboxes)
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    minutes.next()
    Poller(aws).drain()
    sandboxes.xero.set_lock_dates(AU_TENANT_ID, period_lock_date="2026-11-06")
    build_brackets(api, parts, "B", 6)
    minutes.next()
    Poller(aws).drain()
    (build,) = [e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "build"]
    assert build["status"] == "failed" and "lock date" in build["last_error"]
    sandboxes.xero.set_lock_dates(AU_TENANT_ID)
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")  # the build now costs 2.00
    minutes.next()
    Poller(aws).drain()
    assert statuses(api)["trueup"] == ["posted"]
    ok(api.call("POST", f"/exports/{build['export_id']}/retry"))
    # before the retry is planned: the build is not exported, and the next true-up takes the 1.00 back
    _, waiting = reconciled(api, "2026-11-07")
    assert all(D(a["unexplained"]) == 0 for a in waiting.values()), waiting
    assert "trueup_due" in {r["kind"] for r in waiting["632"]["reasons"]}, waiting["632"]
    minutes.next()
    Poller(aws).drain()
    assert xero_balances(api, sandboxes) == {"630": D("28.00"), "632": D("2.00"), "820": D("-30.00")}
    trueups = [e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup"]
    assert len(trueups) == 2 and all(e["status"] == "posted" for e in trueups)

    minutes.next()
    status, accounts = reconciled(api, "2026-11-07")
    assert all(D(a["unexplained"]) == 0 for a in accounts.values()), accounts
    assert status == "balanced", accounts


def test_thirds_of_a_cent_received_and_rejected_post_whole_cents_and_balance(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Thirds of a cent, a third rejected: the waste and the stock each posted in whole cents (0.33 and
    0.67 of 0.999999) and the books check finds every account agreeing."""
    bolt = setup_xero(api, sandboxes)["bolt"]
    line = {"product_id": bolt, "quantity": "3", "rejected": "1", "unit_cost": "0.333333"}
    body = {"receipt_id": "R-THIRDS", "received_at": "2026-11-02T09:00:00Z", "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    minutes.next()
    Poller(aws).drain()
    status, accounts = reconciled(api)
    assert status == "balanced", accounts
    assert (accounts["480"]["provider_balance"], accounts["630"]["provider_balance"]) == ("0.33", "0.67")


def test_what_the_company_held_before_partsembles_first_journal_is_its_opening_balance(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """QuickBooks' demo company holds balances in the mapped accounts from before Partsemble: a date before
    Partsemble's first journal (and the books before any export is posted) name them as opening balances, not
    as entries someone else made, so the check is not a discrepancy (nor a daily BooksOutOfBalance)."""
    parts = setup_qbo(api, sandboxes)
    minutes.next()
    status, accounts = reconciled(api, "2026-11-05")  # nothing posted yet
    held = {c: D(a["provider_balance"]) for c, a in accounts.items() if a["provider_balance"]}
    assert held and status == "explained", accounts
    receive(api, "R-1", "2026-11-10T09:00:00Z", parts["bolt"], "3", "1.005")
    minutes.next()
    Poller(aws).drain()
    minutes.next()
    for as_of in ("2026-11-05", "2026-11-30"):
        status, accounts = reconciled(api, as_of)
        assert status == "explained", (as_of, accounts)
        kinds = {r["kind"] for a in accounts.values() for r in a["reasons"]}
        assert "opening_balance" in kinds and "others_entries" not in kinds, (as_of, accounts)


def interleave_twenty_receipts(api: Api, aws: LocalStack, bolt: str, minutes: Minutes) -> None:
    """Ten receipts of 1.506 dated 10 November, each entered after one of 1.504 dated 20 November, each
    exported as it comes."""
    for i in range(10):
        receive(api, f"R-20-{i}", f"2026-11-20T09:{i:02d}:00Z", bolt, "1", "1.504")
        minutes.next()
        Poller(aws).drain()
        receive(api, f"R-10-{i}", f"2026-11-10T09:{i:02d}:00Z", bolt, "1", "1.506")
        minutes.next()
        Poller(aws).drain()
    assert set(statuses(api)) <= {"receipt", "trueup"} and "failed" not in statuses(api)["receipt"]


def test_records_entered_out_of_date_order_keep_every_past_date_within_a_cent(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Ten receipts dated 10 November entered each after one dated 20 November, at 1.506 and 1.504: rounding
    each journal for today's balances alone posted 1.51 for every 10-November one (the running total's cent
    fell to it), so the books at 15 November held 15.10 against 15.06. Each journal's cents now keep its
    own date and every later one within a cent of the exact value, and today's balances to the cent."""
    bolt = setup_xero(api, sandboxes)["bolt"]
    interleave_twenty_receipts(api, aws, bolt, minutes)
    for by, exact in ((date(2026, 11, 15), D("15.06")), (date(2026, 11, 30), D("30.10"))):
        held = xero_balances(api, sandboxes, by)
        assert abs(held["630"] - exact) <= D("0.01") and held["820"] == -held["630"], (by, held)
        minutes.next()
        status, accounts = reconciled(api, by.isoformat())
        assert status != "discrepancy" and all(D(a["unexplained"]) == 0 for a in accounts.values()), accounts
    assert xero_balances(api, sandboxes) == {"630": D("30.10"), "820": D("-30.10")}


def test_with_a_rounding_account_records_out_of_date_order_keep_every_past_date_within_a_cent(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """The same twenty receipts with a rounding account mapped: the running rounding, keeping every other
    account at today's rounded value, put 1.51 in each 10-November journal (15.10 at 15 November against
    15.06). Each journal now takes the cents nearest the exact values at its date and later, the rounding
    account the rest, and a true-up dated today brings every other account back to its rounded value."""
    from tests.integration.test_exports import XERO_ACCOUNTS

    bolt = setup_xero(api, sandboxes)["bolt"]
    fields = {"Code": "860", "Name": "Rounding", "Type": "OVERHEADS", "Status": "ACTIVE"}
    sandboxes.xero.add_record(AU_TENANT_ID, "Accounts", fields)
    chart = {
        a["code"]: a["account_id"]
        for a in ok(api.call("POST", "/integrations/xero/sync/accounts"))["accounts"]
    }
    accounts = {role: chart[code] for role, code in {**XERO_ACCOUNTS, "rounding": "860"}.items()}
    settings = {"mode": "journals", "accounts": accounts}
    ok(api.call("PUT", "/integrations/xero/export-settings", json_body=settings))
    interleave_twenty_receipts(api, aws, bolt, minutes)
    for by, exact in ((date(2026, 11, 15), D("15.06")), (date(2026, 11, 30), D("30.10"))):
        held = xero_balances(api, sandboxes, by)
        assert abs(held["630"] - exact) <= D("0.01") and abs(held["820"] + exact) <= D("0.01"), (by, held)
        minutes.next()
        status, found = reconciled(api, by.isoformat())
        assert status != "discrepancy" and all(D(a["unexplained"]) == 0 for a in found.values()), found
    held = xero_balances(api, sandboxes)
    assert (held["630"], held["820"], held.get("860", D(0))) == (D("30.10"), D("-30.10"), D(0)), held


def test_on_quickbooks_accounts_payable_records_out_of_date_order_post_no_true_up_there(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """QuickBooks needs a vendor on every Accounts Payable line and a true-up has none (nor should a rounding
    cent move a vendor's balance): receipts entered out of date order on A/P keep it within a cent today by
    their own journals, every export posts, and the books end to the cent."""
    from tests.integration.test_exports import PAYABLE, payables_to_ap

    bolt = setup_qbo(api, sandboxes)["bolt"]
    ok(api.call("POST", "/integrations/qbo/sync/suppliers"))
    payables_to_ap(api)
    for i in range(6):
        for day, cost in (("20", "1.504"), ("10", "1.506")):
            line = {"product_id": bolt, "quantity": "1", "unit_cost": cost}
            body = {"receipt_id": f"R-{day}-{i}", "received_at": f"2026-11-{day}T09:{i:02d}:00Z",
                    "supplier_email": "orders@northside-metals.test", "lines": [line]}  # fmt: skip
            ok(api.call("POST", "/receipts", json_body=body), 201)
            minutes.next()
            Poller(aws).drain()
    exported = ok(api.call("GET", "/exports"))["items"]
    assert {e["status"] for e in exported} == {"posted"}, [e["last_error"] for e in exported]
    journals = {j["Id"]: j for j in sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")}
    for export in (e for e in exported if e["kind"] == "trueup"):
        lines = journals[export["document_id"]]["Line"]
        assert PAYABLE not in {line["JournalEntryLineDetail"]["AccountRef"]["value"] for line in lines}
    held = qbo_balances(api, sandboxes)
    assert (held[PAYABLE], held["1"]) == (D("-18.06"), D("18.06")), held


def test_on_quickbooks_accounts_payable_a_rejection_and_a_rounding_account_mapped_later_leave_it_alone(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Two bolts at 0.007, one rejected: stock 0.007, waste 0.007, 0.014 owed to the vendor. Rounding the
    rejection's journal gave its odd cent to Accounts Payable, nearest its half cent (0.02 owed against a
    bill of 0.01); once a rounding account was mapped, the true-up moving that cent off A/P named no vendor
    and QuickBooks refused it for good (6000), leaving the books a cent out. A/P now holds the vendor's
    total rounded, the waste takes the cent, and the rounding account's true-up leaves A/P alone and posts."""
    from tests.integration.test_exports import PAYABLE, QBO_ACCOUNTS, payables_to_ap

    bolt = setup_qbo(api, sandboxes)["bolt"]
    ok(api.call("POST", "/integrations/qbo/sync/suppliers"))
    payables_to_ap(api)
    line = {"product_id": bolt, "quantity": "2", "rejected": "1", "unit_cost": "0.007"}
    body = {"receipt_id": "R-1", "received_at": "2026-11-10T09:00:00Z",
            "supplier_email": "orders@northside-metals.test", "lines": [line]}  # fmt: skip
    ok(api.call("POST", "/receipts", json_body=body), 201)
    minutes.next()
    Poller(aws).drain()
    assert qbo_balances(api, sandboxes)[PAYABLE] == D("-0.01")  # 0.014 owed, rounded

    fields = {"Name": "Rounding", "AccountType": "Expense", "AcctNum": "6990"}
    rounding = str(sandboxes.qbo.create_record(DEMO_REALM_ID, "Account", fields)["Id"])
    ok(api.call("POST", "/integrations/qbo/sync/accounts"))
    accounts = {**QBO_ACCOUNTS, "receiving_credit": PAYABLE, "rounding": rounding}
    ok(
        api.call(
            "PUT", "/integrations/qbo/export-settings", json_body={"mode": "journals", "accounts": accounts}
        )
    )
    minutes.next()
    close_days(now=datetime.now(UTC))
    Poller(aws).drain()
    exported = ok(api.call("GET", "/exports"))["items"]
    assert {e["status"] for e in exported} <= {"posted", "skipped"}, [e["last_error"] for e in exported]
    assert [e["kind"] for e in exported if e["status"] == "posted"].count("trueup") == 1, exported
    # every other account at its value rounded, the rounding account the rest
    assert qbo_balances(api, sandboxes) == {
        "1": D("0.01"),
        "7": D("0.01"),
        PAYABLE: D("-0.01"),
        rounding: D("-0.01"),
    }
    minutes.next()
    status, found = reconciled(api)
    assert status == "explained" and all(D(a["unexplained"]) == 0 for a in found.values()), found
    assert not [r for a in found.values() for r in a["reasons"] if r["kind"] == "not_posted"], found


def test_a_retried_build_that_may_have_reached_xero_is_not_taken_for_the_true_up_naming_it(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A build's writes time out until it fails (it may be in Xero), a back-dated receipt re-costs it and the
    true-up naming it in its narration posts, then the build is retried: its search for its own marker must
    not take the true-up for it, or the build is never posted and the books lack its cost."""
    from tests.integration.test_export_faults import deliver

    parts = setup_xero(api, sandboxes)
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    minutes.next()
    Poller(aws).drain()
    sandboxes.xero.inject("timeout", method="PUT", path_prefix="/api.xro/2.0/ManualJournals", count=5)
    build_brackets(api, parts, "B", 6)
    for _ in range(5):  # one delivery a minute: each attempt's write times out
        minutes.next()
        deliver(aws, rounds=1)
    (build,) = [e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "build"]
    assert build["status"] == "failed" and "gave up" in build["last_error"], build
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")  # the build now costs 2.00
    minutes.next()
    Poller(aws).drain()
    (trueup,) = [e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup"]
    narration = next(
        j["Narration"]
        for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
        if j["ManualJournalID"] == trueup["document_id"]
    )
    assert build["export_id"] in narration  # it names the build it corrects

    ok(api.call("POST", f"/exports/{build['export_id']}/retry"))
    minutes.next()
    deliver(aws)
    (build,) = [e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "build"]
    assert build["status"] == "posted" and not build["adopted"], build
    assert build["document_id"] != trueup["document_id"]
    assert xero_balances(api, sandboxes) == {"630": D("28.00"), "632": D("2.00"), "820": D("-30.00")}


def test_a_rounding_accounts_cents_left_by_later_true_ups_correct_nothing_at_an_earlier_date(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A rounding account mapped; brackets built from blanks at a third of a cent, then two receipts of
    blanks back-dated before them re-cost the builds. Each back-dated receipt's plan trues up the builds
    first (dated today, the rounding account taking the cents the builds' new values leave) and then posts
    the receipt. The end of November's check named those true-ups' rounding cents as corrections of the
    rounding account, which has no subledger to correct (what it holds by then is all its rounding): a
    random history's two such cents were 0.02 unexplained, a discrepancy. They are no reason there now."""
    from tests.integration.test_exports import XERO_ACCOUNTS

    parts = setup_xero(api, sandboxes)
    fields = {"Code": "860", "Name": "Rounding", "Type": "OVERHEADS", "Status": "ACTIVE"}
    sandboxes.xero.add_record(AU_TENANT_ID, "Accounts", fields)
    chart = {
        a["code"]: a["account_id"]
        for a in ok(api.call("POST", "/integrations/xero/sync/accounts"))["accounts"]
    }
    accounts = {role: chart[code] for role, code in {**XERO_ACCOUNTS, "rounding": "860"}.items()}
    settings = {"mode": "journals", "accounts": accounts}
    ok(api.call("PUT", "/integrations/xero/export-settings", json_body=settings))
    receive(api, "R-1", "2026-11-10T09:00:00Z", parts["blank"], "6", "0.333333")
    for day in (12, 13, 14, 15):
        build_brackets(api, parts, f"B-{day}", day)
    minutes.next()
    Poller(aws).drain()
    for n, day in enumerate((5, 6)):
        receive(api, f"R-0{n}", f"2026-11-{day:02d}T09:00:00Z", parts["blank"], "1", "0.005")
        minutes.next()
        Poller(aws).drain()
    exported = ok(api.call("GET", "/exports"))["items"]
    assert [e["kind"] for e in exported if e["status"] == "posted"].count("trueup") == 2, exported
    minutes.next()
    status, found = reconciled(api, "2026-11-30")
    assert status != "discrepancy" and all(D(a["unexplained"]) == 0 for a in found.values()), found
    kinds = [r["kind"] for r in found["860"]["reasons"]]
    assert "corrected_later" not in kinds, found["860"]
    assert "corrected_later" in {r["kind"] for a in found.values() for r in a["reasons"]}, found  # elsewhere
