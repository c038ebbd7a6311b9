"""GET /exports, GET /products and GET /integrations/{provider}/items a page at a time: every item once, in
the list's order, pages bounded, each read from DynamoDB alone; a bad limit or cursor, or another
organisation's or list's cursor, refused naming it."""

from __future__ import annotations

import base64
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from infra.list_index_backfill import backfill
from shared.aws import table
from shared.domain.catalog import ProviderItem
from shared.store import catalog as catalog_store
from shared.store import exports as export_store
from tests.conftest import Api

START = "2026-11-02T09:00:00+00:00"
CREATED = datetime(2026, 11, 2, 9, tzinfo=UTC)


def ok(response: Any) -> Any:
    assert response.status == 200, response.body
    return response.json()


def exported(organisation: str, count: int) -> list[str]:
    """``count`` exports written as the service writes them (``new_export``), three to a creation time (the
    id orders those), in a shuffled order of writing; their ids newest first, as the list must answer."""
    rows = []
    for n in range(count):
        # ISO times as the service writes them: microseconds left out when there are none
        at = (CREATED + timedelta(seconds=n // 3, microseconds=250_000 * (n // 3 % 2))).isoformat()
        export_id = f"PS-{zlib.crc32(organisation.encode()):08x}{(n * 7919) % 65536:08x}"
        rows.append(
            export_store.new_export(
                organisation, export_id, kind="receipt", record_id=f"R-{n}", at=START, now=at
            )
        )
    for row in sorted(rows, key=lambda r: r["record_id"][::-1]):
        assert export_store.put_new(row)
    newest_first = sorted(rows, key=lambda r: (r["created_at"], r["export_id"]), reverse=True)
    return [r["export_id"] for r in newest_first]


def walk(api: Api, path: str, limit: int | None = None, organisation: str = "org-a") -> list[list[Any]]:
    """Every page of a list, following next_cursor to its end."""
    pages: list[list[Any]] = []
    cursor: str | None = None
    while True:
        query = [f"limit={limit}"] if limit else []
        query += [f"cursor={quote(cursor)}"] if cursor else []
        page = ok(api.call("GET", f"{path}?{'&'.join(query)}", organisation=organisation))
        assert set(page) == {"items", "next_cursor"}
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert pages[-1], "a page with a cursor after it is never empty"


def refused_field(response: Any) -> list[str]:
    assert response.status == 400, response.body
    return [d["field"] for d in response.json()["details"]]


@contextmanager
def dynamodb_reads() -> Iterator[Counter[str]]:
    """The DynamoDB requests made meanwhile, and the items they answered, by operation."""
    counts: Counter[str] = Counter()

    def count(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        counts[model.name] += 1
        answered = [parsed.get("Items", []), *parsed.get("Responses", {}).values()]
        counts[f"{model.name} items"] += sum(len(items) for items in answered)

    events = table().meta.client.meta.events
    events.register("after-call.dynamodb", count)
    try:
        yield counts
    finally:
        events.unregister("after-call.dynamodb", count)


def test_export_pages_walk_every_export_once_newest_first(api: Api) -> None:
    expected = exported("org-a", 230)
    pages = walk(api, "/exports")  # the default page: 100
    assert [len(p) for p in pages] == [100, 100, 30]
    assert [e["export_id"] for page in pages for e in page] == expected
    pages = walk(api, "/exports", limit=7)
    assert [e["export_id"] for page in pages for e in page] == expected


def test_a_list_that_ends_on_a_page_edge_has_no_empty_page_after(api: Api) -> None:
    exported("org-a", 200)
    assert [len(p) for p in walk(api, "/exports")] == [100, 100]
    assert ok(api.call("GET", "/exports?limit=200"))["next_cursor"] is None
    assert ok(api.call("GET", "/exports", organisation="org-empty")) == {"items": [], "next_cursor": None}


def test_export_page_shows_what_the_export_view_holds(api: Api) -> None:
    (export_id,) = exported("org-a", 1)
    row = export_store.get_export("org-a", export_id)
    assert row is not None
    assert ok(api.call("GET", "/exports"))["items"] == [row.view().model_dump(mode="json")]


def test_product_pages_walk_every_product_once_by_sku(api: Api) -> None:
    # SKUs in upper and lower case, and SKUs that start another: "a" before "A-1" and "a-0", whatever the ids
    skus = [f"{'ab'[n % 2]}{'-' * (n % 3)}{n:04d}"[: 1 + n % 7] for n in range(540)]
    first = {s.casefold(): s.upper() if n % 5 == 0 else s for n, s in reversed(list(enumerate(skus)))}
    unique = list(first.values())
    csv = "SKU,Name,Unit cost\n" + "".join(f"{s},Part {s},1.25\n" for s in unique)
    body = {"filename": "products.csv", "content_base64": base64.b64encode(csv.encode()).decode()}
    assert ok(api.call("POST", "/products/import?mode=apply", json_body=body))["created"] == len(unique)

    pages = walk(api, "/products", limit=50)
    assert all(len(p) == 50 for p in pages[:-1]) and 0 < len(pages[-1]) <= 50
    products = [p for page in pages for p in page]
    assert len({p["product_id"] for p in products}) == len(products) == len(unique)
    assert products == sorted(products, key=lambda p: (p["sku"].casefold(), p["product_id"]))
    assert [p["sku"] for p in products] == sorted(unique, key=lambda s: s.casefold())
    assert len(ok(api.call("GET", "/products"))["items"]) == 100


def test_a_page_is_bounded_and_reads_only_itself(api: Api) -> None:
    exported("org-a", 1200)
    with dynamodb_reads() as reads:
        page = api.call("GET", "/exports?limit=500")
    assert len(page.json()["items"]) == 500
    assert (
        len(page.body) < 500 * 600
    )  # ~450 bytes an export: far from Lambda's 6 MB, whatever the list's size
    # one Query of the index (the page's keys and one more, to know whether it ends the list) and the page's
    # items by key, 100 to a BatchGetItem: never the whole list
    assert reads["Query"] == 1 and reads["Query items"] == 501
    assert reads["BatchGetItem"] == 5 and reads["BatchGetItem items"] == 500
    assert len(ok(api.call("GET", "/exports"))["items"]) == 100


@pytest.mark.parametrize("limit", ["0", "-1", "501", "1e2", "ten", ""])
@pytest.mark.parametrize("path", ["/exports", "/products"])
def test_a_limit_out_of_bounds_is_refused_naming_it(api: Api, path: str, limit: str) -> None:
    assert refused_field(api.call("GET", f"{path}?limit={limit}")) == ["query.limit"]


@pytest.mark.parametrize("path", ["/exports", "/products"])
def test_a_made_up_or_edited_cursor_is_refused_naming_it(api: Api, path: str) -> None:
    exported("org-a", 3)
    for n in range(3):
        ok(api.call("POST", "/products/import?mode=apply", json_body=_one_product(f"SKU-{n}")))
    cursor = ok(api.call("GET", f"{path}?limit=1"))["next_cursor"]
    position, _, signature = cursor.partition(".")
    sk, index_sk = json.loads(base64.urlsafe_b64decode(position + "=" * (-len(position) % 4)))
    moved = base64.urlsafe_b64encode(json.dumps([sk, index_sk + "~"]).encode()).decode().rstrip("=")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for bad in ("nonsense", f"{moved}.{signature}", f"{position}.{flipped}", position, "é.é", "%00"):
        assert refused_field(api.call("GET", f"{path}?cursor={quote(bad)}")) == ["query.cursor"], bad
    assert refused_field(api.call("GET", f"{path}?cursor=")) == ["query.cursor"]
    assert refused_field(api.call("GET", f"{path}?cursor={'a' * 4097}")) == ["query.cursor"]
    assert ok(api.call("GET", f"{path}?limit=1&cursor={quote(cursor)}"))["items"]  # the cursor as answered


def test_another_organisations_cursor_is_refused(api: Api) -> None:
    exported("org-a", 5)
    exported("org-b", 5)
    theirs = ok(api.call("GET", "/exports?limit=2", organisation="org-b"))["next_cursor"]
    assert refused_field(api.call("GET", f"/exports?cursor={quote(theirs)}")) == ["query.cursor"]
    ours = [e["export_id"] for page in walk(api, "/exports", limit=2) for e in page]
    assert len(ours) == 5 and all(e["organisation_id"] == "org-a" for e in _rows(ours, "org-a"))
    assert not set(ours) & {
        e["export_id"] for e in ok(api.call("GET", "/exports", organisation="org-b"))["items"]
    }


def test_one_lists_cursor_is_refused_by_the_other(api: Api) -> None:
    exported("org-a", 3)
    cursor = ok(api.call("GET", "/exports?limit=1"))["next_cursor"]
    assert refused_field(api.call("GET", f"/products?cursor={quote(cursor)}")) == ["query.cursor"]


def _one_product(sku: str) -> dict[str, str]:
    csv = f"SKU,Name,Unit cost\n{sku},Part {sku},1.00\n".encode()
    return {"filename": "products.csv", "content_base64": base64.b64encode(csv).decode()}


def _rows(export_ids: list[str], organisation: str) -> list[dict[str, Any]]:
    rows = [export_store.get_export(organisation, e) for e in export_ids]
    return [r.model_dump() for r in rows if r is not None]


def test_the_backfill_places_what_was_written_before_the_index(api: Api) -> None:
    expected = exported("org-a", 120)
    for n, export_id in enumerate(expected):  # as written before gsi2: no place in it
        if n % 2:
            table().update_item(
                Key=_key("org-a", f"EXPORT#{export_id}"), UpdateExpression="REMOVE gsi2pk, gsi2sk"
            )
    products = [{"product_id": f"p-{n}", "sku": f"SKU-{n:03d}", "name": f"Part {n}"} for n in range(30)]
    for product in products:
        table().put_item(Item={**_key("org-a", f"PRODUCT#{product['product_id']}"), **product})
    assert len(ok(api.call("GET", "/exports?limit=500"))["items"]) == 60
    assert ok(api.call("GET", "/products"))["items"] == []

    operator = boto3.resource("dynamodb").Table(
        table().name
    )  # as an operator runs it, with boto3's own table
    assert backfill(operator) == 60 + 30
    assert [e["export_id"] for page in walk(api, "/exports") for e in page] == expected
    assert [p["sku"] for p in ok(api.call("GET", "/products"))["items"]] == [p["sku"] for p in products]
    assert backfill(operator) == 0  # run again: nothing left to place


def _key(organisation: str, sk: str) -> dict[str, str]:
    return {"pk": f"ORG#{organisation}", "sk": sk}


def _items(organisation: str, provider: str, count: int) -> list[str]:
    """``count`` synced items of ``provider``, named in mixed case with some names shared (the id orders
    those), written as the item sync writes them; their ids in the list's order: by name, case-folded."""
    names = [f"{'Bb' if n % 3 else 'aa'}-{n % 37:02d}" for n in range(count)]
    values = [
        ProviderItem(
            provider=provider, item_id=f"{provider}-{n * 7919 % 100_000:05d}", name=name, kind="inventory"
        )
        for n, name in enumerate(names)
    ]
    catalog_store.put_provider_items(organisation, values)
    return [i.item_id for i in sorted(values, key=lambda i: (i.name.casefold(), i.item_id))]


def test_item_pages_walk_every_item_once_by_name(api: Api) -> None:
    expected = _items("org-a", "qbo", 260)
    _items("org-a", "xero", 5)
    _items("org-b", "qbo", 5)
    pages = walk(api, "/integrations/qbo/items")
    assert [len(p) for p in pages] == [100, 100, 60]
    assert [i["item_id"] for page in pages for i in page] == expected
    assert [i["item_id"] for page in walk(api, "/integrations/qbo/items", limit=33) for i in page] == expected
    assert len(ok(api.call("GET", "/integrations/xero/items"))["items"]) == 5


def test_one_providers_item_cursor_is_refused_for_the_other_and_another_organisation(api: Api) -> None:
    _items("org-a", "qbo", 3)
    _items("org-a", "xero", 3)
    cursor = ok(api.call("GET", "/integrations/qbo/items?limit=1"))["next_cursor"]
    assert refused_field(api.call("GET", f"/integrations/xero/items?cursor={quote(cursor)}")) == [
        "query.cursor"
    ]
    refused = api.call("GET", f"/integrations/qbo/items?cursor={quote(cursor)}", organisation="org-b")
    assert refused_field(refused) == ["query.cursor"]
    assert refused_field(api.call("GET", "/integrations/qbo/items?limit=501")) == ["query.limit"]
    assert len(ok(api.call("GET", f"/integrations/qbo/items?cursor={quote(cursor)}"))["items"]) == 2


def test_the_backfill_places_items_synced_before_the_index(api: Api) -> None:
    expected = _items("org-a", "xero", 40)
    for n, item_id in enumerate(expected):
        if n % 4 == 0:
            table().update_item(
                Key=_key("org-a", f"PITEM#xero#{item_id}"), UpdateExpression="REMOVE gsi2pk, gsi2sk"
            )
    assert len([i for page in walk(api, "/integrations/xero/items") for i in page]) == 30
    operator = boto3.resource("dynamodb").Table(table().name)
    assert backfill(operator) == 10
    assert [i["item_id"] for page in walk(api, "/integrations/xero/items", limit=7) for i in page] == expected
