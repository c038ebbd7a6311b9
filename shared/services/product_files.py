"""Product import from a CSV or XLSX file: a dry run reports every row; an apply writes the valid rows.

Rows are keyed by SKU (trimmed, case-insensitive): a row updates the product with that SKU or creates
one, and a row that would change nothing is left alone, so applying the same file twice changes
nothing the second time."""

from __future__ import annotations

import uuid
from typing import Literal

from shared.domain.catalog import Product, sku_key
from shared.domain.product_import import parse_product_file
from shared.domain.product_rows import ImportReport, ProductRow, RowStatus
from shared.model import Model
from shared.store import catalog as store

Mode = Literal["dry_run", "apply"]


class FileImportResult(Model):
    mode: Mode
    report: ImportReport
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _merged(row: ProductRow, existing: Product | None) -> Product:
    base = existing or Product(product_id=str(uuid.uuid4()), sku=row.sku, name=row.name)
    changes = {"sku": row.sku, "name": row.name}
    if row.type is not None:
        changes["type"] = row.type.value
    if row.unit:
        changes["unit"] = row.unit
    merged = base.model_copy(update=changes)
    if row.unit_cost is not None:
        merged = merged.model_copy(update={"unit_cost": row.unit_cost})
    return merged


def import_file(organisation_id: str, content: bytes, mode: Mode) -> FileImportResult:
    report = parse_product_file(content)
    result = FileImportResult(mode=mode, report=report)
    if mode == "dry_run" or report.file_errors:
        return result
    existing = {sku_key(p.sku): p for p in store.products(organisation_id)}
    to_write: list[Product] = []
    for row in report.rows:
        if row.status != RowStatus.VALID or row.product is None:
            continue
        current = existing.get(row.product.key)
        product = _merged(row.product, current)
        if current is None:
            result.created += 1
        elif product == current:
            result.unchanged += 1
            continue
        else:
            result.updated += 1
        to_write.append(product)
    store.put_products(organisation_id, to_write)
    return result
