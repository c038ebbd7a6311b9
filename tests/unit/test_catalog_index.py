"""The import's catalog index (CatalogIndex): flat arrays that grow as products are added, find each
product's id by its normalised SKU, and classify rows exactly as a dict of every product's written fields
did (the reference below is that former way, kept here as the oracle)."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.catalog import Product, sku_key
from shared.domain.product_changes import CatalogEntry, CatalogIndex, catalog_entry
from shared.domain.product_rows import ProductRow, ProductType, RowOutcome


# ---- the former way: a dict of normalised SKU -> product id and an 8-byte digest of each written field ----
class _Known(NamedTuple):
    product_id: str
    fingerprint: bytes
    kit: bool = False


_WRITTEN = ("sku", "name", "type", "unit", "unit_cost", "reorder_point", "sale_price", "barcode")


def _digest(value: str | Decimal | None) -> bytes:
    if value is None:
        text = "n"
    elif isinstance(value, Decimal):
        text = f"d{value.normalize()}"
    else:
        text = f"s{value}"
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def _known(entry: CatalogEntry) -> _Known:
    fingerprint = b"".join(_digest(getattr(entry, name)) for name in _WRITTEN)
    return _Known(entry.product_id, fingerprint, entry.type == "kit")


def _former_outcome(row: ProductRow, known: _Known | None) -> RowOutcome:
    if known is None:
        return RowOutcome.CREATED
    values = (
        row.sku,
        row.name,
        row.type.value if row.type else None,
        row.unit or None,
        row.unit_cost,
        row.reorder_point,
        row.sale_price,
        row.barcode or None,
    )
    if known.kit:  # a bundle keeps its type whatever the row's
        values = (*values[:2], None, *values[3:])
    for index, value in enumerate(values):
        if value is not None and _digest(value) != known.fingerprint[index * 8 : index * 8 + 8]:
            return RowOutcome.UPDATED
    return RowOutcome.UNCHANGED


# ---- random catalogs and rows drawn from few values, so rows often match products field for field ----
_SKUS = st.sampled_from(["A-1", "a-1", " A-1", "B-2", "b-2", "C-3", "Ç-3", "ß-4", "SS-4", "D-5 "])
_NAMES = st.sampled_from(["Axle", "axle", "Bolt", "Bolt ", ""])
_STORED_TYPES = st.sampled_from([*(t.value for t in ProductType), "kit", "Component"])
_UNITS = st.sampled_from(["each", "pcs", "kg", "Kg"])
_COSTS = st.sampled_from([None, Decimal("0"), Decimal("0.00"), Decimal("1.5"), Decimal("1.50"), Decimal("2")])
_BARCODES = st.sampled_from(["", "0123456789012", "0123456789013"])
_IDS = st.one_of(st.uuids().map(str), st.sampled_from(["kept", "p1", "A1B2C3D4-0000-4000-8000-000000000000"]))

entries = st.builds(
    CatalogEntry, _IDS, _SKUS, _NAMES, _STORED_TYPES, _UNITS, _COSTS, _COSTS, _COSTS, _BARCODES
)
rows = st.builds(
    lambda sku, name, product_type, unit, cost, reorder_point, sale_price, barcode: ProductRow(
        key=sku_key(sku),
        sku=sku,
        name=name,
        type=product_type,
        unit=unit,
        unit_cost=cost,
        reorder_point=reorder_point,
        sale_price=sale_price,
        barcode=barcode,
    ),
    _SKUS,
    _NAMES,
    st.one_of(st.none(), st.sampled_from(ProductType)),
    st.sampled_from([None, "", "each", "pcs", "Kg"]),
    _COSTS,
    _COSTS,
    _COSTS,
    st.one_of(st.none(), _BARCODES),
)


@settings(max_examples=300)
@given(st.lists(entries, max_size=12), st.lists(rows, max_size=12))
def test_rows_are_classified_as_the_former_dict_of_digests_did(
    catalog: list[CatalogEntry], file_rows: list[ProductRow]
) -> None:
    former = {sku_key(entry.sku): _known(entry) for entry in catalog}  # a later product of a SKU wins
    index = CatalogIndex(catalog)

    assert len(index) == len(former)
    assert index.outcomes(file_rows) == [_former_outcome(row, former.get(row.key)) for row in file_rows]
    for key, known in former.items():
        assert index.product_id(key) == known.product_id
    for row in file_rows:
        if row.key not in former:
            assert index.product_id(row.key) is None


def test_the_table_grows_and_finds_every_product_of_a_large_catalog() -> None:
    ids = [str(uuid.UUID(int=number * 7919)) for number in range(5_000)]
    index = CatalogIndex(slots=8)
    for number, product_id in enumerate(ids):
        index.add(CatalogEntry(product_id, f"PART-{number:05d}", f"Part {number}", unit_cost=Decimal(number)))
        assert len(index) == number + 1

    assert 3 * len(index) <= 2 * len(index._slots)  # grown as it filled, never over 2/3 full
    assert len(index._slots) == 8192
    for number, product_id in enumerate(ids):
        assert index.product_id(f"part-{number:05d}") == product_id
        row = ProductRow(key=f"part-{number:05d}", sku=f"PART-{number:05d}", name=f"Part {number}")
        assert index.outcome(row) is RowOutcome.UNCHANGED
        assert index.outcome(row.model_copy(update={"unit_cost": Decimal(number + 1)})) is RowOutcome.UPDATED
    assert index.product_id("part-05000") is None
    assert index.nbytes < 84 * len(index)  # 8-byte hash, 65-byte record, 4-byte slots at 1/3 to 2/3 full


def test_a_product_read_again_under_the_same_sku_replaces_the_first() -> None:
    first, second = str(uuid.uuid4()), "not-a-uuid"
    index = CatalogIndex(
        [CatalogEntry(first, "A-1", "Axle"), CatalogEntry(second, "a-1 ", "Axle long", unit="pcs")]
    )

    assert len(index) == 1
    assert index.product_id("a-1") == second
    row = ProductRow(key="a-1", sku="a-1 ", name="Axle long", unit="pcs")
    assert index.outcome(row) is RowOutcome.UNCHANGED
    assert index.outcome(row.model_copy(update={"sku": "A-1"})) is RowOutcome.UPDATED


def test_ids_come_back_exactly_whether_or_not_they_are_uuids() -> None:
    ids = [str(uuid.uuid4()), str(uuid.UUID(int=0)), "kept", "A1B2C3D4-0000-4000-8000-000000000000", ""]
    index = CatalogIndex(CatalogEntry(product_id, f"S-{n}", "x") for n, product_id in enumerate(ids))

    assert [index.product_id(f"s-{n}") for n in range(len(ids))] == ids


def test_an_entry_holds_what_a_product_gives_the_import() -> None:
    product = Product(
        product_id="p", sku="A-1", name="Axle", unit_cost=Decimal("2.5"), provider_links={"qbo": "9"}
    )

    assert catalog_entry(product) == CatalogEntry("p", "A-1", "Axle", "component", "each", Decimal("2.5"))
    assert CatalogEntry("p", "A-1", "Axle") == catalog_entry(Product(product_id="p", sku="A-1", name="Axle"))
