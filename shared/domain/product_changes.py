"""What importing a product row does to the catalog, decided against a compact index of the catalog.

An import writes five fields of a product (SKU, name, and the type, unit and unit cost when the row gives
them); everything else a product holds (provider links, components) is kept. To tell created, updated and
unchanged rows apart without holding every product, the catalog is indexed as normalised SKU -> product id
and an 8-byte digest of each written field: about 200 bytes a product. Full products are read only for the
rows that change one."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import NamedTuple

from shared.domain.catalog import Product
from shared.domain.product_rows import ProductRow, RowOutcome

_WRITTEN = ("sku", "name", "type", "unit", "unit_cost")
_DIGEST_BYTES = 8


class KnownProduct(NamedTuple):
    product_id: str
    fingerprint: bytes  # the digests of the written fields, in the order of _WRITTEN


def known_product(product: Product) -> KnownProduct:
    return KnownProduct(product.product_id, b"".join(_digest(getattr(product, name)) for name in _WRITTEN))


def change_for(row: ProductRow, known: KnownProduct | None) -> RowOutcome:
    """CREATED, UPDATED or UNCHANGED: whether `merged` would give a product different from the known one."""
    if known is None:
        return RowOutcome.CREATED
    for index, value in enumerate(_written_values(row)):
        start = index * _DIGEST_BYTES
        if value is not None and _digest(value) != known.fingerprint[start : start + _DIGEST_BYTES]:
            return RowOutcome.UPDATED
    return RowOutcome.UNCHANGED


def merged(row: ProductRow, base: Product) -> Product:
    """The product after the row: a field the row leaves blank keeps the product's value."""
    values = zip(_WRITTEN, _written_values(row), strict=True)
    return base.model_copy(update={name: value for name, value in values if value is not None})


def _written_values(row: ProductRow) -> tuple[str | Decimal | None, ...]:
    """The row's value of each written field, None where the product keeps its own (an empty unit too)."""
    product_type = row.type.value if row.type is not None else None
    return (row.sku, row.name, product_type, row.unit or None, row.unit_cost)


def _digest(value: str | Decimal | None) -> bytes:
    if value is None:
        text = "n"
    elif isinstance(value, Decimal):
        text = f"d{value.normalize()}"  # equal amounts digest alike, as they compare: 1.5 == 1.50
    else:
        text = f"s{value}"
    return hashlib.blake2b(text.encode(), digest_size=_DIGEST_BYTES).digest()
