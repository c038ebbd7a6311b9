"""Items (bundles included), accounts and suppliers synced from both sandboxes through the real routes;
products imported from items; Xero suppliers created; faults ridden out; the shared rate budget."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import BRACKET_20, BRACKET_40, BRACKET_BUNDLE, CORNER_BRACE, DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from shared import aws as shared_aws
from shared.domain.catalog import Product
from shared.providers import http
from shared.services import catalog as catalog_service
from shared.store import catalog as catalog_store
from shared.store.rate_budget import DynamoRateBudget
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect

QUERY = f"/v3/company/{DEMO_REALM_ID}/query"


pytestmark = pytest.mark.usefixtures("no_real_sleep")


def ok(response: Any) -> Any:
    assert response.status == 200, response.body
    return response.json()


def sync(api: Api, provider: str, what: str) -> dict[str, Any]:
    result: dict[str, Any] = ok(api.call("POST", f"/integrations/{provider}/sync/{what}"))
    return result


def connect_xero(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "xero", choose=[AU_TENANT_ID])


def items_by_id(api: Api, provider: str) -> dict[str, dict[str, Any]]:
    return {i["item_id"]: i for i in ok(api.call("GET", f"/integrations/{provider}/items"))["items"]}


# ---- items ----------------------------------------------------------------------------------------------
def test_qbo_items_sync_with_bundles_and_says_what_it_skipped(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    result = sync(api, "qbo", "items")
    assert result["read"] == 12 and len(result["created"]) == 12
    skipped = {s["name"]: s["reason"] for s in result["skipped"]}
    assert skipped == {
        "Packing Carton": "no SKU in QuickBooks Online, so it can't be matched to a product",
        "Assembly Labour": "no SKU in QuickBooks Online, so it can't be matched to a product",
    }
    items = items_by_id(api, "qbo")
    bundle = items[BRACKET_BUNDLE]
    assert (bundle["kind"], bundle["sku"]) == ("bundle", "KIT-WB-PAIR")
    assert [(c["ref"], Decimal(c["quantity"])) for c in bundle["components"]] == [
        (BRACKET_20, Decimal(1)),
        (BRACKET_40, Decimal(1)),
    ]
    kinds = {i["name"]: i["kind"] for i in items.values()}
    assert kinds["Shop Supplies"] == "non_inventory" and kinds["Assembly Labour"] == "service"
    assert Decimal(items[BRACKET_20]["unit_cost"]) == Decimal("1.90") and items[BRACKET_20]["tracked"] is True
    assert not next(i for i in items.values() if i["sku"] == "FG-WB-10")["active"]
    status = next(v for v in ok(api.call("GET", "/integrations")) if v["provider"] == "qbo")
    assert status["last_successful_sync_at"]


def test_resync_reads_only_changes_and_renames_keep_the_product_link(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    sync(api, "qbo", "items")
    imported = ok(
        api.call(
            "POST",
            "/products/import-from-provider",
            json_body={"provider": "qbo", "item_ids": [CORNER_BRACE]},
        )
    )
    product_id = imported["created"][0]["product_id"]

    queries = sandboxes.qbo.call_count("GET", QUERY)
    unchanged = sync(api, "qbo", "items")
    assert sandboxes.qbo.call_count("GET", QUERY) - queries == 1  # one page from the cursor
    assert unchanged["created"] == [] and unchanged["updated"] == []

    sandboxes.qbo.clock.advance(60)
    sandboxes.qbo.edit_record(
        DEMO_REALM_ID, "Item", CORNER_BRACE, {"Name": "Corner Brace Heavy", "Sku": "FG-CB-02"}
    )
    renamed = sync(api, "qbo", "items")
    assert [(u["item_id"], u["name"]) for u in renamed["updated"]] == [(CORNER_BRACE, "Corner Brace Heavy")]
    product = next(p for p in ok(api.call("GET", "/products"))["items"] if p["product_id"] == product_id)
    assert product["provider_links"] == {"qbo": CORNER_BRACE}  # the link follows the id, not the name


def test_products_link_by_sku_and_duplicate_skus_are_not_guessed(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    catalog_store.put_products(
        "org-a",
        [
            Product(product_id="p-bracket", sku=" fg-wb-20 ", name="Bracket 20"),
            Product(product_id="p-brace", sku="FG-CB-01", name="Brace"),
        ],
    )
    sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "Item",
        {"Name": "Corner Brace (old listing)", "Type": "NonInventory", "Sku": "FG-CB-01"},
    )
    result = sync(api, "qbo", "items")
    assert [(m["product_id"], m["item_id"], m["by"]) for m in result["matched"]] == [
        ("p-bracket", BRACKET_20, "sku")
    ]
    duplicates = [s for s in result["skipped"] if s["sku"] == "FG-CB-01"]
    assert len(duplicates) == 2 and all("duplicate SKU 'FG-CB-01'" in s["reason"] for s in duplicates)
    assert [(u["product_id"], u["reason"]) for u in result["unmatched_products"]] == [
        ("p-brace", "several items in QuickBooks Online have its SKU")
    ]
    products = {p["product_id"]: p for p in ok(api.call("GET", "/products"))["items"]}
    assert products["p-bracket"]["provider_links"] == {"qbo": BRACKET_20}
    assert products["p-brace"]["provider_links"] == {}


def test_importing_a_bundle_brings_its_components_with_names_and_costs(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    sync(api, "qbo", "items")
    result = ok(
        api.call(
            "POST",
            "/products/import-from-provider",
            json_body={"provider": "qbo", "item_ids": [BRACKET_BUNDLE, "999"]},
        )
    )
    created = {p["sku"]: p for p in result["created"]}
    assert set(created) == {"FG-WB-20", "FG-WB-40", "KIT-WB-PAIR"}
    assert created["FG-WB-20"]["name"] == "Wall Bracket 20mm"
    assert Decimal(created["FG-WB-20"]["unit_cost"]) == Decimal("1.90")
    kit = created["KIT-WB-PAIR"]
    assert kit["type"] == "kit"
    assert {c["ref"] for c in kit["components"]} == {
        created["FG-WB-20"]["product_id"],
        created["FG-WB-40"]["product_id"],
    }
    assert [s["item_id"] for s in result["skipped"]] == ["999"]

    sandboxes.qbo.clock.advance(60)
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", BRACKET_20, {"PurchaseCost": "2.05"})
    sync(api, "qbo", "items")
    again = ok(
        api.call(
            "POST", "/products/import-from-provider", json_body={"provider": "qbo", "item_ids": [BRACKET_20]}
        )
    )
    assert again["created"] == [] and Decimal(again["updated"][0]["unit_cost"]) == Decimal("2.05")
    assert len(ok(api.call("GET", "/products"))["items"]) == 3  # refreshed, never duplicated


def test_xero_items_sync_code_as_sku_tracked_or_not(api: Api, sandboxes: Sandboxes) -> None:
    connect_xero(api, sandboxes)
    result = sync(api, "xero", "items")
    assert result["read"] == 8 and result["skipped"] == [] and result["importable"] == 8
    items = {i["sku"]: i for i in items_by_id(api, "xero").values()}
    assert (items["KIT-STARTER"]["kind"], items["KIT-STARTER"]["tracked"]) == ("inventory", True)
    assert items["WIDGET-10"]["kind"] == "non_inventory"
    assert Decimal(items["WIDGET-10"]["unit_cost"]) == Decimal("2.50")
    gets = sandboxes.xero.call_count("GET", "/api.xro/2.0/Items")
    assert sync(api, "xero", "items")["updated"] == []
    assert sandboxes.xero.call_count("GET", "/api.xro/2.0/Items") - gets == 1


def import_items(api: Api, provider: str, item_ids: list[str]) -> dict[str, Any]:
    body = {"provider": provider, "item_ids": item_ids}
    result: dict[str, Any] = ok(api.call("POST", "/products/import-from-provider", json_body=body))
    return result


def sale_prices(api: Api) -> dict[str, Decimal | None]:
    products = ok(api.call("GET", "/products"))["items"]
    return {p["sku"]: None if p["sale_price"] is None else Decimal(p["sale_price"]) for p in products}


def test_a_qbo_import_gives_the_products_it_makes_the_items_sales_price_and_leaves_an_existing_ones(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    mine = Product(product_id="p-brace", sku="FG-CB-01", name="Brace", sale_price=Decimal("2.99"))
    catalog_store.put_products("org-a", [mine])
    sync(api, "qbo", "items")  # links the brace by its SKU; QuickBooks sells it at 2.25
    # the blank has UnitPrice 0: QuickBooks' answer for an item given no sales price
    result = import_items(api, "qbo", [BRACKET_20, "1", CORNER_BRACE])
    assert sorted(p["sku"] for p in result["created"]) == ["FG-WB-20", "RM-ALU-01"]
    assert [p["product_id"] for p in result["updated"]] == ["p-brace"]
    assert sale_prices(api) == {"FG-WB-20": Decimal("4.50"), "RM-ALU-01": None, "FG-CB-01": Decimal("2.99")}


def test_a_xero_import_gives_the_products_it_makes_the_items_sales_price(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect_xero(api, sandboxes)
    sync(api, "xero", "items")
    # the resin is not sold (IsSold false): Xero keeps no sales price for it
    codes = ["WIDGET-10", "KIT-STARTER", "RESIN-1L"]
    import_items(api, "xero", [demo_id(AU_TENANT_ID, "item", code) for code in codes])
    assert sale_prices(api) == {
        "WIDGET-10": Decimal("6.00"),
        "KIT-STARTER": Decimal("79.00"),
        "RESIN-1L": None,
    }


# ---- accounts and suppliers ------------------------------------------------------------------------------
def test_chart_of_accounts_syncs_and_stays_current(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    first = sync(api, "qbo", "accounts")
    assert first["added"] == 14
    accounts = {a["code"]: a for a in ok(api.call("GET", "/integrations/qbo/accounts"))}
    assert (accounts["1300"]["kind"], accounts["1300"]["type"]) == ("asset", "Other Current Asset")
    assert accounts["5000"]["kind"] == "cogs" and accounts["6150"]["kind"] == "expense"
    assert accounts["2190"]["active"] is False
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Account", accounts["6150"]["account_id"], {"Active": False})
    second = sync(api, "qbo", "accounts")
    assert (second["added"], second["changed"], second["removed"]) == (0, 1, 0)
    assert not next(a for a in second["accounts"] if a["code"] == "6150")["active"]


def test_xero_accounts_and_supplier_contacts_sync(api: Api, sandboxes: Sandboxes) -> None:
    connect_xero(api, sandboxes)
    accounts = {a["code"]: a for a in sync(api, "xero", "accounts")["accounts"]}
    assert accounts["310"]["kind"] == "cogs" and accounts["634"]["tracked_inventory"] is True
    assert accounts["639"]["active"] is False
    assert sync(api, "xero", "suppliers")["stored"] == 2
    names = {s["name"]: s for s in ok(api.call("GET", "/suppliers"))}
    assert set(names) == {"Bolt Supplies Pty Ltd", "Acme Metals Ltd"}
    assert names["Acme Metals Ltd"]["email"] == "accounts@metals.example"
    assert sync(api, "xero", "suppliers")["stored"] == 0  # nothing changed since the cursor
    sandboxes.xero.clock.advance(2)
    sandboxes.xero.delete_record(
        AU_TENANT_ID, "Contacts", names["Acme Metals Ltd"]["supplier_id"]
    )  # archived
    assert (
        sync(api, "xero", "suppliers")["stored"] == 1
    )  # read although Xero hides archived contacts by default
    after = {s["name"]: s for s in ok(api.call("GET", "/suppliers"))}
    assert after["Acme Metals Ltd"]["active"] is False and after["Bolt Supplies Pty Ltd"]["active"] is True
    kiwi = demo_id(AU_TENANT_ID, "contact", "kiwi")  # a customer until its first bill, which leaves its
    bill = {"Type": "ACCPAY", "Contact": {"ContactID": kiwi}, "Status": "AUTHORISED", "LineItems": []}
    sandboxes.xero.add_record(AU_TENANT_ID, "Invoices", bill)  # UpdatedDateUTC as it was
    assert sync(api, "xero", "suppliers")["stored"] == 1
    assert "Kiwi Robotics" in {s["name"] for s in ok(api.call("GET", "/suppliers"))}


def test_qbo_vendors_sync_incrementally(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    assert sync(api, "qbo", "suppliers")["stored"] == 2
    sandboxes.qbo.clock.advance(60)
    sandboxes.qbo.create_record(DEMO_REALM_ID, "Vendor", {"DisplayName": "Bright Paints LLC"})
    again = sync(api, "qbo", "suppliers")
    assert again["stored"] == 1
    assert {s["name"] for s in ok(api.call("GET", "/suppliers"))} == {
        "Northside Metals Ltd",
        "Coastal Fasteners Inc",
        "Bright Paints LLC",
    }


def test_xero_supplier_is_created_once_and_an_existing_name_is_linked(api: Api, sandboxes: Sandboxes) -> None:
    connect_xero(api, sandboxes)
    created = ok(
        api.call(
            "POST",
            "/integrations/xero/suppliers",
            json_body={"name": "Fresh Steel Co", "email": "ap@freshsteel.example"},
        )
    )
    assert created["linked_existing"] is False
    contacts = [
        c for c in sandboxes.xero.list_records(AU_TENANT_ID, "Contacts") if c["Name"] == "Fresh Steel Co"
    ]
    assert [c["ContactID"] for c in contacts] == [created["supplier"]["supplier_id"]]

    existing = ok(api.call("POST", "/integrations/xero/suppliers", json_body={"name": "Acme Metals Ltd"}))
    assert existing["linked_existing"] is True
    assert (
        sum(c["Name"] == "Acme Metals Ltd" for c in sandboxes.xero.list_records(AU_TENANT_ID, "Contacts"))
        == 1
    )
    assert {"Fresh Steel Co", "Acme Metals Ltd"} <= {s["name"] for s in ok(api.call("GET", "/suppliers"))}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "\t\n"}, "name"),
        ({"name": "Acme\tMetals"}, "name"),  # a control character inside the name
        ({"name": "Acme\x00"}, "name"),
        ({"name": "Acme", "email": "orders at acme"}, "email"),
        ({"name": "Acme", "email": "orders@acme"}, "email"),
        ({"name": "Acme", "email": "jürgen@acme.example"}, "email"),  # Xero: "umlauts not supported"
    ],
)
def test_a_supplier_name_or_email_the_provider_cannot_take_is_a_400_naming_it_before_it_is_asked(
    api: Api, sandboxes: Sandboxes, body: dict[str, str], field: str
) -> None:
    connect_xero(api, sandboxes)
    before = len(sandboxes.xero.list_records(AU_TENANT_ID, "Contacts"))
    refused = api.call("POST", "/integrations/xero/suppliers", json_body=body)
    assert refused.status == 400, refused.body
    assert [d["field"] for d in refused.json()["details"]] == [field]
    assert len(sandboxes.xero.list_records(AU_TENANT_ID, "Contacts")) == before


def test_a_qbo_vendor_name_with_a_colon_is_a_400_before_quickbooks_is_asked(
    api: Api, sandboxes: Sandboxes
) -> None:
    """QBO refuses a colon in a vendor's DisplayName (Intuit's Vendor reference): asking would spend a
    look-up and two creates on a refusal. A name without one is created once."""
    connect(api, sandboxes, "qbo")
    calls = sandboxes.qbo.call_count(path_prefix="/v3/")
    refused = api.call("POST", "/integrations/qbo/suppliers", json_body={"name": "Harbour: Alloys"})
    assert refused.status == 400, refused.body
    assert [d["field"] for d in refused.json()["details"]] == ["name"]
    assert "colon" in refused.json()["details"][0]["problem"]
    assert sandboxes.qbo.call_count(path_prefix="/v3/") == calls
    created = ok(api.call("POST", "/integrations/qbo/suppliers", json_body={"name": "Harbour Alloys"}))
    vendors = [
        v for v in sandboxes.qbo.list_records(DEMO_REALM_ID, "Vendor") if "Harbour" in v["DisplayName"]
    ]
    assert [v["Id"] for v in vendors] == [created["supplier"]["supplier_id"]]


@pytest.mark.parametrize("name", ["Acme Tools\\", "Smith\\'s Shop", "Dies \\ Moulds"])
def test_a_qbo_vendor_name_with_a_backslash_is_looked_up_created_once_and_linked_again(
    api: Api, sandboxes: Sandboxes, name: str
) -> None:
    """The name is looked up in QuickBooks before it is created: a backslash in it must not end the query's
    string early (QBO: 4000 "Error parsing query"), nor a second request create it twice."""
    connect(api, sandboxes, "qbo")
    created = ok(api.call("POST", "/integrations/qbo/suppliers", json_body={"name": name}))
    assert (created["linked_existing"], created["supplier"]["name"]) == (False, name)
    again = ok(api.call("POST", "/integrations/qbo/suppliers", json_body={"name": name}))
    assert again["linked_existing"] is True
    assert again["supplier"]["supplier_id"] == created["supplier"]["supplier_id"]
    vendors = [v for v in sandboxes.qbo.list_records(DEMO_REALM_ID, "Vendor") if v["DisplayName"] == name]
    assert len(vendors) == 1


@pytest.mark.parametrize("fault", ["500", "lost_response", "timeout"])
def test_xero_supplier_create_survives_faults_without_a_duplicate(
    api: Api, sandboxes: Sandboxes, fault: str
) -> None:
    connect_xero(api, sandboxes)
    sandboxes.xero.inject(fault, method="PUT", path_prefix="/api.xro/2.0/Contacts", count=3)
    created = ok(api.call("POST", "/integrations/xero/suppliers", json_body={"name": "Harbour Alloys"}))
    contacts = [
        c for c in sandboxes.xero.list_records(AU_TENANT_ID, "Contacts") if c["Name"] == "Harbour Alloys"
    ]
    assert [c["ContactID"] for c in contacts] == [created["supplier"]["supplier_id"]]


def test_a_permission_the_consent_lacks_is_named_and_the_connection_keeps_working(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.services import tokens

    oauth = tokens.provider("xero").oauth  # a connection made before the service asked for contacts
    monkeypatch.setattr(oauth, "scope", oauth.scope.replace(" accounting.contacts", ""))
    connect_xero(api, sandboxes)
    token_calls = sandboxes.xero.call_count("POST", "/connect/token")
    refused = api.call("POST", "/integrations/xero/suppliers", json_body={"name": "Fresh Steel Co"})
    assert refused.status == 409 and refused.json()["error"] == "PermissionDenied"
    assert "Reconnect to grant the permission" in refused.json()["message"]
    assert sandboxes.xero.call_count("POST", "/connect/token") == token_calls  # a new token would not help
    assert sandboxes.xero.call_count("PUT", "/api.xro/2.0/Contacts") == 0
    assert sync(api, "xero", "accounts")["added"] > 0  # everything the consent covers still works
    [xero] = [c for c in ok(api.call("GET", "/integrations")) if c["provider"] == "xero"]
    assert xero["status"] == "connected"


def test_sync_needs_a_connection(api: Api, sandboxes: Sandboxes) -> None:
    refused = api.call("POST", "/integrations/qbo/sync/items")
    assert refused.status == 409 and "connect it first" in refused.json()["message"]
    assert api.call("POST", "/integrations/sage/sync/items").status == 404


# ---- faults, tokens, rate budget --------------------------------------------------------------------------
def test_qbo_sync_rides_out_faults_without_duplicates_or_losses(
    api: Api, sandboxes: Sandboxes, no_real_sleep: list[float]
) -> None:
    connect(api, sandboxes, "qbo")
    for fault in ("429", "500", "timeout", "drop"):  # one after another, on the same request
        sandboxes.qbo.inject(fault, path_prefix="/v3/")
    result = sync(api, "qbo", "items")
    assert result["read"] == 12 and len(items_by_id(api, "qbo")) == 12
    assert len(no_real_sleep) == 4 and all(0 < w <= http.BACKOFF_CAP for w in no_real_sleep)
    sandboxes.qbo.inject("503", path_prefix="/v3/", count=3)
    assert sync(api, "qbo", "accounts")["added"] == 14


def test_xero_sync_rides_out_faults_honouring_retry_after(
    api: Api, sandboxes: Sandboxes, no_real_sleep: list[float]
) -> None:
    connect_xero(api, sandboxes)
    sandboxes.xero.inject("429", path_prefix="/api.xro/", count=2)
    sandboxes.xero.inject("503", path_prefix="/api.xro/")
    assert sync(api, "xero", "items")["read"] == 8
    assert len(items_by_id(api, "xero")) == 8
    retry_after = float(
        sandboxes.xero._minute.retry_after(sandboxes.xero.clock.now())
    )  # when its minute ends
    assert no_real_sleep[:2] == [retry_after, retry_after] and len(no_real_sleep) == 3


def test_persistent_outage_is_reported_and_the_cursor_does_not_move(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    sandboxes.qbo.inject("503", path_prefix="/v3/", count=http.MAX_ATTEMPTS)
    failed = api.call("POST", "/integrations/qbo/sync/items")
    assert failed.status == 503 and failed.json()["error"] == "ProviderUnavailable"
    assert failed.headers.get("retry-after") == "5"
    assert catalog_store.get_cursor("org-a", "qbo", "items") is None
    assert sync(api, "qbo", "items")["read"] == 12


def test_a_sync_cut_short_after_storing_part_says_so_and_syncing_again_finishes_it(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB throttles the sync's second batch of items (5 to a batch here): the 503 says part is stored,
    not that nothing was changed; the cursor has not moved, so syncing again stores the rest and links the
    product, as one uncut sync would (before, the answer said nothing was changed)."""
    connect(api, sandboxes, "qbo")
    catalog_store.put_products("org-a", [Product(product_id="p-20", sku="FG-WB-20", name="Bracket 20")])
    monkeypatch.setattr(catalog_service, "STORED_AT_ONCE", 5)
    client = shared_aws.table().meta.client
    calls = [0]

    def throttled_after_the_first_batch(**_: Any) -> None:
        calls[0] += 1
        if calls[0] > 1:
            error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "BatchWriteItem")

    event = "before-call.dynamodb.BatchWriteItem"
    client.meta.events.register(event, throttled_after_the_first_batch)
    try:
        cut = api.call("POST", "/integrations/qbo/sync/items")
    finally:
        client.meta.events.unregister(event, throttled_after_the_first_batch)

    assert cut.status == 503 and cut.headers.get("retry-after"), cut.body
    assert cut.json()["error"] == "SyncInterrupted" and "sync again" in cut.json()["message"]
    assert "nothing was changed" not in cut.json()["message"]
    assert len(items_by_id(api, "qbo")) == 5
    assert catalog_store.get_cursor("org-a", "qbo", "items") is None
    again = sync(api, "qbo", "items")
    assert (again["read"], len(again["created"]), len(again["updated"])) == (12, 7, 0)
    assert [(m["product_id"], m["item_id"]) for m in again["matched"]] == [("p-20", BRACKET_20)]
    assert len(items_by_id(api, "qbo")) == 12
    [product] = ok(api.call("GET", "/products"))["items"]
    assert product["provider_links"] == {"qbo": BRACKET_20}
    unchanged = sync(api, "qbo", "items")
    assert unchanged["created"] == [] and unchanged["updated"] == []


def test_access_token_refused_mid_run_is_refreshed_once(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    sandboxes.qbo.clock.advance(3700)  # the provider now refuses the stored access token
    refreshes = sandboxes.qbo.call_count("POST", "/oauth2/v1/tokens/bearer")
    assert sync(api, "qbo", "items")["read"] == 12
    assert sandboxes.qbo.call_count("POST", "/oauth2/v1/tokens/bearer") - refreshes == 1


def test_rate_budget_is_shared_between_lambdas(aws: LocalStack) -> None:
    now = [1_000_000.0]
    lambdas = [DynamoRateBudget(clock=lambda: now[0]) for _ in range(2)]
    limits = {"window_seconds": 10, "window_cap": 3, "concurrent": 2, "daily_reserve": 0}
    assert lambdas[0].acquire("qbo#1", **limits) == 0 and lambdas[1].acquire("qbo#1", **limits) == 0
    assert lambdas[0].acquire("qbo#1", **limits) > 0  # both in-flight slots are held
    lambdas[0].release("qbo#1")
    assert lambdas[1].acquire("qbo#1", **limits) == 0
    for budget in lambdas:
        budget.release("qbo#1")
    assert (
        lambdas[0].acquire("qbo#1", **limits) == 10 - 0
    )  # third call used the window's cap: wait for the next
    now[0] += 10
    assert lambdas[0].acquire("qbo#1", **limits) == 0
    assert lambdas[1].acquire("xero#2", **limits) == 0  # another tenant has its own budget


def test_a_slot_held_by_a_crashed_lambda_is_taken_over(aws: LocalStack) -> None:
    now = [1_000_000.0]
    crashed, alive = DynamoRateBudget(clock=lambda: now[0]), DynamoRateBudget(clock=lambda: now[0])
    limits = {"window_seconds": 10, "window_cap": 100, "concurrent": 1, "daily_reserve": 0}
    assert crashed.acquire("xero#t", **limits) == 0
    assert alive.acquire("xero#t", **limits) > 0
    now[0] += 61
    assert alive.acquire("xero#t", **limits) == 0


def test_xero_daily_allowance_holds_calls_back_before_xero_refuses(aws: LocalStack) -> None:
    now = [1_000_000.0]
    limits = {"window_seconds": 10, "window_cap": 100, "concurrent": 5, "daily_reserve": 25}
    reporter = DynamoRateBudget(clock=lambda: now[0])
    reporter.note_daily_remaining("xero#t", 20)
    other_lambda = DynamoRateBudget(clock=lambda: now[0])
    assert other_lambda.acquire("xero#t", **limits) == 3600
    now[0] += 3600
    assert other_lambda.acquire("xero#t", **limits) == 0  # one probe learns the new count
