"""Disconnecting revokes at the provider, deletes the token ciphertext and keeps everything else;
reconnecting the same company resumes; another company needs an explicit switch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import boto3
import httpx
import pytest

from infra.local.poller import Poller
from infra.local.scheduler import Scheduler
from infra.local.stack import LocalStack
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.qbo_books import Company
from infra.sandboxes.qbo_demo import ACCOUNTS, BRACKET_20, DEMO_PASSWORD, DEMO_REALM_ID, DEMO_USERNAME
from infra.sandboxes.xero_demo import AU_TENANT_ID
from shared.services import tokens
from shared.store import connections as store
from tests.conftest import QBO_BASE, XERO_BASE, Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_connect import status_of


def _stored_access_token(provider: str) -> str:
    connection = store.get_connection("org-a", provider)
    assert connection is not None
    asker = tokens.asking(connection)
    grant = store.get_grant(asker.grant_id)
    assert grant is not None
    return tokens.stored_tokens(grant, asker).access_token


def _qbo_company_info(sandboxes: Sandboxes, token: str) -> httpx.Response:
    with httpx.Client(transport=sandboxes.qbo.transport(), base_url=QBO_BASE) as client:
        return client.get(
            f"/v3/company/{DEMO_REALM_ID}/companyinfo/{DEMO_REALM_ID}",
            headers={"authorization": f"Bearer {token}", "accept": "application/json"},
        )


def test_qbo_disconnect_revokes_deletes_tokens_and_keeps_history(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    connection = store.get_connection("org-a", "qbo")
    assert connection is not None and connection.grant_id is not None
    grant_id = connection.grant_id
    token = _stored_access_token("qbo")
    assert _qbo_company_info(sandboxes, token).status_code == 200

    response = api.call("POST", "/integrations/qbo/disconnect")
    assert response.status == 200
    assert response.json()["status"] == "disconnected"
    assert response.json()["company_name"] == "Partsemble Demo Manufacturing (US)"  # history kept
    assert store.get_grant(grant_id) is None  # the ciphertext is gone
    assert _qbo_company_info(sandboxes, token).status_code == 401  # revoked at Intuit
    assert api.call("POST", "/integrations/qbo/disconnect").status == 404

    connect(api, sandboxes, "qbo")  # the same company again resumes on the same history
    view = status_of(api, "qbo")
    assert (view["status"], view["tenant_id"]) == ("connected", DEMO_REALM_ID)


def test_xero_disconnect_removes_the_tenant_connection_and_revokes_the_unused_grant(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])
    token = _stored_access_token("xero")
    assert api.call("POST", "/integrations/xero/disconnect").json()["status"] == "disconnected"
    with httpx.Client(transport=sandboxes.xero.transport(), base_url=XERO_BASE) as client:
        listed = client.get("/connections", headers={"authorization": f"Bearer {token}"})
    assert AU_TENANT_ID not in {c["tenantId"] for c in listed.json()}
    assert all(
        g.revoked for g in sandboxes.xero.identity.grants.values() if g.client_id == "test-xero-client"
    )
    assert all(
        c.tenant_id != AU_TENANT_ID or not c.active for c in sandboxes.xero.identity.connections.values()
    )


def test_connecting_a_different_company_needs_an_explicit_switch(api: Api, sandboxes: Sandboxes) -> None:
    second = sandboxes.qbo.add_company("Second Widgets LLC", country="US", plan="Plus")
    sandboxes.qbo.add_user(DEMO_USERNAME, DEMO_PASSWORD, [DEMO_REALM_ID, second.realm_id])
    connect(api, sandboxes, "qbo", choose=[DEMO_REALM_ID])
    api.call("POST", "/integrations/qbo/disconnect")

    refused = connect(api, sandboxes, "qbo", choose=[second.realm_id])
    assert refused.page.status == 409
    assert "Partsemble holds data from Partsemble Demo Manufacturing (US)" in refused.text
    assert status_of(api, "qbo")["status"] == "disconnected"

    switched = connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True)
    assert switched.page.status == 200
    view: dict[str, Any] = status_of(api, "qbo")
    assert (view["status"], view["company_name"]) == ("connected", "Second Widgets LLC")


def test_xero_disconnect_keeps_the_same_persons_other_organisation_connected(
    api: Api, sandboxes: Sandboxes
) -> None:
    from infra.sandboxes.xero_demo import NZ_TENANT_ID

    connect(api, sandboxes, "xero", organisation="org-a", choose=[AU_TENANT_ID])
    connect(api, sandboxes, "xero", organisation="org-b", choose=[NZ_TENANT_ID])  # same Xero login
    assert (
        api.call("POST", "/integrations/xero/disconnect", organisation="org-a").json()["status"]
        == "disconnected"
    )

    other = store.get_connection("org-b", "xero")
    assert other is not None
    fresh, _ = tokens.fresh_tokens(tokens.asking(other))
    assert (
        tokens.provider("xero").check_tenant(fresh.access_token, tokens.tenant_of(other)).tenant_id
        == NZ_TENANT_ID
    )
    assert all(
        not c.active for c in sandboxes.xero.identity.connections.values() if c.tenant_id == AU_TENANT_ID
    )


def test_xero_disconnect_keeps_a_tenant_connection_another_organisation_uses(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "xero", organisation="org-a", choose=[AU_TENANT_ID])
    connect(api, sandboxes, "xero", organisation="org-b", choose=[AU_TENANT_ID])  # same login, same tenant
    a, b = store.get_connection("org-a", "xero"), store.get_connection("org-b", "xero")
    assert a is not None and b is not None
    assert a.xero_connection_id == b.xero_connection_id  # one Xero connection for both
    b_grant = b.grant_id
    assert b_grant is not None

    response = api.call("POST", "/integrations/xero/disconnect", organisation="org-b")

    assert response.status == 200 and response.json()["status"] == "disconnected"
    assert store.get_grant(b_grant) is None  # org-b's tokens are gone
    fresh, _ = tokens.fresh_tokens(tokens.asking(a))
    tenant = tokens.provider("xero").check_tenant(fresh.access_token, tokens.tenant_of(a))
    assert tenant.tenant_id == AU_TENANT_ID  # org-a still reaches its tenant
    assert any(c.active for c in sandboxes.xero.identity.connections.values() if c.tenant_id == AU_TENANT_ID)
    assert status_of(api, "xero")["status"] == "connected"  # org-a, as the API shows it

    api.call("POST", "/integrations/xero/disconnect", organisation="org-a")  # the last user removes it
    assert all(
        not c.active for c in sandboxes.xero.identity.connections.values() if c.tenant_id == AU_TENANT_ID
    )


@pytest.mark.parametrize("status", ["connected", "expired"])
def test_a_connection_stored_before_the_tenant_index_is_listed_by_the_hourly_pass(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, status: str
) -> None:
    """A disconnect finds the organisations sharing a tenant through the tenant's own partition; a row
    written before that partition existed is listed there by the next hourly pass, an expired one too (it
    still counts as using the tenant, and the pass queues no message for it)."""
    from shared.aws import table
    from shared.store.keys import org_pk, tenant_pk

    connect(api, sandboxes, "xero", organisation="org-a", choose=[AU_TENANT_ID])
    connect(api, sandboxes, "xero", organisation="org-b", choose=[AU_TENANT_ID])  # same login, same tenant
    assert sorted(store.organisations_of_tenant("xero", AU_TENANT_ID)) == ["org-a", "org-b"]
    table().delete_item(Key={"pk": tenant_pk("xero", AU_TENANT_ID), "sk": org_pk("org-a")})  # as before
    store.update_connection("org-a", "xero", {"tenant_indexed": False, "status": status})
    assert store.organisations_of_tenant("xero", AU_TENANT_ID) == ["org-b"]

    Scheduler(aws).fire("SalesPullFunction")
    Poller(aws).drain()

    assert sorted(store.organisations_of_tenant("xero", AU_TENANT_ID)) == ["org-a", "org-b"]
    api.call("POST", "/integrations/xero/disconnect", organisation="org-b")  # org-a still uses it
    assert any(c.active for c in sandboxes.xero.identity.connections.values() if c.tenant_id == AU_TENANT_ID)


def test_after_a_switch_to_another_company_the_old_accounts_and_sales_cursor_are_not_used(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """QBO account ids are small numbers, so the old company's mapping names unrelated accounts in the new
    one: the settings show as not chosen (with a warning), an export fails saying so instead of posting,
    the books check asks for the accounts, and the sales pull starts over from the start date."""
    from tests.integration.test_exports import ok, setup_qbo

    product = setup_qbo(api, sandboxes)["bolt"]
    ok(
        api.call(
            "PUT", "/integrations/qbo/sales-tracking", json_body={"enabled": True, "start_date": "2026-11-02"}
        )
    )
    api.pull_sales()
    assert ok(api.call("GET", "/sales/status"))[0]["cursor"] is not None
    second = sandboxes.qbo.add_company("Second Widgets LLC", country="US", plan="Plus")
    sandboxes.qbo.add_user(DEMO_USERNAME, DEMO_PASSWORD, [DEMO_REALM_ID, second.realm_id])
    api.call("POST", "/integrations/qbo/disconnect")
    assert connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True).page.status == 200

    settings = ok(api.call("GET", "/integrations/qbo/export-settings"))
    assert settings["configured"] is False, settings
    assert "chosen for another QuickBooks Online company" in settings["warnings"][0]
    assert ok(api.call("GET", "/sales/status"))[0]["cursor"] is None  # read again from the start date
    line = {"product_id": product, "quantity": "10", "unit_cost": "12.50"}
    body = {"received_at": "2026-11-20T09:00:00Z", "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()
    (export,) = [e for e in ok(api.call("GET", "/exports"))["items"] if e["status"] != "posted"]
    assert export["status"] == "failed" and "another QuickBooks Online company" in export["last_error"]
    assert not sandboxes.qbo.list_records(second.realm_id, "JournalEntry")  # nothing in unrelated accounts
    refused = api.call("GET", "/reconciliation")
    assert refused.status == 409 and "choose the export accounts" in refused.body.decode()


def test_receipts_recorded_while_disconnected_wait_and_post_once_on_reconnecting(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """A deliberate disconnect parks exports as waiting (not failed for a person to retry one by one), and
    connecting the same company again resumes them."""
    from tests.integration.test_exports import ok, setup_qbo

    product = setup_qbo(api, sandboxes)["bolt"]
    api.call("POST", "/integrations/qbo/disconnect")
    line = {"product_id": product, "quantity": "4", "unit_cost": "2.50"}
    for n in range(2):
        body = {"receipt_id": f"R-OFF-{n}", "received_at": "2026-11-20T09:00:00Z", "lines": [line]}
        ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()
    waiting = ok(api.call("GET", "/exports"))["items"]
    assert {e["status"] for e in waiting} == {"waiting"}, waiting
    assert "not connected" in waiting[0]["last_error"]
    retried = api.call("POST", f"/exports/{waiting[0]['export_id']}/retry")  # connecting resumes it
    assert retried.status == 409 and "not connected" in retried.json()["message"], retried.body

    connect(api, sandboxes, "qbo")
    Poller(aws).drain()
    posted = ok(api.call("GET", "/exports"))["items"]
    assert {e["status"] for e in posted} == {"posted"}, posted
    journals = sandboxes.qbo.list_records(DEMO_REALM_ID, "JournalEntry")
    assert sorted(j["DocNumber"] for j in journals if j.get("DocNumber", "").startswith("PS-")) == sorted(
        e["export_id"] for e in posted
    )


def test_after_a_switch_the_old_companys_items_are_not_used_and_its_sales_keep_their_costs(
    api: Api, sandboxes: Sandboxes
) -> None:
    """QBO numbers each company's items and invoices on their own: after a switch, no product stays linked to
    an item id of the company before (that id is another item, or nothing, in the new one), the items and
    chart read from it are gone, the new company's invoice numbered as an old one is a document of its own,
    and the old company's sales keep their products and costs; a sync links the products again by SKU."""
    from tests.integration.test_margins import by_number, ok, products_by_sku
    from tests.integration.test_sales_pull import qbo_invoice

    connect(api, sandboxes, "qbo")
    bracket = products_by_sku(api, "qbo", [BRACKET_20])["FG-WB-20"]
    ok(api.call("POST", "/integrations/qbo/sync/accounts"))
    line = {"product_id": bracket, "quantity": "10", "unit_cost": "2.00"}
    ok(api.call("POST", "/receipts", json_body={"received_at": "2026-11-03T09:00:00Z", "lines": [line]}), 201)
    tracking = {"enabled": True, "start_date": "2026-11-02"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    sold = qbo_invoice(sandboxes, "2001", "2026-11-10", 3)
    api.pull_sales()
    assert Decimal(by_number(ok(api.call("GET", "/margins")))["2001"]["figures"]["cogs"]) == Decimal("6.00")

    qbo = sandboxes.qbo
    second = qbo.add_company("Second Widgets LLC", country="US", plan="Plus")
    qbo.add_user(DEMO_USERNAME, DEMO_PASSWORD, [DEMO_REALM_ID, second.realm_id])
    income = qbo.create_record(
        second.realm_id,
        "Account",
        {"Name": "Sales", "AccountType": "Income", "AccountSubType": "SalesOfProductIncome"},
    )
    customer = qbo.create_record(second.realm_id, "Customer", {"DisplayName": "Dockside Ltd"})
    item = qbo.create_record(
        second.realm_id,
        "Item",
        {
            "Name": "Bracket 20",
            "Type": "NonInventory",
            "Sku": "FG-WB-20",
            "IncomeAccountRef": {"value": income["Id"]},
        },
    )

    def invoice(number: str, day: str, qty: int) -> dict[str, Any]:
        detail = {"ItemRef": {"value": item["Id"]}, "Qty": qty, "UnitPrice": "5.00"}
        body = {
            "DocNumber": number,
            "TxnDate": day,
            "CustomerRef": {"value": customer["Id"]},
            "Line": [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}],
        }
        return qbo.create_record(second.realm_id, "Invoice", body)

    while invoice("OLD", "2026-10-01", 1)["Id"] != str(int(sold["Id"]) - 1):  # before the start date
        pass
    assert invoice("3001", "2026-11-12", 2)["Id"] == sold["Id"]  # the same number as the old company's sale

    api.call("POST", "/integrations/qbo/disconnect")
    assert connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True).page.status == 200
    (product,) = [p for p in ok(api.call("GET", "/products"))["items"] if p["product_id"] == bracket]
    assert product["provider_links"] == {} and product["former_links"] == {f"qbo:{DEMO_REALM_ID}": BRACKET_20}
    assert ok(api.call("GET", "/integrations/qbo/items"))["items"] == []
    assert ok(api.call("GET", "/integrations/qbo/accounts")) == []

    api.pull_sales()
    report = by_number(ok(api.call("GET", "/margins")))
    assert Decimal(report["2001"]["figures"]["cogs"]) == Decimal("6.00")  # still costed, its product kept
    assert [u["item"] for u in report["3001"]["unmapped"]] == [item["Id"]]  # no old link maps it

    ok(api.call("POST", "/integrations/qbo/sync/items"))  # linked again, by SKU, to the new company's item
    report = by_number(ok(api.call("GET", "/margins")))
    assert Decimal(report["3001"]["figures"]["cogs"]) == Decimal("4.00") and not report["3001"]["unmapped"]
    assert Decimal(report["2001"]["figures"]["cogs"]) == Decimal("6.00")
    (product,) = [p for p in ok(api.call("GET", "/products"))["items"] if p["product_id"] == bracket]
    assert product["provider_links"] == {"qbo": item["Id"]}


def second_company(qbo: QboSandbox, chart: Iterable[tuple[str, str, str, str, bool]] = ACCOUNTS) -> Company:
    """A second QBO company the demo user may choose, with the demo's accounts made in ``chart``'s order (QBO
    numbers each company's accounts from 1, so the order sets their ids)."""
    company = qbo.add_company("Second Widgets LLC", country="US", plan="Plus")
    qbo.add_user(DEMO_USERNAME, DEMO_PASSWORD, [DEMO_REALM_ID, company.realm_id])
    for name, kind, sub_type, number, active in chart:
        fields = {"Name": name, "AccountType": kind, "AccountSubType": sub_type, "AcctNum": number}
        qbo.create_record(company.realm_id, "Account", {**fields, "Active": active})
    return company


def account_ids(qbo: QboSandbox, realm: str) -> dict[str, str]:
    """A company's account ids by name."""
    return {a["Name"]: a["Id"] for a in qbo.list_records(realm, "Account")}


def _switch_to_a_company_with_the_demo_chart(api: Api, sandboxes: Sandboxes) -> Company:
    """A second QBO company whose chart is the demo's, made in the same order, so its accounts have the same
    ids; the organisation switches to it and syncs its chart."""
    from tests.integration.test_exports import ok

    second = second_company(sandboxes.qbo)
    api.call("POST", "/integrations/qbo/disconnect")
    assert connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True).page.status == 200
    ok(api.call("POST", "/integrations/qbo/sync/accounts"))
    return second


def back_to_the_demo_company(api: Api, sandboxes: Sandboxes) -> None:
    """The organisation switches back to the demo company, syncs its chart and chooses journals there."""
    from tests.integration.test_exports import QBO_ACCOUNTS, ok

    api.call("POST", "/integrations/qbo/disconnect")
    assert connect(api, sandboxes, "qbo", choose=[DEMO_REALM_ID], switch_company=True).page.status == 200
    ok(api.call("POST", "/integrations/qbo/sync/accounts"))
    settings = {"mode": "journals", "accounts": QBO_ACCOUNTS}
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=settings))


@pytest.mark.parametrize("fault", ["503", "closed period"])
def test_an_export_planned_for_the_company_before_a_switch_is_not_posted_to_the_new_one(
    api: Api, sandboxes: Sandboxes, aws: LocalStack, fault: str
) -> None:
    """A receipt's journal is planned on the old company's accounts, and QuickBooks answers 503 (it may have
    reached that company) or refuses it (a closed period: it did not); the organisation then switches to a
    company whose chart has the same account ids (QBO numbers each company's accounts from 1). The retry does
    not post the old company's plan there: it fails saying so. One refused there is planned again for the new
    company by a retry by hand and posted once; one that may be in the old company is not (it would be in
    both, and the old company's books would drop it): its retry is refused until that company is connected
    again, where it posts once."""
    from tests.integration.test_export_faults import WRITES, deliver, invoke, receive
    from tests.integration.test_exports import QBO_ACCOUNTS, ok, setup_qbo

    product = setup_qbo(api, sandboxes)["bolt"]
    line = {"product_id": product, "quantity": "10", "unit_cost": "12.50"}
    ok(api.call("POST", "/receipts", json_body={"received_at": "2026-11-20T09:00:00Z", "lines": [line]}), 201)
    if fault == "503":
        sandboxes.qbo.inject("503", method="POST", path_prefix=WRITES["qbo"], count=1)
    else:
        sandboxes.qbo.update_company(DEMO_REALM_ID, closing_date=date(2026, 11, 30))
    (message,) = receive(aws)
    if fault == "503":
        assert invoke(aws, [message]) == {message["MessageId"]}  # planned, then refused: it comes back later
    else:
        assert invoke(aws, [message]) == set()  # failed for good

    qbo, second = sandboxes.qbo, _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    settings = {"mode": "journals", "accounts": QBO_ACCOUNTS}
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=settings))

    if fault == "503":
        boto3.client("sqs").change_message_visibility(
            QueueUrl=aws.physical("ExportQueue"), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
        deliver(aws)
        (export,) = ok(api.call("GET", "/exports"))["items"]
        assert (
            export["status"] == "failed"
            and "planned for another QuickBooks Online company" in export["last_error"]
        )
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert not qbo.list_records(second.realm_id, "JournalEntry")

    retried = api.call("POST", f"/exports/{export['export_id']}/retry")
    if fault == "503":
        assert retried.status == 409 and "may have reached it" in retried.json()["message"], retried.body
        back_to_the_demo_company(api, sandboxes)
        ok(api.call("POST", f"/exports/{export['export_id']}/retry"))
    else:
        ok(retried)
    deliver(aws)
    (export,) = ok(api.call("GET", "/exports"))["items"]
    assert export["status"] == "posted", export
    (journal,) = [
        *qbo.list_records(second.realm_id, "JournalEntry"),
        *qbo.list_records(DEMO_REALM_ID, "JournalEntry"),
    ]
    assert journal["Id"] == export["document_id"]
    assert Decimal(str(journal["TotalAmt"])) == Decimal("125.00")
    if fault == "503":  # posted where it was planned
        assert not qbo.list_records(second.realm_id, "JournalEntry")
    else:  # planned anew on this company's accounts
        assert not qbo.list_records(DEMO_REALM_ID, "JournalEntry")


def test_a_company_connected_after_a_switch_chooses_its_own_posting_mode(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """Receipts posted as journals fix the old company's mode; the new company (same chart, so same account
    ids) may choose inventory adjustments, and the old company's mode stays fixed if it comes back."""
    from tests.integration.test_exports import QBO_ACCOUNTS, ok, setup_qbo

    product = setup_qbo(api, sandboxes)["bolt"]
    line = {"product_id": product, "quantity": "10", "unit_cost": "12.50"}
    ok(api.call("POST", "/receipts", json_body={"received_at": "2026-11-20T09:00:00Z", "lines": [line]}), 201)
    Poller(aws).drain()
    inventory = {"mode": "inventory_adjustments", "accounts": {**QBO_ACCOUNTS, "adjustment": "3"}}
    refused = api.call("PUT", "/integrations/qbo/export-settings", json_body=inventory)
    assert refused.status == 400 and "can't change once exports are planned" in refused.body.decode()

    _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    assert ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=inventory))["mode"] == (
        "inventory_adjustments"
    )

    api.call("POST", "/integrations/qbo/disconnect")  # back to the first company: journals, as planned there
    assert connect(api, sandboxes, "qbo", choose=[DEMO_REALM_ID], switch_company=True).page.status == 200
    ok(api.call("POST", "/integrations/qbo/sync/accounts"))
    refused = api.call("PUT", "/integrations/qbo/export-settings", json_body=inventory)
    assert refused.status == 400 and "can't change once exports are planned" in refused.body.decode()


def test_the_books_check_after_a_switch_names_what_was_posted_to_the_company_before(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """A receipt posted to the old company is in the stock ledger but not in the new company's books: the
    books check of the new company names it (not as someone else's entries), and nothing is unexplained."""
    from tests.integration.test_exports import QBO_ACCOUNTS, ok, setup_qbo

    product = setup_qbo(api, sandboxes)["bolt"]
    line = {"product_id": product, "quantity": "10", "unit_cost": "12.50"}
    for day in ("2026-11-20", "2026-11-21"):  # one posted to each company
        body = {"received_at": f"{day}T09:00:00Z", "lines": [line]}
        ok(api.call("POST", "/receipts", json_body=body), 201)
        Poller(aws).drain()
        if day == "2026-11-20":
            _switch_to_a_company_with_the_demo_chart(api, sandboxes)
            settings = {"mode": "journals", "accounts": QBO_ACCOUNTS}
            ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=settings))
    assert {e["status"] for e in ok(api.call("GET", "/exports"))["items"]} == {"posted"}

    books = ok(api.call("GET", "/reconciliation"))
    assert books["status"] == "explained", books
    (stock,) = [a for a in books["accounts"] if a["account_id"] == QBO_ACCOUNTS["receiving_debit"]]
    assert [Decimal(stock[k]) for k in ("provider_balance", "posted", "subledger")] == [
        Decimal("125.00"),
        Decimal("125.00"),
        Decimal("250.00"),
    ]
    assert [(r["kind"], Decimal(r["amount"])) for r in stock["reasons"]] == [
        ("other_company", Decimal("-125.00"))
    ]
    assert all(Decimal(a["unexplained"]) == 0 for a in books["accounts"])


def test_after_a_switch_the_new_companys_books_hold_only_what_was_posted_to_it(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """The new company's chart has other account ids (Xero's are GUIDs; QBO numbers each company's own):
    what was posted to the old company is not moved into the new one's accounts by a true-up, neither at
    the new company's first export nor when a back-dated receipt re-costs the old company's build. The new
    company's journals hold its own receipts and nothing else, and its books check names the rest."""
    from tests.integration.test_exports import QBO_ACCOUNTS, ok, setup_qbo

    parts = setup_qbo(api, sandboxes)
    line = {"product_id": parts["bolt"], "quantity": "10", "unit_cost": "12.50"}
    ok(api.call("POST", "/receipts", json_body={"received_at": "2026-11-20T09:00:00Z", "lines": [line]}), 201)
    build = {
        "product_id": parts["bracket"],
        "quantity": "1",
        "built_at": "2026-11-20T12:00:00Z",
        "components": [{"product_id": parts["bolt"], "quantity_per_unit": "2"}],
    }
    assert Decimal(ok(api.call("POST", "/builds", json_body=build), 201)["cost"]) == Decimal("25.00")
    Poller(aws).drain()

    qbo = sandboxes.qbo
    second = second_company(qbo, reversed(ACCOUNTS))  # the same names, other ids
    ids = account_ids(qbo, second.realm_id)
    api.call("POST", "/integrations/qbo/disconnect")
    assert connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True).page.status == 200
    ok(api.call("POST", "/integrations/qbo/sync/accounts"))
    names = {a["Id"]: a["Name"] for a in qbo.list_records(DEMO_REALM_ID, "Account")}
    accounts = {role: ids[names[account]] for role, account in QBO_ACCOUNTS.items()}
    settings = {"mode": "journals", "accounts": accounts}
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=settings))

    body = {"received_at": "2026-11-21T09:00:00Z", "lines": [{**line, "unit_cost": "13.00"}]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()
    back_dated = {"received_at": "2026-11-19T09:00:00Z", "lines": [{**line, "unit_cost": "11.00"}]}
    ok(api.call("POST", "/receipts", json_body=back_dated), 201)  # the build now costs 22.00
    Poller(aws).drain()

    assert {e["status"] for e in ok(api.call("GET", "/exports"))["items"]} <= {"posted", "skipped"}
    moved: dict[str, Decimal] = {}
    for journal in qbo.list_records(second.realm_id, "JournalEntry"):
        for posted in journal["Line"]:
            detail = posted["JournalEntryLineDetail"]
            sign = 1 if detail["PostingType"] == "Debit" else -1
            account = detail["AccountRef"]["value"]
            moved[account] = moved.get(account, Decimal(0)) + sign * Decimal(str(posted["Amount"]))
    assert {a: v for a, v in moved.items() if v} == {
        accounts["receiving_debit"]: Decimal("240.00"),  # 130.00 and 110.00: the receipts of this company
        accounts["receiving_credit"]: Decimal("-240.00"),
    }

    books = ok(api.call("GET", "/reconciliation?as_of=2026-11-30"))
    assert books["status"] == "explained" and all(Decimal(a["unexplained"]) == 0 for a in books["accounts"])
    other = {
        a["account_id"]: [Decimal(r["amount"]) for r in a["reasons"] if r["kind"] == "other_company"]
        for a in books["accounts"]
    }
    # the old company's receipt (125.00) and build at its cost now (22.00), named, not posted here
    assert {a: v for a, v in other.items() if v} == {
        accounts["receiving_debit"]: [Decimal("-103.00")],
        accounts["receiving_credit"]: [Decimal("125.00")],
        accounts["build_debit"]: [Decimal("-22.00")],
    }

    # back to the first company: its books are as it left them, and the build's re-cost is trued up there
    before = {j["Id"] for j in qbo.list_records(DEMO_REALM_ID, "JournalEntry")}
    back_to_the_demo_company(api, sandboxes)
    body = {"received_at": "2026-11-22T09:00:00Z", "lines": [{**line, "unit_cost": "10.00"}]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()
    new = [j for j in qbo.list_records(DEMO_REALM_ID, "JournalEntry") if j["Id"] not in before]
    assert sorted(Decimal(str(j["TotalAmt"])) for j in new) == [Decimal("3.00"), Decimal("100.00")]
    books = ok(api.call("GET", "/reconciliation?as_of=2026-11-30"))
    assert books["status"] == "explained" and all(Decimal(a["unexplained"]) == 0 for a in books["accounts"])


def test_the_books_check_after_a_switch_counts_the_old_companys_earlier_years_once(
    api: Api, sandboxes: Sandboxes, aws: LocalStack
) -> None:
    """Waste (an expense) is compared for the financial year: a QA rejection posted to the old company last
    year is in neither figure of the new company's check, and this year's is named as the old company's."""
    from tests.integration.test_exports import QBO_ACCOUNTS, ok, setup_qbo

    product = setup_qbo(api, sandboxes)["bolt"]
    sandboxes.qbo.update_company(DEMO_REALM_ID, closing_date=None)  # last year open to journals
    line = {"product_id": product, "quantity": "10", "rejected": "2", "unit_cost": "12.50"}
    for day in ("2025-12-20", "2026-11-10"):
        ok(api.call("POST", "/receipts", json_body={"received_at": f"{day}T09:00:00Z", "lines": [line]}), 201)
    Poller(aws).drain()
    _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    settings = {"mode": "journals", "accounts": QBO_ACCOUNTS}
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=settings))
    body = {"received_at": "2026-11-21T09:00:00Z", "lines": [{**line, "rejected": "4"}]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    Poller(aws).drain()

    books = ok(api.call("GET", "/reconciliation?as_of=2026-11-30"))
    assert books["status"] == "explained" and all(Decimal(a["unexplained"]) == 0 for a in books["accounts"])
    assert {e["status"] for e in ok(api.call("GET", "/exports"))["items"]} == {"posted"}
    (waste,) = [a for a in books["accounts"] if a["account_id"] == QBO_ACCOUNTS["waste"]]
    assert [Decimal(waste[k]) for k in ("provider_balance", "posted", "subledger")] == [
        Decimal("50.00"),  # this company's rejection
        Decimal("50.00"),
        Decimal("75.00"),  # and the old company's of this year; last year's in neither
    ]
    assert [(r["kind"], Decimal(r["amount"])) for r in waste["reasons"]] == [
        ("other_company", Decimal("-25.00"))
    ]
    (stock,) = [a for a in books["accounts"] if a["account_id"] == QBO_ACCOUNTS["receiving_debit"]]
    assert [(r["kind"], Decimal(r["amount"])) for r in stock["reasons"]] == [
        ("other_company", Decimal("-200.00"))  # both years: a balance sheet account holds them all
    ]


def test_a_switch_that_fails_part_way_never_leaves_the_new_company_with_the_old_item_links(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A switch whose connection write fails changes nothing; one that fails while the old company's links
    are set aside puts the connection back on the old company, so no export finds the new one with them.
    The person goes on with the old company (a sync), and the switch they retry sets the links aside once."""
    from botocore.exceptions import ClientError

    from shared.domain.books import of_company
    from shared.store import catalog as catalog_store
    from shared.store import sales as sales_store
    from shared.store import settings as settings_store
    from tests.integration.test_margins import products_by_sku

    def throttled(*args: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutItem")

    connect(api, sandboxes, "qbo")
    product = products_by_sku(api, "qbo", [BRACKET_20])["FG-WB-20"]
    second = second_company(sandboxes.qbo)
    tracking = {"enabled": True, "start_date": "2026-11-01", "time_zone": "UTC"}
    assert api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking).status == 200
    api.pull_sales()  # the tracking reads the demo company

    def links() -> tuple[str, str, dict[str, str], dict[str, str]]:
        connection = store.get_connection("org-a", "qbo")
        tracked = sales_store.get_tracking("org-a", "qbo")
        linked = next(p for p in catalog_store.products("org-a") if p.product_id == product)
        return (
            connection.tenant_id or "",  # type: ignore[union-attr]
            tracked.tenant_id or "",  # type: ignore[union-attr]
            linked.provider_links,
            linked.former_links,
        )

    failing_steps = (
        (catalog_store, "products"),  # read before the connection is written
        (store, "put_connection"),
        (catalog_store, "change_links"),  # while the links are set aside
        (settings_store, "unlock_mode"),  # after the sales tracking moved to the new company
    )
    for failing, name in failing_steps:
        with monkeypatch.context() as patch:
            patch.setattr(failing, name, throttled)
            landed = connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True)
            assert landed.page.status >= 500
        connection, tracked, linked, former = links()
        assert (connection, linked, former) == (DEMO_REALM_ID, {"qbo": BRACKET_20}, {}), name  # as it was
        assert of_company(tracked, DEMO_REALM_ID), name  # the sales tracked are the demo company's
        assert status_of(api, "qbo")["status"] == "connected"
    assert api.call("POST", "/integrations/qbo/sync/items").status == 200  # still the old company's
    assert connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True).page.status == 200
    assert links() == (second.realm_id, second.realm_id, {}, {f"qbo:{DEMO_REALM_ID}": BRACKET_20})


def test_a_switch_back_whose_products_were_written_part_way_puts_them_back_and_the_retry_starts_over(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Switching back to a company connected before restores the products' links to it: a failure after
    some products were written puts every product back as it was, so the retry restores each once (doing it
    twice over a restored product would file the restored link as the other company's)."""
    from botocore.exceptions import ClientError

    from infra.sandboxes.qbo_demo import CORNER_BRACE
    from shared.store import catalog as catalog_store
    from tests.integration.test_margins import products_by_sku

    connect(api, sandboxes, "qbo")
    sku = products_by_sku(api, "qbo", [BRACKET_20, CORNER_BRACE])
    second = second_company(sandboxes.qbo)
    made = {
        code: sandboxes.qbo.create_record(
            second.realm_id, "Item", {"Name": code, "Type": "NonInventory", "Sku": code}
        )["Id"]
        for code in ("FG-WB-20", "FG-CB-01")
    }
    assert connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True).page.status == 200
    assert api.call("POST", "/integrations/qbo/sync/items").status == 200  # linked again, by SKU

    def links() -> dict[str, tuple[dict[str, str], dict[str, str]]]:
        return {
            p.sku: (p.provider_links, p.former_links)
            for p in catalog_store.products("org-a")
            if p.product_id in sku.values()
        }

    before = links()
    assert before["FG-WB-20"] == ({"qbo": made["FG-WB-20"]}, {f"qbo:{DEMO_REALM_ID}": BRACKET_20})
    write = catalog_store.change_links

    failures = [1]

    def part_way(organisation_id: str, changes: Iterable[Any]) -> int:  # the first write fails part way
        if not failures:
            return write(organisation_id, changes)
        failures.pop()
        write(organisation_id, list(changes)[:1])
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Update")

    with monkeypatch.context() as patch:
        patch.setattr(catalog_store, "change_links", part_way)
        assert connect(api, sandboxes, "qbo", choose=[DEMO_REALM_ID], switch_company=True).page.status >= 500
    assert links() == before
    assert store.get_connection("org-a", "qbo").tenant_id == second.realm_id  # type: ignore[union-attr]
    assert connect(api, sandboxes, "qbo", choose=[DEMO_REALM_ID], switch_company=True).page.status == 200
    assert links()["FG-WB-20"] == ({"qbo": BRACKET_20}, {f"qbo:{second.realm_id}": made["FG-WB-20"]})
    assert links()["FG-CB-01"] == ({"qbo": CORNER_BRACE}, {f"qbo:{second.realm_id}": made["FG-CB-01"]})


def _while_the_switch_writes_links(
    monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], object], then_fails: bool = False
) -> None:
    """Runs `meanwhile` once, after the switch has read the products whose links it sets aside and before it
    writes them; `then_fails`: that write is then refused (an outage), and the switch puts the links back."""
    from botocore.exceptions import ClientError

    from shared.store import catalog as catalog_store

    write = catalog_store.change_links

    def after_the_other(organisation_id: str, changes: Iterable[Any]) -> int:
        monkeypatch.setattr(catalog_store, "change_links", write)
        read = list(changes)
        meanwhile()
        if then_fails:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Update"
            )
        return write(organisation_id, read)

    monkeypatch.setattr(catalog_store, "change_links", after_the_other)


def _renamed_and_linked_to_xero() -> None:
    """Another request's apply renames the product; another links it to a Xero item."""
    from shared.services import product_files
    from shared.store import catalog as catalog_store

    product_files.import_file("org-a", b"SKU,Name,Unit cost\nFG-WB-20,Bracket 20 mm,2.50\n", "apply")
    [product] = [p for p in catalog_store.products("org-a") if p.sku == "FG-WB-20"]
    catalog_store.link_products("org-a", "xero", {product.product_id: "x-1"}, {})  # it had no Xero link


@pytest.mark.parametrize("then_fails", [False, True], ids=["switched", "put-back"])
def test_a_switch_keeps_what_other_requests_write_to_a_product_after_it_read_it(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, then_fails: bool
) -> None:
    """An apply renames the product and another request links it to a Xero item, after the switch read it:
    the switch (and, refused, its putting back) writes the QuickBooks links it moves only, so the name, the
    cost and the Xero link stay (before, it wrote back each product whole, as read before the others)."""
    from shared.store import catalog as catalog_store
    from tests.integration.test_margins import products_by_sku

    connect(api, sandboxes, "qbo")
    product_id = products_by_sku(api, "qbo", [BRACKET_20])["FG-WB-20"]
    second = second_company(sandboxes.qbo)
    _while_the_switch_writes_links(monkeypatch, _renamed_and_linked_to_xero, then_fails)

    landed = connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True)

    assert (landed.page.status >= 500) is then_fails
    [product] = catalog_store.get_products("org-a", [product_id])
    assert (product.name, product.unit_cost) == ("Bracket 20 mm", Decimal("2.50"))
    if then_fails:
        assert (product.provider_links, product.former_links) == ({"qbo": BRACKET_20, "xero": "x-1"}, {})
    else:
        assert product.provider_links == {"xero": "x-1"}
        assert product.former_links == {f"qbo:{DEMO_REALM_ID}": BRACKET_20}


def test_a_switch_sets_aside_the_link_of_a_product_stored_before_products_had_former_links(api: Api) -> None:
    """Its link is written into a former_links it lacks (given it first), and its other link stays."""
    from shared import aws
    from shared.domain.catalog import Product
    from shared.store import catalog as catalog_store
    from shared.store.keys import org_pk, product_sk

    links = {"qbo": "9", "xero": "x-1"}
    catalog_store.put_products(
        "org-a", [Product(product_id="p-1", sku="P-1", name="Part", provider_links=links)]
    )
    key = {"pk": org_pk("org-a"), "sk": product_sk("p-1")}
    aws.table().update_item(Key=key, UpdateExpression="REMOVE former_links")

    assert catalog_store.forget_company("org-a", "qbo", "realm-1", "realm-2") == 1

    listed = api.call("GET", "/products")
    assert listed.status == 200, listed.body
    [product] = listed.json()["items"]
    assert (product["provider_links"], product["former_links"]) == ({"xero": "x-1"}, {"qbo:realm-1": "9"})


def test_a_switch_whose_process_died_part_way_is_not_used_until_a_reconnect_finishes_it(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies while the old company's links are set aside, after the connection names the new
    company: the connection says the switch did not finish and is not used (no export or sync finds the
    new company with the old company's item ids), and its view asks the person to reconnect, saying why;
    connecting again finishes it, each link set aside once."""
    from shared.store import catalog as catalog_store
    from tests.integration.test_margins import products_by_sku

    connect(api, sandboxes, "qbo")
    product = products_by_sku(api, "qbo", [BRACKET_20])["FG-WB-20"]
    second = second_company(sandboxes.qbo)

    def died(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("the process died part way through the switch")

    with monkeypatch.context() as patch:
        patch.setattr(catalog_store, "change_links", died)
        with pytest.raises(SystemExit):
            connect(api, sandboxes, "qbo", choose=[second.realm_id], switch_company=True)
    unfinished = store.get_connection("org-a", "qbo")
    assert unfinished is not None and unfinished.tenant_id == second.realm_id
    assert unfinished.switching_from == DEMO_REALM_ID
    refused = api.call("POST", "/integrations/qbo/sync/items")
    assert refused.status == 409 and "did not finish" in refused.body.decode(), refused.body
    view = status_of(api, "qbo")  # the page is told to offer Reconnect, and why
    hint = view["reconnect_hint"] or ""
    assert "did not finish" in hint and "Click Reconnect" in hint and second.name in hint, view

    assert connect(api, sandboxes, "qbo", choose=[second.realm_id]).page.status == 200
    assert status_of(api, "qbo")["reconnect_hint"] is None
    finished = store.get_connection("org-a", "qbo")
    assert finished is not None and finished.switching_from is None
    linked = next(p for p in catalog_store.products("org-a") if p.product_id == product)
    assert (linked.provider_links, linked.former_links) == ({}, {f"qbo:{DEMO_REALM_ID}": BRACKET_20})
    assert api.call("POST", "/integrations/qbo/sync/items").status == 200
