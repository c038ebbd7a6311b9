"""Probes of posting again a journal deleted in QuickBooks or voided in Xero: exactly one journal per export
however the retries and the worker interleave, nothing changed while the provider is down, a true-up and a
day's cost of goods sold named and posted again, a period locked since recoverable, and the books explained
after each."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared.providers.qbo.client import QboProvider
from shared.providers.xero.client import XeroProvider
from shared.services import exports
from tests.conftest import Api, Sandboxes
from tests.integration.test_books import (
    Minutes,
    build_brackets,
    cogs_on_both_sides_of_the_year_start,
    minutes_clock,
    receive,
    reconciled,
    statuses,
)
from tests.integration.test_deleted_journals import (
    live_journals,
    posted,
    remove,
    sandbox,
    two_receipts_posted,
)
from tests.integration.test_disconnect import (
    _switch_to_a_company_with_the_demo_chart,
    back_to_the_demo_company,
)
from tests.integration.test_export_faults import WRITE_METHODS, WRITES, deliver
from tests.integration.test_exports import ok, setup_xero

__all__ = ["minutes_clock"]  # the fixture, used by name

D = Decimal
PROVIDERS = {"qbo": QboProvider, "xero": XeroProvider}


def one_posted_receipt(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> Any:
    """R-1 (5.00) and R-2 (1.00) posted; the books check as it is then (status, accounts)."""
    two_receipts_posted(api, aws, sandboxes, minutes, provider)
    return reconciled(api)


def deleted_receipt(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> tuple[Any, dict[str, Any]]:
    """As ``one_posted_receipt``, then R-1's journal deleted (QBO) or voided (Xero) and a minute passed: the
    books check before that, and R-1's export."""
    before = one_posted_receipt(api, aws, sandboxes, minutes, provider)
    first: dict[str, Any] = posted(api)["R-1"]
    remove(sandboxes, provider, first["document_id"])
    minutes.next()
    return before, first


def explained(accounts: dict[str, dict[str, Any]]) -> bool:
    return all(D(a["unexplained"]) == 0 for a in accounts.values())


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_a_second_click_while_the_first_retry_checks_posts_one_journal(
    api: Api,
    aws: LocalStack,
    sandboxes: Sandboxes,
    minutes: Minutes,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
) -> None:
    """Both retries find the journal gone; the first to requeue posts it again, and the worker posts it before
    the other requeues: the other posts nothing (the export holds a new journal, not the gone one)."""
    before, first = deleted_receipt(api, aws, sandboxes, minutes, provider)

    real = PROVIDERS[provider].documents_gone
    clicks: list[str] = []

    def checked_while_another_click_posts(self: Any, session: Any, kind: str, ids: Any) -> set[str]:
        gone = real(self, session, kind, ids)
        if not clicks:  # the other click checks, requeues and its worker posts, before this one requeues
            clicks.append("the other")
            exports.retry("org-a", first["export_id"])
            Poller(aws).drain()
        return gone

    monkeypatch.setattr(PROVIDERS[provider], "documents_gone", checked_while_another_click_posts)
    late = api.call("POST", f"/exports/{first['export_id']}/retry")
    assert late.status in (200, 409), late.body
    monkeypatch.setattr(PROVIDERS[provider], "documents_gone", real)
    minutes.next()
    Poller(aws).drain()

    reposted = posted(api)["R-1"]
    assert reposted["status"] == "posted" and reposted["document_id"] != first["document_id"]
    assert len(live_journals(sandboxes, provider)) == 2  # R-1 once again, R-2: never R-1 twice
    minutes.next()
    assert reconciled(api) == before


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_a_retry_while_the_repost_waits_for_its_worker_posts_one_journal(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> None:
    """Clicked again before the worker ran (the export is pending): two messages, one journal."""
    before, first = deleted_receipt(api, aws, sandboxes, minutes, provider)
    ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    again = api.call("POST", f"/exports/{first['export_id']}/retry")
    assert again.status in (200, 409), again.body
    minutes.next()
    Poller(aws).drain()
    assert len(live_journals(sandboxes, provider)) == 2
    assert posted(api)["R-1"]["status"] == "posted"
    minutes.next()
    assert reconciled(api) == before


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_the_provider_down_during_the_retrys_check_changes_nothing(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> None:
    _, first = deleted_receipt(api, aws, sandboxes, minutes, provider)
    path = f"/v3/company/{DEMO_REALM_ID}/query" if provider == "qbo" else "/api.xro/2.0/ManualJournals"
    sandbox(sandboxes, provider).inject("503", method="GET", path_prefix=path, count=50)
    down = api.call("POST", f"/exports/{first['export_id']}/retry")
    assert down.status == 503, down.body
    sandbox(sandboxes, provider).faults.clear()
    minutes.next()
    Poller(aws).drain()
    after = posted(api)["R-1"]
    assert (after["status"], after["document_id"]) == ("posted", first["document_id"])
    assert len(live_journals(sandboxes, provider)) == 1  # R-2's only: nothing posted meanwhile
    # once it answers again, the retry posts it
    ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    assert len(live_journals(sandboxes, provider)) == 2


def test_a_journal_voided_in_a_period_locked_since_is_posted_again_on_a_day_chosen(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Voided in Xero, then the period locked: the repost is refused and fails saying so (the books name it
    as not posted), and a retry with ``post_on`` posts it once, on that day."""
    _, before = one_posted_receipt(api, aws, sandboxes, minutes, "xero")
    first = posted(api)["R-1"]
    remove(sandboxes, "xero", first["document_id"])
    sandboxes.xero.set_lock_dates(AU_TENANT_ID, period_lock_date="2026-11-05")
    minutes.next()
    ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    failed = posted(api)["R-1"]
    assert failed["status"] == "failed" and "lock date" in failed["last_error"], failed
    minutes.next()
    found, accounts = reconciled(api)
    assert found == "explained" and explained(accounts), accounts
    assert {r["kind"] for a in accounts.values() for r in a["reasons"]} >= {"not_posted"}

    ok(api.call("POST", f"/exports/{first['export_id']}/retry?post_on=2026-11-06"))
    minutes.next()
    Poller(aws).drain()
    reposted = posted(api)["R-1"]
    assert reposted["status"] == "posted", reposted
    assert len(live_journals(sandboxes, "xero")) == 2
    minutes.next()
    found, accounts = reconciled(api)
    assert found in ("balanced", "explained") and explained(accounts), accounts
    assert {a: D(v["provider_balance"] or 0) for a, v in accounts.items()} == {
        a: D(v["provider_balance"] or 0) for a, v in before.items()
    }
    minutes.next()
    found, then = reconciled(api, "2026-11-05")  # received then, in the books from 6 November: named
    assert found == "explained" and explained(then), then
    assert "posted_later" in {r["kind"] for a in then.values() for r in a["reasons"]}


def test_a_voided_true_up_is_named_as_the_true_up_and_posted_again(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    parts = setup_xero(api, sandboxes)
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    build_brackets(api, parts, "B1", 6, "5")
    minutes.next()
    Poller(aws).drain()
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")  # the build now costs 10.00
    minutes.next()
    Poller(aws).drain()
    assert statuses(api)["trueup"] == ["posted"]
    minutes.next()
    before = reconciled(api)
    assert explained(before[1]), before
    trueup = next(e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup")

    remove(sandboxes, "xero", trueup["document_id"])
    minutes.next()
    found, accounts = reconciled(api)
    assert found == "discrepancy" and explained(accounts), accounts
    named = [r for a in accounts.values() for r in a["reasons"] if r["kind"] == "deleted_in_provider"]
    assert named and all(r["export_id"] == trueup["export_id"] and "true-up" in r["note"] for r in named)
    assert sum(D(r["amount"]) for r in named) == 0  # a journal balances: what it moved, both ways

    ok(api.call("POST", f"/exports/{trueup['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    again = next(e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup")
    assert again["status"] == "posted" and again["document_id"] != trueup["document_id"]
    assert statuses(api)["trueup"] == ["posted"]  # no new true-up planned for what it corrects
    minutes.next()
    assert reconciled(api) == before


def test_cost_of_goods_sold_voided_before_the_year_start_leaves_no_unexplained_expense(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """The year starts on 16 November: a COGS journal of 10 November voided moves inventory, not this year's
    cost of goods sold (the trial balance's); one of 20 November moves both. Each is named where it moved, and
    posted again by its retry."""
    cogs_on_both_sides_of_the_year_start(api, aws, sandboxes, minutes)
    before = reconciled(api, "2026-11-30")
    assert before[0] == "balanced", before
    cogs = {e["record_id"]: e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "cogs"}
    last_year, this_year = (cogs[r] for r in sorted(cogs))

    remove(sandboxes, "xero", last_year["document_id"])
    minutes.next()
    found, accounts = reconciled(api, "2026-11-30")
    assert found == "discrepancy" and explained(accounts), accounts
    assert [r["kind"] for r in accounts["630"]["reasons"]] == ["deleted_in_provider"]
    assert accounts["310"]["reasons"] == []  # this year's expense holds none of it

    remove(sandboxes, "xero", this_year["document_id"])
    minutes.next()
    found, accounts = reconciled(api, "2026-11-30")
    assert found == "discrepancy" and explained(accounts), accounts
    assert [r["export_id"] for r in accounts["310"]["reasons"]] == [this_year["export_id"]]
    assert D(accounts["310"]["reasons"][0]["amount"]) == D("-2.50")

    for gone in (last_year, this_year):
        ok(api.call("POST", f"/exports/{gone['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    minutes.next()
    assert reconciled(api, "2026-11-30") == before


def journal_day(sandboxes: Sandboxes, journal_id: str) -> date:
    (journal,) = [
        j
        for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
        if j["ManualJournalID"] == journal_id
    ]
    ms = int(journal["Date"].removeprefix("/Date(").split("+")[0].rstrip(")/"))
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def test_a_voided_true_up_in_a_period_locked_since_is_posted_again_on_a_day_chosen(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A true-up voided, then its day locked: the repost fails saying so, and a retry with ``post_on`` (the
    next day) posts it, once, on that day."""
    parts = setup_xero(api, sandboxes)
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    build_brackets(api, parts, "B1", 6, "5")
    minutes.next()
    Poller(aws).drain()
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")
    minutes.next()
    Poller(aws).drain()
    trueup = next(e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup")
    assert trueup["status"] == "posted"
    day = journal_day(sandboxes, trueup["document_id"])
    remove(sandboxes, "xero", trueup["document_id"])
    sandboxes.xero.set_lock_dates(AU_TENANT_ID, period_lock_date=day.isoformat())
    minutes.next()
    ok(api.call("POST", f"/exports/{trueup['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    failed = next(e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup")
    assert failed["status"] == "failed" and "lock date" in failed["last_error"], failed

    later = (day + timedelta(days=1)).isoformat()
    ok(api.call("POST", f"/exports/{trueup['export_id']}/retry?post_on={later}"))
    minutes.next()
    Poller(aws).drain()
    again = next(e for e in ok(api.call("GET", "/exports"))["items"] if e["kind"] == "trueup")
    assert again["status"] == "posted", again
    assert journal_day(sandboxes, again["document_id"]) == day + timedelta(days=1)
    assert statuses(api)["trueup"] == ["posted"]
    minutes.next()
    found, accounts = reconciled(api)
    assert found in ("balanced", "explained") and explained(accounts), accounts
    minutes.next()
    found, then = reconciled(api, day.isoformat())  # the true-up's own day: it corrects that day later
    assert found == "explained" and explained(then), then


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_the_provider_down_during_the_books_checks_search_answers_503_and_changes_nothing(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> None:
    before, first = deleted_receipt(api, aws, sandboxes, minutes, provider)
    path = f"/v3/company/{DEMO_REALM_ID}/query" if provider == "qbo" else "/api.xro/2.0/ManualJournals"
    sandbox(sandboxes, provider).inject("503", method="GET", path_prefix=path, count=50)
    down = api.call("GET", "/reconciliation")
    assert down.status == 503, down.body
    sandbox(sandboxes, provider).faults.clear()
    after = posted(api)["R-1"]
    assert (after["status"], after["document_id"]) == ("posted", first["document_id"])
    minutes.next()
    found, accounts = reconciled(api)
    assert found == "discrepancy" and explained(accounts), accounts
    assert before[0] != found


def test_a_journal_a_person_entered_again_with_its_marker_is_adopted_not_posted_twice(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Deleted in QuickBooks, then entered again by hand with the same number (the export's marker): the
    retry's worker finds it by the marker and takes it as the export's journal."""
    before = one_posted_receipt(api, aws, sandboxes, minutes, "qbo")
    first = posted(api)["R-1"]
    (journal,) = [
        j
        for j in sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")
        if j["Id"] == first["document_id"]
    ]
    remove(sandboxes, "qbo", first["document_id"])
    copy = {k: v for k, v in journal.items() if k not in ("Id", "SyncToken", "MetaData")}
    by_hand = sandboxes.qbo.create_record(DEMO_REALM_ID, "JournalEntry", copy)
    minutes.next()
    ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    again = posted(api)["R-1"]
    assert again["status"] == "posted" and again["document_id"] == str(by_hand["Id"]), again
    assert len(live_journals(sandboxes, "qbo")) == 2
    minutes.next()
    assert reconciled(api) == before


def test_a_posted_journal_is_not_posted_again_into_another_company(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Deleted in the demo company, then the organisation switched to another QuickBooks company: the retry
    refuses (409) and posts nothing anywhere; back in the demo company, it posts it there once."""
    before = one_posted_receipt(api, aws, sandboxes, minutes, "qbo")
    first = posted(api)["R-1"]
    remove(sandboxes, "qbo", first["document_id"])
    second = _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    minutes.next()
    refused = api.call("POST", f"/exports/{first['export_id']}/retry")
    assert refused.status == 409, refused.body
    Poller(aws).drain()
    assert posted(api)["R-1"]["document_id"] == first["document_id"]
    assert sandboxes.qbo.list_records(second.realm_id, "JournalEntry") == []
    assert len(live_journals(sandboxes, "qbo")) == 1

    back_to_the_demo_company(api, sandboxes)
    minutes.next()
    ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    assert len(live_journals(sandboxes, "qbo")) == 2
    assert sandboxes.qbo.list_records(second.realm_id, "JournalEntry") == []
    minutes.next()
    assert reconciled(api) == before


def test_a_draft_copy_of_a_voided_journal_is_not_taken_for_its_repost(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Voided in Xero, then copied to a draft (Xero's 'Copy' keeps the narration, so the marker): a draft is
    not in the books, so the retry posts the journal again, and the books hold it once."""
    before = one_posted_receipt(api, aws, sandboxes, minutes, "xero")
    first = posted(api)["R-1"]
    (journal,) = [
        j
        for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
        if j["ManualJournalID"] == first["document_id"]
    ]
    remove(sandboxes, "xero", first["document_id"])
    copy = {k: v for k, v in journal.items() if k in ("Narration", "Date", "JournalLines", "LineAmountTypes")}
    draft = sandboxes.xero.add_record(AU_TENANT_ID, "ManualJournals", {**copy, "Status": "DRAFT"})
    minutes.next()
    ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    again = posted(api)["R-1"]
    assert again["status"] == "posted" and again["document_id"] != draft["ManualJournalID"], again
    assert len(live_journals(sandboxes, "xero")) == 2  # posted ones: R-1's again and R-2's
    minutes.next()
    assert reconciled(api) == before


def test_a_later_date_for_a_voided_journal_is_refused_not_ignored(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Asked to post a voided journal again on a later day: refused (409) rather than posted on its own day,
    and nothing changes; the retry as it is still posts it."""
    _, first = deleted_receipt(api, aws, sandboxes, minutes, "xero")
    dated = api.call("POST", f"/exports/{first['export_id']}/retry?post_on=2026-11-06")
    assert dated.status == 409, dated.body
    Poller(aws).drain()
    after = posted(api)["R-1"]
    assert (after["status"], after["document_id"]) == ("posted", first["document_id"])
    ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    assert len(live_journals(sandboxes, "xero")) == 2


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_a_repost_whose_answer_is_lost_is_found_by_its_marker_not_posted_twice(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> None:
    before, first = deleted_receipt(api, aws, sandboxes, minutes, provider)
    sandbox(sandboxes, provider).inject(
        "lost_response", method=WRITE_METHODS[provider], path_prefix=WRITES[provider]
    )
    ok(api.call("POST", f"/exports/{first['export_id']}/retry"))
    minutes.next()
    assert deliver(aws) == 2  # the answer lost, then found by its marker
    again = posted(api)["R-1"]
    assert again["status"] == "posted" and again["document_id"] != first["document_id"], again
    assert len(live_journals(sandboxes, provider)) == 2
    minutes.next()
    assert reconciled(api) == before


def test_a_voided_build_corrected_by_a_true_up_meanwhile_is_posted_again_at_its_planned_values(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A build's journal voided, then a back-dated receipt re-costs it and a true-up corrects it: posted
    again as it was planned, the two hold its value now, once."""
    parts = setup_xero(api, sandboxes)
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    build_brackets(api, parts, "B1", 6, "5")
    minutes.next()
    Poller(aws).drain()
    build = posted(api)["B1"]
    remove(sandboxes, "xero", build["document_id"])
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")  # the build now costs 10.00
    minutes.next()
    Poller(aws).drain()
    assert statuses(api)["trueup"] == ["posted"]
    minutes.next()
    found, accounts = reconciled(api)
    assert found == "discrepancy" and explained(accounts), accounts

    ok(api.call("POST", f"/exports/{build['export_id']}/retry"))
    minutes.next()
    Poller(aws).drain()
    assert posted(api)["B1"]["status"] == "posted"
    assert statuses(api)["trueup"] == ["posted"]  # nothing more to correct
    minutes.next()
    found, accounts = reconciled(api)
    assert found == "balanced" and explained(accounts), accounts
    assert D(accounts["632"]["provider_balance"]) == D(accounts["632"]["subledger"]) == D("10.00")
