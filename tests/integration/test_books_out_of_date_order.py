"""Journals dated before others already planned (``domain.books.evened``) against Xero, checked as the
books check reads a past date: the true-ups dated after it, corrections of exports whose event is gone, and
true-ups planned before they recorded their day are counted as the reconciliation counts them, and a
record entered in date order rounds as it always did."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared.aws import table
from shared.store.keys import export_sk, org_pk
from tests.conftest import Api, Sandboxes
from tests.integration.test_books import (
    Minutes,
    close_days,
    minutes_clock,  # noqa: F401  (the "minutes" fixture)
    receive,
    reconciled,
    sell_bolts,
    xero_balances,
)
from tests.integration.test_exports import ok, setup_xero

TRACKING = {"enabled": True, "start_date": "2026-11-01"}


def _invoice(sandboxes: Sandboxes, number: str) -> str:
    found = sandboxes.xero.list_records(AU_TENANT_ID, "Invoices")
    return str(next(i["InvoiceID"] for i in found if i.get("InvoiceNumber") == number))


def _resell(sandboxes: Sandboxes, invoice: str, quantity: str) -> None:
    """A person edits the invoice's quantity of bolts in Xero."""
    sandboxes.xero.clock.advance(60)
    line = {"ItemCode": "BOLT-M8", "Description": "Bolt", "Quantity": quantity, "UnitAmount": "20"}
    sandboxes.xero.edit_record(AU_TENANT_ID, "Invoices", invoice, {"LineItems": [line]})


def _sold_and_closed(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, day: str, quantity: str = "2"
) -> str:
    """Bolts sold on ``day``, pulled, and that day's cost of goods sold posted; the invoice's id."""
    sell_bolts(sandboxes, "INV-1101", day, quantity)
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=TRACKING))
    api.pull_sales()
    minutes.next()
    Poller(aws).drain()
    assert close_days(now=datetime.fromisoformat(f"{day}T19:00:00+00:00")) == 1
    Poller(aws).drain()
    return _invoice(sandboxes, "INV-1101")


def _journal_of(api: Api, sandboxes: Sandboxes, record_id: str) -> dict[str, D]:
    (export,) = [e for e in ok(api.call("GET", "/exports"))["items"] if e["record_id"] == record_id]
    (journal,) = [
        j
        for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
        if j["ManualJournalID"] == export["document_id"]
    ]
    return {line["AccountCode"]: D(str(line["LineAmount"])) for line in journal["JournalLines"]}


def _balanced_at(api: Api, minutes: Minutes, *days: str) -> dict[str, Any]:
    """The books check of each day: nothing unexplained (what is not balanced is explained)."""
    found = {}
    for day in days:
        minutes.next()
        status, accounts = reconciled(api, day)
        found[day] = status
        assert status != "discrepancy", (
            day,
            {c: (a["unexplained"], a["reasons"]) for c, a in accounts.items()},
        )
    return found


def _receive_on_5_november(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, bolt: str
) -> None:
    """A receipt of 1.004 dated 5 November posts 1.00 (on its own), and the books of 7 and 12 November hold
    nothing unexplained."""
    minutes.next()
    receive(api, "R-0", "2026-11-05T09:00:00Z", bolt, "1", "1.004")
    minutes.next()
    Poller(aws).drain()
    assert _journal_of(api, sandboxes, "R-0") == {"630": D("1.00"), "820": D("-1.00")}
    _balanced_at(api, minutes, "2026-11-07", "2026-11-12")


def test_a_back_dated_receipt_before_a_voided_days_cost_of_goods_sold_is_rounded_on_its_own(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """10 November's cost of goods sold posted, its only invoice voided (the event is gone, its true-up
    corrects it): a receipt dated 5 November posts its own 1.00, not 0.98 with a true-up taking the cents
    back (the correction counted from the start of time skewed it by a whole export's value)."""
    bolt = setup_xero(api, sandboxes)["bolt"]
    receive(api, "R-1", "2026-11-02T09:00:00Z", bolt, "10", "1.00")
    invoice = _sold_and_closed(api, aws, sandboxes, minutes, "2026-11-10")
    sandboxes.xero.clock.advance(60)
    sandboxes.xero.edit_record(AU_TENANT_ID, "Invoices", invoice, {"Status": "VOIDED"})
    api.pull_sales()
    _receive_on_5_november(api, aws, sandboxes, minutes, bolt)
    assert xero_balances(api, sandboxes) == {"630": D("11.00"), "820": D("-11.00")}


def test_a_true_up_planned_before_true_ups_recorded_their_day_is_dated_by_its_journal(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A true-up of 3 December that records no day (as those planned before they did): a receipt dated
    5 November is still rounded against it as dated 3 December."""
    bolt = setup_xero(api, sandboxes)["bolt"]
    receive(api, "R-1", "2026-11-02T09:00:00Z", bolt, "10", "1.00")
    invoice = _sold_and_closed(api, aws, sandboxes, minutes, "2026-11-10")
    _resell(sandboxes, invoice, "5")
    api.pull_sales()
    assert close_days(now=datetime(2026, 12, 3, 1, tzinfo=UTC)) == 1  # the true-up
    Poller(aws).drain()
    (trueup,) = [e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup"]
    key = {"pk": org_pk("org-a"), "sk": export_sk(trueup["export_id"])}
    recorded = json.loads(table().get_item(Key=key)["Item"]["plan_exact"])
    recorded.pop("on")
    table().update_item(
        Key=key,
        UpdateExpression="SET plan_exact = :e",
        ExpressionAttributeValues={":e": json.dumps(recorded)},
    )
    _receive_on_5_november(api, aws, sandboxes, minutes, bolt)


@pytest.mark.parametrize("edited", ["each time", "once"])
def test_an_evened_journals_cents_in_a_true_up_of_earlier_exports_are_not_counted_as_corrections(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, edited: str
) -> None:
    """Ten receipts dated 10 November entered between ten dated 20 November, while a sale of 5 November is
    edited (its day's cost of goods sold trued up by the same plans): the cents a plan's true-up posts for
    today's balances alone are recorded apart from what it corrects, so the books at each past date count
    them on the day it is dated, and no date is two cents out."""
    parts = setup_xero(api, sandboxes)
    bolt = parts["bolt"]
    receive(api, "B-1", "2026-11-01T09:00:00Z", bolt, "40", "1.00")
    invoice = _sold_and_closed(api, aws, sandboxes, minutes, "2026-11-05")
    for i in range(10):
        receive(api, f"R-20-{i}", f"2026-11-20T09:{i:02d}:00Z", parts["blank"], "1", "1.504")
        minutes.next()
        Poller(aws).drain()
        if edited == "each time" or i == 2:
            _resell(sandboxes, invoice, str(3 + i))
            api.pull_sales()
        receive(api, f"R-10-{i}", f"2026-11-10T09:{i:02d}:00Z", parts["blank"], "1", "1.506")
        minutes.next()
        Poller(aws).drain()
    assert "failed" not in {e["status"] for e in ok(api.call("GET", "/exports"))["items"]}
    _balanced_at(api, minutes, "2026-11-05", "2026-11-08", "2026-11-10", "2026-11-15", "2026-11-20")
    by_15 = xero_balances(api, sandboxes, date(2026, 11, 15))
    assert abs(by_15["630"] - D("40.00") + D("2.00") - D("15.06")) <= D("0.01"), by_15  # 38.00 of bolts left


def test_a_receipt_entered_in_date_order_rounds_as_ever_while_a_true_up_is_due(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A receipt of 0.273 dated after everything else, planned with the true-up of an edited sale of
    5 November: the true-up corrects only an export dated before it, so the receipt posts 0.27, the running
    rounding's cents (0.28 counted the true-up's cents as after it), and no day is out of balance."""
    parts = setup_xero(api, sandboxes)
    receive(api, "A", "2026-11-01T09:00:00Z", parts["bolt"], "20", "2.975")
    invoice = _sold_and_closed(api, aws, sandboxes, minutes, "2026-11-05", "3")
    _resell(sandboxes, invoice, "12")
    api.pull_sales()
    receive(api, "E", "2026-11-20T09:00:00Z", parts["blank"], "1", "0.273")
    minutes.next()
    Poller(aws).drain()
    assert _journal_of(api, sandboxes, "E") == {"630": D("0.27"), "820": D("-0.27")}
    _balanced_at(api, minutes, "2026-11-20", "2026-12-03")
