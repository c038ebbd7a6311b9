"""GET /receipts and GET /builds a page at a time: every record once, oldest first (by the instant it
happened, whatever offset it was sent with, then the order it was recorded in); a page of large records ends
before its answer nears Lambda's 6 MB; a bad limit or cursor, another list's or another organisation's, is
refused naming it; records written before the index are placed by the backfill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from infra.list_index_backfill import backfill
from shared.aws import table
from tests.conftest import Api
from tests.integration.test_list_paging import refused_field, walk
from tests.integration.test_probe_inventory_api import build_body, ok, post, products, receipt

START = datetime(2026, 11, 2, 9, tzinfo=UTC)
# (minutes after START, the offset it is sent with): out of order, two pairs at one instant sent differently
TIMES = [(30, 0), (5, -5), (30, 9), (0, 13), (45, 0), (5, 1), (20, -8), (10, 0)]


def sent(minutes: int, offset_hours: int) -> str:
    """START plus ``minutes``, written in a zone ``offset_hours`` from UTC (the instant is the same)."""
    return (
        (START + timedelta(minutes=minutes)).astimezone(timezone(timedelta(hours=offset_hours))).isoformat()
    )


def recorded_in_order(api: Api, kind: str, organisation: str = "org-a") -> list[str]:
    """Receipts (of bolts) or builds (of brackets from them) at TIMES, in that order; their ids in the order
    the list must answer them: by instant, then as recorded."""
    products("bolt", "bracket", organisation=organisation)
    if kind == "builds":  # stock for every build, received before them all
        line = {"product_id": "bolt", "quantity": "100", "unit_cost": "1"}
        ok(post(api, "/receipts", receipt(line, at=sent(-60, 0)), organisation=organisation), 201)
    ids = []
    for minutes, offset in TIMES:
        at = sent(minutes, offset)
        if kind == "receipts":
            body = receipt({"product_id": "bolt", "quantity": "1", "unit_cost": "1"}, at=at)
            ids.append(
                ok(post(api, "/receipts", body, organisation=organisation), 201)["receipt"]["receipt_id"]
            )
        else:
            body = build_body("bracket", "1", {"bolt": "1"}, at=at)
            ids.append(ok(post(api, "/builds", body, organisation=organisation), 201)["build"]["build_id"])
    order = sorted(range(len(TIMES)), key=lambda n: (TIMES[n][0], n))
    return [ids[n] for n in order]


def listed_ids(pages: list[list[Any]], kind: str) -> list[str]:
    if kind == "receipts":
        return [r["receipt"]["receipt_id"] for page in pages for r in page]
    return [b["build"]["build_id"] for page in pages for b in page]


@pytest.mark.parametrize("kind", ["receipts", "builds"])
def test_pages_walk_every_record_once_by_instant_then_as_recorded(api: Api, kind: str) -> None:
    expected = recorded_in_order(api, kind)
    if kind == "builds":
        assert len(listed_ids(walk(api, "/receipts"), "receipts")) == 1
    assert listed_ids(walk(api, f"/{kind}", limit=3), kind) == expected
    pages = walk(api, f"/{kind}")  # the default page: 50
    assert len(pages) == 1 and listed_ids(pages, kind) == expected
    assert ok(api.call("GET", f"/{kind}", organisation="org-empty")) == {"items": [], "next_cursor": None}


def test_a_page_of_large_receipts_ends_before_its_answer_nears_lambdas_limit(api: Api) -> None:
    """Receipts of 500 lines (the most a receipt holds) are ~100 kB each: a page of 100 would pass Lambda's
    6 MB answer; the page ends once its records pass 2 MB instead, and the next page goes on from there."""
    parts = [f"part-{n}" for n in range(100)]
    products(*parts)
    lines = [
        {
            "product_id": parts[n % 100],
            "quantity": "1",
            "unit_cost": "1",
            "lot_code": f"LOT-{n:05d}-{'x' * 40}",
        }
        for n in range(500)
    ]
    made = [
        ok(post(api, "/receipts", receipt(*lines, at=sent(n, 0))), 201)["receipt"]["receipt_id"]
        for n in range(30)
    ]
    first = api.call("GET", "/receipts?limit=100")
    page = ok(first)
    assert 0 < len(page["items"]) < 30 and page["next_cursor"]
    assert len(first.body) < 3_000_000
    assert listed_ids(walk(api, "/receipts", limit=100), "receipts") == made


@pytest.mark.parametrize("limit", ["0", "-1", "101", "1e2", "ten", ""])
@pytest.mark.parametrize("path", ["/receipts", "/builds"])
def test_a_limit_out_of_bounds_is_refused_naming_it(api: Api, path: str, limit: str) -> None:
    assert refused_field(api.call("GET", f"{path}?limit={limit}")) == ["query.limit"]


def test_a_cursor_of_another_list_or_organisation_or_edited_is_refused(api: Api) -> None:
    recorded_in_order(api, "builds")
    recorded_in_order(api, "receipts", organisation="org-b")
    builds = ok(api.call("GET", "/builds?limit=1"))["next_cursor"]
    theirs = ok(api.call("GET", "/receipts?limit=1", organisation="org-b"))["next_cursor"]
    assert refused_field(api.call("GET", f"/receipts?cursor={quote(builds)}")) == ["query.cursor"]
    assert refused_field(api.call("GET", f"/exports?cursor={quote(builds)}")) == ["query.cursor"]
    assert refused_field(api.call("GET", f"/receipts?cursor={quote(theirs)}")) == ["query.cursor"]
    assert refused_field(api.call("GET", f"/builds?cursor={quote(builds[:-1])}")) == ["query.cursor"]
    assert len(ok(api.call("GET", f"/builds?cursor={quote(builds)}"))["items"]) == len(TIMES) - 1


@pytest.mark.parametrize("kind", ["receipts", "builds"])
def test_the_backfill_places_records_written_before_the_index(api: Api, kind: str) -> None:
    expected = recorded_in_order(api, kind)
    prefix = "INVENTORY#receipt#" if kind == "receipts" else "INVENTORY#build#"
    for n, record_id in enumerate(expected):  # as written before receipts and builds were paged
        if n % 2 == 0:
            table().update_item(
                Key={"pk": "ORG#org-a", "sk": prefix + record_id}, UpdateExpression="REMOVE gsi2pk, gsi2sk"
            )
    assert listed_ids(walk(api, f"/{kind}"), kind) == expected[1::2]

    operator = boto3.resource("dynamodb").Table(table().name)  # as an operator runs it
    assert backfill(operator) == (len(expected) + 1) // 2
    assert listed_ids(walk(api, f"/{kind}", limit=3), kind) == expected
    assert backfill(operator) == 0


def test_a_product_with_thousands_of_open_lots_takes_more_receipts(api: Api) -> None:
    """Each 500-line receipt of one product adds 500 lots (about 50 kB) to its stored stock: the stock item
    grows to its page size, then goes on in pages of its own, and every receipt is recorded."""
    products("bolt")
    lines = [
        {"product_id": "bolt", "quantity": "1", "unit_cost": "1", "lot_code": f"LOT-{n:05d}-{'x' * 40}"}
        for n in range(500)
    ]
    for n in range(9):
        ok(post(api, "/receipts", receipt(*lines, at=sent(n, 0))), 201)
    lots = ok(api.call("GET", "/products/bolt/lots"))["lots"]
    assert len(lots) == 9 * 500 and len({lot["lot_code"] for lot in lots}) == 500
