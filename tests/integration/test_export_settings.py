"""Export settings through the real routes: accounts validated against the synced chart, field by field;
QBO inventory mode only where the company can use it; Xero always journals."""

from __future__ import annotations

from typing import Any

from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_exports import QBO_ACCOUNTS, ok, setup_qbo, setup_xero


def chart(api: Api, provider: str) -> dict[str, str]:
    """Account code -> account id, after a sync."""
    response = api.call("POST", f"/integrations/{provider}/sync/accounts")
    assert response.status == 200, response.body
    return {a["code"]: a["account_id"] for a in response.json()["accounts"]}


def qbo_accounts(ids: dict[str, str], **changes: str | None) -> dict[str, str | None]:
    accounts = {
        "build_debit": ids["1310"],
        "build_credit": ids["1320"],
        "receiving_debit": ids["1320"],
        "receiving_credit": ids["2150"],
        "waste": ids["6150"],
        "cogs": ids["5000"],
    }
    return {**accounts, **changes}


def put(api: Api, provider: str, mode: str, accounts: dict[str, Any]) -> Any:
    return api.call(
        "PUT", f"/integrations/{provider}/export-settings", json_body={"mode": mode, "accounts": accounts}
    )


def test_qbo_journal_settings_are_stored_and_shown_with_account_names(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    before = api.call("GET", "/integrations/qbo/export-settings").json()
    assert before["configured"] is False and before["accounts"]["waste"] is None
    ids = chart(api, "qbo")
    saved = put(api, "qbo", "journals", qbo_accounts(ids))
    assert saved.status == 200, saved.body
    shown = api.call("GET", "/integrations/qbo/export-settings").json()
    assert shown["configured"] is True and shown["mode"] == "journals"
    assert shown["accounts"]["waste"] == {
        "account_id": ids["6150"],
        "code": "6150",
        "name": "Waste and Scrap",
    }
    assert shown["accounts"]["adjustment"] is None


def test_each_unusable_account_is_refused_naming_its_field(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    ids = chart(api, "qbo")
    refused = put(
        api,
        "qbo",
        "journals",
        qbo_accounts(
            ids,
            waste=ids["4000"],
            build_debit=ids["5000"],
            receiving_credit=ids["2190"],
            cogs=None,
            adjustment=ids["5010"],
        ),
    )
    assert refused.status == 400
    message = refused.json()["message"]
    assert (
        "accounts.waste: '4000 Sales of Product Income' is a revenue account; choose a cost of goods sold or "
        "expense account" in message
    )
    assert (
        "accounts.build_debit: '5000 Cost of Goods Sold' is a cost of goods sold account; choose an asset"
        in message
    )
    assert "accounts.receiving_credit: '2190 Old Freight Clearing' is archived or inactive" in message
    assert "accounts.cogs: choose an account" in message
    assert "accounts.adjustment: the adjustment account is used only in inventory mode" in message
    assert "accounts.build_credit" not in message
    assert api.call("GET", "/integrations/qbo/export-settings").json()["configured"] is False
    unknown = put(api, "qbo", "journals", {"waste": "1", "typo_account": "2"})
    assert unknown.status == 400 and "typo_account" in unknown.json()["message"]


def test_settings_read_a_chart_that_was_never_synced(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    ids = {
        code: str(i)
        for i, code in enumerate(
            ("1300", "5000", "5010", "2000", "2150", "4000", "6150", "2190", "3000", "1310", "1320"), start=1
        )
    }
    saved = put(api, "qbo", "journals", qbo_accounts(ids))  # ids as QBO numbers them, chosen in the app
    assert saved.status == 200, saved.body
    assert len(api.call("GET", "/integrations/qbo/accounts").json()) == 14


def test_qbo_inventory_mode_needs_the_adjustment_account_and_a_capable_company(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    ids = chart(api, "qbo")
    missing = put(api, "qbo", "inventory_adjustments", qbo_accounts(ids))
    assert missing.status == 400 and "accounts.adjustment: choose an account" in missing.json()["message"]
    settings = qbo_accounts(ids, adjustment=ids["5010"])
    assert put(api, "qbo", "inventory_adjustments", settings).status == 200

    sandboxes.qbo.update_company(DEMO_REALM_ID, plan="Essentials")
    refused = put(api, "qbo", "inventory_adjustments", settings)
    assert refused.status == 400
    assert (
        "mode: QuickBooks Online inventory mode is not available: inventory adjustments need QuickBooks "
        "Online Plus or Advanced in the US (this company: QuickBooks Online Essentials, US)"
        in refused.json()["message"]
    )

    sandboxes.qbo.update_company(DEMO_REALM_ID, plan="Advanced", inventory_tracking=False)
    refused = put(api, "qbo", "inventory_adjustments", settings)
    assert "inventory tracking (track quantity on hand) is turned off" in refused.json()["message"]
    assert api.call("GET", "/integrations/qbo/export-settings").json()["mode"] == "inventory_adjustments"


def test_xero_is_always_journals_and_refuses_its_tracked_inventory_account(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    ids = chart(api, "xero")
    accounts = {
        "build_debit": ids["632"],
        "build_credit": ids["631"],
        "receiving_debit": ids["631"],
        "receiving_credit": ids["820"],
        "waste": ids["480"],
        "cogs": ids["310"],
    }
    inventory = put(api, "xero", "inventory_adjustments", {**accounts, "adjustment": ids["480"]})
    assert inventory.status == 400
    assert "mode: Xero exports are always Partsemble-only journals" in inventory.json()["message"]
    tracked = put(api, "xero", "journals", {**accounts, "receiving_debit": ids["634"]})
    assert (
        "accounts.receiving_debit: '634 Tracked Inventory' is Xero's tracked inventory account"
        in tracked.json()["message"]
    )
    archived = put(api, "xero", "journals", {**accounts, "build_credit": ids["639"]})
    assert (
        "accounts.build_credit: '639 Old Stock Adjustments' is archived or inactive"
        in archived.json()["message"]
    )
    saved = put(api, "xero", "journals", accounts)
    assert saved.status == 200, saved.body
    assert saved.json()["accounts"]["cogs"]["name"] == "Cost of Goods Sold"


def test_xero_refuses_its_receivable_and_payable_system_accounts_with_the_way_out(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    ids = chart(api, "xero")
    synced = {a["code"]: a for a in api.call("GET", "/integrations/xero/accounts").json()}
    assert (synced["800"]["system_account"], synced["610"]["system_account"]) == ("CREDITORS", "DEBTORS")
    accounts = {
        "build_debit": ids["632"],
        "build_credit": ids["631"],
        "receiving_debit": ids["610"],
        "receiving_credit": ids["800"],
        "waste": ids["480"],
        "cogs": ids["310"],
    }
    refused = put(api, "xero", "journals", accounts)
    assert refused.status == 400
    problems = {d["field"]: d["problem"] for d in refused.json()["details"]}
    assert set(problems) == {"accounts.receiving_credit", "accounts.receiving_debit"}
    assert problems["accounts.receiving_credit"] == (
        "'800 Accounts Payable' is Xero's Accounts Payable system account (CREDITORS), which manual journals "
        "can't post to; use a receiving clearing account instead (a current liability such as 'Goods "
        "received not invoiced')"
    )
    assert problems["accounts.receiving_debit"].startswith(
        "'610 Accounts Receivable' is Xero's Accounts Receivable system account (DEBTORS)"
    )
    assert api.call("GET", "/integrations/xero/export-settings").json()["configured"] is False
    fixed = put(
        api, "xero", "journals", {**accounts, "receiving_debit": ids["630"], "receiving_credit": ids["820"]}
    )
    assert fixed.status == 200, fixed.body


def test_qbo_refuses_accounts_receivable_but_takes_accounts_payable(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    ids = chart(api, "qbo")
    refused = put(api, "qbo", "journals", qbo_accounts(ids, receiving_debit=ids["1200"]))
    assert refused.status == 400
    assert refused.json()["details"] == [
        {
            "field": "accounts.receiving_debit",
            "problem": "'1200 Accounts Receivable (A/R)' is Accounts Receivable, where QuickBooks Online "
            "needs a customer on every journal line; choose an asset account (inventory)",
        }
    ]
    assert put(api, "qbo", "journals", qbo_accounts(ids, receiving_credit=ids["2000"])).status == 200


def test_xero_journals_warn_when_xero_books_cost_of_goods_sold_for_a_linked_tracked_item(
    api: Api, sandboxes: Sandboxes
) -> None:
    """Xero books COGS itself for its tracked inventory items; Partsemble's journals would count it twice."""
    setup_xero(api, sandboxes)  # links untracked items only
    assert ok(api.call("GET", "/integrations/xero/export-settings"))["warnings"] == []
    items = {i["sku"]: i["item_id"] for i in ok(api.call("GET", "/integrations/xero/items"))["items"]}
    body = {"provider": "xero", "item_ids": [items["KIT-STARTER"]]}  # Xero tracks it (an asset account)
    ok(api.call("POST", "/products/import-from-provider", json_body=body))
    (warning,) = ok(api.call("GET", "/integrations/xero/export-settings"))["warnings"]
    assert "Xero tracks inventory for 1 linked item(s) (KIT-STARTER)" in warning
    assert "make them untracked items in Xero" in warning


def test_settings_need_a_connection(api: Api, sandboxes: Sandboxes) -> None:
    refused = put(api, "qbo", "journals", {})
    assert refused.status == 409


def test_qbo_journals_warn_when_quickbooks_books_cost_of_goods_sold_for_linked_items(
    api: Api, sandboxes: Sandboxes
) -> None:
    """QuickBooks books COGS itself for the items it tracks; journals would count it a second time."""
    setup_qbo(api, sandboxes)  # links the demo company's tracked inventory items, in journals mode
    (warning,) = ok(api.call("GET", "/integrations/qbo/export-settings"))["warnings"]
    assert "QuickBooks tracks quantity on hand for 4 linked item(s)" in warning
    assert all(sku in warning for sku in ("FG-SK-OAK", "FG-WB-20", "RM-ALU-01", "RM-BOLT-M6"))
    assert "inventory adjustments mode" in warning
    settings_only = ok(api.call("GET", "/integrations/qbo/export-settings?warnings=false"))
    assert settings_only["warnings"] is None and settings_only["mode"] == "journals"  # the catalog not read

    quantities = {"mode": "inventory_adjustments", "accounts": {**QBO_ACCOUNTS, "adjustment": "3"}}
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=quantities))
    answer = ok(api.call("GET", "/integrations/qbo/export-settings"))
    assert answer["warnings"] == []  # QuickBooks values the stock and books COGS: nothing is counted twice
