"""What importing a product row does to the catalog, decided against a compact index of the catalog.

An import writes eight fields of a product (SKU, name, and the type, unit, unit cost, reorder point, sale
price and barcode when the row gives them); everything else a product holds (provider links, components) is
kept. To tell created, updated and unchanged rows apart without holding every product, the catalog is
indexed (`CatalogIndex`) in flat arrays: a hash of each normalised SKU, the product's id and digests of the
written fields, about 81 bytes a product. Full products are read only for the rows that change one."""

from __future__ import annotations

import hashlib
import uuid
from array import array
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from shared.domain.catalog import KIT, Product, sku_key
from shared.domain.product_rows import ProductRow, ProductType, RowOutcome

_DIGESTED = ("unit", "unit_cost", "reorder_point", "sale_price", "barcode")  # each a digest of its own
_WRITTEN = ("sku", "name", "type", *_DIGESTED)
_DIGEST_BYTES = 8


class CatalogEntry(NamedTuple):
    """What the import needs of one stored product: its id and the fields an import writes (the store
    reads just these attributes; their defaults are the product's own)."""

    product_id: str
    sku: str
    name: str
    type: str = Product.model_fields["type"].default
    unit: str = Product.model_fields["unit"].default
    unit_cost: Decimal | None = None
    reorder_point: Decimal | None = None
    sale_price: Decimal | None = None
    barcode: str = Product.model_fields["barcode"].default


def catalog_entry(product: Product) -> CatalogEntry:
    return CatalogEntry(product.product_id, *(getattr(product, name) for name in _WRITTEN))


# An entry's record in the index's blob, 65 bytes: the product id as a UUID's 16 bytes, then a digest of
# the SKU and name together (a row always gives both), then one of each _DIGESTED field (a row may give any
# of them and leave the others blank, which keeps the product's: so each is compared on its own), then the
# type's code (the types a row can give are few and known: compared exactly, not by digest).
_ID, _SKU_NAME, _DIGESTS = 0, 16, 24
_TYPE = _DIGESTS + _DIGEST_BYTES * len(_DIGESTED)
_RECORD = _TYPE + 1
_TYPE_CODES = {product_type.value: code for code, product_type in enumerate(ProductType, start=1)}
_OTHER_TYPE = 0  # a stored type no row can give: any row type changes it
# a provider bundle's type: kept whatever a row's Type says, as the bundle's components, not a type, are what
# its sales consume (a bundle made a finished good would sell lots of its own, which it has none of)
_BUNDLE_TYPE = 255


class CatalogIndex:
    """The catalog as normalised SKU -> (product id, digests of the written fields), in flat arrays.

    Per product: its SKU's hash (8 bytes, in `_keys`), its 65-byte record in one blob (`_records`), and
    4 bytes a slot of an open-addressing table (linear probing) of entry numbers kept at most 2/3 full,
    so 6 to 12 bytes a product: about 81 bytes a product in all, against about 300 for a dict of strings
    and tuples (before the reorder point, sale price and barcode were written). A product id that is not
    a UUID as the service writes them is kept as text on the side. When two products share a normalised
    SKU the later one read is the one indexed (as a dict would do).

    Collision odds. The SKU's hash is Python's 64-bit SipHash of the normalised SKU, keyed afresh in every
    process (the functions leave PYTHONHASHSEED unset), so no SKU can be chosen to collide on purpose. A
    row whose SKU is not in a catalog of n products is taken for one that is with a probability of n / 2⁶⁴,
    so for the m rows of a file at most m·n / 2⁶⁴ (50,000 rows against 50,000 products: below one in ten
    billion, 1.4·10⁻¹⁰); two products of the catalog share a hash with a probability below n² / 2⁶⁵
    (7·10⁻¹¹). Such a row shows as updated in a dry run; an apply checks the SKU of the product it reads
    before writing and creates the product instead (for the product a catalog collision hid, a second
    product of its SKU). A changed field is taken for unchanged only if its 64-bit BLAKE2b digest equals
    the stored one's, 2⁻⁶⁴ a compared field (and, for a row whose SKU is new, only after a SKU hash
    collision too)."""

    _EMPTY = 0  # a slot holds entry number + 1, so 0 is a free slot

    def __init__(self, entries: Iterable[CatalogEntry] = (), slots: int = 1024) -> None:
        self._slots = array("i", bytes(4 * slots))
        self._keys = array("q")  # each entry's SKU hash, in the order entries were added
        self._records = bytearray()
        self._odd_ids: dict[int, str] = {}  # entry number -> a product id that is not a canonical UUID
        self._count = 0  # distinct SKUs (slots in use)
        for entry in entries:
            self.add(entry)

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """The bytes its arrays use (what the index holds, apart from ids kept on the side)."""
        return (
            self._slots.itemsize * len(self._slots)
            + self._keys.itemsize * len(self._keys)
            + len(self._records)
        )

    def add(self, entry: CatalogEntry) -> None:
        hashed = hash(sku_key(entry.sku)) or 1  # as a row's key is made
        number = len(self._keys)
        packed = _packed_id(entry.product_id)
        if packed is None:
            self._odd_ids[number] = entry.product_id
        self._keys.append(hashed)
        self._records += _record(packed or bytes(16), entry)
        slot = self._slot(hashed)
        if self._slots[slot] == self._EMPTY:
            self._count += 1
        self._slots[slot] = number + 1
        if 3 * self._count > 2 * len(self._slots):
            self._grow()

    def product_id(self, key: str) -> str | None:
        """The id of the product whose normalised SKU is `key`, or None."""
        number = self._find(key)
        if number is None:
            return None
        odd = self._odd_ids.get(number)
        if odd is not None:
            return odd
        start = number * _RECORD + _ID
        return str(uuid.UUID(bytes=bytes(self._records[start : start + 16])))

    def outcome(self, row: ProductRow) -> RowOutcome:
        """CREATED, UPDATED or UNCHANGED: whether `merged` would give a product different from the indexed
        one (a field the row leaves blank keeps the product's value)."""
        number = self._find(row.key)
        if number is None:
            return RowOutcome.CREATED
        base, records = number * _RECORD, self._records
        if _digest_of(f"{len(row.sku)}:{row.sku}{row.name}") != records[base + _SKU_NAME : base + _DIGESTS]:
            return RowOutcome.UPDATED
        stored_type = records[base + _TYPE]
        if (
            row.type is not None
            and stored_type != _BUNDLE_TYPE
            and _TYPE_CODES[row.type.value] != stored_type
        ):
            return RowOutcome.UPDATED
        start = base + _DIGESTS
        for value in _written_values(row)[-len(_DIGESTED) :]:
            if value is not None and _digest(value) != records[start : start + _DIGEST_BYTES]:
                return RowOutcome.UPDATED
            start += _DIGEST_BYTES
        return RowOutcome.UNCHANGED

    def outcomes(self, rows: Iterable[ProductRow]) -> list[RowOutcome]:
        return [self.outcome(row) for row in rows]

    def _find(self, key: str) -> int | None:
        """The entry number indexed under `key`, or None."""
        found = self._slots[self._slot(hash(key) or 1)]
        return None if found == self._EMPTY else found - 1

    def _slot(self, hashed: int) -> int:
        """The slot holding `hashed`, or the free one where it would go."""
        slots, keys = self._slots, self._keys
        mask = len(slots) - 1
        slot = hashed & mask
        while (found := slots[slot]) != self._EMPTY and keys[found - 1] != hashed:
            slot = (slot + 1) & mask
        return slot

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("i", bytes(2 * old.itemsize * len(old)))
        for found in old:
            if found != self._EMPTY:
                self._slots[self._slot(self._keys[found - 1])] = found


def merged(row: ProductRow, base: Product) -> Product:
    """The product after the row: a field the row leaves blank keeps the product's value, and a bundle its
    type (``_BUNDLE_TYPE``)."""
    return base.model_copy(update=_update(row, base))


def fields_set(row: ProductRow, base: Product) -> tuple[str, ...]:
    """The fields of `base` the row sets (`merged`): the only ones an apply writes of a stored product."""
    return tuple(_update(row, base))


def _update(row: ProductRow, base: Product) -> dict[str, str | Decimal]:
    values = zip(_WRITTEN, _written_values(row), strict=True)
    update = {name: value for name, value in values if value is not None}
    if base.type == KIT:
        update.pop("type", None)
    return update


def _written_values(row: ProductRow) -> tuple[str | Decimal | None, ...]:
    """The row's value of each written field (in _WRITTEN's order), None where the product keeps its own
    (an empty unit or barcode too)."""
    product_type = row.type.value if row.type is not None else None
    return (
        row.sku,
        row.name,
        product_type,
        row.unit or None,
        row.unit_cost,
        row.reorder_point,
        row.sale_price,
        row.barcode or None,
    )


def _record(product_id: bytes, entry: CatalogEntry) -> bytes:
    return b"".join(
        (
            product_id,
            _digest_of(f"{len(entry.sku)}:{entry.sku}{entry.name}"),
            *(_digest(getattr(entry, name)) for name in _DIGESTED),
            bytes((_BUNDLE_TYPE if entry.type == KIT else _TYPE_CODES.get(entry.type, _OTHER_TYPE),)),
        )
    )


def _packed_id(product_id: str) -> bytes | None:
    """The id's 16 bytes when it is a UUID written as str(uuid) writes it (so they give it back exactly)."""
    if len(product_id) != 36:
        return None
    try:
        value = uuid.UUID(product_id)
    except ValueError:
        return None
    return value.bytes if str(value) == product_id else None


def _digest(value: str | Decimal | None) -> bytes:
    if value is None:
        text = "n"
    elif isinstance(value, Decimal):
        text = f"d{value.normalize()}"  # equal amounts digest alike, as they compare: 1.5 == 1.50
    else:
        text = f"s{value}"
    return _digest_of(text)


def _digest_of(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=_DIGEST_BYTES).digest()
