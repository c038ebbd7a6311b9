"""Adversarial probes of the books rule when exports are refused for good (4xx) and retried once fixed
(planned anew, true-ups taking back what corrected them), when accounts are remapped between an unknown or
refused export and its retry, and when a day's cost of goods sold (Xero, QBO journals) is lost or refused
while its sales are credited, edited or voided. The checks are those of
``test_probe_exactly_once.assert_exactly_once_and_books``: no export on two documents, the provider holding
what the service's books say it posted, and that being the stock ledger's value of each account."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.poller import Poller
from infra.local.stack import LocalStack
from infra.sandboxes.xero_demo import AU_TENANT_ID
from tests.conftest import Api, Sandboxes
from tests.integration.test_books import Minutes, close_days, minutes_clock, receive, sell_bolts  # noqa: F401
from tests.integration.test_export_faults import deliver, steady_backoff  # noqa: F401
from tests.integration.test_export_faults import receive as receive_messages
from tests.integration.test_exports import ok, setup_qbo, setup_xero
from tests.integration.test_probe_exactly_once import (
    FINISHED_GOODS,
    OTHER_INVENTORY,
    QBO_JOURNALS,
    RECEIVING,
    WRITE,
    assert_exactly_once_and_books,
    build,
    by_kind,
    deactivate,
    export_rows,
    invoke_only,
    qbo_sale,
    remap,
    setup,
    track_xero_sales,
    xero_id,
)

pytestmark = pytest.mark.usefixtures("no_real_sleep")


def a_refused_build(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str, parts: dict[str, str]
) -> Any:
    """A receipt posted, then a build refused for good (its finished goods account inactive): its export."""
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    minutes.next()
    deliver(aws)
    deactivate(sandboxes, provider, FINISHED_GOODS[provider], False)
    build(api, parts, "B", "2026-11-06T09:00:00Z")
    minutes.next()
    deliver(aws)
    (failed,) = by_kind("build")
    assert failed.status == "failed" and not failed.unsure, failed
    return failed


@pytest.mark.parametrize(("provider", "fault"), [("xero", "lost_response")])
def test_a_refused_build_and_its_refused_true_up_are_fixed_and_retried_into_the_ledgers_values(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str, fault: str | None
) -> None:
    """Finished goods made inactive: the build is refused (4xx); a back-dated receipt re-costs it and the
    true-up correcting it (it moves finished goods too) is refused as well. The account is made active again
    and both are retried: the build is planned anew (a true-up takes the first one's correction back), the
    first true-up posts as planned; with ``fault`` every retried write's answer is lost."""
    parts = setup(api, sandboxes, provider)
    sandbox = getattr(sandboxes, provider)
    method, path = WRITE[provider]
    failed = a_refused_build(api, aws, sandboxes, minutes, provider, parts)
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")
    minutes.next()
    deliver(aws)
    (trueup,) = by_kind("trueup")
    assert trueup.status == "failed", trueup
    deactivate(sandboxes, provider, FINISHED_GOODS[provider], True)
    if fault:
        sandbox.inject(fault, method=method, path_prefix=path, count=3)
    ok(api.call("POST", f"/exports/{failed.export_id}/retry"))
    minutes.next()
    deliver(aws)
    ok(api.call("POST", f"/exports/{trueup.export_id}/retry"))
    for _ in range(3):
        minutes.next()
        deliver(aws)
    assert_exactly_once_and_books(sandboxes, provider)


@pytest.mark.parametrize("provider", ["qbo"])
def test_a_refused_build_retried_before_the_true_up_that_corrected_it_posts(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str
) -> None:
    """As above, but the true-up correcting the refused build is still pending (its write timed out) when the
    build is retried and planned anew."""
    parts = setup(api, sandboxes, provider)
    sandbox = getattr(sandboxes, provider)
    method, path = WRITE[provider]
    failed = a_refused_build(api, aws, sandboxes, minutes, provider, parts)
    deactivate(sandboxes, provider, FINISHED_GOODS[provider], True)
    sandbox.inject("lost_response", method=method, path_prefix=path, count=2)  # R-1's, the true-up's
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")
    minutes.next()
    invoke_only(aws, receive_messages(aws))
    ok(api.call("POST", f"/exports/{failed.export_id}/retry"))
    for _ in range(3):
        minutes.next()
        deliver(aws)
    assert_exactly_once_and_books(sandboxes, provider)


@pytest.mark.parametrize(("provider", "fault"), [("qbo", "refused")])
def test_a_remap_between_an_unknown_or_refused_receipt_and_its_retry(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, provider: str, fault: str
) -> None:
    """A receipt's write is lost (it committed on the old account) or refused (a closed period / lock date),
    the receiving account is remapped, another receipt is recorded (its true-up moves the first receipt's
    value to the new account), then the first is retried: each posts once and the books follow the ledger."""
    parts = setup(api, sandboxes, provider)
    sandbox = getattr(sandboxes, provider)
    method, path = WRITE[provider]
    if fault == "refused":
        deactivate(sandboxes, provider, RECEIVING[provider], False)
    else:
        sandbox.inject(fault, method=method, path_prefix=path)
    receive(api, "R-1", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    minutes.next()
    invoke_only(aws, receive_messages(aws))
    new = OTHER_INVENTORY[provider] if provider == "qbo" else xero_id(sandboxes, OTHER_INVENTORY[provider])
    remap(api, provider, "receiving_debit", new)
    receive(api, "R-2", "2026-11-06T09:00:00Z", parts["blank"], "5", "1")
    minutes.next()
    deliver(aws)
    if fault == "refused":
        deactivate(sandboxes, provider, RECEIVING[provider], True)
        for row in export_rows():
            if row.status == "failed":
                ok(api.call("POST", f"/exports/{row.export_id}/retry"))
    for _ in range(3):
        minutes.next()
        deliver(aws)
    assert_exactly_once_and_books(sandboxes, provider)


def test_a_refused_cogs_day_whose_sale_is_then_voided_is_retried_into_nothing(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """Xero: a day's COGS is refused (lock date), its sale is edited (a true-up corrects the refused day),
    then voided (another true-up); once unlocked the retry has nothing to post, and a true-up takes the two
    corrections back: nothing is left on cost of goods sold."""
    parts = setup_xero(api, sandboxes)
    xero = sandboxes.xero
    receive(api, "R-1", "2026-11-02T09:00:00Z", parts["bolt"], "5", "3")
    sell_bolts(sandboxes, "INV-1", "2026-11-10", "4")
    track_xero_sales(api)
    api.pull_sales()
    minutes.next()
    Poller(aws).drain()
    xero.set_lock_dates(AU_TENANT_ID, period_lock_date=datetime(2026, 11, 10).date())
    assert close_days(now=datetime(2026, 11, 11, 8, tzinfo=UTC)) == 1
    minutes.next()
    deliver(aws)
    (cogs,) = by_kind("cogs")
    assert cogs.status == "failed", cogs
    invoice = next(
        i for i in xero.list_records(AU_TENANT_ID, "Invoices") if i.get("InvoiceNumber") == "INV-1"
    )
    xero.clock.advance(60)
    line = {"ItemCode": "BOLT-M8", "Description": "Bolt", "Quantity": "2", "UnitAmount": "20"}
    xero.edit_record(AU_TENANT_ID, "Invoices", invoice["InvoiceID"], {"LineItems": [line]})
    minutes.next()
    api.pull_sales()
    close_days(now=datetime(2026, 11, 12, 8, tzinfo=UTC))
    minutes.next()
    deliver(aws)
    xero.clock.advance(60)
    xero.void_record(AU_TENANT_ID, "Invoices", invoice["InvoiceID"])
    minutes.next()
    api.pull_sales()
    close_days(now=datetime(2026, 11, 12, 9, tzinfo=UTC))
    minutes.next()
    deliver(aws)
    assert [r.status for r in by_kind("trueup")] == ["posted", "posted"], by_kind("trueup")
    xero.set_lock_dates(AU_TENANT_ID)
    ok(api.call("POST", f"/exports/{cogs.export_id}/retry"))
    for _ in range(2):
        minutes.next()
        deliver(aws)
    assert_exactly_once_and_books(sandboxes, "xero")


@pytest.mark.parametrize("fault", ["lost_response"])
def test_qbo_cost_of_goods_sold_and_a_credit_memo_under_unknown_posts(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes, fault: str
) -> None:
    """QBO journals: the day's COGS write has an unknown outcome; before its retry a credit memo for the sale
    and a back-dated receipt re-cost it (a true-up whose write is unknown too): each posts once."""
    bracket = setup_qbo(api, sandboxes)["bracket"]
    receive(api, "R-2", "2026-11-02T09:00:00-08:00", bracket, "6", "0.125")
    qbo_sale(sandboxes, "Invoice", "B-1", "2026-11-10", 4)
    body = {"enabled": True, "start_date": "2026-11-01", "time_zone": "America/Los_Angeles"}
    ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=body))
    api.pull_sales()
    Poller(aws).drain()
    sandboxes.qbo.inject(fault, method="POST", path_prefix=QBO_JOURNALS)
    assert close_days(now=datetime(2026, 11, 11, 15, tzinfo=UTC)) == 1
    invoke_only(aws, receive_messages(aws))
    (cogs,) = by_kind("cogs")
    assert cogs.status == "pending" and cogs.unsure, cogs
    sandboxes.qbo.clock.advance(60)
    qbo_sale(sandboxes, "CreditMemo", "CM-1", "2026-11-11", 1)
    api.pull_sales()
    receive(api, "R-1", "2026-11-01T09:00:00-08:00", bracket, "2", "0.333")
    sandboxes.qbo.inject(fault, method="POST", path_prefix=QBO_JOURNALS, count=2)
    close_days(now=datetime(2026, 11, 12, 15, tzinfo=UTC))
    for _ in range(3):
        deliver(aws)
    close_days(now=datetime(2026, 11, 13, 15, tzinfo=UTC))
    deliver(aws)
    assert_exactly_once_and_books(sandboxes, "qbo")


@pytest.mark.parametrize(("before", "after"), [("5", "4"), ("4", "5")])  # clearing <-> Accounts Payable
def test_a_remap_of_the_receiving_credit_onto_or_off_quickbooks_accounts_payable(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, before: str, after: str
) -> None:
    """QuickBooks refuses a journal line on Accounts Payable without a vendor (6000), and a true-up names
    none: once a receipt is posted, moving the receiving credit onto A/P or off it would leave the true-up
    that moves its balance refused for good (retried as planned, it can never post), the books never
    following the new mapping. The save is refused naming the role, and the books stay whole."""
    parts = setup_qbo(api, sandboxes)
    ok(api.call("POST", "/integrations/qbo/sync/suppliers"))
    remap(api, "qbo", "receiving_credit", before)
    line = {"product_id": parts["bolt"], "quantity": "2", "unit_cost": "1.25"}
    supplier = "orders@northside-metals.test"
    body = {"received_at": "2026-11-05T09:00:00Z", "supplier_email": supplier, "lines": [line]}
    ok(api.call("POST", "/receipts", json_body=body), 201)
    deliver(aws)
    view = ok(api.call("GET", "/integrations/qbo/export-settings?warnings=false"))
    accounts = {r: a["account_id"] for r, a in view["accounts"].items() if a}
    refused = api.call(
        "PUT",
        "/integrations/qbo/export-settings",
        json_body={"mode": "journals", "accounts": {**accounts, "receiving_credit": after}},
    )
    if refused.status == 200:  # saved: the next export's true-up moves the balance, and QuickBooks refuses it
        ok(api.call("POST", "/receipts", json_body={**body, "received_at": "2026-11-06T09:00:00Z"}), 201)
        deliver(aws)
    assert refused.status == 400, [(r.kind, r.status, r.last_error) for r in export_rows()]
    assert [d["field"] for d in refused.json()["details"]] == ["receiving_credit"], refused.json()
    assert_exactly_once_and_books(sandboxes, "qbo")


def test_a_refused_true_up_of_the_company_before_a_switch_is_retried_only_there(
    api: Api, aws: LocalStack, sandboxes: Sandboxes, minutes: Minutes
) -> None:
    """A true-up correcting a QBO company's build is refused there (its finished goods account inactive); the
    organisation then switches to another company. A true-up corrects its own company's books only, so a
    retry is refused saying to connect that company again (not requeued to fail once more telling the person
    to retry), and once that company is connected again and its account active, the retry posts it there."""
    from tests.integration.test_disconnect import (
        _switch_to_a_company_with_the_demo_chart,
        back_to_the_demo_company,
    )
    from tests.integration.test_exports import QBO_ACCOUNTS

    parts = setup(api, sandboxes, "qbo")
    receive(api, "R-2", "2026-11-05T09:00:00Z", parts["blank"], "10", "1")
    build(api, parts, "B", "2026-11-06T09:00:00Z")
    minutes.next()
    deliver(aws)
    deactivate(sandboxes, "qbo", FINISHED_GOODS["qbo"], False)
    receive(api, "R-1", "2026-11-03T09:00:00Z", parts["blank"], "10", "2")  # re-costs the posted build
    minutes.next()
    deliver(aws)
    (trueup,) = by_kind("trueup")
    assert trueup.status == "failed" and not trueup.unsure, trueup

    settings = {"mode": "journals", "accounts": QBO_ACCOUNTS}
    _switch_to_a_company_with_the_demo_chart(api, sandboxes)
    ok(api.call("PUT", "/integrations/qbo/export-settings", json_body=settings))
    retried = api.call("POST", f"/exports/{trueup.export_id}/retry")
    assert retried.status == 409 and "Connect that company again" in retried.json()["message"], retried.body
    (trueup,) = by_kind("trueup")
    assert trueup.status == "failed", trueup  # not queued to fail again

    deactivate(sandboxes, "qbo", FINISHED_GOODS["qbo"], True)
    back_to_the_demo_company(api, sandboxes)
    ok(api.call("POST", f"/exports/{trueup.export_id}/retry"))
    minutes.next()
    deliver(aws)
    assert [e.status for e in by_kind("trueup")] == ["posted"], by_kind("trueup")
    assert_exactly_once_and_books(sandboxes, "qbo")
