"""Probes of the catalog sync as a demanding customer uses it, through the routes and both sandboxes: more
items or suppliers than one provider page holds, items renamed, made inactive or deleted between syncs, SKUs
that differ by case, spaces or accent encoding, non-ASCII names, bundles whose components can't come along,
re-syncs that change nothing, syncs cut off mid-pages and resumed, and provider answers that are hostile or
huge (a clear 502, never a 500, and nothing the sync keeps is touched)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from infra.sandboxes.qbo_demo import (
    BRACKET_20,
    BRACKET_BUNDLE,
    COGS,
    CORNER_BRACE,
    DEMO_REALM_ID,
    FINISHED,
    INCOME,
)
from infra.sandboxes.xero_demo import AU_TENANT_ID, demo_id
from shared.aws import table
from shared.domain.catalog import Component, Product
from shared.providers import answers, http
from shared.store import catalog as catalog_store
from shared.store.keys import org_pk
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect
from tests.integration.test_catalog_sync import connect_xero, ok, sync

pytestmark = pytest.mark.usefixtures("no_real_sleep")

QUERY = f"/v3/company/{DEMO_REALM_ID}/query"
XERO_ITEMS = "/api.xro/2.0/Items"
XERO_CONTACTS = "/api.xro/2.0/Contacts"
DEMO_QBO_ITEMS = 12
DEMO_XERO_ITEMS = 8


def _rows(prefix: str, organisation: str = "org-a") -> list[dict[str, Any]]:
    """The stored rows under ``prefix``, read straight from the table (what a duplicate would show in)."""
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)",
        "ExpressionAttributeValues": {":pk": org_pk(organisation), ":sk": prefix},
    }
    while True:
        page = table().query(**kwargs)
        rows.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return rows
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _products() -> dict[str, Product]:
    return {p.product_id: p for p in catalog_store.products("org-a")}


def _qbo_items(sandboxes: Sandboxes, count: int, *, per_second: int = 7) -> list[str]:
    """``count`` non-inventory items, ``per_second`` to each second QBO stamps (ties across page edges)."""
    ids = []
    for n in range(count):
        if n % per_second == 0:
            sandboxes.qbo.clock.advance(1)
        record = sandboxes.qbo.create_record(
            DEMO_REALM_ID,
            "Item",
            {
                "Name": f"Bulk Part {n:05d}",
                "Type": "NonInventory",
                "Sku": f"BULK-{n:05d}",
                "PurchaseCost": "0.25",
                "IncomeAccountRef": {"value": INCOME},
                "ExpenseAccountRef": {"value": COGS},
            },
        )
        ids.append(str(record["Id"]))
    return ids


def _import(api: Api, provider: str, item_ids: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = ok(
        api.call(
            "POST",
            "/products/import-from-provider",
            json_body={"provider": provider, "item_ids": item_ids},
        )
    )
    return result


# ---- more than one provider page ---------------------------------------------------------------------------
@pytest.mark.parametrize("per_second", [7, 5000], ids=["ties at page edges", "one stamp for all"])
def test_qbo_items_past_one_page_sync_once_each_and_a_resync_changes_nothing(
    api: Api, sandboxes: Sandboxes, per_second: int
) -> None:
    connect(api, sandboxes, "qbo")
    bulk = _qbo_items(sandboxes, 1205, per_second=per_second)
    queries = sandboxes.qbo.call_count("GET", QUERY)
    first = sync(api, "qbo", "items")
    # MAXRESULTS 1000: two pages; a third when the first page's last stamp is shared by nearly all of the
    # rest (the next page starts at that stamp: the records of it already read are read again)
    assert sandboxes.qbo.call_count("GET", QUERY) - queries == (2 if per_second < 1000 else 3)
    assert first["read"] == DEMO_QBO_ITEMS + 1205 and len(first["created"]) == DEMO_QBO_ITEMS + 1205
    assert len(_rows("PITEM#qbo#")) == DEMO_QBO_ITEMS + 1205
    catalog_store.put_products("org-a", [Product(product_id="p-last", sku=" bulk-01204", name="Last")])

    again = sync(api, "qbo", "items")
    assert again["created"] == [] and again["updated"] == []
    assert [(m["product_id"], m["item_id"]) for m in again["matched"]] == [("p-last", bulk[-1])]
    assert len(_rows("PITEM#qbo#")) == DEMO_QBO_ITEMS + 1205  # no duplicate rows
    third = sync(api, "qbo", "items")
    assert third["matched"] == [] and third["linked"] == 1  # the link holds, made once
    assert _products()["p-last"].provider_links == {"qbo": bulk[-1]}


def test_a_qbo_item_edited_while_the_pages_are_read_is_synced_at_its_latest(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    bulk = _qbo_items(sandboxes, 1100)
    sandboxes.qbo.clock.advance(5)

    def rename() -> None:  # someone renames an item of the first page while the second is asked for
        sandboxes.qbo.clock.advance(1)
        sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", bulk[3], {"Name": "Renamed mid-read"})

    _after_first(sandboxes.qbo, QUERY, rename)
    first = sync(api, "qbo", "items")
    assert len({c["item_id"] for c in first["created"]}) == len(first["created"]) == DEMO_QBO_ITEMS + 1100
    stored = {i.item_id: i for i in catalog_store.provider_items("org-a", "qbo")}
    assert stored[bulk[3]].name == "Renamed mid-read" and len(stored) == DEMO_QBO_ITEMS + 1100
    assert sync(api, "qbo", "items")["updated"] == []


def test_xero_suppliers_past_one_page_sync_once_each(api: Api, sandboxes: Sandboxes) -> None:
    connect_xero(api, sandboxes)
    for n in range(1003):
        sandboxes.xero.add_record(
            AU_TENANT_ID, "Contacts", {"Name": f"Supplier {n:04d} Ltd", "IsSupplier": True}
        )
    gets = sandboxes.xero.call_count("GET", XERO_CONTACTS)
    assert sync(api, "xero", "suppliers")["read"] == 1003 + 2
    assert sandboxes.xero.call_count("GET", XERO_CONTACTS) - gets == 2  # pageSize 1000: two pages
    assert len(_rows("SUPPLIER#xero#")) == 1003 + 2
    assert sync(api, "xero", "suppliers")["stored"] == 0
    assert len(_rows("SUPPLIER#xero#")) == 1003 + 2


# ---- changes at the provider between syncs -----------------------------------------------------------------
def test_a_qbo_item_made_inactive_is_kept_inactive_and_its_sku_goes_to_the_active_replacement(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    sync(api, "qbo", "items")
    product_id = _import(api, "qbo", [CORNER_BRACE])["created"][0]["product_id"]
    sandboxes.qbo.clock.advance(60)
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", CORNER_BRACE, {"Active": False})
    replacement = sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "Item",
        {
            "Name": "Corner Brace v2",
            "Type": "Inventory",
            "Sku": "fg-cb-01 ",
            "TrackQtyOnHand": True,
            "QtyOnHand": 0,
            "InvStartDate": "2026-01-01",
            "IncomeAccountRef": {"value": INCOME},
            "ExpenseAccountRef": {"value": COGS},
            "AssetAccountRef": {"value": FINISHED},
        },
    )
    result = sync(api, "qbo", "items")
    assert {u["item_id"] for u in result["updated"]} == {CORNER_BRACE}
    stored = {i.item_id: i for i in catalog_store.provider_items("org-a", "qbo")}
    assert stored[CORNER_BRACE].active is False
    # QBO refuses a transaction naming an inactive item (error 610, "Something you're trying to use has
    # been made inactive": qbo.md section 2.8): the product follows the one active item with its SKU
    assert [(m["product_id"], m["item_id"], m["by"]) for m in result["matched"]] == [
        (product_id, replacement["Id"], "sku")
    ]
    assert _products()[product_id].provider_links == {"qbo": replacement["Id"]}


def test_a_qbo_item_made_inactive_without_a_replacement_keeps_its_link(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    sync(api, "qbo", "items")
    product_id = _import(api, "qbo", [CORNER_BRACE])["created"][0]["product_id"]
    sandboxes.qbo.clock.advance(60)
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", CORNER_BRACE, {"Active": False, "Name": "Brace (old)"})
    result = sync(api, "qbo", "items")
    assert [(u["item_id"], u["name"]) for u in result["updated"]] == [(CORNER_BRACE, "Brace (old)")]
    assert _products()[product_id].provider_links == {"qbo": CORNER_BRACE}  # it may be made active again
    sandboxes.qbo.clock.advance(60)
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", CORNER_BRACE, {"Active": True})
    assert sync(api, "qbo", "items")["matched"] == []
    assert _products()[product_id].provider_links == {"qbo": CORNER_BRACE}


def test_qbo_items_cannot_be_deleted_only_made_inactive(sandboxes: Sandboxes) -> None:
    """Intuit: name-list entities are deleted by setting Active false (qbo.md sections 3.4, 2.3); the API's
    ``operation=delete`` is for transactions. The sandbox answers as QBO does."""
    with pytest.raises(Exception, match="inactive"):
        sandboxes.qbo.delete_record(DEMO_REALM_ID, "Item", CORNER_BRACE)


def test_a_xero_item_deleted_between_syncs_is_forgotten_and_its_product_relinks_to_a_new_code(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect_xero(api, sandboxes)
    sync(api, "xero", "items")
    widget = demo_id(AU_TENANT_ID, "item", "WIDGET-10")
    product_id = _import(api, "xero", [widget])["created"][0]["product_id"]
    sandboxes.xero.clock.advance(5)
    sandboxes.xero.delete_record(AU_TENANT_ID, "Items", widget)
    gone = sync(api, "xero", "items")
    assert gone["removed"] == [widget] and len(_rows("PITEM#xero#")) == DEMO_XERO_ITEMS - 1
    assert [u["product_id"] for u in gone["unmatched_products"]] == [product_id]
    again = sandboxes.xero.add_record(
        AU_TENANT_ID, "Items", {"Code": " widget-10", "Name": "Widget 10mm (re-made)"}
    )
    relinked = sync(api, "xero", "items")
    assert [(m["product_id"], m["item_id"]) for m in relinked["matched"]] == [(product_id, again["ItemID"])]
    assert _products()[product_id].provider_links == {"xero": again["ItemID"]}


def test_a_renamed_xero_item_keeps_its_link_and_is_listed_under_its_new_name(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect_xero(api, sandboxes)
    sync(api, "xero", "items")
    widget = demo_id(AU_TENANT_ID, "item", "WIDGET-10")
    product_id = _import(api, "xero", [widget])["created"][0]["product_id"]
    sandboxes.xero.clock.advance(5)
    sandboxes.xero.edit_record(
        AU_TENANT_ID, "Items", widget, {"Name": "Écrou à oreilles ⚙ M6", "Code": "W-10B"}
    )
    result = sync(api, "xero", "items")
    assert [(u["item_id"], u["name"], u["sku"]) for u in result["updated"]] == [
        (widget, "Écrou à oreilles ⚙ M6", "W-10B")
    ]
    assert _products()[product_id].provider_links == {"xero": widget}
    listed = ok(api.call("GET", "/integrations/xero/items?limit=100"))["items"]
    assert [i["name"] for i in listed].count("Écrou à oreilles ⚙ M6") == 1
    assert len(listed) == DEMO_XERO_ITEMS


# ---- SKUs ----------------------------------------------------------------------------------------------
def test_skus_match_across_case_spaces_and_accent_encoding_and_collisions_are_reported(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    composed = unicodedata.normalize("NFC", "ÉCROU-Ø6")
    decomposed = unicodedata.normalize("NFD", "écrou-ø6")
    assert composed.casefold() != decomposed.casefold()
    made = {
        name: sandboxes.qbo.create_record(
            DEMO_REALM_ID,
            "Item",
            {
                "Name": name,
                "Type": "NonInventory",
                "Sku": sku,
                "IncomeAccountRef": {"value": INCOME},
            },
        )["Id"]
        for name, sku in (
            ("Écrou papillon Ø6 — 蝶形螺母", f"  {decomposed} "),
            ("Rondelle A", "RND-1"),
            ("Rondelle B", " rnd-1"),
        )
    }
    catalog_store.put_products(
        "org-a",
        [
            Product(product_id="p-nut", sku=composed, name="Wing nut"),
            Product(product_id="p-washer", sku="Rnd-1", name="Washer"),
        ],
    )
    result = sync(api, "qbo", "items")
    assert [(m["product_id"], m["item_id"]) for m in result["matched"]] == [
        ("p-nut", made["Écrou papillon Ø6 — 蝶形螺母"])
    ]
    collided = {s["item_id"] for s in result["skipped"] if "duplicate SKU" in s["reason"]}
    assert collided == {made["Rondelle A"], made["Rondelle B"]}
    assert {u["product_id"]: u["reason"] for u in result["unmatched_products"]}["p-washer"] == (
        "several items in QuickBooks Online have its SKU"
    )
    names = {i.name for i in catalog_store.provider_items("org-a", "qbo")}
    assert "Écrou papillon Ø6 — 蝶形螺母" in names


def test_importing_an_item_whose_sku_differs_only_by_case_updates_the_product_not_a_twin(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    mine = {"reorder_point": Decimal(12), "sale_price": Decimal("9.95"), "barcode": "0123456789012"}
    catalog_store.put_products("org-a", [Product(product_id="p-brace", sku="fg-cb-01", name="brace", **mine)])
    sync(api, "qbo", "items")
    result = _import(api, "qbo", [CORNER_BRACE])
    assert result["created"] == [] and [p["product_id"] for p in result["updated"]] == ["p-brace"]
    assert len(_rows("PRODUCT#")) == 1
    (product,) = catalog_store.products("org-a")  # what a product file gave it is the user's, kept
    assert (product.reorder_point, product.sale_price, product.barcode) == tuple(mine.values())


def test_importing_items_that_share_a_sku_never_makes_two_products_of_one_sku(
    api: Api, sandboxes: Sandboxes
) -> None:
    """QBO lets items share a SKU; a Partsemble product is known by its SKU (file imports update the product
    with the row's SKU), so a second product of the same SKU would split its stock and updates."""
    connect(api, sandboxes, "qbo")
    twin = sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "Item",
        {
            "Name": "Corner Brace (web)",
            "Type": "NonInventory",
            "Sku": " FG-cb-01",
            "IncomeAccountRef": {"value": INCOME},
        },
    )["Id"]
    sync(api, "qbo", "items")
    first = _import(api, "qbo", [CORNER_BRACE])["created"][0]
    result = _import(api, "qbo", [twin])
    assert result["created"] == [] and result["updated"] == []
    (why,) = result["skipped"]
    assert why["item_id"] == twin and "FG-cb-01" in why["reason"] and first["product_id"] in why["reason"]
    both = _import(api, "qbo", [twin, CORNER_BRACE])
    assert [p["product_id"] for p in both["updated"]] == [first["product_id"]]
    assert [s["item_id"] for s in both["skipped"]] == [twin]
    assert len(_rows("PRODUCT#")) == 1


def test_an_inactive_qbo_item_is_not_imported_as_a_new_product_or_link(
    api: Api, sandboxes: Sandboxes
) -> None:
    """QBO refuses a transaction naming an inactive item (error 610: qbo.md section 2.8): a product made of
    one, or linked to one by its SKU, would have every export refused."""
    connect(api, sandboxes, "qbo")
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", CORNER_BRACE, {"Active": False})
    sync(api, "qbo", "items")
    result = _import(api, "qbo", [CORNER_BRACE])
    assert result["created"] == [] and result["updated"] == []
    (why,) = result["skipped"]
    assert why["item_id"] == CORNER_BRACE and why["reason"].startswith("inactive in QuickBooks Online")
    catalog_store.put_products("org-a", [Product(product_id="p-brace", sku="FG-CB-01", name="brace")])
    assert [s["item_id"] for s in _import(api, "qbo", [CORNER_BRACE])["skipped"]] == [CORNER_BRACE]
    assert [p.provider_links for p in catalog_store.products("org-a")] == [{}]
    # once active again it imports, and a product already linked to it keeps being updated if it lapses
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", CORNER_BRACE, {"Active": True})
    sync(api, "qbo", "items")
    assert [p["product_id"] for p in _import(api, "qbo", [CORNER_BRACE])["updated"]] == ["p-brace"]
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", CORNER_BRACE, {"Active": False, "Name": "Brace (old)"})
    sync(api, "qbo", "items")
    assert [p["name"] for p in _import(api, "qbo", [CORNER_BRACE])["updated"]] == ["Brace (old)"]


# ---- bundles -------------------------------------------------------------------------------------------
def _bundle(sandboxes: Sandboxes, name: str, sku: str, parts: dict[str, int]) -> str:
    record = sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "Item",
        {
            "Name": name,
            "Type": "Group",
            "Sku": sku,
            "ItemGroupDetail": {
                "ItemGroupLine": [{"ItemRef": {"value": i}, "Qty": q} for i, q in parts.items()]
            },
        },
    )
    return str(record["Id"])


def test_a_bundle_whose_component_cannot_come_along_is_not_imported_with_half_a_bill_of_materials(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    packing_carton = "4"  # an inventory item without a SKU: never a product
    bundle = _bundle(sandboxes, "Boxed Bracket", "KIT-BOXED", {BRACKET_20: 2, packing_carton: 1})
    sync(api, "qbo", "items")
    result = _import(api, "qbo", [bundle])
    assert result["created"] == [] and result["updated"] == []
    (why,) = [s for s in result["skipped"] if s["item_id"] == bundle]
    assert "Packing Carton" in why["reason"] and "SKU" in why["reason"]
    assert _rows("PRODUCT#") == []  # nothing half-made: neither the kit nor a component of it


def test_a_bundle_whose_components_are_products_already_imports_whole(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    sync(api, "qbo", "items")
    _import(api, "qbo", [BRACKET_20])
    result = _import(api, "qbo", [BRACKET_BUNDLE])
    kit = next(p for p in result["created"] if p["sku"] == "KIT-WB-PAIR")
    assert len(kit["components"]) == 2 and len(_rows("PRODUCT#")) == 3


def test_a_bundle_whose_component_shares_another_products_sku_is_not_imported(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect(api, sandboxes, "qbo")
    catalog_store.put_products(
        "org-a", [Product(product_id="p-b20", sku="FG-WB-20", name="B20", provider_links={"qbo": "5"})]
    )
    twin = sandboxes.qbo.create_record(
        DEMO_REALM_ID,
        "Item",
        {
            "Name": "Bracket 20 (spare)",
            "Type": "NonInventory",
            "Sku": "fg-wb-20",
            "IncomeAccountRef": {"value": INCOME},
        },
    )["Id"]
    bundle = _bundle(sandboxes, "Spare Pair", "KIT-SPARE", {twin: 2, "6": 1})
    sync(api, "qbo", "items")
    result = _import(api, "qbo", [bundle])
    assert "KIT-SPARE" not in {p["sku"] for p in result["created"]}
    assert {s["item_id"] for s in result["skipped"]} == {twin, bundle}
    assert {p.sku for p in _products().values()} <= {"FG-WB-20", "FG-WB-40"}


def test_a_bundle_whose_component_was_never_synced_is_not_imported(api: Api, sandboxes: Sandboxes) -> None:
    connect(api, sandboxes, "qbo")
    sync(api, "qbo", "items")
    bundle = catalog_store.get_provider_items("org-a", "qbo", [BRACKET_BUNDLE])[0]
    # a part QBO holds as a kind the sync does not read (a desktop-only type): known by id alone
    lines = (*bundle.components, Component(ref="777", quantity=Decimal(3)))
    catalog_store.put_provider_items("org-a", [bundle.model_copy(update={"components": lines})])
    result = _import(api, "qbo", [BRACKET_BUNDLE])
    assert (
        result["created"] == [] and "item 777 is not in the synced catalog" in result["skipped"][0]["reason"]
    )
    assert _rows("PRODUCT#") == []


# ---- syncs cut off mid-pages ----------------------------------------------------------------------------
def _after_first(sandbox: Any, path: str, action: Callable[[], None]) -> None:
    done: list[bool] = []

    def once(request: httpx.Request, response: httpx.Response) -> None:
        if not done:
            done.append(True)
            action()

    sandbox.after("GET", path, once)


@pytest.mark.parametrize("fault", ["429", "500", "503"])
def test_a_qbo_sync_cut_off_mid_pages_writes_nothing_and_resumes_whole(
    api: Api, sandboxes: Sandboxes, fault: str
) -> None:
    connect(api, sandboxes, "qbo")
    sync(api, "qbo", "items")
    catalog_store.put_products("org-a", [Product(product_id="p-a", sku="BULK-00003", name="A")])
    sandboxes.qbo.clock.advance(60)
    _qbo_items(sandboxes, 1010)
    sandboxes.qbo.clock.advance(60)
    sandboxes.qbo.edit_record(DEMO_REALM_ID, "Item", CORNER_BRACE, {"Name": "Corner Brace Heavy"})
    cursor = catalog_store.get_cursor("org-a", "qbo", "items")
    before = _rows("PITEM#qbo#")
    _after_first(
        sandboxes.qbo, QUERY, lambda: sandboxes.qbo.inject(fault, path_prefix=QUERY, count=http.MAX_ATTEMPTS)
    )
    failed = api.call("POST", "/integrations/qbo/sync/items")
    assert failed.status in (429, 503) and failed.json()["error"] in ("RateLimited", "ProviderUnavailable")
    assert _rows("PITEM#qbo#") == before and catalog_store.get_cursor("org-a", "qbo", "items") == cursor
    assert _products()["p-a"].provider_links == {}

    resumed = sync(api, "qbo", "items")
    assert len(resumed["created"]) == 1010 and [u["item_id"] for u in resumed["updated"]] == [CORNER_BRACE]
    assert [m["product_id"] for m in resumed["matched"]] == ["p-a"]
    assert len(_rows("PITEM#qbo#")) == DEMO_QBO_ITEMS + 1010
    assert sync(api, "qbo", "items")["created"] == []


def test_a_xero_supplier_sync_cut_off_mid_pages_writes_nothing_and_resumes_whole(
    api: Api, sandboxes: Sandboxes
) -> None:
    connect_xero(api, sandboxes)
    for n in range(1001):
        sandboxes.xero.add_record(AU_TENANT_ID, "Contacts", {"Name": f"Vendor {n:04d}", "IsSupplier": True})
    _after_first(
        sandboxes.xero,
        XERO_CONTACTS,
        lambda: sandboxes.xero.inject("503", path_prefix=XERO_CONTACTS, count=http.MAX_ATTEMPTS),
    )
    failed = api.call("POST", "/integrations/xero/sync/suppliers")
    assert failed.status == 503 and _rows("SUPPLIER#xero#") == []
    assert catalog_store.get_cursor("org-a", "xero", "suppliers") is None
    assert sync(api, "xero", "suppliers")["stored"] == 1001 + 2


# ---- hostile and huge answers ------------------------------------------------------------------------------
def _answering(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: Any,
    path: str,
    answer: Callable[[httpx.Request], httpx.Response],
) -> None:
    """``sandbox`` answers GETs of ``path`` with ``answer``: a provider gone wrong, or one impersonated."""
    serve = sandbox.serve_request

    def hostile(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == path:
            return answer(request)
        return serve(request)

    monkeypatch.setattr(sandbox, "serve_request", hostile)


def _json(body: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, json=body)


QBO_HOSTILE = {
    "a list": [],
    "a string": "ok",
    "QueryResponse a list": {"QueryResponse": [1, 2]},
    "Item a dict": {"QueryResponse": {"Item": {"Id": "1"}}},
    "an item a string": {"QueryResponse": {"Item": ["x"]}},
    "an item without Id": {"QueryResponse": {"Item": [{"Name": "A", "Type": "Service"}]}},
    "a cost that is not a number": {
        "QueryResponse": {"Item": [{"Id": "1", "Name": "A", "Type": "Service", "PurchaseCost": "abc"}]}
    },
    "a cost that is infinite": {
        "QueryResponse": {"Item": [{"Id": "1", "Name": "A", "Type": "Service", "PurchaseCost": "Infinity"}]}
    },
    "components not a list": {
        "QueryResponse": {
            "Item": [{"Id": "1", "Name": "A", "Type": "Group", "ItemGroupDetail": {"ItemGroupLine": 5}}]
        }
    },
    "an id of 5,000 characters": {
        "QueryResponse": {"Item": [{"Id": "9" * 5000, "Name": "A", "Type": "Service"}]}
    },
    "a name of 500,000 characters": {
        "QueryResponse": {"Item": [{"Id": "1", "Name": "A" * 500_000, "Type": "Service"}]}
    },
}


@pytest.mark.parametrize("case", sorted(QBO_HOSTILE))
def test_a_hostile_qbo_item_answer_is_a_502_and_changes_nothing(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    connect(api, sandboxes, "qbo")
    sync(api, "qbo", "items")
    before, cursor = _rows("PITEM#qbo#"), catalog_store.get_cursor("org-a", "qbo", "items")
    _answering(monkeypatch, sandboxes.qbo, QUERY, _json(QBO_HOSTILE[case]))
    answer = api.call("POST", "/integrations/qbo/sync/items")
    assert answer.status == 502, answer.body
    assert answer.json()["error"] == "ProviderError"
    assert _rows("PITEM#qbo#") == before and catalog_store.get_cursor("org-a", "qbo", "items") == cursor


def test_an_item_stamped_with_no_time_is_kept_and_the_cursor_does_not_move_past_it(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    sync(api, "qbo", "items")
    cursor = catalog_store.get_cursor("org-a", "qbo", "items")
    odd = [
        {"Id": CORNER_BRACE, "Name": "Brace", "Type": "Service", "MetaData": {"LastUpdatedTime": "soon"}},
        {"Id": BRACKET_20, "Name": "Bracket", "Type": "Service", "MetaData": "x"},
    ]
    _answering(monkeypatch, sandboxes.qbo, QUERY, _json({"QueryResponse": {"Item": odd}, "time": "later"}))
    result = sync(api, "qbo", "items")
    assert sorted(u["name"] for u in result["updated"]) == ["Brace", "Bracket"]
    assert catalog_store.get_cursor("org-a", "qbo", "items") == cursor  # nothing proves what was read


XERO_HOSTILE = {
    "no Items at all": {"Status": "OK"},
    "Items null": {"Items": None},
    "Items a dict": {"Items": {"ItemID": "x"}},
    "an item without ItemID": {"Items": [{"Code": "A"}]},
    "a price that is not a number": {
        "Items": [{"ItemID": "a", "Code": "A", "PurchaseDetails": {"UnitPrice": "lots"}}]
    },
}


@pytest.mark.parametrize("case", sorted(XERO_HOSTILE))
def test_a_hostile_xero_item_answer_is_a_502_and_forgets_nothing(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    connect_xero(api, sandboxes)
    sync(api, "xero", "items")
    widget = demo_id(AU_TENANT_ID, "item", "WIDGET-10")
    _import(api, "xero", [widget])
    before, products = _rows("PITEM#xero#"), _products()
    _answering(monkeypatch, sandboxes.xero, XERO_ITEMS, _json(XERO_HOSTILE[case]))
    answer = api.call("POST", "/integrations/xero/sync/items")
    assert answer.status == 502, answer.body
    assert _rows("PITEM#xero#") == before and _products() == products


@pytest.mark.parametrize("body", [{"Status": "OK"}, {"Accounts": None}, {"Accounts": "none"}])
def test_a_xero_chart_answer_without_its_accounts_deletes_none(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]
) -> None:
    connect_xero(api, sandboxes)
    sync(api, "xero", "accounts")
    before = _rows("ACCOUNT#xero#")
    _answering(monkeypatch, sandboxes.xero, "/api.xro/2.0/Accounts", _json(body))
    assert api.call("POST", "/integrations/xero/sync/accounts").status == 502
    assert _rows("ACCOUNT#xero#") == before and len(before) > 10


def test_a_xero_contact_answer_without_its_contacts_is_a_502_that_moves_no_cursor(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every paged Xero read (contacts, and the manual journals an export's books check looks for) takes an
    answer without its collection as broken, never as "none": no cursor moves past what it did not read."""
    connect_xero(api, sandboxes)
    sync(api, "xero", "suppliers")
    before = _rows("SUPPLIER#xero#")
    cursor = catalog_store.get_cursor("org-a", "xero", "suppliers")
    _answering(monkeypatch, sandboxes.xero, XERO_CONTACTS, _json({"Status": "OK", "pagination": {"page": 1}}))
    answer = api.call("POST", "/integrations/xero/sync/suppliers")
    assert answer.status == 502, answer.body
    assert _rows("SUPPLIER#xero#") == before and len(before) > 0
    assert catalog_store.get_cursor("org-a", "xero", "suppliers") == cursor


def test_a_qbo_list_that_pages_on_without_end_is_a_502_within_the_page_bound(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    monkeypatch.setattr(answers, "MAX_PAGES", 3)  # the bound's value aside, an endless list must meet it
    served: list[int] = []

    def endless(request: httpx.Request) -> httpx.Response:
        served.append(1)
        start = 1000 * len(served)
        stamp = f"2026-11-01T12:{len(served) % 60:02d}:00-07:00"
        page = [
            {
                "Id": str(start + n),
                "Name": f"I{start + n}",
                "Type": "Service",
                "MetaData": {"LastUpdatedTime": stamp},
            }
            for n in range(1000)
        ]
        return httpx.Response(200, json={"QueryResponse": {"Item": page}, "time": stamp})

    _answering(monkeypatch, sandboxes.qbo, QUERY, endless)
    answer = api.call("POST", "/integrations/qbo/sync/items")
    assert answer.status == 502 and "past 3 pages" in answer.json()["message"]
    assert len(served) == 4 and _rows("PITEM#qbo#") == []


@pytest.mark.parametrize("pagination", [None, {"pageCount": "many"}, {"pageCount": 10**9}])
def test_a_xero_contact_list_that_pages_on_without_end_is_a_502_within_the_page_bound(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, pagination: Any
) -> None:
    connect_xero(api, sandboxes)
    monkeypatch.setattr(answers, "MAX_PAGES", 3)
    served: list[int] = []

    def endless(request: httpx.Request) -> httpx.Response:
        served.append(1)
        page = [
            {"ContactID": f"c-{len(served)}-{n}", "Name": f"C {n}", "ContactStatus": "ACTIVE"}
            for n in range(1000)
        ]
        return httpx.Response(200, json={"Contacts": page, "pagination": pagination})

    _answering(monkeypatch, sandboxes.xero, XERO_CONTACTS, endless)
    answer = api.call("POST", "/integrations/xero/sync/suppliers")
    assert answer.status == 502 and len(served) == 3 and _rows("SUPPLIER#xero#") == []


def test_a_huge_provider_answer_is_refused_unread_past_its_bound(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect_xero(api, sandboxes)
    sync(api, "xero", "items")
    before = _rows("PITEM#xero#")
    read: list[int] = []

    def endless() -> Any:
        yield b'{"Items": ['
        chunk = json.dumps({"ItemID": "x", "Code": "X", "Name": "x" * 1000}).encode() + b","
        while sum(read) < 200 * 1024 * 1024:  # a bound for the probe itself, were the service to read on
            read.append(len(chunk))
            yield chunk
        yield b"{}]}"

    _answering(
        monkeypatch,
        sandboxes.xero,
        XERO_ITEMS,
        lambda request: httpx.Response(200, headers={"content-type": "application/json"}, content=endless()),
    )
    answer = api.call("POST", "/integrations/xero/sync/items")
    assert answer.status == 502 and "too large" in answer.json()["message"]
    assert sum(read) <= http.MAX_ANSWER_BYTES + 2 * 1024 * 1024  # stopped reading near the bound
    assert _rows("PITEM#xero#") == before


def test_a_large_real_answer_within_the_bound_is_read(api: Api, sandboxes: Sandboxes) -> None:
    connect_xero(api, sandboxes)
    for n in range(2000):
        sandboxes.xero.add_record(
            AU_TENANT_ID, "Items", {"Code": f"C-{n:04d}", "Name": f"Ñame {n:04d} " + "d" * 30}
        )
    assert sync(api, "xero", "items")["read"] == DEMO_XERO_ITEMS + 2000
    assert Decimal(len(_rows("PITEM#xero#"))) == DEMO_XERO_ITEMS + 2000


def test_a_sync_the_providers_rate_limit_refuses_says_when_to_try_again(
    api: Api, sandboxes: Sandboxes
) -> None:
    """Xero's minute limit refuses every attempt of the sync: the 429 carries Xero's own wait as Retry-After
    (in whole seconds), as the 503s of an outage do theirs, so a client knows when to try again."""
    connect_xero(api, sandboxes)
    sandboxes.xero.inject("429", path_prefix=XERO_ITEMS, count=http.MAX_ATTEMPTS)
    refused = api.call("POST", "/integrations/xero/sync/items")
    assert refused.status == 429 and refused.json()["error"] == "RateLimited", refused.body
    assert 1 <= int(refused.headers["retry-after"]) <= 60, refused.headers
