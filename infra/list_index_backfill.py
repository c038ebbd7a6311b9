"""Run once after the deploy that adds gsi2, and after the one that pages receipts, builds and provider
items: gives the exports, products, receipts, builds and provider items written before it their place in
the paged lists' index (an item without ``gsi2pk`` is on no page of GET /exports, /products, /receipts,
/builds or /integrations/{provider}/items).

    python -m infra.list_index_backfill --table <table name> [--region <region>]

with credentials that may Scan and UpdateItem the table (the functions' roles may not Scan). Safe to run
again, and beside the running service: each update is conditional on the item still being there without a
place and with the SKU (or creation time, record time, item name) the scan read, so an item written meanwhile
(which the service places itself, or a function still running the code before the index rewrote) is never
placed where it no longer belongs."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from shared.store.keys import (
    EXPORT_PREFIX,
    LISTED_RECORDS,
    PRODUCT_PREFIX,
    exports_list_index,
    item_prefix,
    items_list_index,
    products_list_index,
    record_sk,
    records_list_index,
)

RECORD_PREFIXES = tuple(record_sk(kind, "") for kind in LISTED_RECORDS)
ITEM_PREFIXES = (item_prefix("qbo"), item_prefix("xero"))


def _place(item: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The item's place in the index, and the attribute it was placed by (the update holds only while that
    is still what the scan read)."""
    organisation = str(item["pk"]).removeprefix("ORG#")
    if str(item["sk"]).startswith(EXPORT_PREFIX):
        return exports_list_index(organisation, str(item["created_at"]), str(item["export_id"])), "created_at"
    if str(item["sk"]).startswith(RECORD_PREFIXES):  # a receipt's JSON holds its seq; a build's, its build's
        body = json.loads(str(item["body"]))
        seq = body["seq"] if item["kind"] == "receipt" else body["build"]["seq"]
        at = datetime.fromisoformat(str(item["at"]))
        return records_list_index(organisation, str(item["kind"]), at, int(seq), str(item["record_id"])), "at"
    if str(item["sk"]).startswith(ITEM_PREFIXES):
        provider = str(item["sk"]).split("#")[1]  # PITEM#<provider>#<item id>
        place = items_list_index(organisation, provider, str(item["name"]), str(item["item_id"]))
        return place, "name"
    return products_list_index(organisation, str(item["sku"]), str(item["product_id"])), "sku"


def backfill(table: Any) -> int:
    """Places every export, product, receipt, build and provider item that has no place yet; returns how
    many it placed."""
    from boto3.dynamodb.conditions import Attr

    listed = Attr("sk").begins_with(EXPORT_PREFIX) | Attr("sk").begins_with(PRODUCT_PREFIX)
    for prefix in RECORD_PREFIXES + ITEM_PREFIXES:
        listed = listed | Attr("sk").begins_with(prefix)
    request: dict[str, Any] = {
        "FilterExpression": Attr("gsi2pk").not_exists() & listed,
        "ProjectionExpression": "pk, sk, created_at, export_id, sku, product_id, #k, record_id, #at, #b, "
        "#n, item_id",
        "ExpressionAttributeNames": {"#k": "kind", "#at": "at", "#b": "body", "#n": "name"},
    }
    placed = 0
    while True:
        page = table.scan(**request)
        for item in page["Items"]:
            place, by = _place(item)
            try:
                table.update_item(
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET gsi2pk = :pk, gsi2sk = :sk",
                    ConditionExpression="attribute_not_exists(gsi2pk) AND #by = :by",
                    ExpressionAttributeNames={"#by": by},
                    ExpressionAttributeValues={
                        ":pk": place["gsi2pk"],
                        ":sk": place["gsi2sk"],
                        ":by": item[by],
                    },
                )
                placed += 1
            except table.meta.client.exceptions.ConditionalCheckFailedException:
                # written (placed, or by a function older than the index: another SKU) or removed since the
                # scan read it; a write without a place is left for the next run
                pass
        if "LastEvaluatedKey" not in page:
            return placed
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--table", required=True)
    parser.add_argument("--region")
    arguments = parser.parse_args()
    table = boto3.resource("dynamodb", region_name=arguments.region).Table(arguments.table)
    print(f"placed {backfill(table)} exports, products, receipts, builds and items in the list index")


if __name__ == "__main__":
    main()
