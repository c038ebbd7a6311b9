"""Each company's books on their own: true-ups of a company connected after a switch, the old company's
events in the new one's books check (rounded as the subledger is, whatever mode posted them), and a plan
made before plans named their company."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared.aws import table
from shared.store.keys import export_sk, org_pk
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_disconnect import _switch_to_a_company_with_the_demo_chart
from tests.integration.test_exports import QBO_ACCOUNTS, ok, setup_qbo

JOURNALS = {"mode": "journals", "accounts": QBO_ACCOUNTS}
BEFORE = "QuickBooks Online company connected before the switch to this one"


def _exports(api: Api) -> list[dict[str, Any]]:
    exports: list[dict[str, Any]] = ok(api.call("GET", "/exports"))["items"]
    return exports


def _receipt(api: Api, product: str, day: str, cost: str, quantity: str = "10") -> None:
    line = {"product_id": product, "quantity": quantity, "unit_cost": cost}
    ok(api.call("POST", "/receipts", json_body={"received_at": f"{day}T09:00:00Z", "lines": [line]}), 201)


def _moved(sandboxes: Sandboxes, realm: str) -> dict[str, Decimal]:
    """What the company's journals moved, per account (debits positive)."""
    moved: dict[str, Decimal] = {}
    for journal in sandboxes.qbo.list_records(realm, "JournalEntry"):
        for line in journal["Line"]:
            detail = line["JournalEntryLineDetail"]
            sign = 1 if detail["PostingType"] == "Debit" else -1
            account = detail["AccountRef"]["value"]
            moved[account] = moved.get(account, Decimal(0)) + sign * Decimal(str(line["Amount"]))
    return {a: v for a, v in moved.items() if v}


def test_a_company_after_a_switch_makes_true_ups_of_its_own(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """Both companies' books reach a true-up at the same version of their own: the new company's is an
    export of its own (true-ups named by their company), not refused as the old company's."""
    parts = setup_qbo(api, sandboxes)

    def build(day: str) -> None:
        body = {
            "product_id": parts["bracket"],
            "quantity": "1",
            "built_at": f"{day}T12:00:00Z",
            "components": [{"product_id": parts["bolt"], "quantity_per_unit": "2"}],
        }
        ok(api.call("POST", "/builds", json_body=body), 201)

    days = (("first", "2026-11-20", "2026-11-19", "11.00"), ("second", "2026-11-21", "2026-11-18", "10.00"))
    for company, day, earlier, cost in days:
        if company == "second":
            second = _switch_to_a_company_with_the_demo_chart(api, sandboxes)
            ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=JOURNALS))
        _receipt(api, parts["bolt"], day, "12.50")
        build(day)
        Poller(aws).drain()
        _receipt(api, parts["bolt"], earlier, cost)  # back-dated: re-costs the builds
        Poller(aws).drain()

    exports = _exports(api)
    assert {e["status"] for e in exports} <= {"posted", "skipped"}, exports
    assert len([e for e in exports if e["kind"] == "trueup" and e["status"] == "posted"]) == 2
    # the second company: its receipts (125.00, 100.00), its build (2 bolts of the 11-19 lot: 22.00) and the
    # true-up of that build to 20.00 (the 11-18 lot); nothing of the first company's build, re-costed too
    assert _moved(sandboxes, second.realm_id) == {
        QBO_ACCOUNTS["receiving_debit"]: Decimal("225.00") - Decimal("20.00"),
        QBO_ACCOUNTS["receiving_credit"]: Decimal("-225.00"),
        QBO_ACCOUNTS["build_debit"]: Decimal("20.00"),
    }


def test_the_old_companys_events_are_rounded_once_in_the_books_check(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """Six receipts at 0.125 hold 0.75 in the old company (running balances); the new company's books check
    names 0.75 for them, not six times 0.13, and leaves nothing unexplained."""
    product = setup_qbo(api, sandboxes)["bolt"]
    for day in range(10, 16):
        _receipt(api, product, f"2026-11-{day}", "0.125", quantity="1")
    Poller(aws).drain()
    _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=JOURNALS))

    books = ok(api.call("GET", "/reconciliation?as_of=2026-11-30"))
    assert books["status"] == "explained" and all(Decimal(a["unexplained"]) == 0 for a in books["accounts"])
    (stock,) = [a for a in books["accounts"] if a["account_id"] == QBO_ACCOUNTS["receiving_debit"]]
    reasons = [(r["kind"], Decimal(r["amount"])) for r in stock["reasons"]]
    assert reasons == [("other_company", Decimal("-0.75"))]


def test_inventory_adjustments_of_the_old_company_are_named_as_its_own(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """The old company took QBO inventory adjustments, the new one journals: the books check names the
    receipt as the old company's, not as one not exported yet."""
    product = setup_qbo(api, sandboxes, mode="inventory_adjustments")["bolt"]
    _receipt(api, product, "2026-11-20", "12.50")
    Poller(aws).drain()
    _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=JOURNALS))

    books = ok(api.call("GET", "/reconciliation?as_of=2026-11-30"))
    assert books["status"] == "explained" and all(Decimal(a["unexplained"]) == 0 for a in books["accounts"])
    reasons = {
        (a["account_id"], r["kind"], Decimal(r["amount"])) for a in books["accounts"] for r in a["reasons"]
    }
    assert reasons == {
        (QBO_ACCOUNTS["receiving_debit"], "other_company", Decimal("-125.00")),
        (QBO_ACCOUNTS["receiving_credit"], "other_company", Decimal("125.00")),
    }


def test_a_failed_export_planned_before_plans_named_their_company_is_retried_once(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """Its plan is taken out of the connected company's books (where it counts) before it is planned again:
    the company holds the receipt once, with no true-up taking it back."""
    product = setup_qbo(api, sandboxes)["bolt"]
    sandboxes.qbo.update_company(DEMO_REALM_ID, closing_date=date(2026, 11, 25))
    _receipt(api, product, "2026-11-20", "12.50")
    Poller(aws).drain()
    (row,) = _exports(api)
    assert row["status"] == "failed", row
    table().update_item(
        Key={"pk": org_pk("org-a"), "sk": export_sk(row["export_id"])}, UpdateExpression="REMOVE plan_tenant"
    )
    sandboxes.qbo.update_company(DEMO_REALM_ID, closing_date=None)
    ok(api.call("POST", f"/exports/{row['export_id']}/retry"))
    Poller(aws).drain()

    assert [e["status"] for e in _exports(api)] == ["posted"]
    assert _moved(sandboxes, DEMO_REALM_ID) == {
        QBO_ACCOUNTS["receiving_debit"]: Decimal("125.00"),
        QBO_ACCOUNTS["receiving_credit"]: Decimal("-125.00"),
    }


def test_each_companys_sales_have_their_cost_of_goods_sold_in_its_own_books(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """The old company's sale of 10 November is posted there when the day closes; its 11 November closes
    just before a switch, and its 12 November not at all. After the switch, the new company's sales are read
    from the start date: its sale of 10 November gets a cost of goods sold export of its own, posted in the
    new company; the old company's days wait for it (the one queued at the switch is not posted in the new
    company), and are posted there when it is connected again."""
    from tests.integration.test_books import close_days
    from tests.integration.test_sales_pull import qbo_invoice

    bracket = setup_qbo(api, sandboxes)["bracket"]
    _receipt(api, bracket, "2026-11-03", "2.00")
    tracking = {"enabled": True, "start_date": "2026-11-02", "time_zone": "UTC"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    for number, day in (("2001", "2026-11-10"), ("2002", "2026-11-11"), ("2003", "2026-11-12")):
        qbo_invoice(sandboxes, number, day, 1)
    api.pull_sales()
    assert close_days(now=datetime(2026, 11, 11, 12, tzinfo=UTC)) == 1
    Poller(aws).drain()
    assert close_days(now=datetime(2026, 11, 12, 12, tzinfo=UTC)) == 1  # 11 November, queued at the switch
    qbo = sandboxes.qbo
    first_journals = qbo.list_records(DEMO_REALM_ID, "JournalEntry")

    second = _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=JOURNALS))
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    income = {"Name": "Sales", "AccountType": "Income", "AccountSubType": "SalesOfProductIncome"}
    income_id = qbo.create_record(second.realm_id, "Account", income)["Id"]
    customer = qbo.create_record(second.realm_id, "Customer", {"DisplayName": "Dockside Ltd"})
    item: dict[str, Any] = {"Name": "Bracket 20", "Type": "NonInventory", "Sku": "FG-WB-20"}
    item["IncomeAccountRef"] = {"value": income_id}
    item_id = qbo.create_record(second.realm_id, "Item", item)["Id"]
    detail = {"ItemRef": {"value": item_id}, "Qty": 2, "UnitPrice": "5.00"}
    line = {"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}
    invoice = {"DocNumber": "3001", "TxnDate": "2026-11-10", "CustomerRef": {"value": customer["Id"]}}
    qbo.create_record(second.realm_id, "Invoice", {**invoice, "Line": [line]})
    ok(api.call("POST", "/integrations/qbo/sync/items"))  # links the product again, by SKU
    api.pull_sales()
    assert close_days(now=datetime(2026, 11, 13, 12, tzinfo=UTC)) == 1  # this company's 10 November
    Poller(aws).drain()

    assert qbo.list_records(DEMO_REALM_ID, "JournalEntry") == first_journals  # no true-up there
    (waiting,) = [e for e in _exports(api) if e["status"] != "posted"]
    assert waiting["status"] == "waiting" and f"another company ({DEMO_REALM_ID})" in waiting["last_error"]
    retried = api.call("POST", f"/exports/{waiting['export_id']}/retry")  # says what it waits for
    assert retried.status == 409 and "posted there when it is connected again" in retried.json()["message"]
    assert _moved(sandboxes, second.realm_id) == {
        QBO_ACCOUNTS["cogs"]: Decimal("4.00"),  # 2 brackets at 2.00
        QBO_ACCOUNTS["receiving_debit"]: Decimal("-4.00"),  # the lot was received, not built
    }
    books = ok(api.call("GET", "/reconciliation?as_of=2026-11-30"))
    assert books["status"] == "explained" and all(Decimal(a["unexplained"]) == 0 for a in books["accounts"])
    (cogs,) = [a for a in books["accounts"] if a["account_id"] == QBO_ACCOUNTS["cogs"]]
    assert [(r["kind"], Decimal(r["amount"]), r["note"].split(" (")[0]) for r in cogs["reasons"]] == [
        ("other_company", Decimal("-2.00"), f"posted to the {BEFORE}"),  # 2001, posted there
        ("other_company", Decimal("-4.00"), f"the cost of goods sold of the sales read from the {BEFORE}"),
    ]

    api.call("POST", "/integrations/qbo/disconnect")  # back to the first company: its days are posted there
    assert connect(api, sandboxes, "qbo", choose=[DEMO_REALM_ID], switch_company=True).page.status == 200
    ok(api.call("POST", "/integrations/qbo/sync/accounts"))
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=JOURNALS))
    assert close_days(now=datetime(2026, 11, 14, 12, tzinfo=UTC)) == 1  # its 12 November, not the other's
    Poller(aws).drain()
    assert {e["status"] for e in _exports(api)} == {"posted"}
    cogs_journals = [j for j in qbo.list_records(DEMO_REALM_ID, "JournalEntry") if j not in first_journals]
    assert sorted(Decimal(str(j["TotalAmt"])) for j in cogs_journals) == [Decimal("2.00")] * 2


def _close_a_day_of_qbo_sales(api: Api, sandboxes: Sandboxes, aws: LocalStack) -> str:
    """A bracket received at 2.00 and sold on 11 November in QuickBooks; the day's cost of goods sold queued
    (not yet run). The bracket's product id."""
    from tests.integration.test_books import close_days
    from tests.integration.test_sales_pull import qbo_invoice

    bracket = setup_qbo(api, sandboxes)["bracket"]
    _receipt(api, bracket, "2026-11-03", "2.00")
    tracking = {"enabled": True, "start_date": "2026-11-01", "time_zone": "UTC"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    qbo_invoice(sandboxes, "2002", "2026-11-11", 1)
    api.pull_sales()
    Poller(aws).drain()
    assert close_days(now=datetime(2026, 11, 12, 12, tzinfo=UTC)) == 1
    return bracket


def test_a_quickbooks_day_that_waited_while_xero_was_connected_is_posted_when_quickbooks_is_back(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    from tests.integration.test_exports import setup_xero

    _close_a_day_of_qbo_sales(api, sandboxes, aws)
    api.call("POST", "/integrations/qbo/disconnect")  # the organisation moves to Xero before it runs
    setup_xero(api, sandboxes)
    Poller(aws).drain()
    (cogs,) = [e for e in _exports(api) if e["kind"] == "cogs"]
    assert cogs["status"] == "waiting" and f"({DEMO_REALM_ID})" in cogs["last_error"], cogs

    api.call("POST", "/integrations/xero/disconnect")  # and back to the QuickBooks company of that day
    assert connect(api, sandboxes, "qbo", choose=[DEMO_REALM_ID]).page.status == 200
    Poller(aws).drain()
    (cogs,) = [e for e in _exports(api) if e["kind"] == "cogs"]
    assert cogs["status"] == "posted", cogs
    assert _moved(sandboxes, DEMO_REALM_ID)[QBO_ACCOUNTS["cogs"]] == Decimal("2.00")


def test_an_unsure_day_of_the_old_company_retried_after_a_switch_keeps_its_plan(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """Its journal may be in the old company (a lost answer, searches failing): retried from the new company,
    it is not planned anew (which would adopt the journal found at another value) but waits for its company,
    which adopts it and trues it up to the value a back-dated receipt gave it meanwhile."""
    from tests.integration.test_books import close_days
    from tests.integration.test_export_faults import SEARCHES, WRITES, deliver

    bracket = _close_a_day_of_qbo_sales(api, sandboxes, aws)
    qbo = sandboxes.qbo
    qbo.inject("timeout", path_prefix=WRITES["qbo"], count=3)
    qbo.inject("lost_response", path_prefix=WRITES["qbo"], count=1)  # the fourth try did commit
    deliver(aws, rounds=4)
    qbo.inject("503", path_prefix=SEARCHES["qbo"], count=10)
    deliver(aws)
    (cogs,) = [e for e in _exports(api) if e["kind"] == "cogs"]
    assert cogs["status"] == "failed", cogs

    _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=JOURNALS))
    _receipt(api, bracket, "2026-11-02", "1.00")  # back-dated: the sale now costs 1.00
    Poller(aws).drain()
    ok(api.call("POST", f"/exports/{cogs['export_id']}/retry"))
    Poller(aws).drain()

    api.call("POST", "/integrations/qbo/disconnect")
    assert connect(api, sandboxes, "qbo", choose=[DEMO_REALM_ID], switch_company=True).page.status == 200
    ok(api.call("POST", "/integrations/qbo/sync/accounts"))
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=JOURNALS))
    Poller(aws).drain()
    close_days(now=datetime(2026, 11, 14, 12, tzinfo=UTC))  # the hourly pass: the true-up due there
    Poller(aws).drain()
    (cogs,) = [e for e in _exports(api) if e["kind"] == "cogs"]
    assert cogs["status"] == "posted" and cogs["adopted"], cogs
    assert _moved(sandboxes, DEMO_REALM_ID)[QBO_ACCOUNTS["cogs"]] == Decimal("1.00")


def test_after_a_change_of_provider_the_books_check_names_what_the_other_provider_holds(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """QuickBooks Online, then Xero: the receipt posted to QuickBooks is named as posted to that company, not
    as 'not exported yet' (it never will be, to Xero)."""
    from tests.integration.test_exports import XERO_ACCOUNTS, setup_xero

    _receipt(api, setup_qbo(api, sandboxes)["bolt"], "2026-11-02", "12.50")
    Poller(aws).drain()
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    _receipt(api, setup_xero(api, sandboxes)["bolt"], "2026-11-03", "2.00")
    Poller(aws).drain()
    assert {e["status"] for e in _exports(api)} == {"posted"}

    books = ok(api.call("GET", "/reconciliation?as_of=2026-11-30"))
    assert books["status"] == "explained" and all(Decimal(a["unexplained"]) == 0 for a in books["accounts"])
    reasons = [
        (a["code"], r["kind"], Decimal(r["amount"]), r["note"])
        for a in books["accounts"]
        for r in a["reasons"]
    ]
    assert not [r for r in reasons if r[1] == "not_exported"], reasons
    (inventory,) = [r for r in reasons if r[0] == XERO_ACCOUNTS["receiving_debit"]]
    assert inventory[1:3] == ("other_company", Decimal("-125.00")) and inventory[3].startswith(
        f"posted to the {BEFORE} (1 export(s))"
    ), inventory


def test_the_organisations_time_zone_stands_when_another_providers_sales_tracking_is_set_up(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """Exports dated in Los Angeles, then a move to Xero (an Australian company): Xero's sales tracking can't
    date the books in Sydney (the business zone follows the enabled tracking), and one set up without naming
    a zone keeps Los Angeles, so a receipt sent in UTC is still in November there."""
    from tests.integration.test_exports import setup_xero

    bolt = setup_qbo(api, sandboxes)["bolt"]
    tracking = {"enabled": True, "start_date": "2026-11-01", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    _receipt(api, bolt, "2026-11-02", "12.50")
    Poller(aws).drain()
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    parts = setup_xero(api, sandboxes)
    path = "/integrations/xero/sales-tracking"
    moved = api.call("PUT", path, json_body={**tracking, "time_zone": "Australia/Sydney"})
    assert moved.status == 400 and [d["field"] for d in moved.json()["details"]] == ["time_zone"], moved.body
    kept = ok(api.call("PUT", path, json_body={"enabled": True, "start_date": "2026-11-01"}))
    assert kept["time_zone"] == "America/Los_Angeles"
    line = {"product_id": parts["bolt"], "quantity": "1", "unit_cost": "2.00"}
    body = {"receipt_id": "R-LATE", "received_at": "2026-12-01T04:00:00Z", "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()
    (late,) = [e for e in _exports(api) if e["record_id"] == "R-LATE"]
    (journal,) = [j for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
                  if late["export_id"] in j["Narration"]]  # fmt: skip
    assert journal["Date"] == "/Date(1795996800000+0000)/", journal  # 30 Nov 2026


def test_turning_sales_tracking_off_after_exports_keeps_the_organisations_time_zone(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """QuickBooks' tracking saved (off) in Los Angeles before anything was exported, then Xero's on in
    Sydney and a receipt exported: turning Xero's off would have made Los Angeles the business zone (the
    other provider's tracking), re-dating what was planned; every tracking now keeps Sydney."""
    from shared.store import sales as sales_store
    from tests.integration.test_exports import setup_xero

    setup_qbo(api, sandboxes)
    off = {"enabled": False, "start_date": "2026-11-01", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=off))
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    bolt = setup_xero(api, sandboxes)["bolt"]
    on = {"enabled": True, "start_date": "2026-11-01", "time_zone": "Australia/Sydney"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=on))
    _receipt(api, bolt, "2026-11-30", "2.00")
    Poller(aws).drain()
    assert {e["status"] for e in _exports(api)} == {"posted"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body={**on, "enabled": False}))
    assert str(sales_store.business_zone("org-a")) == "Australia/Sydney"
    assert {t.provider: t.time_zone for t in sales_store.tracked("org-a")} == {
        "qbo": "Australia/Sydney",
        "xero": "Australia/Sydney",
    }


def test_setting_up_another_providers_sales_tracking_moves_every_tracking_to_its_zone(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """QuickBooks' tracking on in Los Angeles, QuickBooks disconnected, Xero's tracking on in London before
    anything was exported: the organisation's zone is London for both (two enabled trackings in two zones
    dated Xero's journals in Los Angeles while Xero's tracking said London, and London could then not be
    saved again), so a receipt at 03:00 UTC on 21 November is dated the 21st."""
    from shared.store import sales as sales_store
    from tests.integration.test_exports import setup_xero

    setup_qbo(api, sandboxes)
    qbo = {"enabled": True, "start_date": "2026-11-01", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=qbo))
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    bolt = setup_xero(api, sandboxes)["bolt"]
    xero = {**qbo, "time_zone": "Europe/London"}
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=xero))
    assert {t.provider: t.time_zone for t in sales_store.tracked("org-a")} == {
        "qbo": "Europe/London",
        "xero": "Europe/London",
    }
    line = {"product_id": bolt, "quantity": "1", "unit_cost": "2.00"}
    body = {"receipt_id": "R-LONDON", "received_at": "2026-11-21T03:00:00Z", "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()
    (export,) = [e for e in _exports(api) if e["record_id"] == "R-LONDON"]
    (journal,) = [j for j in sandboxes.xero.list_records(AU_TENANT_ID, "ManualJournals")
                  if export["export_id"] in j["Narration"]]  # fmt: skip
    assert journal["Date"] == "/Date(1795219200000+0000)/", journal  # 21 Nov 2026
    ok(api.call("PUT", "/integrations/xero/sales-tracking", json_body=xero))  # saved again: same zone


def test_a_time_zone_saved_while_the_first_export_is_planned_is_the_one_its_journal_is_dated_in(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first export reads Los Angeles; before its plan commits, the organisation's zone is saved as
    Auckland (nothing was planned yet, so the save stands): the plan is refused and made again in Auckland,
    so the journal of a receipt at 20:00 UTC on 20 November is dated the 21st, as the zone saved says. Once
    planned, a save of another zone that read nothing planned (the race the other way) is refused."""
    from shared.bodies import TrackingRequest
    from shared.services import sales
    from shared.store import books as books_store

    bolt = setup_qbo(api, sandboxes)["bolt"]
    los_angeles = {"enabled": True, "start_date": "2026-11-01", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=los_angeles))
    commit = books_store.commit_plans
    saved: list[str] = []

    def zone_saved_meanwhile(*args: Any, **kwargs: Any) -> None:
        if not saved:  # the plan has read Los Angeles
            auckland = TrackingRequest(enabled=True, time_zone="Pacific/Auckland")
            saved.append(sales.set_tracking("org-a", "qbo", auckland, datetime.now(UTC)).time_zone or "")
        commit(*args, **kwargs)

    monkeypatch.setattr(books_store, "commit_plans", zone_saved_meanwhile)
    line = {"product_id": bolt, "quantity": "1", "unit_cost": "2.00"}
    body = {"receipt_id": "R-RACE", "received_at": "2026-11-20T20:00:00Z", "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()
    assert saved == ["Pacific/Auckland"]
    (export,) = [e for e in _exports(api) if e["record_id"] == "R-RACE"]
    assert export["status"] == "posted", export
    (journal,) = [j for j in sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")
                  if j.get("DocNumber") == export["export_id"]]  # fmt: skip
    assert journal["TxnDate"] == "2026-11-21", journal

    monkeypatch.setattr(sales, "_planned", lambda organisation_id: False)  # read before the plan committed
    back = api.call("PUT", "/integrations/qbo/sales-tracking", json_body=los_angeles)
    assert back.status == 400 and back.json()["details"][0]["field"] == "time_zone", back.body
    assert "Pacific/Auckland" in back.json()["message"]
    status = ok(api.call("GET", "/sales/status"))
    assert [t["time_zone"] for t in status] == ["Pacific/Auckland"]


def test_an_inventory_adjustment_planned_as_the_time_zone_is_saved_is_dated_in_the_zone_saved(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QuickBooks inventory mode: the same race for an adjustment's plan (fixed on its export alone)."""
    from shared.bodies import TrackingRequest
    from shared.services import sales
    from shared.store import exports as export_store

    bolt = setup_qbo(api, sandboxes, mode="inventory_adjustments")["bolt"]
    los_angeles = {"enabled": True, "start_date": "2026-11-01", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=los_angeles))
    store_plan = export_store.store_plan
    saved: list[bool] = []

    def zone_saved_meanwhile(*args: Any, **kwargs: Any) -> bool:
        if not saved:
            sales.set_tracking("org-a", "qbo", TrackingRequest(enabled=True, time_zone="Pacific/Auckland"),
                               datetime.now(UTC))  # fmt: skip
            saved.append(True)
        return store_plan(*args, **kwargs)

    monkeypatch.setattr(export_store, "store_plan", zone_saved_meanwhile)
    line = {"product_id": bolt, "quantity": "1", "unit_cost": "2.00"}
    body = {"receipt_id": "R-RACE", "received_at": "2026-11-20T20:00:00Z", "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()
    (export,) = [e for e in _exports(api) if e["record_id"] == "R-RACE"]
    assert export["status"] == "posted", export
    (adjustment,) = [a for a in sandboxes.qbo.list_records(DEMO_REALM_ID, "InventoryAdjustment")
                     if export["export_id"] in str(a.get("PrivateNote"))]  # fmt: skip
    assert adjustment["TxnDate"] == "2026-11-21", adjustment


def test_a_tracking_set_up_without_a_zone_takes_the_organisations_before_any_export_too(
    api: Api, sandboxes: Sandboxes
) -> None:
    """QuickBooks' tracking in Los Angeles, nothing exported, then Xero's (an Australian company) set up
    without naming a zone: it takes Los Angeles, the organisation's one zone, not its company's Sydney."""
    from tests.integration.test_exports import setup_xero

    setup_qbo(api, sandboxes)
    qbo = {"enabled": True, "start_date": "2026-11-01", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=qbo))
    ok(api.call("POST", "/integrations/qbo/disconnect"))
    setup_xero(api, sandboxes)
    xero = ok(
        api.call(
            "PUT",
            "/integrations/xero/sales-tracking",
            json_body={"enabled": True, "start_date": "2026-11-01"},
        )
    )
    assert xero["time_zone"] == "America/Los_Angeles"
    assert {t["time_zone"] for t in ok(api.call("GET", "/sales/status"))} == {"America/Los_Angeles"}
