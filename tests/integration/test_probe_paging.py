"""Probes of GET /exports and GET /products as an attacker and a demanding user would: any cursor or limit
the client can send is a 200 or a 400 naming it (never a 500), pages stay exact while the list changes
between them, every route that writes an export or a product lists it, the backfill is safe beside the
service, and a full page of the largest items stays within Lambda's 6 MB."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from infra.list_index_backfill import backfill
from shared.aws import table
from shared.domain.catalog import Component, Product
from shared.services import paging
from shared.store import catalog as catalog_store
from shared.store import exports as export_store
from shared.store.keys import LISTED_SKU
from tests.conftest import Api
from tests.integration.test_list_paging import _one_product, exported, ok, refused_field, walk

PATHS = ["/exports", "/products"]


def _seed(organisation: str = "org-a") -> None:
    exported(organisation, 4)
    catalog_store.put_products(
        organisation, [Product(product_id=f"p-{n}", sku=f"SKU-{n}", name=f"Part {n}") for n in range(4)]
    )


def _sign(listing: paging.Listing, organisation: str, position_json: str) -> str:
    """A cursor as the service would sign it, holding any position: what a leaked key or a bug could send."""
    position = base64.urlsafe_b64encode(position_json.encode()).decode().rstrip("=")
    return f"{position}.{paging._signature(listing, organisation, position)}"


# ---- cursors and limits the client sends -------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_any_cursor_text_is_a_400_naming_it(api: Api, path: str) -> None:
    _seed()
    cursor = ok(api.call("GET", f"{path}?limit=1"))["next_cursor"]
    position, _, signature = cursor.partition(".")
    bad = [
        cursor[:-1],
        cursor[: len(cursor) // 2],
        f"{cursor}.",
        f"{position}..{signature}",
        f".{cursor}",
        ".",
        "..",
        f"{position}.{signature}.{signature}",
        "\u00e9\u2603\U0001f600.\u00e9",
        f"{position}\u0000.{signature}",
        " " + cursor,
        cursor.upper(),
        "a" * 4096,
    ]
    for text in bad:
        assert refused_field(api.call("GET", f"{path}?cursor={quote(text)}")) == ["query.cursor"], text


@pytest.mark.parametrize("path", PATHS)
def test_a_megabyte_cursor_is_a_400_naming_it(api: Api, path: str) -> None:
    answer = api.call("GET", f"{path}?cursor={'A' * 1024 * 1024}.x")
    assert refused_field(answer) == ["query.cursor"]


@pytest.mark.parametrize("path", PATHS)
def test_a_signed_position_that_is_not_a_position_is_a_400_not_a_500(api: Api, path: str) -> None:
    listing = "exports" if path == "/exports" else "products"
    _seed()
    for position in ("[1]", '["a","b","c"]', "null", '"x"', "{}", "[[], {}]", "not json", '["", ""]'):
        answer = api.call("GET", f"{path}?cursor={quote(_sign(listing, 'org-a', position))}")
        assert answer.status in (200, 400), (position, answer.status, answer.body)
        if answer.status == 400:
            assert refused_field(answer) == ["query.cursor"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "query",
    [
        "limit=1&limit=2",
        "limit=1.5",
        "limit=10.0",
        "limit=%2010",
        "limit=10%20",
        "limit=+10",
        "limit=0x10",
        "limit=1_0",
        "limit=" + "9" * 5000,
        "limit=" + "1" + "0" * 30,
        "limit=-0",
        "limit=%EF%BC%91",  # a full-width digit one
        "limit=nan",
        "limit=true",
    ],
)
def test_any_limit_text_is_a_page_or_a_400_naming_it(api: Api, path: str, query: str) -> None:
    answer = api.call("GET", f"{path}?{query}")
    assert answer.status in (200, 400), (answer.status, answer.body[:300])
    if answer.status == 400:
        assert refused_field(answer) == ["query.limit"]
    else:
        assert len(answer.json()["items"]) >= 1 or answer.json()["items"] == []


def test_repeated_cursors_are_refused(api: Api) -> None:
    _seed()
    cursor = quote(ok(api.call("GET", "/exports?limit=1"))["next_cursor"])
    assert refused_field(api.call("GET", f"/exports?cursor={cursor}&cursor={cursor}")) == ["query.cursor"]


# ---- pages while the list changes --------------------------------------------------------------------------
def test_a_cursor_whose_last_export_was_deleted_still_reads_on(api: Api) -> None:
    expected = exported("org-a", 9)
    first = ok(api.call("GET", "/exports?limit=3"))
    assert [e["export_id"] for e in first["items"]] == expected[:3]
    table().delete_item(Key={"pk": "ORG#org-a", "sk": f"EXPORT#{expected[2]}"})
    rest = ok(api.call("GET", f"/exports?limit=100&cursor={quote(first['next_cursor'])}"))
    assert [e["export_id"] for e in rest["items"]] == expected[3:]


def test_exports_added_and_deleted_between_pages_none_twice_none_skipped(api: Api) -> None:
    expected = exported("org-a", 30)
    seen: list[str] = []
    cursor: str | None = None
    n = 0
    while True:
        query = "limit=4" + (f"&cursor={quote(cursor)}" if cursor else "")
        page = ok(api.call("GET", f"/exports?{query}"))
        seen += [e["export_id"] for e in page["items"]]
        # meanwhile: a newer export, and one not yet shown deleted
        row = export_store.new_export(
            "org-a",
            f"NEW-{n}",
            kind="receipt",
            record_id=f"N-{n}",
            at="2026-11-02",
            now=f"2030-01-0{n % 9 + 1}",
        )
        assert export_store.put_new(row)
        unseen = [e for e in expected if e not in seen]
        if len(unseen) > 2:
            table().delete_item(Key={"pk": "ORG#org-a", "sk": f"EXPORT#{unseen[-1]}"})
            expected.remove(unseen[-1])
        n += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert [e for e in seen if not e.startswith("NEW-")] == expected


def test_a_product_whose_sku_changes_between_pages_is_listed_once_at_most_and_others_unmoved(
    api: Api,
) -> None:
    products = [Product(product_id=f"p-{n:02d}", sku=f"SKU-{n:02d}", name=f"Part {n}") for n in range(20)]
    catalog_store.put_products("org-a", products)
    first = ok(api.call("GET", "/products?limit=5"))
    moved = products[12].model_copy(update={"sku": "AAA-FIRST"})
    catalog_store.put_products("org-a", [moved])
    rest = [p for page in _walk_from(api, "/products", first["next_cursor"], 5) for p in page]
    skus = [p["sku"] for p in first["items"] + rest]
    assert len(skus) == len(set(skus)) and "SKU-12" not in skus
    assert [s for s in skus if s != "AAA-FIRST"] == [p.sku for p in products if p.sku != "SKU-12"]


def _walk_from(api: Api, path: str, cursor: str | None, limit: int) -> list[list[Any]]:
    pages = []
    while cursor:
        page = ok(api.call("GET", f"{path}?limit={limit}&cursor={quote(cursor)}"))
        pages.append(page["items"])
        cursor = page["next_cursor"]
    return pages


def test_skus_that_differ_by_case_or_start_others_or_pass_the_listed_length(api: Api) -> None:
    long = "X" * LISTED_SKU
    skus = ["a", "A", "a-", "A-1", "ab", "AB", "\u00df", "ss", "SS", long + "B", long + "a", long, long + "A"]
    products = [Product(product_id=f"p-{n:02d}", sku=s, name=s[:10]) for n, s in enumerate(skus)]
    catalog_store.put_products("org-a", products)
    for limit in (1, 2, 3, 5):
        listed = [p for page in walk(api, "/products", limit=limit) for p in page]
        assert sorted(p["product_id"] for p in listed) == sorted(p.product_id for p in products)
        folded = [p["sku"].casefold()[:LISTED_SKU] for p in listed]
        assert folded == sorted(folded)


def test_fifty_exports_of_one_instant_and_thirty_products_of_one_sku_page_exactly(api: Api) -> None:
    at = "2026-11-02T09:00:00+00:00"
    for n in range(50):
        row = export_store.new_export(
            "org-a", f"PS-{n * 37 % 50:04d}", kind="receipt", record_id=f"R-{n}", at=at, now=at
        )
        assert export_store.put_new(row)
    listed = [e["export_id"] for page in walk(api, "/exports", limit=7) for e in page]
    assert listed == sorted(listed, reverse=True) and len(set(listed)) == 50
    catalog_store.put_products(
        "org-a",
        [Product(product_id=f"p-{n * 7 % 30:02d}", sku="x" if n % 2 else "X", name="x") for n in range(30)],
    )
    ids = [p["product_id"] for page in walk(api, "/products", limit=4) for p in page]
    assert ids == sorted(ids) and len(set(ids)) == 30


def test_a_cursor_after_the_longest_listed_sku_of_four_byte_characters_is_accepted(api: Api) -> None:
    """The listed SKU at its longest, in characters JSON writes as surrogate pairs: its cursor still fits
    the cursor's 4,096 characters, and the next page follows."""
    skus = ["\U0001f600" * 1000 + "a", "\U0001f600" * 1000 + "b", "\U0001f601"]
    products = [Product(product_id=f"p-{n}", sku=s, name="Smile") for n, s in enumerate(skus)]
    catalog_store.put_products("org-a", products)
    listed = [p["product_id"] for page in walk(api, "/products", limit=1) for p in page]
    assert sorted(listed[:2]) == ["p-0", "p-1"] and listed[2:] == ["p-2"]


# ---- every write path lists what it writes -----------------------------------------------------------------
def test_products_of_a_file_import_are_listed(api: Api) -> None:
    ok(api.call("POST", "/products/import?mode=apply", json_body=_one_product("FILE-1")))
    assert [p["sku"] for p in ok(api.call("GET", "/products"))["items"]] == ["FILE-1"]


def test_a_company_switch_keeps_products_listed_at_their_sku(api: Api) -> None:
    product = Product(product_id="p-1", sku="SW-1", name="Switch", provider_links={"qbo": "9"})
    catalog_store.put_products("org-a", [product])
    catalog_store.forget_company("org-a", "qbo", "realm-1", "realm-2")
    listed = ok(api.call("GET", "/products"))["items"]
    assert [p["sku"] for p in listed] == ["SW-1"] and listed[0]["former_links"] == {"qbo:realm-1": "9"}


# ---- the backfill ------------------------------------------------------------------------------------------
def _operator() -> Any:
    return boto3.resource("dynamodb").Table(table().name)


def test_the_backfill_touches_nothing_but_unplaced_listed_items(api: Api) -> None:
    _seed()
    others = [
        {"pk": "ORG#org-a", "sk": "EXPORT-CURRENCY#qbo#1", "currency": "USD"},
        {"pk": "ORG#org-a", "sk": "ACCOUNT#qbo#1", "name": "x"},
        {"pk": "ORG#org-a", "sk": "INVENTORY#rejection#R-1", "kind": "rejection", "at": "2026-11-02"},
        {"pk": "STATE#n", "sk": "STATE", "x": "y"},
    ]
    for item in others:
        table().put_item(Item=item)
    before = _scan()
    assert backfill(_operator()) == 0
    assert _scan() == before


def _scan() -> list[dict[str, Any]]:
    items = table().meta.client.scan(TableName=table().name)["Items"]
    return sorted(items, key=lambda i: (str(i["pk"]), str(i["sk"])))


def test_the_backfill_does_not_place_a_product_at_a_sku_changed_since_it_read_it(api: Api) -> None:
    """An item written meanwhile without a place (an older function still running while the deploy
    finishes) keeps no stale place: the update is conditional on what the scan read."""
    table().put_item(
        Item={"pk": "ORG#org-a", "sk": "PRODUCT#p-1", "product_id": "p-1", "sku": "OLD", "name": "x"}
    )
    operator = _operator()
    scan = operator.scan

    def scan_then_write(**kwargs: Any) -> Any:
        page = scan(**kwargs)
        table().put_item(
            Item={"pk": "ORG#org-a", "sk": "PRODUCT#p-1", "product_id": "p-1", "sku": "NEW", "name": "x"}
        )
        return page

    operator.scan = scan_then_write
    backfill(operator)
    backfill(_operator())
    item = table().get_item(Key={"pk": "ORG#org-a", "sk": "PRODUCT#p-1"})["Item"]
    assert str(item["gsi2sk"]).startswith("new\x00"), item


# ---- the size of a page ------------------------------------------------------------------------------------
def test_a_full_page_of_the_largest_products_fits_lambdas_answer(api: Api) -> None:
    components = tuple(Component(ref=f"{'c' * 36}-{n}", quantity="123456.7890") for n in range(50))
    products = [
        Product(
            product_id=f"{n:036d}",
            sku="S" * 30 + f"{n:04d}",
            name="\u2603" * 100,
            type="kit",
            unit="u" * 30,
            unit_cost="999999999.9999",
            provider_links={"qbo": "9" * 20, "xero": "x" * 36},
            components=components,
            former_links={f"qbo:{'r' * 20}{k}": "9" * 20 for k in range(3)},
        )
        for n in range(500)
    ]
    catalog_store.put_products("org-a", products)
    answer = api.call("GET", "/products?limit=500")
    assert answer.status == 200 and len(answer.json()["items"]) == 500
    assert len(json.dumps({"body": answer.body.decode()})) < 6 * 1024 * 1024, len(
        answer.body
    )  # as Lambda answers it


@pytest.mark.usefixtures("no_real_sleep")
def test_an_exports_error_naming_every_line_of_a_long_receipt_is_bounded(
    api: Api, aws: Any, sandboxes: Any
) -> None:
    """A receipt of 500 products that have no QuickBooks item fails naming them: the export keeps a bounded
    part of that, so 500 such exports still make a page within Lambda's 6 MB."""
    from tests.integration.test_export_faults import deliver, the_export
    from tests.integration.test_exports import RECEIVED, setup_qbo

    setup_qbo(api, sandboxes, mode="inventory_adjustments")
    products = [
        Product(product_id=f"p-{n:03d}", sku=f"{n:03d}".rjust(30, "S"), name="N" * 100) for n in range(500)
    ]
    catalog_store.put_products("org-a", products)
    lines = [{"product_id": p.product_id, "quantity": "1", "unit_cost": "0.50"} for p in products]
    answer = api.call("POST", "/receipts", json_body={"received_at": RECEIVED, "lines": lines})
    assert answer.status == 201, answer.body
    deliver(aws)
    export = the_export(api)
    assert export["status"] == "failed" and export["last_error"].startswith("unmapped item: ")
    assert len(export["last_error"]) <= 1_000, len(export["last_error"])


def test_a_full_page_of_exports_with_the_longest_errors_fits_lambdas_answer(api: Api) -> None:
    from shared.services.exports import MAX_ERROR

    for n in range(500):
        row = export_store.new_export(
            "org-a",
            f"PS-{n:032d}",
            kind="receipt",
            record_id="R" * 128,
            at="2026-11-02",
            now=f"2026-11-02T09:{n // 60:02d}:{n % 60:02d}+00:00",
        )
        row.update(status="failed", last_error="\u0001" * MAX_ERROR, document_link="https://" + "l" * 500)
        assert export_store.put_new(row)
    answer = api.call("GET", "/exports?limit=500")
    assert answer.status == 200 and len(answer.json()["items"]) == 500
    assert len(json.dumps({"body": answer.body.decode()})) < 6 * 1024 * 1024, len(
        answer.body
    )  # as Lambda answers it
