"""Export settings changed midway through a random history with postings (``bench.bench_books``). An account
remapped to another valid one: a true-up moves what was posted to the old account onto the new one, so
every mapped account ends equal to the stock ledger to the cent, nothing is left in the old accounts, and
every month-end reconciles with nothing unexplained. A QBO mode switch once exports are planned is refused,
naming ``mode`` (neither mode can take over or reverse the other's documents), and the books go on as
they were. A switch of company midway: each company's books hold only what was posted to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bench import bench_books
from bench.bench_exports import VirtualTime, follow
from infra.local.stack import LocalStack
from infra.sandboxes.consent import walk_consent
from infra.sandboxes.qbo_demo import ACCOUNTS, DEMO_PASSWORD, DEMO_REALM_ID, DEMO_USERNAME
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared.bodies import ExportAccounts, ExportSettingsRequest, ReceiptLineRequest, ReceiptRequest
from shared.money import ZERO
from shared.services import catalog, connections, export_settings, inventory, reconciliation
from shared.services.export_settings import InvalidExportSettings
from shared.store import books as books_store
from shared.store import connections as connection_store
from shared.store import exports as export_store
from tests.conftest import Sandboxes
from tests.integration.test_disconnect import account_ids, second_company

# each role moves to another valid account: raw materials, finished goods onto the account receipts used,
# and new cost of goods sold and waste accounts (codes; "new" accounts are added to the chart first)
REMAPS = {
    "xero": {"receiving_debit": "631", "build_debit": "630", "cogs": "311", "waste": "485"},
    "qbo": {"receiving_debit": "1320", "build_debit": "1300", "cogs": "5010", "waste": "6160"},
}
NEW_ACCOUNTS = {
    "xero": [("311", "Cost of Sales 2", "DIRECTCOSTS"), ("485", "Scrap", "OVERHEADS")],
    "qbo": [("6160", "Scrap", "Expense")],
}


def add_accounts(sandboxes: Sandboxes, provider: str) -> None:
    for code, name, kind in NEW_ACCOUNTS[provider]:
        if provider == "xero":
            fields = {"Code": code, "Name": name, "Type": kind, "Status": "ACTIVE"}
            sandboxes.xero.add_record(AU_TENANT_ID, "Accounts", fields)
        else:
            fields = {"Name": name, "AccountType": kind, "AcctNum": code}
            sandboxes.qbo.create_record(DEMO_REALM_ID, "Account", fields)


def settings_now(history: bench_books.History) -> dict[str, str]:
    view = export_settings.get_settings(history.organisation, history.provider, warnings=False)
    return {role: choice.account_id for role, choice in view.accounts.items() if choice}


def put(history: bench_books.History, mode: str, accounts: dict[str, str]) -> list[str]:
    """The settings saved; their warnings."""
    request = ExportSettingsRequest(mode=mode, accounts=ExportAccounts(**accounts))
    view = export_settings.put_settings(history.organisation, history.provider, request, datetime.now(UTC))
    return view.warnings or []


def left_behind(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "no role maps any more" in w]


def simulate(
    aws: LocalStack,
    sandboxes: Sandboxes,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
    mode: str,
    midway: bench_books.Midway,
) -> bench_books.Outcome:
    monkeypatch.setattr(inventory, "CHECKPOINT_EVERY", 3)
    clock = VirtualTime(sandboxes)
    follow(clock, monkeypatch.setattr)
    return bench_books.simulate(aws, sandboxes, clock, provider, mode, events=40, seed=6, midway=midway)


def assert_books_agree(outcome: bench_books.Outcome) -> None:
    assert outcome.final.mode == "journals"
    assert bench_books.gaps(outcome.final) == (ZERO, ZERO), outcome.final.accounts
    assert outcome.then and outcome.at_end, "the history crosses a month-end"
    for month_end, result in (*outcome.then.items(), *outcome.at_end.items()):
        assert bench_books.gaps(result)[1] == ZERO, (month_end, result.accounts)


@pytest.mark.parametrize("provider", ["xero", "qbo"])
def test_a_remapped_account_has_its_posted_balance_moved_to_the_new_one(
    aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    add_accounts(sandboxes, provider)
    before: dict[str, dict[str, Decimal]] = {}

    def remap(history: bench_books.History) -> None:
        chart = catalog.sync_accounts(history.organisation, provider, datetime.now(UTC)).accounts
        by_code = {a.code: a.account_id for a in chart}
        accounts = settings_now(history)
        connection = connection_store.get_connection(history.organisation, provider)
        assert connection is not None
        books = books_store.get_books(history.organisation, provider, connection.tenant_id or "")
        before["posted"] = dict(books.posted)
        before["accounts"] = {role: Decimal(0) for role in REMAPS[provider]}  # which roles had postings
        for role, code in REMAPS[provider].items():
            before["accounts"][role] = before["posted"].get(accounts[role], ZERO)
            accounts[role] = by_code[code]
        codes = {a.account_id: a.code for a in chart}
        unmapped = {codes[a] for a, cents in before["posted"].items() if cents and a not in accounts.values()}
        warned.extend(left_behind(put(history, "journals", accounts)))
        # the page says which old accounts still hold postings, and to keep them usable until trued up
        assert unmapped and len(warned) == len(unmapped), (unmapped, warned)
        assert all(any(w.startswith(f"{code} ") for w in warned) for code in unmapped), (unmapped, warned)

    warned: list[str] = []
    outcome = simulate(aws, sandboxes, monkeypatch, provider, "journals", remap)
    assert warned and all("until that true-up has posted" in w for w in warned), warned
    assert all(before["accounts"].values()), before  # every remapped role's old account held postings
    assert_books_agree(outcome)
    accounts = {a.code: a for a in outcome.final.accounts}
    for role, code in REMAPS[provider].items():
        assert role in accounts[code].roles
    unmapped = [a for a in outcome.final.accounts if not a.roles]
    assert unmapped and all(a.posted == ZERO for a in unmapped), unmapped  # nothing left behind
    trueups = [r for r in export_store.list_exports(outcome.history.organisation) if r.kind == "trueup"]
    assert trueups and {r.status for r in trueups} == {"posted"}
    trued = export_settings.get_settings(outcome.history.organisation, provider)
    assert not left_behind(trued.warnings or []), trued.warnings  # moved: the warning is gone


@pytest.mark.parametrize(
    ("start", "switch_to"), [("journals", "inventory_adjustments"), ("inventory_adjustments", "journals")]
)
def test_a_qbo_mode_switch_once_exports_are_planned_is_refused_naming_the_mode(
    aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, start: str, switch_to: str
) -> None:
    refused: list[InvalidExportSettings] = []

    def switch(history: bench_books.History) -> None:
        accounts = settings_now(history)
        if switch_to == "journals":
            accounts.pop("adjustment")
        else:
            accounts["adjustment"] = "3"
        with pytest.raises(InvalidExportSettings) as refusal:
            put(history, switch_to, accounts)
        refused.append(refusal.value)
        assert export_settings.get_settings(history.organisation, "qbo", warnings=False).mode == start

    outcome = simulate(aws, sandboxes, monkeypatch, "qbo", start, switch)
    (refusal,) = refused
    assert [f["field"] for f in refusal.fields] == ["mode"], refusal.fields
    assert "already posted or planned as" in str(refusal), refusal
    if start == "journals":
        assert_books_agree(outcome)
    else:
        assert outcome.final.mode == "inventory_adjustments" and outcome.final.items
        for item in outcome.final.items:
            assert bench_books.unexplained_quantity(item, outcome.starting) == ZERO, item


def _switch_company(history: bench_books.History, sandboxes: Sandboxes, realm: str) -> None:
    """Disconnect, then connect the QBO company ``realm`` with an explicit switch, and sync its chart."""
    organisation, now = history.organisation, datetime.now(UTC)
    connections.disconnect(organisation, "qbo", now)
    started = connections.start_connect(organisation, "qbo", switch_company=True, now=now)
    with sandboxes.client() as browser:
        params = walk_consent(
            browser, started.authorize_url, username=DEMO_USERNAME, password=DEMO_PASSWORD, choose=[realm]
        )
    connections.complete_callback("qbo", params, started.cookie_value, now)
    catalog.sync_accounts(organisation, "qbo", now)


def test_a_switch_of_company_midway_keeps_each_companys_books_to_itself(
    aws: LocalStack, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A random history with QBO journals; after its first pass the organisation switches to a second
    company whose chart has the same accounts at other ids, maps them, and goes on: receipts, builds, and
    back-dated receipts that re-cost builds posted to the first company. The second company's journals name
    only the accounts mapped there, and its books check leaves nothing unexplained and finds nobody else's
    entries. Switching back, the first company's re-costed builds are trued up there, and its books check
    leaves nothing unexplained either."""
    qbo = sandboxes.qbo
    first: dict[str, str] = {}
    second: dict[str, str] = {}

    def switch(history: bench_books.History) -> None:
        first.update(settings_now(history))
        company = second_company(qbo, reversed(ACCOUNTS))  # the same names, other ids
        rounding = {"Name": "Rounding", "AccountType": "Expense", "AcctNum": "6990"}
        qbo.create_record(company.realm_id, "Account", rounding)
        ids = account_ids(qbo, company.realm_id)
        names = {a["Id"]: a["Name"] for a in qbo.list_records(DEMO_REALM_ID, "Account")}
        _switch_company(history, sandboxes, company.realm_id)
        second.update({role: ids[names[account]] for role, account in first.items()})
        put(history, "journals", second)
        second["realm"] = company.realm_id

    outcome = simulate(aws, sandboxes, monkeypatch, "qbo", "journals", switch)
    kinds = outcome.history.kinds
    assert kinds["back-dated receipt"] and kinds["build"], kinds
    rows = export_store.list_exports(outcome.history.organisation)
    assert {r.status for r in rows} <= {"posted", "skipped"}, [(r.kind, r.status, r.last_error) for r in rows]
    realm = second.pop("realm")
    named = {
        line["JournalEntryLineDetail"]["AccountRef"]["value"]
        for journal in qbo.list_records(realm, "JournalEntry")
        for line in journal["Line"]
    }
    assert named and named <= set(second.values()), (named, second)
    final = outcome.final
    assert all(a.unexplained == ZERO for a in final.accounts), final.accounts
    assert not any(r.kind == "others_entries" for a in final.accounts for r in a.reasons), final.accounts
    assert any(r.kind == "other_company" for a in final.accounts for r in a.reasons), final.accounts

    # bolts received before anything else, at another cost: every build is re-costed, the first company's
    # too, whose true-ups wait for it; this company's are trued up here
    history, clock = outcome.history, VirtualTime(sandboxes)
    organisation, last = history.organisation, bench_books.START + timedelta(days=bench_books.DAYS + 6)
    line = ReceiptLineRequest(
        product_id=history.parts["bolt"], quantity=Decimal(500), unit_cost=Decimal("0.01")
    )
    request = ReceiptRequest(received_at=bench_books.START - timedelta(days=1), lines=[line])
    inventory.record_receipt(organisation, request, datetime.now(UTC))
    bench_books.settle(history, clock, aws, last)
    here = reconciliation.reconcile(organisation, last.date(), last + timedelta(days=2))
    assert all(a.unexplained == ZERO for a in here.accounts), here.accounts
    assert not any(r.kind == "others_entries" for a in here.accounts for r in a.reasons), here.accounts

    exports_before = {r.export_id for r in export_store.list_exports(organisation)}
    _switch_company(history, sandboxes, DEMO_REALM_ID)
    put(history, "journals", first)
    bench_books.settle(history, clock, aws, last + timedelta(days=1))
    again = reconciliation.reconcile(organisation, last.date(), last + timedelta(days=2))
    assert all(a.unexplained == ZERO for a in again.accounts), again.accounts
    rows = export_store.list_exports(organisation)
    assert {r.status for r in rows} <= {"posted", "skipped"}, [(r.kind, r.status, r.last_error) for r in rows]
    assert [r for r in rows if r.export_id not in exports_before and r.kind == "trueup"], "trued up there"
