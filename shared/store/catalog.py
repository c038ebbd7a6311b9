"""The organisation's catalog in the single table: products, the provider's items, chart of accounts and
suppliers, and the cursors of incremental syncs. Everything lives in the ``ORG#<org>`` partition, so one
Query reads a whole kind; writes go in batches of 25 (an import's products in transactions of 100) and
point reads in batches of 100 (keys: ``keys``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel

from shared.aws import table
from shared.domain.catalog import Account, Product, ProviderItem, Supplier
from shared.domain.product_changes import CatalogEntry
from shared.store.dynamo import (
    ListPosition,
    iter_org_items,
    org_batch_get,
    org_items,
    org_list_page,
    set_clause,
    transact,
)
from shared.store.keys import (
    PRODUCT_PREFIX,
    SUPPLIER_PREFIX,
    account_prefix,
    account_sk,
    cursor_sk,
    item_prefix,
    item_sk,
    items_list_index,
    items_list_pk,
    made_by_sk,
    org_pk,
    product_sk,
    products_list_index,
    products_list_pk,
    supplier_prefix,
    supplier_sk,
)

M = TypeVar("M", bound=BaseModel)


def _query(organisation_id: str, prefix: str) -> list[dict[str, Any]]:
    return org_items(organisation_id, prefix)


_KEYS = ("pk", "sk", "gsi2pk", "gsi2sk")


def _load(model: type[M], row: dict[str, Any]) -> M:
    return model.model_validate({k: v for k, v in row.items() if k not in _KEYS})


def _item(organisation_id: str, keys: dict[str, str], value: BaseModel) -> dict[str, Any]:
    """The value as stored under its keys (its sort key, and its place in a list's index if it has one)."""
    return {"pk": org_pk(organisation_id), **keys, **value.model_dump(mode="python")}


def _put_all(organisation_id: str, rows: Iterable[tuple[dict[str, str], BaseModel]]) -> None:
    with table().batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
        for keys, value in rows:
            batch.put_item(Item=_item(organisation_id, keys, value))


# ---- products -------------------------------------------------------------------------------------------
def products(organisation_id: str) -> list[Product]:
    return [_load(Product, row) for row in _query(organisation_id, PRODUCT_PREFIX)]


def product_page(
    organisation_id: str, limit: int, after: ListPosition | None
) -> tuple[list[Product], ListPosition | None]:
    """A page of the organisation's products, by SKU (``keys.products_list_index``)."""
    rows, last = org_list_page(organisation_id, products_list_pk(organisation_id), limit=limit, after=after)
    return [_load(Product, row) for row in rows], last


def iter_products(organisation_id: str) -> Iterator[Product]:
    """Every product, read one query page at a time (for callers that keep less than the models)."""
    return (_load(Product, row) for row in iter_org_items(organisation_id, PRODUCT_PREFIX))


CATALOG_PAGE = 250  # products to a Query page of `iter_catalog_entries`
_ENTRY_NAMES = {f"#e{i}": name for i, name in enumerate(CatalogEntry._fields)}  # "name", "type": reserved


def iter_catalog_entries(organisation_id: str) -> Iterator[CatalogEntry]:
    """Every product's id and the fields an import writes, and nothing else: each Query page projects just
    those attributes and holds at most CATALOG_PAGE products, so an import indexes the catalog without
    ever holding whole products (their provider links and components)."""
    rows = iter_org_items(
        organisation_id,
        PRODUCT_PREFIX,
        ProjectionExpression=", ".join(_ENTRY_NAMES),
        ExpressionAttributeNames=_ENTRY_NAMES,
        Limit=CATALOG_PAGE,
    )
    return (_entry(row) for row in rows)


def _entry(row: dict[str, Any]) -> CatalogEntry:
    """A product's entry; a product stored before a field was written lacks it, and has its default."""
    defaults = CatalogEntry._field_defaults
    return CatalogEntry(
        product_id=str(row["product_id"]),
        sku=str(row["sku"]),
        name=str(row["name"]),
        type=str(row.get("type", defaults["type"])),
        unit=str(row.get("unit", defaults["unit"])),
        unit_cost=_amount(row.get("unit_cost")),
        reorder_point=_amount(row.get("reorder_point")),
        sale_price=_amount(row.get("sale_price")),
        barcode=str(row.get("barcode", defaults["barcode"])),
    )


def _amount(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def get_products(organisation_id: str, product_ids: Iterable[str]) -> list[Product]:
    return [_load(Product, row) for row in org_batch_get(organisation_id, map(product_sk, product_ids))]


def put_products(organisation_id: str, values: Iterable[Product]) -> None:
    _put_all(organisation_id, ((_product_keys(organisation_id, p), p) for p in values))


def _product_key(organisation_id: str, product_id: str) -> dict[str, str]:
    return {"pk": org_pk(organisation_id), "sk": product_sk(product_id)}


def _product_keys(organisation_id: str, product: Product) -> dict[str, str]:
    return {
        "sk": product_sk(product.product_id),
        **products_list_index(organisation_id, product.sku, product.product_id),
    }


WRITE_AT_ONCE = 100  # DynamoDB's most writes in one TransactWriteItems


class ProductChange(NamedTuple):
    """What a writer makes of a stored product: the product, the attributes of it that it writes, and the
    SKU the writer read it with; `link`: a provider whose link (of the product's) it writes too, that link
    only, not the whole ``provider_links`` (which then is none of `fields`)."""

    product: Product
    fields: tuple[str, ...]
    read_sku: str
    link: str | None = None


class MadeBy(NamedTuple):
    """A request that notes the products it makes (``made_by``), and until when the note is kept."""

    request_token: str
    expires_at: int


def write_products(
    organisation_id: str,
    new: Sequence[Product],
    changed: Sequence[ProductChange] = (),
    made_by: MadeBy | None = None,
) -> list[str]:
    """Writes products all or none, in one transaction (at most WRITE_AT_ONCE in all): `new` ones only where
    no product has their id; of each `changed` one, only its `fields`, and only while the product still has
    the SKU it was read with (it exists, and is the one the writer took it for: an import finds a product
    by its SKU). Every other attribute stays as it is when the write lands: a provider link, or a field,
    written by another request after the writer read the product is kept, never overwritten with the
    writer's stale copy. [] once written, else the ids whose condition failed (new ones another writer made,
    changed ones gone or given another SKU since the caller looked): nothing is written then. `made_by`: the
    new ones' ids are added to its note in the same transaction (so at most WRITE_AT_ONCE - 1 products).
    A changed one with a `link` whose product was stored with no links at all is given them (empty) then,
    so the caller's next try, reading again, writes its link (``_link``)."""
    if not (new or changed):
        return []
    name = table().name

    def put(product: Product) -> dict[str, Any]:
        item = _item(organisation_id, _product_keys(organisation_id, product), product)
        return {"Put": {"TableName": name, "Item": item, "ConditionExpression": "attribute_not_exists(sk)"}}

    def update(change: ProductChange) -> dict[str, Any]:
        product = change.product
        written = product.model_dump(mode="python", include=set(change.fields))
        if "sku" in written:  # its place in the list follows its SKU
            written.update(products_list_index(organisation_id, product.sku, product.product_id))
        clause, names, values = set_clause(written)
        condition = "#read_sku = :read_sku"
        if change.link is not None:
            link, link_names, link_values = _link(change.link, product.provider_links[change.link])
            clause, condition = ", ".join(c for c in (clause, link) if c), f"{condition} AND {_HAS_LINKS}"
            names.update(link_names)
            values.update(link_values)
        return {
            "Update": {
                "TableName": name,
                "Key": _product_key(organisation_id, product.product_id),
                "UpdateExpression": f"SET {clause}",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {**names, "#read_sku": "sku"},
                "ExpressionAttributeValues": {**values, ":read_sku": change.read_sku},
            }
        }

    writes = [put(p) for p in new] + [update(c) for c in changed]
    if made_by is not None and new:
        writes.append(
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": org_pk(organisation_id), "sk": made_by_sk(made_by.request_token)},
                    "UpdateExpression": "ADD made :ids SET expires_at = :expires",
                    "ExpressionAttributeValues": {
                        ":ids": {p.product_id for p in new},
                        ":expires": made_by.expires_at,
                    },
                }
            }
        )
    codes = transact(writes, conditions_only=True)
    if codes is None:
        return []
    ids = [p.product_id for p in new] + [c.product.product_id for c in changed]
    failed = [i for i, code in zip(ids, codes, strict=False) if code == "ConditionalCheckFailed"]
    _give_links(
        organisation_id, [c.product.product_id for c in changed if c.link and c.product.product_id in failed]
    )
    return failed


# the condition of every write into a product's link maps (``_link``, ``_update_links``)
_HAS_LINKS = "attribute_exists(provider_links) AND attribute_exists(former_links)"


def _link(provider: str, item_id: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``#links.#provider = :item`` in an UpdateExpression's SET, with its names and values: a product's link
    to `provider`'s item, that link only, so a link to another provider written meanwhile stays. The path
    needs the product's maps of links (every product is written with them, maybe empty; one stored before
    products had them has none): each write of it is conditioned on `_HAS_LINKS`, which also never lets it
    make a product that is gone."""
    return "#links.#provider = :item", {"#links": "provider_links", "#provider": provider}, {":item": item_id}


def _give_links(organisation_id: str, product_ids: Iterable[str]) -> set[str]:
    """Gives each product of these ids that lacks ``provider_links`` or ``former_links`` an empty one
    (`_HAS_LINKS`), one UpdateItem each (a product stored before products had them: rare), on the condition
    that it lacks one: a product that has both (refused for another reason) is not written. The ids of those
    that exist (a refused update answers the product as stored, ``ALL_OLD``, when there is one)."""
    client = table().meta.client
    existing = set()
    for product_id in product_ids:
        try:
            table().update_item(
                Key=_product_key(organisation_id, product_id),
                UpdateExpression=(
                    "SET provider_links = if_not_exists(provider_links, :none), "
                    "former_links = if_not_exists(former_links, :none)"
                ),
                ConditionExpression=f"attribute_exists(sk) AND NOT ({_HAS_LINKS})",
                ExpressionAttributeValues={":none": {}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException as refused:
            if "Item" not in refused.response:
                continue  # gone meanwhile
        existing.add(product_id)
    return existing


class Update(NamedTuple):
    """An UpdateExpression, its names and its values, and a condition besides `_HAS_LINKS` ("": none)."""

    expression: str
    names: dict[str, str]
    values: dict[str, Any]
    condition: str = ""


def _update_links(organisation_id: str, updates: Mapping[str, Update]) -> set[str]:
    """Runs each product's update (by product id) of its link maps, all in one transaction (at most
    WRITE_AT_ONCE), each on the condition `_HAS_LINKS` (and its own): a product stored before it had them is
    given them, then updated; one gone meanwhile is not made again, and one whose own condition no longer
    holds is left as it is. The ids of the products not updated."""

    def write(product_id: str, update: Update) -> dict[str, Any]:
        condition = f"{_HAS_LINKS} AND ({update.condition})" if update.condition else _HAS_LINKS
        return {
            "Update": {
                "TableName": table().name,
                "Key": _product_key(organisation_id, product_id),
                "UpdateExpression": update.expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": update.names,
                **({"ExpressionAttributeValues": update.values} if update.values else {}),
            }
        }

    pending = dict(updates)
    refused: set[str] = set()  # those refused once: given their maps since, so a refusal again is their own
    while pending:
        codes = transact([write(p, u) for p, u in pending.items()], conditions_only=True)
        if codes is None:
            break
        failed = {p for p, code in zip(pending, codes, strict=False) if code == "ConditionalCheckFailed"}
        left = failed - _give_links(organisation_id, failed - refused)
        refused |= failed
        pending = {p: u for p, u in pending.items() if p not in left}
    return set(updates) - set(pending)


def link_products(
    organisation_id: str, provider: str, links: Mapping[str, str], read: Mapping[str, str]
) -> set[str]:
    """Links each product (of the ids `links` maps to the provider's item ids) to its item, all in one
    transaction (at most WRITE_AT_ONCE), writing the link only (``_link``): whatever else another request
    writes to them meanwhile stays. Only while its link to `provider` is the one the caller read (`read`:
    product id -> item id; absent: none), as the write's condition, so a link another request (a provider
    items import) wrote since is never overwritten by one chosen from an older read; a product gone meanwhile
    is not made again. The ids of the products left as they are."""
    updates = {}
    for product_id, item_id in links.items():
        clause, names, values = _link(provider, item_id)
        if (was := read.get(product_id)) is None:
            condition = "attribute_not_exists(#links.#provider)"
        else:
            condition, values = "#links.#provider = :read", {**values, ":read": was}
        # (or linked to that item already, by another sync at once: writing it again changes nothing)
        condition = f"{condition} OR #links.#provider = :item"
        updates[product_id] = Update(f"SET {clause}", names, values, condition)
    return _update_links(organisation_id, updates)


def _links_update(was: Product, now: Product) -> Update | None:
    """The update of the links (``provider_links``, ``former_links``) `now` has other than `was`, key by
    key (SET or REMOVE): the product's other links, and its other fields, stay as they are stored. None if
    none differs."""
    sets: list[str] = []
    removes: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for attribute in ("provider_links", "former_links"):
        old, new = getattr(was, attribute), getattr(now, attribute)
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) == new.get(key):
                continue
            n = len(names)
            names[f"#k{n}"] = key
            if key in new:
                values[f":v{n}"] = new[key]
                sets.append(f"{attribute}.#k{n} = :v{n}")
            else:
                removes.append(f"{attribute}.#k{n}")
    if not names:
        return None
    clauses = [f"SET {', '.join(sets)}"] if sets else []
    clauses += [f"REMOVE {', '.join(removes)}"] if removes else []
    return Update(" ".join(clauses), names, values)


def change_links(organisation_id: str, changes: Iterable[tuple[Product, Product]]) -> int:
    """Of each product as read (`was`) and as the writer makes it (`now`), writes the links that differ, and
    only those (``_links_update``), in transactions of WRITE_AT_ONCE products: a field or another link
    written by another request since the read stays. The products changed."""
    updates = {w.product_id: u for w, n in changes if (u := _links_update(w, n)) is not None}
    ids = list(updates)
    for start in range(0, len(ids), WRITE_AT_ONCE):
        _update_links(organisation_id, {i: updates[i] for i in ids[start : start + WRITE_AT_ONCE]})
    return len(updates)


def products_made_by(organisation_id: str, request_token: str, now: int) -> set[str]:
    """The ids of the products the attempts at the request of this token made (``write_products``)."""
    key = {"pk": org_pk(organisation_id), "sk": made_by_sk(request_token)}
    item = table().get_item(Key=key, ConsistentRead=True).get("Item")
    if item is None or int(item["expires_at"]) < now:  # DynamoDB's TTL removes it within days of then
        return set()
    return {str(i) for i in item["made"]}


# ---- provider items --------------------------------------------------------------------------------------
def provider_items(organisation_id: str, provider: str) -> list[ProviderItem]:
    return [_load(ProviderItem, row) for row in _query(organisation_id, item_prefix(provider))]


def get_provider_items(organisation_id: str, provider: str, item_ids: Iterable[str]) -> list[ProviderItem]:
    rows = org_batch_get(organisation_id, (item_sk(provider, i) for i in item_ids))
    return [_load(ProviderItem, row) for row in rows]


def item_page(
    organisation_id: str, provider: str, limit: int, after: ListPosition | None
) -> tuple[list[ProviderItem], ListPosition | None]:
    """A page of the organisation's items of that provider, by name (``keys.items_list_index``)."""
    rows, last = org_list_page(
        organisation_id, items_list_pk(organisation_id, provider), limit=limit, after=after
    )
    return [_load(ProviderItem, row) for row in rows], last


def put_provider_items(organisation_id: str, values: Iterable[ProviderItem]) -> None:
    _put_all(
        organisation_id,
        (
            (
                {
                    "sk": item_sk(i.provider, i.item_id),
                    **items_list_index(organisation_id, i.provider, i.name, i.item_id),
                },
                i,
            )
            for i in values
        ),
    )


def delete_provider_items(organisation_id: str, provider: str, item_ids: Iterable[str]) -> None:
    with table().batch_writer() as batch:
        for item_id in item_ids:
            batch.delete_item(Key={"pk": org_pk(organisation_id), "sk": item_sk(provider, item_id)})


# ---- chart of accounts ------------------------------------------------------------------------------------
def accounts(organisation_id: str, provider: str) -> list[Account]:
    return [_load(Account, row) for row in _query(organisation_id, account_prefix(provider))]


def get_accounts(organisation_id: str, provider: str, account_ids: Iterable[str]) -> list[Account]:
    rows = org_batch_get(organisation_id, (account_sk(provider, a) for a in account_ids))
    return [_load(Account, row) for row in rows]


def put_accounts(organisation_id: str, values: Iterable[Account]) -> None:
    _put_all(organisation_id, (({"sk": account_sk(a.provider, a.account_id)}, a) for a in values))


def delete_accounts(organisation_id: str, provider: str, account_ids: Iterable[str]) -> None:
    with table().batch_writer() as batch:
        for account_id in account_ids:
            batch.delete_item(Key={"pk": org_pk(organisation_id), "sk": account_sk(provider, account_id)})


# ---- suppliers -------------------------------------------------------------------------------------------
def suppliers(organisation_id: str, provider: str | None = None) -> list[Supplier]:
    """The provider's suppliers, or every provider's."""
    prefix = supplier_prefix(provider) if provider else SUPPLIER_PREFIX
    return [_load(Supplier, row) for row in _query(organisation_id, prefix)]


def get_supplier(organisation_id: str, provider: str, supplier_id: str) -> Supplier | None:
    rows = org_batch_get(organisation_id, [supplier_sk(provider, supplier_id)])
    return _load(Supplier, rows[0]) if rows else None


def put_suppliers(organisation_id: str, values: Iterable[Supplier]) -> None:
    _put_all(organisation_id, (({"sk": supplier_sk(s.provider, s.supplier_id)}, s) for s in values))


# ---- a switch of company ---------------------------------------------------------------------------------
def forget_company(organisation_id: str, provider: str, before: str, after: str) -> int:
    """``provider``'s company ``before`` gives way to ``after``: the items, chart, suppliers and sync cursors
    read from it go (their ids name other things, or nothing, in the new company), and each product's link to
    it moves to its former links (``Product.with_company``). Returns the products whose links changed."""
    prefixes = (
        item_prefix(provider),
        account_prefix(provider),
        supplier_prefix(provider),
        cursor_sk(provider, ""),
    )
    with table().batch_writer() as batch:
        for prefix in prefixes:
            for row in iter_org_items(organisation_id, prefix, ProjectionExpression="pk, sk"):
                batch.delete_item(Key={"pk": row["pk"], "sk": row["sk"]})
    return change_links(
        organisation_id,
        (
            (p, p.with_company(provider, before, after))
            for p in iter_products(organisation_id)
            if provider in p.provider_links or f"{provider}:{after}" in p.former_links
        ),
    )


# ---- incremental sync cursors ----------------------------------------------------------------------------
def get_cursor(organisation_id: str, provider: str, entity: str) -> str | None:
    key = {"pk": org_pk(organisation_id), "sk": cursor_sk(provider, entity)}
    item = table().get_item(Key=key, ConsistentRead=True).get("Item")
    return str(item["cursor"]) if item else None


def put_cursor(organisation_id: str, provider: str, entity: str, cursor: str) -> None:
    """Advance a cursor; called only after what was read since the previous one is stored."""
    key = {"pk": org_pk(organisation_id), "sk": cursor_sk(provider, entity)}
    table().put_item(Item={**key, "cursor": cursor})
