"""Probe: product files and API requests a hostile or careless client sends, through the local gateway
against moto and the sandboxes: each is answered with a clear 4xx or a row error, never a 500; the catalog
holds what the file said, once, whatever runs beside the import (a second apply, an item sync, an outage);
and what an import stored downloads again."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from openpyxl import Workbook, load_workbook

from infra.sandboxes.qbo_demo import BRACKET_20
from shared import aws as shared_aws
from shared.bodies import ImportRequest
from shared.domain.catalog import Component, Product, ProviderItem
from shared.domain.product_summary import CHUNK_ROWS
from shared.services import catalog, product_files
from shared.store import catalog as store
from shared.store.keys import org_pk, product_sk
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect


def _import(api: Api, content: bytes, mode: str = "dry_run", organisation: str = "org-a") -> Any:
    return api.call(
        "POST",
        f"/products/import?mode={mode}",
        organisation=organisation,
        json_body={"filename": "products.csv", "content_base64": base64.b64encode(content).decode()},
    )


def _ok(answer: Any) -> Any:
    assert answer.status == 200, answer.body
    return answer.json()


# ---- the upload ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "content_type", "field", "problem"),
    [
        (
            b'{"filename": "p.csv", "content_base64": "SKU,Name!"}',
            "application/json",
            "content_base64",
            "not base64",
        ),
        (b'{"filename": "p.csv"}', "application/json", "content_base64", "missing"),
        (b'{"filename": "p.csv", "content_base64": 7}', "application/json", "content_base64", "missing"),
        (
            b'--b\r\nContent-Disposition: form-data; name="upload"; filename="p.csv"\r\n\r\n'
            b"SKU,Name\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
            "file",
            "missing",
        ),
    ],
)
def test_an_upload_without_a_readable_file_is_a_400_naming_the_field(
    api: Api, body: bytes, content_type: str, field: str, problem: str
) -> None:
    """A file sent as base64 that is not base64, or under another name, is refused naming that field (it was
    a 400 saying only how a file may be sent, whatever was wrong)."""
    answer = api.call(
        "POST", "/products/import?mode=dry_run", body=body, headers={"content-type": content_type}
    )
    assert answer.status == 400, answer.body
    (detail,) = answer.json()["details"]
    assert detail["field"] == field
    assert detail["problem"].startswith(problem), detail


# ---- amounts ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cost", "problem"),
    [
        ("123456789012345678901234567890.12345", "is too large; it must be below 1,000,000,000"),
        ("-123456789012345678901234567890.12345", "it must be 0 or more"),
        ("99999999999999999999999999.99999", "is too large; it must be below 1,000,000,000"),
    ],
)
def test_a_huge_cost_with_many_decimal_places_is_a_row_error_not_a_500(
    api: Api, cost: str, problem: str
) -> None:
    content = f"SKU,Name,Unit cost\nBIG-1,Huge,{cost}\nOK-1,Fine,1.25\n".encode()

    for mode in ("dry_run", "apply"):
        result = _ok(_import(api, content, mode))
        assert (result["error_count"], result["valid_count"]) == (1, 1)
        [detail] = result["details"]
        assert detail["row"] == 2 and detail["errors"][0]["column"] == "Unit cost"
        assert problem in detail["errors"][0]["problem"]
    assert [p["sku"] for p in _ok(api.call("GET", "/products"))["items"]] == ["OK-1"]


# ---- CSV cells -------------------------------------------------------------------------------------------
def test_a_cost_split_by_an_unquoted_thousands_comma_is_a_row_error_not_a_cost_of_1(api: Api) -> None:
    """Typed by hand, or written by a tool that does not quote: "1,234.50" unquoted is two cells, and the
    cost read "1" (a thousandth of it) while "234.50" fell past the header into no column."""
    content = b'SKU,Name,Unit cost\nBR-20,Bracket,1,234.50\nPL-1,Plate,"1,234.50",,\n'

    result = _ok(_import(api, content, "apply"))

    assert (result["error_count"], result["created"]) == (1, 1)
    [detail] = result["details"]
    assert detail["row"] == 2 and detail["errors"][0]["column"] == "column 4"
    assert "'234.50'" in detail["errors"][0]["problem"] and "in quotes" in detail["errors"][0]["problem"]
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert (product["sku"], product["unit_cost"]) == ("PL-1", "1234.50")


def test_a_quote_never_closed_refuses_the_file_instead_of_swallowing_the_rows_after_it(api: Api) -> None:
    """A stray quote opening a cell ("Beta) made the rest of the file that one cell: its rows were never
    read, and the answer said one product was made (with a warning about line breaks in its name)."""
    content = b'SKU,Name\nA-1,Alpha\nA-2,"Beta\nA-3,Gamma\nA-4,Delta\n'

    for mode in ("dry_run", "apply"):
        result = _ok(_import(api, content, mode))
        [problem] = result["file_errors"]
        assert "Row 3" in problem and "never closed" in problem, problem
        assert result["created"] == 0
    assert _ok(api.call("GET", "/products"))["items"] == []
    # a quoted cell over two lines, closed on the file's last line (no line break after it), still reads
    closed = _ok(_import(api, b'SKU,Name\nA-1,Alpha\nA-2,"Beta\nline two"', "apply"))
    assert (closed["file_errors"], closed["created"]) == ([], 2)


@pytest.mark.parametrize("above", [b"\n", b"\r\n\r\n", b"\xef\xbb\xbf\n"])
def test_a_semicolon_csv_with_blank_lines_above_its_header_reads_like_one_without(
    api: Api, above: bytes
) -> None:
    """Excel in a decimal-comma locale writes ';'; a blank line above the header (as some exports add) made
    the separator ',' and the header one column named 'SKU;Name;Unit cost'."""
    result = _ok(_import(api, above + b"SKU;Name;Unit cost\nBR-20;Bracket;1,25\n"))

    assert result["file_errors"] == [] and result["valid_count"] == 1


def test_a_workbook_whose_first_sheet_is_hidden_imports_the_sheet_its_user_sees(api: Api) -> None:
    """A template keeping last month's list on a hidden first sheet: the person edited the visible one."""
    book = Workbook()
    hidden = book.active
    hidden.title, hidden.sheet_state = "Last month", "hidden"
    for row in (["SKU", "Name", "Unit cost"], ["BR-20", "Bracket", 1.10]):
        hidden.append(row)
    shown = book.create_sheet("Price list")
    for row in (["SKU", "Name", "Unit cost"], ["BR-20", "Bracket", 1.25], ["PL-1", "Plate", 3]):
        shown.append(row)
    book.active = 1
    content = io.BytesIO()
    book.save(content)

    result = _ok(_import(api, content.getvalue(), "apply"))

    assert result["created"] == 2
    costs = {p["sku"]: p["unit_cost"] for p in _ok(api.call("GET", "/products"))["items"]}
    assert costs == {"BR-20": "1.25", "PL-1": "3"}


# ---- SKUs ----------------------------------------------------------------------------------------------
def test_skus_written_with_composed_or_decomposed_accents_are_one_product(api: Api) -> None:
    """ "CAFÉ-1" typed on one machine and saved by another program as "CAFE" + a combining accent look
    the same to everyone: they are one SKU, as "café-1" and " CAFÉ-1 " are."""
    composed, decomposed = "CAF\u00c9-1", "CAFE\u0301-1"
    store.put_products("org-a", [Product(product_id="kept", sku=decomposed, name="Cafe table")])

    result = _ok(
        _import(api, f"SKU,Name\n{composed},Caf\u00e9 table\n{decomposed},Again\n".encode(), "apply")
    )

    assert (result["updated"], result["created"], result["error_count"]) == (1, 0, 1)
    assert result["details"][0]["errors"][0]["problem"] == "duplicate SKU: row 2 has the same SKU"
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert (product["product_id"], product["name"]) == ("kept", "Caf\u00e9 table")


# ---- two imports at once ----------------------------------------------------------------------------------
def _at_once(monkeypatch: pytest.MonkeyPatch, *imports: Callable[[], Any]) -> list[Any]:
    """Runs the imports in threads, each writing its products only once every one has read the catalog
    (moto serves one request at a time, as DynamoDB applies each atomically: ``one_request_at_a_time``)."""
    read_all = threading.Barrier(len(imports), timeout=20)
    waited: set[int] = set()

    write_products = store.write_products

    def once_all_have_read(organisation_id: str, *products: Sequence[Product]) -> list[str]:
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            read_all.wait()
        return write_products(organisation_id, *products)

    with monkeypatch.context() as patched:
        patched.setattr(store, "write_products", once_all_have_read)
        with ThreadPoolExecutor(len(imports)) as pool:
            return [future.result() for future in [pool.submit(run) for run in imports]]


def test_two_applies_of_one_file_at_once_make_each_product_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double click, or a client's retry of an apply still running (in a second Lambda container: the
    service called as its handler would): each reads the catalog before the other has written."""
    content = b"SKU,Name,Unit cost\nBR-20,Bracket,1.25\nPL-1,Plate,3.10\n"

    results = _at_once(monkeypatch, *[lambda: product_files.import_file("org-a", content, "apply")] * 2)

    # one made both products; the other, finding them made, left them as they were
    assert sorted((r.created, r.unchanged) for r in results) == [(0, 2), (2, 0)]
    products = _ok(api.call("GET", "/products"))["items"]
    assert sorted(p["sku"] for p in products) == ["BR-20", "PL-1"]


def test_two_overlapping_files_applied_at_once_make_each_sku_one_product_whole(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSV and a workbook sharing 20 SKUs (written in another case, with spaces) applied at once, on a
    catalog holding one of those SKUs linked to a QuickBooks item: each SKU is one product, its fields all
    from one of the files, and the link stays."""
    store.put_products(
        "org-a", [Product(product_id="kept", sku="P-25", name="Old", provider_links={"qbo": "7"})]
    )
    csv_file = b"SKU,Name,Unit cost\n" + b"".join(b"P-%02d,Part %d,1.00\n" % (n, n) for n in range(40))
    book = Workbook()
    for row in [["SKU", "Name", "Unit cost"], *([f" p-{n:02d} ", f"Part {n} v2", 2] for n in range(20, 60))]:
        book.active.append(row)
    xlsx_file = io.BytesIO()
    book.save(xlsx_file)

    results = _at_once(
        monkeypatch,
        lambda: product_files.import_file("org-a", csv_file, "apply"),
        lambda: product_files.import_file("org-a", xlsx_file.getvalue(), "apply"),
    )

    # the later found the 19 shared SKUs the other made, and updated them
    assert sorted((r.created, r.updated, r.error_count) for r in results) == [(20, 20, 0), (39, 1, 0)]
    products = _ok(api.call("GET", "/products?limit=500"))["items"]
    assert len(products) == 60
    by_key = {p["sku"].strip().casefold(): p for p in products}
    assert sorted(by_key) == [f"p-{n:02d}" for n in range(60)]
    for product in products:
        v2 = product["name"].endswith("v2")
        assert Decimal(product["unit_cost"]) == (2 if v2 else 1), product
    assert by_key["p-25"]["product_id"] == "kept" and by_key["p-25"]["provider_links"] == {"qbo": "7"}


def test_a_file_and_provider_items_imported_at_once_make_each_sku_one_product(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file's apply and an import of QuickBooks items with SKUs in the file, neither finding the other's
    products when it read the catalog: each made its own product of those SKUs."""
    items = [
        ProviderItem(provider="qbo", item_id=str(n), name=f"Item {n}", sku=f"P-{n}", kind="inventory")
        for n in (1, 2)
    ]
    store.put_provider_items("org-a", items)
    content = b"SKU,Name,Unit cost\nP-1,Part 1,1.00\np-2,Part 2,2.00\nP-3,Part 3,3.00\n"

    file_result, items_result = _at_once(
        monkeypatch,
        lambda: product_files.import_file("org-a", content, "apply"),
        lambda: catalog.import_products("org-a", ImportRequest(provider="qbo", item_ids=["1", "2"])),
    )

    assert file_result.valid_count == 3 and len(items_result.created + items_result.updated) == 2
    products = _ok(api.call("GET", "/products?limit=500"))["items"]
    links = {p["sku"].casefold(): p["provider_links"] for p in products}
    assert links == {"p-1": {"qbo": "1"}, "p-2": {"qbo": "2"}, "p-3": {}}


# ---- an apply that fails part way ------------------------------------------------------------------------
def test_an_apply_cut_short_by_an_outage_says_so_and_applying_again_finishes_it(api: Api) -> None:
    """DynamoDB throttles after the first chunk is written: the answer must not say nothing was changed."""
    content = b"SKU,Name\n" + b"".join(b"P-%d,Part %d\n" % (n, n) for n in range(250))
    client = shared_aws.table().meta.client
    calls = [0]

    def throttled_after_the_first_chunk(**_: Any) -> None:
        calls[0] += 1
        if calls[0] > 1:  # a chunk's new products are created in one transaction
            error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
            raise ClientError(
                {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "TransactWriteItems"
            )

    event = "before-call.dynamodb.TransactWriteItems"
    client.meta.events.register(event, throttled_after_the_first_chunk)
    try:
        cut = _import(api, content, "apply")
    finally:
        client.meta.events.unregister(event, throttled_after_the_first_chunk)

    assert cut.status == 503 and cut.headers["retry-after"], cut.body
    assert "nothing was changed" not in cut.json()["message"]
    assert "apply the same file again" in cut.json()["message"]
    assert 0 < len(_ok(api.call("GET", "/products?limit=500"))["items"]) < 250
    again = _ok(_import(api, content, "apply"))
    assert again["created"] + again["unchanged"] == 250
    products = _ok(api.call("GET", "/products?limit=500"))["items"]
    assert sorted(p["sku"] for p in products) == sorted(f"P-{n}" for n in range(250))


def _catalog(api: Api, organisation: str) -> list[dict[str, Any]]:
    """The organisation's products as GET /products lists them, without their ids (an organisation's own)."""
    products = _ok(api.call("GET", "/products?limit=500", organisation=organisation))["items"]
    return [{k: v for k, v in p.items() if k != "product_id"} for p in products]


def test_an_apply_that_runs_out_of_time_stops_between_chunks_and_applying_again_finishes_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-import changing every product can take longer than the API function's 30 s on a busy machine:
    Lambda ended it part way, with the gateway's opaque error. Here each chunk's write takes the function's
    whole time (on the import's clock): the apply stops after the first chunk, in time to say so."""
    before = b"SKU,Name,Unit cost\n" + b"".join(b"P-%d,Part %d,1.00\n" % (n, n) for n in range(200))
    content = b"SKU,Name,Unit cost\n" + b"".join(b"P-%d,Part %d,2.50\n" % (n, n) for n in range(250))
    for organisation in ("org-a", "org-b"):
        _ok(_import(api, before, "apply", organisation))
    uninterrupted = _ok(_import(api, content, "apply", "org-b"))
    now = [0.0]
    write_products = store.write_products

    def a_write_taking_the_whole_time(organisation_id: str, *products: Sequence[Product]) -> list[str]:
        now[0] += 30.0
        return write_products(organisation_id, *products)

    monkeypatch.setattr(product_files, "clock", lambda: now[0])
    monkeypatch.setattr(store, "write_products", a_write_taking_the_whole_time)

    cut = _import(api, content, "apply")

    monkeypatch.setattr(store, "write_products", write_products)
    assert cut.status == 503 and cut.headers["retry-after"], cut.body
    [detail] = cut.json()["details"]
    assert detail["field"] == "file"
    assert (
        f"{CHUNK_ROWS} of the file's 250 valid rows are done (0 products created, {CHUNK_ROWS} updated, "
        in (detail["problem"])
    )
    assert "apply the same file again" in detail["problem"]
    written = {p["sku"] for p in _catalog(api, "org-a") if Decimal(p["unit_cost"]) == Decimal("2.50")}
    assert written == {f"P-{n}" for n in range(CHUNK_ROWS)}  # the first chunk whole, nothing after it
    assert len(_catalog(api, "org-a")) == 200
    again = _ok(_import(api, content, "apply"))
    assert (again["created"], again["updated"], again["unchanged"]) == (50, 200 - CHUNK_ROWS, CHUNK_ROWS)
    assert (uninterrupted["created"], uninterrupted["updated"]) == (50, 200)
    catalog = _catalog(api, "org-a")
    assert catalog == _catalog(api, "org-b")
    assert sorted(p["sku"] for p in catalog) == sorted(f"P-{n}" for n in range(250))


def test_a_dry_run_stops_within_the_time_the_function_has_left(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reading pass has MAX_READ_SECONDS, or less when the function has less time left than that and
    the margin to answer: here the margin is more than the function's whole 30 s, so no time is left."""
    monkeypatch.setattr(product_files, "ANSWER_MARGIN", 60.0)

    refused = _import(api, b"SKU,Name\nP-1,Part\n")

    assert refused.status == 400, refused.body
    [detail] = refused.json()["details"]
    assert detail["field"] == "file"
    assert detail["problem"].startswith("Reading the file took longer than 0 seconds"), detail


# ---- an import while an item sync runs ---------------------------------------------------------------------
@pytest.mark.usefixtures("no_real_sleep")
def test_an_import_applied_while_an_item_sync_links_its_product_keeps_both(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(api, sandboxes, "qbo")
    _ok(_import(api, b"SKU,Name,Unit cost\nFG-WB-20,Bracket 20,1.00\n", "apply"))
    put_provider_items = store.put_provider_items
    monkeypatch.setattr(store, "put_provider_items", put_provider_items)
    applied: list[product_files.FileImportResult] = []

    def import_between_read_and_write(organisation_id: str, values: Iterable[ProviderItem]) -> None:
        # the sync has read the products it links, and writes the items first
        monkeypatch.setattr(store, "put_provider_items", put_provider_items)
        new_cost = b"SKU,Name,Unit cost\nFG-WB-20,Bracket 20 mm,2.50\n"
        applied.append(product_files.import_file(organisation_id, new_cost, "apply"))
        put_provider_items(organisation_id, values)

    monkeypatch.setattr(store, "put_provider_items", import_between_read_and_write)

    synced = _ok(api.call("POST", "/integrations/qbo/sync/items"))

    assert applied[0].updated == 1
    assert [m["item_id"] for m in synced["matched"] if m["by"] == "sku"] == [BRACKET_20]
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert product["provider_links"] == {"qbo": BRACKET_20}
    assert (product["name"], product["unit_cost"]) == ("Bracket 20 mm", "2.50")


def _before_the_store_writes(
    monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], object], write: str = "write_products"
) -> None:
    """Runs `meanwhile` once, after the caller has read the products it writes and before it writes them
    (the store's next call of `write`: an apply's, or a provider items import's, write of products)."""
    writing = getattr(store, write)

    def write_after_the_other(organisation_id: str, *changes: Any) -> Any:
        monkeypatch.setattr(store, write, writing)
        meanwhile()
        return writing(organisation_id, *changes)

    monkeypatch.setattr(store, write, write_after_the_other)


@pytest.mark.usefixtures("no_real_sleep")
def test_an_item_sync_linking_a_product_while_an_apply_changes_it_keeps_the_link(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync links the product after the apply read it: the apply writes the file's fields only, so the
    link stays (before, the apply wrote back the product as it had read it, without the link)."""
    connect(api, sandboxes, "qbo")
    _ok(_import(api, b"SKU,Name,Unit cost\nFG-WB-20,Bracket 20,1.00\n", "apply"))
    synced: list[catalog.ItemSyncResult] = []
    _before_the_store_writes(
        monkeypatch, lambda: synced.append(catalog.sync_items("org-a", "qbo", datetime.now(UTC)))
    )

    applied = _ok(_import(api, b"SKU,Name,Unit cost\nFG-WB-20,Bracket 20 mm,2.50\n", "apply"))

    assert applied["updated"] == 1
    assert [m.item_id for m in synced[0].matched if m.by == "sku"] == [BRACKET_20]
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert product["provider_links"] == {"qbo": BRACKET_20}
    assert (product["name"], product["unit_cost"]) == ("Bracket 20 mm", "2.50")


def test_fields_a_row_leaves_blank_written_while_an_apply_runs_are_kept(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another request sets the product's barcode and sale price after the apply read it; the file gives
    neither (blank cells keep the product's value), so both stay."""
    _ok(_import(api, b"SKU,Name,Unit cost\nP-1,Part,1.00\n", "apply"))

    def priced() -> None:
        [stored] = store.products("org-a")
        update = {"barcode": "4006381333931", "sale_price": Decimal("9.90")}
        store.put_products("org-a", [stored.model_copy(update=update)])

    _before_the_store_writes(monkeypatch, priced)

    applied = _ok(_import(api, b"SKU,Name,Unit cost,Barcode\nP-1,Part v2,1.50,\n", "apply"))

    assert applied["updated"] == 1
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert (product["name"], product["unit_cost"]) == ("Part v2", "1.50")
    assert (product["barcode"], product["sale_price"]) == ("4006381333931", "9.90")


def test_a_product_given_its_sku_in_another_case_while_an_apply_runs_is_read_again_and_updated_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The apply read the product as SKU "P-1"; another file's apply wrote it "p-1" (the same SKU to an
    import) and linked nothing. The apply's write finds the SKU it read gone, reads the product again and
    writes its row over that: one product, the file's fields, none made twice."""
    _ok(_import(api, b"SKU,Name\nP-1,Part\n", "apply"))
    store.put_products(
        "org-a", [store.products("org-a")[0].model_copy(update={"provider_links": {"qbo": "7"}})]
    )
    other: list[Any] = []
    _before_the_store_writes(
        monkeypatch,
        lambda: other.append(product_files.import_file("org-a", b"SKU,Name\np-1,Other\n", "apply")),
    )

    applied = _ok(_import(api, b"SKU,Name,Unit cost\nP-1,Part v2,2.00\n", "apply"))

    assert (other[0].updated, applied["updated"], applied["created"]) == (1, 1, 0)
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert (product["sku"], product["name"], product["unit_cost"]) == ("P-1", "Part v2", "2.00")
    assert product["provider_links"] == {"qbo": "7"}


def test_a_provider_items_import_refused_for_a_changed_sku_writes_nothing_more_to_a_product_with_links(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another apply gives the product its SKU in another case after the import read it: the import's write
    is refused and read again. The product has its maps of links, so nothing is written to give it them
    (before, one UpdateItem each, that changed nothing); the import then links it, once."""
    store.put_products("org-a", [Product(product_id="p-1", sku="P-1", name="Part")])
    store.put_provider_items(
        "org-a", [ProviderItem(provider="qbo", item_id="1", name="Item 1", sku="P-1", kind="inventory")]
    )
    _before_the_store_writes(
        monkeypatch, lambda: product_files.import_file("org-a", b"SKU,Name\np-1,Other\n", "apply")
    )
    client = shared_aws.table().meta.client
    updated: list[int] = []

    def wrote(http_response: Any, **_: Any) -> None:
        updated.append(http_response.status_code)

    client.meta.events.register("after-call.dynamodb.UpdateItem", wrote)
    try:
        result = catalog.import_products("org-a", ImportRequest(provider="qbo", item_ids=["1"]))
    finally:
        client.meta.events.unregister("after-call.dynamodb.UpdateItem", wrote)

    assert [p.product_id for p in result.updated] == ["p-1"]
    assert 200 not in updated, updated  # asked (refused: it has them), never written
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert (product["sku"], product["provider_links"]) == ("p-1", {"qbo": "1"})


def test_a_kit_linked_by_an_items_import_to_a_quickbooks_item_that_is_no_bundle_is_flagged(
    api: Api,
) -> None:
    """A kit (of a bundle in the company connected before) and a plain QuickBooks item of its SKU: the import
    links them, and says QuickBooks will count the kit's sales out of that item, not its components."""
    part = Product(product_id="p-part", sku="P-1", name="Part")
    kit = Product(
        product_id="p-kit",
        sku="KIT-1",
        name="Kit",
        type="kit",
        components=(Component(ref="p-part", quantity=2),),
    )
    store.put_products("org-a", [part, kit])
    plain = ProviderItem(provider="qbo", item_id="21", name="Kit as an item", sku="KIT-1", kind="inventory")
    store.put_provider_items("org-a", [plain])

    result = catalog.import_products("org-a", ImportRequest(provider="qbo", item_ids=["21"]))

    assert [p.product_id for p in result.updated] == ["p-kit"]
    [warning] = result.warnings
    assert (warning.product_id, warning.item_id) == ("p-kit", "21")
    assert "'Kit as an item', which is no bundle in QuickBooks Online" in warning.reason
    assert _ok(api.call("GET", "/products?limit=1"))["items"][0]["provider_links"] == {"qbo": "21"}


def _xero_linked(product_id: str, item_id: str) -> None:
    """Another request links the product to a Xero item, writing the product whole as it reads it now."""
    [product] = store.get_products("org-a", [product_id])
    links = {**product.provider_links, "xero": item_id}
    store.put_products(
        "org-a", [product.model_copy(update={"provider_links": links, "barcode": "4006381333931"})]
    )


def _stored_before_products_had_links(product_id: str) -> None:
    """The product as one stored before products had provider links: without the attribute at all."""
    key = {"pk": org_pk("org-a"), "sk": product_sk(product_id)}
    shared_aws.table().update_item(Key=key, UpdateExpression="REMOVE provider_links")


def test_a_provider_items_import_keeps_a_link_to_the_other_provider_written_after_it_read_the_product(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import links the product to its QuickBooks item while another request links it to a Xero item:
    the import writes its own link only, so both stay (before, it wrote back the links it had read)."""
    store.put_products("org-a", [Product(product_id="p-1", sku="P-1", name="Part")])
    store.put_provider_items(
        "org-a", [ProviderItem(provider="qbo", item_id="1", name="Item 1", sku="P-1", kind="inventory")]
    )
    _before_the_store_writes(monkeypatch, lambda: _xero_linked("p-1", "x-1"))

    result = catalog.import_products("org-a", ImportRequest(provider="qbo", item_ids=["1"]))

    assert [p.product_id for p in result.updated] == ["p-1"] and result.created == []
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert product["provider_links"] == {"qbo": "1", "xero": "x-1"}
    assert (product["name"], product["barcode"]) == ("Item 1", "4006381333931")


@pytest.mark.usefixtures("no_real_sleep")
def test_an_item_sync_links_a_product_keeping_what_other_requests_wrote_to_it_after_the_sync_read_it(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the sync read the products it links and before it links them, an apply changes the product's
    name and cost and another request links it to a Xero item: the sync writes its link only, all stay."""
    connect(api, sandboxes, "qbo")
    _ok(_import(api, b"SKU,Name,Unit cost\nFG-WB-20,Bracket 20,1.00\n", "apply"))
    [product_id] = [p.product_id for p in store.products("org-a")]

    def meanwhile() -> None:
        product_files.import_file("org-a", b"SKU,Name,Unit cost\nFG-WB-20,Bracket 20 mm,2.50\n", "apply")
        _xero_linked(product_id, "x-1")

    _before_the_store_writes(monkeypatch, meanwhile, "link_products")

    synced = _ok(api.call("POST", "/integrations/qbo/sync/items"))

    assert [m["item_id"] for m in synced["matched"] if m["by"] == "sku"] == [BRACKET_20]
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert product["provider_links"] == {"qbo": BRACKET_20, "xero": "x-1"}
    assert (product["name"], product["unit_cost"], product["barcode"]) == (
        "Bracket 20 mm",
        "2.50",
        "4006381333931",
    )


@pytest.mark.usefixtures("no_real_sleep")
def test_an_item_sync_leaves_a_link_a_provider_items_import_wrote_after_the_sync_read_the_product(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the sync read the product (unlinked) and chose its item by SKU, an import of provider items links
    it to another item of that SKU: the sync's link is written only while the product's QuickBooks link is
    still the one it read (none), so the import's newer link stays, and the sync does not claim the match."""
    connect(api, sandboxes, "qbo")
    _ok(_import(api, b"SKU,Name,Unit cost\nFG-WB-20,Bracket 20,1.00\n", "apply"))
    [product_id] = [p.product_id for p in store.products("org-a")]
    imported: list[catalog.ImportResult] = []

    def meanwhile() -> None:  # another sync stored an item of the SKU, and the user imports it
        item = ProviderItem(
            provider="qbo", item_id="13", name="Bracket 20 new", sku="FG-WB-20", kind="inventory"
        )
        store.put_provider_items("org-a", [item])
        imported.append(catalog.import_products("org-a", ImportRequest(provider="qbo", item_ids=["13"])))

    _before_the_store_writes(monkeypatch, meanwhile, "link_products")

    synced = _ok(api.call("POST", "/integrations/qbo/sync/items"))

    assert [p.product_id for p in imported[0].updated] == [product_id]
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert (product["provider_links"], product["name"]) == ({"qbo": "13"}, "Bracket 20 new")
    assert [m for m in synced["matched"] if m["product_id"] == product_id] == []


@pytest.mark.usefixtures("no_real_sleep")
def test_two_item_syncs_at_once_both_say_they_linked_the_product_to_the_same_item(
    api: Api, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other sync links the product after this one read it, to the item this one chose: the link this
    one read is gone, but it writes the same link, so it is written (changing nothing) and reported."""
    connect(api, sandboxes, "qbo")
    _ok(_import(api, b"SKU,Name,Unit cost\nFG-WB-20,Bracket 20,1.00\n", "apply"))
    other: list[catalog.ItemSyncResult] = []
    _before_the_store_writes(
        monkeypatch,
        lambda: other.append(catalog.sync_items("org-a", "qbo", datetime.now(UTC))),
        "link_products",
    )

    synced = _ok(api.call("POST", "/integrations/qbo/sync/items"))

    assert [m.item_id for m in other[0].matched] == [BRACKET_20]
    assert [m["item_id"] for m in synced["matched"] if m["by"] == "sku"] == [BRACKET_20]
    [product] = _ok(api.call("GET", "/products"))["items"]
    assert product["provider_links"] == {"qbo": BRACKET_20}


@pytest.mark.usefixtures("no_real_sleep")
def test_a_product_stored_before_products_had_links_is_linked_by_an_item_sync_and_an_items_import(
    api: Api, sandboxes: Sandboxes
) -> None:
    """Its link is written into a provider_links it lacks (given it first), by either way of linking."""
    connect(api, sandboxes, "qbo")
    store.put_products(
        "org-a",
        [
            Product(product_id="p-20", sku="FG-WB-20", name="Bracket"),
            Product(product_id="p-1", sku="P-1", name="Part"),
        ],
    )
    store.put_provider_items(
        "org-a", [ProviderItem(provider="xero", item_id="x-1", name="Item 1", sku="P-1", kind="inventory")]
    )
    _stored_before_products_had_links("p-20")
    _stored_before_products_had_links("p-1")

    synced = _ok(api.call("POST", "/integrations/qbo/sync/items"))
    imported = catalog.import_products("org-a", ImportRequest(provider="xero", item_ids=["x-1"]))

    assert [(m["product_id"], m["item_id"]) for m in synced["matched"]] == [("p-20", BRACKET_20)]
    assert [p.product_id for p in imported.updated] == ["p-1"] and imported.created == []
    links = {p["product_id"]: p["provider_links"] for p in _ok(api.call("GET", "/products"))["items"]}
    assert links == {"p-1": {"xero": "x-1"}, "p-20": {"qbo": BRACKET_20}}


# ---- what an import stored, downloaded again -----------------------------------------------------------
@pytest.mark.usefixtures("no_real_sleep")
def test_a_name_imported_with_a_control_character_still_downloads_in_the_margins_workbook(
    api: Api, sandboxes: Sandboxes
) -> None:
    """A name holding a stray \\x01 or vertical tab (written before product files refused them, or by
    another way in): the margins workbook naming the product must still download, though XML, and so XLSX,
    cannot hold those characters. A file bringing them in now is refused, naming the character."""
    connect(api, sandboxes, "qbo")
    _ok(api.call("POST", "/integrations/qbo/sync/items"))
    _ok(
        api.call(
            "POST", "/products/import-from-provider", json_body={"provider": "qbo", "item_ids": [BRACKET_20]}
        )
    )
    refused = _ok(_import(api, b"SKU,Name\nFG-WB-20,Wall\x01bracket\x0b20\n", "apply"))
    assert refused["error_count"] == 1 and "U+0001" in refused["details"][0]["errors"][0]["problem"]
    [product] = _ok(api.call("GET", "/products"))["items"]
    [stored] = store.get_products("org-a", [product["product_id"]])
    store.put_products("org-a", [stored.model_copy(update={"name": "Wall\x01bracket\x0b20"})])
    receipt = {
        "received_at": "2026-07-01T09:00:00Z",
        "lines": [{"product_id": product["product_id"], "quantity": "500", "unit_cost": "1.90"}],
    }
    assert api.call("POST", "/receipts", json_body=receipt).status == 201
    tracking = {"enabled": True, "start_date": "2026-08-01"}
    _ok(api.call("PUT", "/integrations/qbo/sales-tracking", json_body=tracking))
    api.pull_sales()

    response = api.call("GET", "/margins/export?group=product&format=xlsx")

    assert response.status == 200, response.body
    sheet = load_workbook(io.BytesIO(response.body), read_only=True).worksheets[0]
    labels = [row[0] for row in sheet.iter_rows(values_only=True)]
    assert "FG-WB-20 Wall\ufffdbracket\ufffd20" in labels


# ---- path parameters ---------------------------------------------------------------------------------------
# DynamoDB refuses a sort key over 1,024 bytes (moto does on writes): an id in a path is bounded before it
# reaches a key, and an Idempotency-Key's record holds the path
@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("POST", "/exports/{id}/retry", "export_id"),
        ("GET", "/receipts/{id}", "receipt_id"),
        ("GET", "/builds/{id}", "build_id"),
        ("GET", "/products/{id}/lots", "product_id"),
    ],
)
@pytest.mark.parametrize("given", ["a" * 1100, "%C3%A9" * 200])  # 1,100 bytes; 400 characters of 2 bytes
def test_an_id_in_a_path_longer_than_any_id_is_a_400_naming_it_not_a_500(
    api: Api, method: str, path: str, field: str, given: str
) -> None:
    answer = api.call(method, path.format(id=given), headers={"Idempotency-Key": "retry-1"})

    assert answer.status == 400, answer.body
    assert answer.json()["details"][0]["field"] == f"path.{field}"


def test_a_supplier_for_a_provider_name_longer_than_any_is_a_400_not_a_500(api: Api) -> None:
    answer = api.call(
        "POST",
        "/integrations/" + "q" * 1100 + "/suppliers",
        json_body={"name": "Harbour Fabrication"},
        headers={"Idempotency-Key": "supplier-1"},
    )

    assert answer.status == 400, answer.body
    assert answer.json()["details"][0]["field"] == "path.provider"
    unknown = api.call(
        "POST", "/integrations/sage/suppliers", json_body={"name": "x"}, headers={"Idempotency-Key": "s-2"}
    )
    assert unknown.status == 404 and unknown.json()["error"] == "UnknownProvider"


def test_an_item_id_longer_than_any_provider_writes_is_a_400_naming_it(api: Api) -> None:
    request = {"provider": "xero", "item_ids": ["5", "\u00e9" * 400]}

    answer = api.call("POST", "/products/import-from-provider", json_body=request)

    assert answer.status == 400, answer.body
    assert answer.json()["details"][0]["field"] == "item_ids.1"


def test_a_retry_of_a_well_formed_export_id_with_a_key_still_answers_404(api: Api) -> None:
    answer = api.call("POST", "/exports/PS-0123456789ABCDEF/retry", headers={"Idempotency-Key": "k" * 255})

    assert answer.status == 404 and answer.json()["error"] == "NotFound"
