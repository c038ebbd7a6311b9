"""A journal Partsemble posted, deleted in QuickBooks or voided in Xero by someone: the books check names it
(not "entries not made by Partsemble"), and retrying its export posts it again, once, as it was planned."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from tests.conftest import Api, Sandboxes
from tests.integration.test_books import Minutes, daily_check, minutes_clock, receive, reconciled
from tests.integration.test_exports import ok, setup_qbo, setup_xero

__all__ = ["minutes_clock"]  # the fixture, used by name

D = Decimal


def posted(api: Api) -> dict[str, dict[str, Any]]:
    return {e["record_id"]: e for e in ok(api.call("GET", "/exports"))["items"]}


def sandbox(sandboxes: Sandboxes, provider: str) -> Any:
    return sandboxes.qbo if provider == "qbo" else sandboxes.xero


def remove(sandboxes: Sandboxes, provider: str, document_id: str) -> None:
    """What a person does in the provider: QuickBooks deletes a journal entry, Xero voids a posted journal."""
    if provider == "qbo":
        sandboxes.qbo.delete_record(DEMO_REALM_ID, "JournalEntry", document_id)
    else:
        sandboxes.xero.void_record(AU_TENANT_ID, "ManualJournals", document_id)


def live_journals(sandboxes: Sandboxes, provider: str) -> list[str]:
    """The provider's journals that carry an export's marker and still count in its books."""
    if provider == "qbo":
        return [
            j["Id"]
            for j in sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")
            if str(j.get("DocNumber", "")).startswith("PS-")
        ]
    return [
        j["ManualJournalID"]
        for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
        if "PS-" in j["Narration"] and j["Status"] == "POSTED"
    ]


def two_receipts_posted(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> None:
    """R-1 (5.00) and R-2 (1.00) received and their journals posted to the provider's demo company."""
    if provider == "qbo":
        part = setup_qbo(api, sandboxes)["bracket"]
        at = "2026-11-02T09:00:00-08:00"
    else:
        part = setup_xero(api, sandboxes)["bolt"]
        at = "2026-11-02T09:00:00Z"
    receive(api, "R-1", at, part, "4", "1.25")
    receive(api, "R-2", at.replace("09:", "10:"), part, "2", "0.50")
    minutes.next()
    Poller(aws).drain()
    minutes.next()


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_a_journal_deleted_in_the_provider_is_named_and_posted_again_by_a_retry(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> None:
    two_receipts_posted(api, aws, sandboxes, minutes, provider)
    calls = sandbox(sandboxes, provider).call_count()
    status, earlier = reconciled(api)
    check_calls = sandbox(sandboxes, provider).call_count() - calls
    assert status in ("balanced", "explained")  # the demo company's opening balances are named
    assert all(D(a["unexplained"]) == 0 for a in earlier.values()), earlier
    first = posted(api)["R-1"]
    assert first["status"] == "posted"

    # a still-posted journal is not posted again
    refused = api.call("POST", f"/exports/{first['export_id']}/retry")
    assert refused.status == 409 and "still there" in refused.json()["message"], refused.body

    remove(sandboxes, provider, first["document_id"])
    minutes.next()
    calls = sandbox(sandboxes, provider).call_count()
    found, accounts = reconciled(api)
    assert found == "discrepancy"
    # books that agree cost no search; these, one read of the journals Partsemble posted (one page)
    assert sandbox(sandboxes, provider).call_count() - calls == check_calls + 1
    moved = [
        a
        for code, a in accounts.items()
        if D(a["provider_balance"] or 0) != D(earlier[code]["provider_balance"] or 0)
    ]
    assert moved and len(moved) == 2, accounts  # inventory and the supplier side, 5.00 each way
    for account in moved:
        (reason,) = account["reasons"]
        assert reason["kind"] == "deleted_in_provider" and reason["export_id"] == first["export_id"]
        assert first["document_id"] in reason["note"] and "retry" in reason["note"]
        assert abs(D(reason["amount"])) == D("5.00") and D(account["unexplained"]) == 0
    assert all(a["reasons"] == earlier[code]["reasons"] for code, a in accounts.items() if a not in moved)
    minutes.next()
    assert daily_check(now=datetime.now(UTC))  # the hourly pass's daily check raises it too

    minutes.next()
    again = ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    assert again["status"] == "pending" and again["document_id"] is None
    assert first["document_id"] in again["last_error"]
    minutes.next()
    Poller(aws).drain()
    reposted = posted(api)["R-1"]
    assert reposted["status"] == "posted" and reposted["document_id"] != first["document_id"]
    assert reposted["last_error"] is None
    assert len(live_journals(sandboxes, provider)) == 2  # R-1's new journal and R-2's: none twice
    minutes.next()
    assert reconciled(api) == (status, earlier)

    # a second retry of the old document (a repeated click) posts nothing more
    minutes.next()
    repeated = api.call("POST", f"/exports/{first['export_id']}/retry")
    assert repeated.status == 409, repeated.body
    Poller(aws).drain()
    assert len(live_journals(sandboxes, provider)) == 2


def test_an_inventory_adjustment_deleted_in_quickbooks_is_named_and_posted_again_by_a_retry(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """QBO inventory mode: QuickBooks no longer counts the units of a deleted adjustment of Partsemble's. The
    quantity check names them and the adjustment, not as unexplained, and a retry adjusts them in again."""
    bracket = setup_qbo(api, sandboxes, mode="inventory_adjustments")["bracket"]
    line = {"product_id": bracket, "quantity": "6", "unit_cost": "2.00"}
    body = {"received_at": "2026-11-02T09:00:00-08:00", "lines": [line]}
    receipt = ok(api.call("POST", "/receipts", json_body=body), 201)["receipt"]["receipt_id"]
    Poller(aws).drain()
    first = posted(api)[receipt]
    assert (first["status"], first["document_type"]) == ("posted", "InventoryAdjustment")
    calls = sandboxes.qbo.call_count()
    earlier = ok(api.call("GET", "/reconciliation"))
    check_calls = sandboxes.qbo.call_count() - calls
    assert earlier["deleted"] == [] and earlier["status"] == "explained"  # the demo company's own stock
    items = {i["item_id"]: i for i in earlier["items"]}
    bracket_item = next(i for i in items.values() if i["product_id"] == bracket)
    assert D(bracket_item["unexplained"]) == 0

    sandboxes.qbo.delete_record(DEMO_REALM_ID, "InventoryAdjustment", first["document_id"])
    calls = sandboxes.qbo.call_count()
    found = ok(api.call("GET", "/reconciliation"))
    assert sandboxes.qbo.call_count() - calls == check_calls + 1  # one query of the adjustments by id
    assert found["status"] == "discrepancy"
    (gone,) = found["deleted"]
    assert (gone["export_id"], gone["document_id"]) == (first["export_id"], first["document_id"])
    now = next(i for i in found["items"] if i["product_id"] == bracket)
    assert D(now["provider_quantity"]) == D(bracket_item["provider_quantity"]) - 6
    assert (D(now["deleted_in_quickbooks"]), D(now["unexplained"])) == (D(6), D(0))
    assert D(now["not_in_quickbooks"]) == D(bracket_item["not_in_quickbooks"])

    again = ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    assert again["status"] == "pending" and "inventory adjustment" in again["last_error"]
    Poller(aws).drain()
    reposted = posted(api)[receipt]
    assert reposted["status"] == "posted" and reposted["document_id"] != first["document_id"]
    after = ok(api.call("GET", "/reconciliation"))
    assert after["deleted"] == [] and after["status"] == "explained"
    assert next(i for i in after["items"] if i["product_id"] == bracket) == bracket_item


def test_a_journal_archived_in_xero_stays_in_the_books_and_is_not_posted_again(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Archiving hides a posted journal in Xero, and only voiding reverses one (``xero.postings.NOT_IN_BOOKS``
    cites the source): the books check finds nothing changed, and a retry of its export is refused."""
    two_receipts_posted(api, aws, sandboxes, minutes, "xero")
    status, earlier = reconciled(api)
    first = posted(api)["R-1"]
    archived = {"Status": "ARCHIVED"}
    sandboxes.xero.edit_record(AU_TENANT_ID, "ManualJournals", first["document_id"], archived)
    minutes.next()
    assert reconciled(api) == (status, earlier)
    refused = api.call("POST", f"/exports/{first['export_id']}/retry")
    assert refused.status == 409 and "still there" in refused.json()["message"], refused.body
    Poller(aws).drain()
    assert posted(api)["R-1"] == first
