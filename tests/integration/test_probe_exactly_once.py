"""Adversarial probes of exactly-once exports and the books rule: unknown outcomes (lost responses, timeouts,
5xx) followed by retries, in QBO journals, QBO inventory mode and Xero manual journals; re-costing true-ups
combined with unknown outcomes; account remaps and provider switches between exports; definite failures (4xx)
fixed and retried (re-planned); sales days' cost of goods sold and credit notes whose posts are unknown.

Every probe ends by reading the provider's side from the sandbox itself (every document carrying a
Partsemble export tag, not only the ones the service says it posted) and checks: no export's tag is on two
live documents, each posted export's document is the one carrying its tag, what the documents move per
account is what the service's books say it posted, and that is the stock ledger's value of the account (within
a cent of the exact value; the probes' amounts are whole cents, so equal)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import DEMO_REALM_ID, HARBOR
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared.domain.postings import PostingAccounts
from shared.services import books, sessions
from shared.store import books as books_store
from shared.store import exports as export_store
from shared.store import settings as settings_store
from tests.conftest import Api, Sandboxes
from tests.integration.test_books import Minutes, close_days, minutes_clock, receive, sell_bolts  # noqa: F401
from tests.integration.test_export_faults import deliver, invoke, steady_backoff  # noqa: F401
from tests.integration.test_export_faults import receive as receive_messages
from tests.integration.test_exports import ok, setup_qbo, setup_xero

D = Decimal
ORG = "org-a"
TAG = "[Partsemble export "
QBO_JOURNALS = f"/v3/company/{DEMO_REALM_ID}/journalentry"
QBO_ADJUSTMENTS = f"/v3/company/{DEMO_REALM_ID}/inventoryadjustment"
XERO_JOURNALS = "/api.xro/2.0/ManualJournals"
WRITE = {"qbo": ("POST", QBO_JOURNALS), "xero": ("PUT", XERO_JOURNALS)}
SEARCH = {"qbo": f"/v3/company/{DEMO_REALM_ID}/query", "xero": XERO_JOURNALS}

pytestmark = pytest.mark.usefixtures("no_real_sleep")


# ---- the provider's side, read from the sandbox ----------------------------------------------------------
def _marker(note: str) -> str:
    return note.split(TAG, 1)[1].split("]", 1)[0]


def provider_documents(
    sandboxes: Sandboxes, provider: str, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Every live document carrying a Partsemble export tag, as {marker, id, lines: {account id: amount}}."""
    found = []
    if provider == "qbo":
        for journal in sandboxes.qbo.list_records(tenant or DEMO_REALM_ID, "JournalEntry"):
            note = str(journal.get("PrivateNote") or "")
            if TAG not in note:
                continue
            lines: dict[str, Decimal] = defaultdict(Decimal)
            for line in journal["Line"]:
                detail = line["JournalEntryLineDetail"]
                sign = 1 if detail["PostingType"] == "Debit" else -1
                lines[detail["AccountRef"]["value"]] += sign * D(str(line["Amount"]))
            found.append({"marker": _marker(note), "id": str(journal["Id"]), "lines": dict(lines)})
        return found
    tenant = tenant or AU_TENANT_ID
    ids = {
        a["Code"]: a["AccountID"] for a in sandboxes.xero.list_records(tenant, "Accounts") if a.get("Code")
    }
    for journal in sandboxes.xero.list_records(tenant, "ManualJournals"):
        note = str(journal.get("Narration") or "")
        if TAG not in note or journal.get("Status") != "POSTED":
            continue
        lines = defaultdict(Decimal)
        for line in journal["JournalLines"]:
            account = line.get("AccountID") or ids[line["AccountCode"]]
            lines[account] += D(str(line["LineAmount"]))
        found.append({"marker": _marker(note), "id": str(journal["ManualJournalID"]), "lines": dict(lines)})
    return found


def provider_balances(documents: list[dict[str, Any]]) -> dict[str, Decimal]:
    balances: dict[str, Decimal] = defaultdict(Decimal)
    for document in documents:
        for account, amount in document["lines"].items():
            balances[account] += amount
    return {a: v for a, v in balances.items() if v}


# ---- the service's side ------------------------------------------------------------------------------------
def accounts_of(provider: str) -> PostingAccounts:
    connection = sessions.in_use(ORG)
    assert connection is not None and connection.provider == provider
    chosen = settings_store.get_export_settings(ORG, provider)
    assert chosen is not None
    company = connection.tenant_id or ""
    currency = export_store.home_currency(ORG, provider, company) or "USD"
    return PostingAccounts(
        home_currency=currency, company=company, **{role: chosen.account(role) for role in books.ROLES}
    )


def ledger_values(provider: str) -> dict[str, Decimal]:
    """The stock ledger's exact value of each mapped account (every event, as of now)."""
    state = books.State(ORG, provider, accounts_of(provider))
    return {a: v for a, v in state.exact(list(state.found)).items() if v}


def books_posted(provider: str, company: str) -> dict[str, Decimal]:
    return {a: v for a, v in books_store.get_books(ORG, provider, company).posted.items() if v}


def export_rows() -> list[Any]:
    return export_store.list_exports(ORG)


def assert_exactly_once_and_books(sandboxes: Sandboxes, provider: str, *, settled: bool = True) -> None:
    """No export on two documents; each posted export's document carries its tag; the provider holds what the
    service's books say it posted, and that is the stock ledger's value of each account."""
    documents = provider_documents(sandboxes, provider)
    twice = {m: n for m, n in Counter(d["marker"] for d in documents).items() if n > 1}
    assert not twice, f"exports posted more than once: {twice}"
    by_marker = {d["marker"]: d for d in documents}
    rows = export_rows()
    if settled:
        unsettled = [
            (r.kind, r.record_id, r.status, r.last_error)
            for r in rows
            if r.status not in ("posted", "skipped")
        ]
        assert not unsettled, unsettled
    for row in rows:
        if row.status == "posted" and (row.plan_provider or provider) == provider:
            assert row.export_id in by_marker, (row.export_id, row.kind, "posted but not in the provider")
            assert by_marker[row.export_id]["id"] == row.document_id, (row.export_id, row.kind)
        if row.status == "skipped":
            assert row.export_id not in by_marker, (row.export_id, "skipped yet in the provider")
    held = provider_balances(documents)
    company = accounts_of(provider).company
    assert held == books_posted(provider, company), (
        "the provider holds what the service's books say it posted"
    )
    exact = ledger_values(provider)
    for account in held.keys() | exact.keys():
        gap = held.get(account, D(0)) - exact.get(account, D(0))
        assert abs(gap) < D("0.01"), (account, held.get(account), exact.get(account), held, exact)


def build(api: Api, parts: dict[str, str], build_id: str, at: str, quantity: str = "10") -> None:
    body = {
        "build_id": build_id,
        "product_id": parts["bracket"],
        "quantity": quantity,
        "built_at": at,
        "components": [{"product_id": parts["blank"], "quantity_per_unit": "1"}],
    }
    ok(api.call("POST", "/builds", json_body=body), 201)


def setup(api: Api, sandboxes: Sandboxes, provider: str) -> dict[str, str]:
    return setup_qbo(api, sandboxes) if provider == "qbo" else setup_xero(api, sandboxes)


def by_kind(kind: str) -> list[Any]:
    return [r for r in export_rows() if r.kind == kind]


PROVIDERS = pytest.mark.parametrize("provider", ["qbo", "xero"])


def invoke_only(aws: LocalStack, messages: list[dict[str, Any]]) -> None:
    """One invocation; the messages it reports come back when SQS says (not at once)."""
    import boto3

    failed = invoke(aws, messages)
    sqs, url = boto3.client("sqs"), aws.physical("ExportQueue")
    for m in messages:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        else:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)


# ---- helpers shared with test_probe_replans.py -------------------------------------------------------------
def deactivate(sandboxes: Sandboxes, provider: str, code: str, active: bool) -> None:
    """QBO: account ``code`` (an id) inactive; Xero: account ``code`` archived."""
    if provider == "qbo":
        sandboxes.qbo.edit_record(DEMO_REALM_ID, "Account", code, {"Active": active})
        return
    account = next(a for a in sandboxes.xero.list_records(AU_TENANT_ID, "Accounts") if a.get("Code") == code)
    status = "ACTIVE" if active else "ARCHIVED"
    sandboxes.xero.edit_record(AU_TENANT_ID, "Accounts", account["AccountID"], {"Status": status})


FINISHED_GOODS = {"qbo": "10", "xero": "632"}

RECEIVING = {"qbo": "1", "xero": "630"}  # the receiving debit (inventory asset) before the remap

OTHER_INVENTORY = {"qbo": "11", "xero": "631"}  # raw materials


def remap(api: Api, provider: str, role: str, account: str) -> None:
    view = ok(api.call("GET", f"/integrations/{provider}/export-settings?warnings=false"))
    accounts = {r: a["account_id"] for r, a in view["accounts"].items() if a}
    accounts[role] = account
    ok(
        api.call(
            "PUT",
            f"/integrations/{provider}/export-settings",
            json_body={"mode": "journals", "accounts": accounts},
        )
    )


def xero_id(sandboxes: Sandboxes, code: str) -> str:
    return str(
        next(
            a["AccountID"]
            for a in sandboxes.xero.list_records(AU_TENANT_ID, "Accounts")
            if a.get("Code") == code
        )
    )


def track_xero_sales(api: Api) -> None:
    body = {"enabled": True, "start_date": "2026-11-01"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=body))


def qbo_sale(sandboxes: Sandboxes, entity: str, number: str, day: str, quantity: int) -> None:
    line = {
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "5"}, "Qty": quantity, "UnitPrice": "4.50"},
    }
    fields = {"DocNumber": number, "TxnDate": day, "CustomerRef": {"value": HARBOR}, "Line": [line]}
    sandboxes.qbo.create_record(DEMO_REALM_ID, entity, fields)


def adjusted(sandboxes: Sandboxes) -> tuple[Counter[str], dict[str, Decimal]]:
    """The tagged inventory adjustments in the QBO sandbox: how many carry each marker, and each item's
    quantity moved by them."""
    markers: Counter[str] = Counter()
    moved: dict[str, Decimal] = defaultdict(Decimal)
    for record in sandboxes.qbo.list_records(DEMO_REALM_ID, "InventoryAdjustment"):
        note = str(record.get("PrivateNote") or "")
        if TAG not in note:
            continue
        markers[_marker(note)] += 1
        for line in record["Line"]:
            detail = line["ItemAdjustmentLineDetail"]
            moved[detail["ItemRef"]["value"]] += D(str(detail["QtyDiff"]))
    return markers, {i: q for i, q in moved.items() if q}


@pytest.mark.parametrize(("provider", "last"), [("qbo", "lost_response")])  # Xero: test_books.py
def test_a_build_whose_writes_ran_out_is_corrected_then_retried_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str, last: str
) -> None:
    """Every write of the build times out until it fails (the last one, with ``lost_response``, did commit);
    a back-dated receipt re-costs it and a true-up corrects it; the retry adopts or posts the plan as it was
    (never re-planned: it may be in the provider), and the books end at the ledger's values."""
    parts = setup(api, sandboxes, provider)
    sandbox = getattr(sandboxes, provider)
    method, path = WRITE[provider]
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    minutes.next()
    deliver(aws)
    sandbox.inject("timeout", method=method, path_prefix=path, count=3)
    sandbox.inject(last, method=method, path_prefix=path, count=1)
    build(api, parts, "B", "2026-11-06T09:00:00Z")
    for _ in range(4):
        minutes.next()
        deliver(aws, rounds=1)
    sandbox.inject("503", method="GET", path_prefix=SEARCH[provider], count=10)  # the searches fail too
    minutes.next()
    deliver(aws, rounds=1)
    (failed,) = by_kind("build")
    assert failed.status == "failed" and failed.unsure, (
        failed.attempts,
        failed.adopted,
        failed.last_error,
        sandbox.calls,
    )
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")  # the build now costs 20.00
    minutes.next()
    deliver(aws)
    assert [r.status for r in by_kind("trueup")] == ["posted"]
    ok(api.call("POST", f"/exports/{failed.export_id}/retry"))
    for _ in range(2):
        minutes.next()
        deliver(aws)
    (done,) = by_kind("build")
    assert done.status == "posted" and done.adopted == (last == "lost_response"), done
    assert_exactly_once_and_books(sandboxes, provider)


@pytest.mark.parametrize("provider", ["xero"])
def test_a_build_refused_twice_and_re_costed_between_each_retry(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> None:
    """Thirds of a cent: the build is refused, re-costed (a true-up corrects it), retried and refused again
    (planned anew, so its second plan carries a take-back), re-costed again, and retried for good."""
    parts = setup(api, sandboxes, provider)
    fg = FINISHED_GOODS[provider]
    receive(api, "R-3", "2026-11-05T09:00:00Z", parts["blank"], "9", "0.333")
    minutes.next()
    deliver(aws)
    deactivate(sandboxes, provider, fg, False)
    build(api, parts, "B", "2026-11-06T09:00:00Z", quantity="7")
    minutes.next()
    deliver(aws)
    (b,) = by_kind("build")
    assert b.status == "failed"
    deactivate(sandboxes, provider, fg, True)
    receive(api, "R-2", "2026-11-04T09:00:00Z", parts["blank"], "3", "0.125")
    minutes.next()
    deliver(aws)
    deactivate(sandboxes, provider, fg, False)
    ok(api.call("POST", f"/exports/{b.export_id}/retry"))
    minutes.next()
    deliver(aws)
    assert by_kind("build")[0].status == "failed"
    deactivate(sandboxes, provider, fg, True)
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "2", "1.005")
    minutes.next()
    deliver(aws)
    for row in export_rows():
        if row.status == "failed":
            ok(api.call("POST", f"/exports/{row.export_id}/retry"))
    for _ in range(3):
        minutes.next()
        deliver(aws)
    assert_exactly_once_and_books(sandboxes, provider)


# ---- QBO inventory mode ------------------------------------------------------------------------------------
def test_qbo_inventory_adjustments_under_unknown_outcomes_and_a_refusal_post_each_once(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inventory mode: a receipt's adjustment is lost (adopted), a build's writes time out until it fails,
    its last one having committed (the retry adopts it), a receipt in a closed period is refused and retried
    once the period opens (built anew): each export is one adjustment, and the items moved as Partsemble's
    quantities did."""
    parts = setup_qbo(api, sandboxes, "inventory_adjustments")
    qbo = sandboxes.qbo
    qbo.inject("lost_response", method="POST", path_prefix=QBO_ADJUSTMENTS)
    receive(api, "R-1", "2026-11-05T09:00:00-08:00", parts["blank"], "10", "1")
    deliver(aws)
    qbo.inject("timeout", method="POST", path_prefix=QBO_ADJUSTMENTS, count=3)
    qbo.inject("lost_response", method="POST", path_prefix=QBO_ADJUSTMENTS, count=1)
    build(api, parts, "B", "2026-11-06T09:00:00-08:00", quantity="4")
    deliver(aws, rounds=4)
    qbo.inject("503", method="GET", path_prefix=SEARCH["qbo"], count=10)
    deliver(aws, rounds=1)
    (failed,) = by_kind("build")
    assert failed.status == "failed" and failed.unsure, failed
    qbo.update_company(DEMO_REALM_ID, closing_date=datetime(2026, 11, 7).date())
    receive(api, "R-2", "2026-11-07T09:00:00-08:00", parts["blank"], "3", "1")
    deliver(aws)
    (refused,) = [r for r in by_kind("receipt") if r.status == "failed"]
    qbo.update_company(DEMO_REALM_ID, closing_date=None)
    qbo.clock.advance(3600)
    for row in (failed, refused):
        ok(api.call("POST", f"/exports/{row.export_id}/retry"))
    deliver(aws)
    rows = export_rows()
    assert {r.status for r in rows} == {"posted"}, [(r.kind, r.status, r.last_error) for r in rows]
    markers, moved = adjusted(sandboxes)
    assert all(n == 1 for n in markers.values()) and set(markers) == {r.export_id for r in rows}, markers
    assert moved == {"1": D(10 - 4 + 3), "5": D(4)}, moved


# ---- switching company or provider between an unknown outcome and its retry --------------------------------
def test_a_receipt_whose_write_to_the_old_company_was_lost_is_not_posted_again_to_the_new_one(
    api: Api, aws: LocalStack, sandboxes: Sandboxes
) -> None:
    """A receipt's journal reached the QBO company connected then, but its answer was lost; the organisation
    switches to a second company before the retry. The export may be in the old company, so it is not posted
    to the new one as well: a receipt is exported once, and the old company's books (what the service says it
    posted there) still hold what that company's general ledger holds."""
    from tests.integration.test_disconnect import (
        _switch_to_a_company_with_the_demo_chart,
        back_to_the_demo_company,
    )
    from tests.integration.test_exports import QBO_ACCOUNTS

    product = setup_qbo(api, sandboxes)["bolt"]
    sandboxes.qbo.inject("lost_response", method="POST", path_prefix=QBO_JOURNALS)
    receive(api, "R-1", "2026-11-20T09:00:00Z", product, "10", "12.50")
    invoke_only(aws, receive_messages(aws))
    (export,) = export_rows()
    assert export.status == "pending" and export.unsure, export
    assert len(provider_documents(sandboxes, "qbo")) == 1  # it reached the first company

    second = _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    ok(
        api.call(
            "PUT",
            "/integrations/qbo/export-settings",
            json_body={"mode": "journals", "accounts": QBO_ACCOUNTS},
        )
    )
    deliver(aws)
    retried = api.call("POST", f"/exports/{export.export_id}/retry")
    deliver(aws)

    in_first = provider_documents(sandboxes, "qbo", DEMO_REALM_ID)
    in_second = provider_documents(sandboxes, "qbo", second.realm_id)
    assert len(in_first) + len(in_second) == 1, (retried.status, in_first, in_second)
    assert provider_balances(in_first) == books_posted("qbo", DEMO_REALM_ID), (
        "the first company's books lost the journal it holds",
        provider_balances(in_first),
        books_posted("qbo", DEMO_REALM_ID),
    )
    assert retried.status == 409 and "Connect that company again" in retried.json()["message"], retried.body

    # back on the first company, the retry finds the journal there and adopts it
    back_to_the_demo_company(api, sandboxes)
    ok(api.call("POST", f"/exports/{export.export_id}/retry"))
    deliver(aws)
    (export,) = export_rows()
    assert export.status == "posted" and export.adopted, export
    assert_exactly_once_and_books(sandboxes, "qbo")
    assert not provider_documents(sandboxes, "qbo", second.realm_id)


def test_a_switch_of_provider_between_exports_keeps_each_providers_books(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """QBO journals: a build posted, a receipt whose write is lost (pending); the organisation disconnects
    and connects Xero: the QBO export is refused there and its retry too (it may be in QBO); back-dated
    receipts re-cost the QBO build and are posted to Xero; reconnecting QBO, the lost export is adopted and
    the build trued up there. Each provider holds exactly what its books say."""
    from tests.integration.connect_flow import connect

    parts = setup_qbo(api, sandboxes)
    receive(api, "R-3", "2026-11-05T09:00:00-08:00", parts["blank"], "10", "1")
    build(api, parts, "B", "2026-11-06T09:00:00-08:00", quantity="5")
    deliver(aws)
    sandboxes.qbo.inject("lost_response", method="POST", path_prefix=QBO_JOURNALS)
    receive(api, "R-4", "2026-11-07T09:00:00-08:00", parts["blank"], "1", "7")
    invoke_only(aws, receive_messages(aws))
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    xparts = setup_xero(api, sandboxes)
    deliver(aws)
    (lost,) = [r for r in by_kind("receipt") if r.status != "posted"]
    assert lost.status == "failed", lost
    assert api.call("POST", f"/exports/{lost.export_id}/retry").status == 409
    receive(api, "R-1", "2026-11-03T09:00:00-08:00", parts["blank"], "10", "2")
    receive(api, "X-1", "2026-11-08T09:00:00Z", xparts["bolt"], "3", "1.5")
    minutes.next()
    deliver(aws)
    xero_docs = provider_documents(sandboxes, "xero")
    xero_company = AU_TENANT_ID
    assert provider_balances(xero_docs) == books_posted("xero", xero_company)
    ok(api.call("POST", "/integrations/xero/disconnect"))
    connect(api, sandboxes, "qbo")
    ok(api.call("POST", f"/exports/{lost.export_id}/retry"))
    deliver(aws)
    close_days(now=datetime.now(UTC))
    deliver(aws)
    qbo_docs = provider_documents(sandboxes, "qbo")
    assert not {m: n for m, n in Counter(d["marker"] for d in qbo_docs + xero_docs).items() if n > 1}
    assert provider_balances(qbo_docs) == books_posted("qbo", DEMO_REALM_ID)
    assert by_kind("trueup") and all(r.plan_provider == "qbo" for r in by_kind("trueup")), by_kind("trueup")
    # QBO's books: every event planned there, at its ledger value now
    state = books.State(ORG, "qbo", accounts_of("qbo"))
    exact = state.exact(list(state.planned))
    held = provider_balances(qbo_docs)
    for account in held.keys() | exact.keys():
        assert abs(held.get(account, D(0)) - exact.get(account, D(0))) < D("0.01"), (account, held, exact)


def test_a_receipt_left_waiting_by_an_expired_connection_is_exported_to_the_provider_connected_next(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """QBO's connection expires before a receipt's export is planned (nothing reached QuickBooks: the token
    was refused). The organisation disconnects QBO and connects Xero: the receipt, never planned nor posted
    anywhere, is exported to Xero once, as a receipt recorded while nothing was connected would be; it is not
    left waiting for a provider the organisation left (its retry refused, its books check calling it "not
    exported yet" for ever)."""
    parts = setup_qbo(api, sandboxes)
    sandboxes.qbo.revoke_realm(DEMO_REALM_ID)
    receive(api, "R-1", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    deliver(aws)
    (waiting,) = export_rows()
    assert waiting.status == "waiting" and waiting.plan is None, waiting
    assert not sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    setup_xero(api, sandboxes)
    minutes.next()
    deliver(aws)
    (export,) = export_rows()
    assert export.status == "posted" and export.plan_provider == "xero", export
    assert_exactly_once_and_books(sandboxes, "xero")
