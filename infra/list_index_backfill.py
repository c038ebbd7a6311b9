"""Run once after the deploy that adds gsi2: gives the exports and products written before it their place in
the paged lists' index (an item without ``gsi2pk`` is on no page of GET /exports or GET /products).

    python -m infra.list_index_backfill --table <table name> [--region <region>]

with credentials that may Scan and UpdateItem the table (the functions' roles may not Scan). Safe to run
again, and beside the running service: each update is conditional on the item still being there without a
place, so an item written meanwhile (which the service places itself) is left as it is."""

from __future__ import annotations

import argparse
from typing import Any

from shared.store.keys import EXPORT_PREFIX, PRODUCT_PREFIX, exports_list_index, products_list_index


def _place(item: dict[str, Any]) -> dict[str, str]:
    organisation = str(item["pk"]).removeprefix("ORG#")
    if str(item["sk"]).startswith(EXPORT_PREFIX):
        return exports_list_index(organisation, str(item["created_at"]), str(item["export_id"]))
    return products_list_index(organisation, str(item["sku"]), str(item["product_id"]))


def backfill(table: Any) -> int:
    """Places every export and product that has no place yet; returns how many it placed."""
    from boto3.dynamodb.conditions import Attr

    unplaced = Attr("gsi2pk").not_exists() & (
        Attr("sk").begins_with(EXPORT_PREFIX) | Attr("sk").begins_with(PRODUCT_PREFIX)
    )
    request: dict[str, Any] = {
        "FilterExpression": unplaced,
        "ProjectionExpression": "pk, sk, created_at, export_id, sku, product_id",
    }
    placed = 0
    while True:
        page = table.scan(**request)
        for item in page["Items"]:
            place = _place(item)
            try:
                table.update_item(
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET gsi2pk = :pk, gsi2sk = :sk",
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(gsi2pk)",
                    ExpressionAttributeValues={":pk": place["gsi2pk"], ":sk": place["gsi2sk"]},
                )
                placed += 1
            except table.meta.client.exceptions.ConditionalCheckFailedException:
                pass  # written (and placed) or removed since the scan read it
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
    print(f"placed {backfill(table)} exports and products in the list index")


if __name__ == "__main__":
    main()
