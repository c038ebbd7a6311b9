"""Authenticated application API (Settings -> Integrations, catalog, inventory, exports, margins)."""

from __future__ import annotations

import shared.coldstart  # first: collection pauses while the imports below run

import base64
import json
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.config import settings
from shared.dates import RecentDate
from shared.errors import ServiceError
from shared.lazy import lazy_module
from shared.model import Model
from shared.observability import logger
from shared.web import (
    caller_organisation,
    install_conventions,
    json_body,
    media_type_in_lower_case,
    request_time,
    same_json,
    service_error_response,
    uploaded_file,
)

# Each service (with its store, domain and models) loads when a route first uses it. Route annotations name
# their models through the service module (requests through `bodies`), so they too resolve only when that
# route is first called.
if TYPE_CHECKING:
    from shared import bodies
    from shared.domain import catalog as catalog_models
    from shared.services import (
        catalog,
        connections,
        export_settings,
        exports,
        idempotency,
        inventory,
        product_files,
        reconciliation,
        sales,
    )
    from shared.services import margins as margin_reports
else:
    (
        catalog,
        connections,
        export_settings,
        exports,
        idempotency,
        inventory,
        product_files,
        reconciliation,
        sales,
    ) = (
        lazy_module(f"shared.services.{name}")
        for name in (
            "catalog",
            "connections",
            "export_settings",
            "exports",
            "idempotency",
            "inventory",
            "product_files",
            "reconciliation",
            "sales",
        )
    )
    margin_reports = lazy_module("shared.services.margins")
    catalog_models = lazy_module("shared.domain.catalog")
    bodies = lazy_module("shared.bodies")

app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=json_body)
install_conventions(app)
DOCS_PATH = "/docs"


def idempotent(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """``Idempotency-Key``: a repeated request gets the first answer again (``Idempotent-Replayed: true``)."""
    event = app.current_event
    key = event.headers.get("idempotency-key")
    if key is None:  # an empty header is a key too, refused by begin (1 to 255 characters)
        return next_middleware(app)
    organisation, scope = caller_organisation(app), f"{event.http_method} {event.path}"
    # the query string is part of the request (a retry's post_on): same key, other query, is another request
    body = f"{event.raw_query_string}\n{same_json(event.decoded_body or '')}".encode()
    replay = idempotency.begin(organisation, scope, key, body, request_time(app))
    if replay is not None:
        headers = {"Idempotent-Replayed": "true"}
        return Response(replay.status, replay.content_type, replay.body, headers=headers)
    token = idempotency.request_token(organisation, scope, key, body)
    app.append_context(request_token=token)  # type: ignore[no-untyped-call]  # (Powertools: untyped)
    try:
        response = next_middleware(app)
    except ServiceError as err:  # a refusal is an answer too (kept); an outage frees the key for a retry
        if err.http_status >= 500:
            idempotency.finish(organisation, scope, key, 500, "", "")
            raise
        response = service_error_response(err)
    except Exception:
        idempotency.finish(organisation, scope, key, 500, "", "")
        raise
    text = response.body if isinstance(response.body, str) else json.dumps(response.body, default=str)
    content_type = str(response.headers.get("Content-Type") or content_types.APPLICATION_JSON)
    try:
        idempotency.finish(organisation, scope, key, response.status_code, text, content_type)
    except Exception:  # what the request did is done: it is answered all the same (an outage answer would
        # say nothing changed); the key stays claimed until it lapses, then a retry answers it again
        logger.exception("the answer of an Idempotency-Key could not be stored", extra={"scope": scope})
    return response


def request_token() -> str | None:
    """The token of an ``Idempotency-Key`` request (``idempotency.request_token``); None without a key."""
    token: str | None = app.context.get("request_token")
    return token


@cache
def with_docs() -> APIGatewayHttpResolver:
    """The resolver with Swagger UI and the OpenAPI document at /docs, set up by the first request for them.

    Enabling Swagger loads Powertools' OpenAPI models (~40 ms), which no other route needs. Every operation
    declares the refusals it can answer, in the one error shape."""
    generate = app.get_openapi_schema

    def with_refusals(**options: Any) -> Any:
        schema = generate(**options)
        for path, item in (schema.paths or {}).items():
            for method in ("get", "post", "put", "delete"):
                operation = getattr(item, method, None)
                if operation is None or operation.responses is None:
                    continue
                if (created := CREATED.get((method.upper(), path))) and 200 in operation.responses:
                    operation.responses[created] = operation.responses.pop(200)
                for status, why in _refusals(method.upper(), path).items():
                    if status not in operation.responses:
                        content = {"application/json": {"schema": ERROR}}
                        operation.responses[status] = {"description": why, "content": content}
        return schema

    def documented(**options: Any) -> Any:
        from aws_lambda_powertools.event_handler.openapi.models import (
            Example,
            HTTPBearer,
            MediaType,
            RequestBody,
        )

        # Every documented route needs the app's bearer JWT (the gateway's authorizer): declared, so Swagger
        # UI offers Authorize and its "Try it out" sends the token instead of meeting the gateway's 401
        bearer = HTTPBearer(bearerFormat="JWT", description="The app's token (`make run` prints one).")
        options["security_schemes"] = {"bearer": bearer}
        options["security"] = [{"bearer": []}]
        schema = with_refusals(**options)
        for (method, path), (summary, body) in REQUEST_EXAMPLES.items():
            operation = getattr(schema.paths[path], method.lower())
            if operation.requestBody is None:  # the upload reads its body itself: declared here
                upload = MediaType.model_validate({"schema": UPLOAD})
                operation.requestBody = RequestBody(required=True, content={"application/json": upload})
            for media in operation.requestBody.content.values():
                media.examples = {"example": Example(summary=summary, value=body)}
        return schema

    app.get_openapi_schema = documented  # type: ignore[method-assign]
    app.enable_swagger(path=DOCS_PATH, title="Partsemble accounting integrations", version="1.0.0")
    return app


# A product file sent as JSON (the route also takes multipart/form-data with the file in the field `file`).
UPLOAD = {
    "type": "object",
    "required": ["content_base64"],
    "properties": {
        "filename": {"type": "string", "description": "the file's name: .csv, .xlsx or .json"},
        "content_base64": {"type": "string", "contentEncoding": "base64", "description": "the file"},
    },
}
# (method, path) -> (summary, body): an example body for each main write, shown by Swagger UI beside the
# request body. The product ids stand for ids GET /products answers.
SHELF, BRACKET, SCREW = (
    "0b8c5f4e-2d1a-4c3b-9e7f-6a5d4c3b2a10",
    "1c9d6a5f-3e2b-4d4c-8f8a-7b6e5d4c3b21",
    "2dae7b6a-4f3c-4e5d-9a9b-8c7f6e5d4c32",
)
REQUEST_EXAMPLES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("POST", "/integrations/{provider}/connect"): (
        "Start connecting (true: choose another company than the connected one)",
        {"switch_company": False},
    ),
    ("PUT", "/integrations/{provider}/export-settings"): (
        "Post journals to these accounts (ids from GET /integrations/{provider}/accounts)",
        {
            "mode": "journals",
            "accounts": {
                "receiving_debit": "1",
                "receiving_credit": "5",
                "build_debit": "10",
                "build_credit": "11",
                "waste": "7",
                "cogs": "2",
            },
        },
    ),
    ("PUT", "/integrations/{provider}/sales-tracking"): (
        "Track sales from 1 November, in the organisation's time zone",
        {"enabled": True, "start_date": "2026-11-01", "time_zone": "America/New_York"},
    ),
    ("POST", "/integrations/{provider}/suppliers"): (
        "Create the supplier in the provider (or link the one of that name)",
        {"name": "Harbour Fabrication", "email": "accounts@harbour.example"},
    ),
    ("POST", "/products/import-from-provider"): (
        "Make these synced items products, linked to them (ids from GET /integrations/{provider}/items)",
        {"provider": "qbo", "item_ids": ["5", "7"]},
    ),
    ("POST", "/products/import"): (
        "A CSV of products (SKU, Name, Unit cost), base64-encoded",
        {
            "filename": "products.csv",
            "content_base64": base64.b64encode(b"SKU,Name,Unit cost\nCB-01,Corner brace,0.70\n").decode(),
        },
    ),
    ("POST", "/receipts"): (
        "Brackets priced per unit (2 rejected by QA), screws priced as a line",
        {
            "receipt_id": "RCV-1001",
            "supplier_name": "Harbour Fabrication",
            "received_at": "2026-11-30T09:00:00-05:00",
            "lines": [
                {
                    "product_id": BRACKET,
                    "quantity": "50",
                    "rejected": "2",
                    "unit_cost": "1.90",
                    "lot_code": "L-1130",
                },
                {"product_id": SCREW, "quantity": "400", "line_cost": "28.00"},
            ],
        },
    ),
    ("POST", "/builds"): (
        "10 shelves, each of 2 brackets and 8 screws (without components: the product's bill of materials)",
        {
            "build_id": "B-1002",
            "product_id": SHELF,
            "quantity": "10",
            "built_at": "2026-11-30T15:00:00-05:00",
            "components": [
                {"product_id": BRACKET, "quantity_per_unit": "2"},
                {"product_id": SCREW, "quantity_per_unit": "8"},
            ],
        },
    ),
}
CREATED = {("POST", "/receipts"): 201, ("POST", "/builds"): 201, ("POST", "/sales/pull"): 202}
ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "what kind of refusal, e.g. InvalidRequest, NotFound"},
        "message": {"type": "string", "description": "what is wrong and what to do, in words"},
        "details": {
            "type": "array",
            "description": "the refused fields",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
}


def _refusals(method: str, path: str) -> dict[int, str]:
    """What a route can answer besides its success: every route checks the caller (401, from the gateway's
    authorizer) and may meet an outage (503); writes validate a body; ids may be unknown."""
    found = {
        400: "a parameter or the body is refused (details name the fields)",
        401: "no valid bearer token",
        503: "a dependency (AWS, QuickBooks, Xero) is down: nothing was changed; retry after Retry-After",
    }
    if method in ("POST", "PUT"):
        found |= {415: "the body is not application/json", 409: "the state does not allow it (named)"}
    if "{" in path:
        found[404] = "no such thing for this organisation"
    if path.startswith(("/integrations/{provider}/sync", "/integrations/{provider}/suppliers")) or path in (
        "/sales/pull",
        "/reconciliation",
    ):
        found |= {409: "not connected, or the connection expired",
                  429: "the provider's rate limit: retry after Retry-After",
                  502: "the provider answered with something it should not"}  # fmt: skip
    if path == "/integrations/{provider}/sync/items":
        found[503] = (
            "a dependency is down: nothing was changed, or (SyncInterrupted) part of what was read is stored "
            "and syncing again stores the rest"
        )
    if path == "/products/import":
        found[503] = (
            "a dependency is down, or the time ran out, while an apply was writing: the products written "
            "stay, and applying the same file again writes the rest"
        )
    if path in ("/margins", "/margins/export"):
        found[409] = "sales tracking has never been turned on"
    if path in (
        "/receipts",
        "/builds",
        "/integrations/{provider}/suppliers",
        "/exports/{export_id}/retry",
        "/products/import-from-provider",
    ):
        found[422] = "Idempotency-Key reused with another body"
    return found


# An id in a path is one the service could have stored (bodies.RecordId, bodies.ProductId; an export's is
# "PS-" and 16 hex digits), refused (400) before it reaches a DynamoDB key, whose sort key holds at most
# 1,024 bytes: an Idempotency-Key's item holds the path too (a provider's name there as well).
RecordIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
ProductIdPath = Annotated[str, Path(min_length=1, max_length=128)]
ProviderPath = Annotated[str, Path(max_length=16)]  # qbo, xero: longer is refused before the key is claimed


# The long lists (exports, products) answer a page at a time: the page after the last is asked for with the
# cursor the last answered. 500 of the largest items (exports, ~450 bytes) are ~225 kB: far from Lambda's
# 6 MB answer, and one DynamoDB read of the index.
PAGE_SIZE, MAX_PAGE_SIZE = 100, 500
PageLimit = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"items in the page: 1 to {MAX_PAGE_SIZE}, {PAGE_SIZE} if not given",
    ),
]
# Receipts and builds, up to 500 lines each, are read 50 to a page by default and 100 at most; a page also
# ends once its records' JSON passes 2 MB (shared.store.inventory.PAGE_BODY_BYTES), whatever the limit.
RECORD_PAGE_SIZE, MAX_RECORD_PAGE_SIZE = 50, 100
RecordPageLimit = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_RECORD_PAGE_SIZE,
        description=f"records in the page: 1 to {MAX_RECORD_PAGE_SIZE}, {RECORD_PAGE_SIZE} if not given "
        "(fewer when their size would pass 2 MB)",
    ),
]
PageCursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=4096,
        description="the `next_cursor` of the previous page, as it was answered; none for the first page",
    ),
]


class Caller(Model):
    organisation_id: str


class ConnectResponse(Model):
    authorize_url: str


@app.get("/me")
def me() -> Caller:
    return Caller(organisation_id=caller_organisation(app))


@app.get("/integrations")
def integrations() -> list[connections.ConnectionView]:
    return connections.status(caller_organisation(app))


@app.post("/integrations/<provider>/connect")
def connect(provider: str, request: bodies.ConnectRequest | None = None) -> Response[ConnectResponse]:
    start = connections.start_connect(
        caller_organisation(app),
        provider,
        switch_company=bool(request and request.switch_company),
        now=request_time(app),
    )
    cookie = Cookie(
        start.cookie_name,
        start.cookie_value,
        path=start.cookie_path,
        http_only=True,
        secure=settings().public_base_url.startswith("https://"),
        max_age=start.max_age,
        same_site=SameSite.LAX_MODE,
    )
    return Response(
        200,
        content_types.APPLICATION_JSON,
        ConnectResponse(authorize_url=start.authorize_url),
        cookies=[cookie],
    )


@app.post("/integrations/<provider>/disconnect")
def disconnect(provider: str) -> connections.ConnectionView:
    return connections.disconnect(caller_organisation(app), provider, request_time(app))


# ---- catalog and export settings -----------------------------------------------------------------------
@app.post("/integrations/<provider>/sync/items")
def sync_items(provider: str) -> catalog.ItemSyncResult:
    return catalog.sync_items(caller_organisation(app), provider, request_time(app))


@app.post("/integrations/<provider>/sync/accounts")
def sync_accounts(provider: str) -> catalog.AccountSyncResult:
    return catalog.sync_accounts(caller_organisation(app), provider, request_time(app))


@app.post("/integrations/<provider>/sync/suppliers")
def sync_suppliers(provider: str) -> catalog.SupplierSyncResult:
    return catalog.sync_suppliers(caller_organisation(app), provider, request_time(app))


@app.get("/integrations/<provider>/items")
def provider_items(
    provider: str, limit: PageLimit = PAGE_SIZE, cursor: PageCursor = None
) -> catalog.ItemPage:
    return catalog.list_items(caller_organisation(app), provider, limit, cursor)


@app.get("/integrations/<provider>/accounts")
def accounts(provider: str) -> list[catalog_models.Account]:
    return catalog.list_accounts(caller_organisation(app), provider)


@app.post("/integrations/<provider>/suppliers", middlewares=[idempotent])
def create_supplier(provider: ProviderPath, request: bodies.SupplierRequest) -> catalog.SupplierCreated:
    return catalog.create_supplier(caller_organisation(app), provider, request)


@app.get("/suppliers")
def suppliers() -> list[catalog_models.Supplier]:
    return catalog.list_suppliers(caller_organisation(app))


@app.get("/products")
def products(limit: PageLimit = PAGE_SIZE, cursor: PageCursor = None) -> catalog.ProductPage:
    return catalog.list_products(caller_organisation(app), limit, cursor)


@app.post("/products/import-from-provider", middlewares=[idempotent])
def import_products(request: bodies.ImportRequest) -> catalog.ImportResult:
    token = request_token()
    attempt = None if token is None else idempotency.Attempt(token, request_time(app))
    return catalog.import_products(caller_organisation(app), request, attempt)


@app.post("/products/import")
def import_product_file(
    mode: Annotated[Literal["dry_run", "apply"], Query()] = "dry_run",
) -> product_files.FileImportResult:
    seconds_left = app.lambda_context.get_remaining_time_in_millis() / 1000
    return product_files.import_file(caller_organisation(app), uploaded_file(app), mode, seconds_left)


@app.get("/integrations/<provider>/export-settings")
def get_export_settings(
    provider: str,
    warnings: Annotated[
        bool,
        Query(
            description="false: answer the settings only, without checking the catalog for warnings "
            "(warnings is then null)"
        ),
    ] = True,
) -> export_settings.ExportSettingsView:
    return export_settings.get_settings(caller_organisation(app), provider, warnings=warnings)


@app.put("/integrations/<provider>/export-settings")
def put_export_settings(
    provider: str, request: bodies.ExportSettingsRequest
) -> export_settings.ExportSettingsView:
    return export_settings.put_settings(caller_organisation(app), provider, request, request_time(app))


# ---- sales tracking and margins ------------------------------------------------------------------------
@app.put("/integrations/<provider>/sales-tracking")
def put_sales_tracking(provider: str, request: bodies.TrackingRequest) -> sales.TrackingView:
    return sales.set_tracking(caller_organisation(app), provider, request, request_time(app))


@app.post("/sales/pull")
def pull_sales() -> Response[list[sales.PullQueued]]:
    queued = sales.pull_now(caller_organisation(app), request_time(app))
    return Response(202, content_types.APPLICATION_JSON, queued)


@app.get("/sales/status")
def sales_status() -> list[sales.TrackingView]:
    return sales.status(caller_organisation(app), request_time(app))


MarginFrom = Annotated[date | None, Query(alias="from")]
MarginTo = Annotated[date | None, Query(alias="to")]
MarginGroup = Annotated[Literal["document", "product", "period"], Query()]


@app.get("/margins")
def margins(
    start: MarginFrom = None, end: MarginTo = None, group: MarginGroup = "document"
) -> margin_reports.MarginReport:
    query = bodies.MarginQuery(start=start, end=end, group=group)
    return margin_reports.margins(caller_organisation(app), query)


@app.get("/reconciliation")
def reconcile(
    as_of: Annotated[
        RecentDate | None,
        Query(description="the date to reconcile at the end of (default: today where the organisation is)"),
    ] = None,
) -> reconciliation.Reconciliation:
    return reconciliation.reconcile(caller_organisation(app), as_of, request_time(app))


@app.get("/margins/export")
def export_margins(
    start: MarginFrom = None,
    end: MarginTo = None,
    group: MarginGroup = "document",
    file: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
) -> Response[str]:
    query = bodies.MarginQuery(start=start, end=end, group=group)
    export = margin_reports.export_margins(caller_organisation(app), query, file)
    response = Response(
        200,
        export.content_type,
        base64.b64encode(export.body).decode(),
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )
    response.base64_encoded = True  # the file, base64-encoded: API Gateway sends the client its bytes
    return response


# ---- inventory and exports ----------------------------------------------------------------------------
@app.post("/receipts", middlewares=[idempotent])
def record_receipt(request: bodies.ReceiptRequest) -> Response[inventory.ReceiptView]:
    view = inventory.record_receipt(caller_organisation(app), request, request_time(app), request_token())
    return Response(201, content_types.APPLICATION_JSON, view)


@app.get("/receipts")
def receipts(limit: RecordPageLimit = RECORD_PAGE_SIZE, cursor: PageCursor = None) -> inventory.ReceiptPage:
    return inventory.list_receipts(caller_organisation(app), limit, cursor)


@app.get("/receipts/<receipt_id>")
def receipt(receipt_id: RecordIdPath) -> inventory.ReceiptView:
    return inventory.get_receipt(caller_organisation(app), receipt_id)


@app.post("/builds", middlewares=[idempotent])
def record_build(request: bodies.BuildRequest) -> Response[inventory.BuildView]:
    view = inventory.record_build(caller_organisation(app), request, request_time(app), request_token())
    return Response(201, content_types.APPLICATION_JSON, view)


@app.get("/builds")
def builds(limit: RecordPageLimit = RECORD_PAGE_SIZE, cursor: PageCursor = None) -> inventory.BuildPage:
    return inventory.list_builds(caller_organisation(app), limit, cursor)


@app.get("/builds/<build_id>")
def build(build_id: RecordIdPath) -> inventory.BuildView:
    return inventory.get_build(caller_organisation(app), build_id)


@app.get("/products/<product_id>/lots")
def product_lots(product_id: ProductIdPath) -> inventory.ProductLots:
    return inventory.product_lots(caller_organisation(app), product_id)


@app.get("/exports")
def list_exports(limit: PageLimit = PAGE_SIZE, cursor: PageCursor = None) -> exports.ExportPage:
    return exports.list_exports(caller_organisation(app), limit, cursor)


@app.post("/exports/<export_id>/retry", middlewares=[idempotent])
def retry_export(
    export_id: RecordIdPath,
    post_on: Annotated[
        date | None,
        Query(
            description="date the document on this later day instead of its own, whose period the provider "
            "has locked (only for a document that never reached the provider)"
        ),
    ] = None,
) -> exports.ExportView:
    return exports.retry(caller_organisation(app), export_id, post_on=post_on)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("rawPath") == DOCS_PATH:
        return _docs(with_docs().resolve(media_type_in_lower_case(event), context))
    return app.resolve(media_type_in_lower_case(event), context)


def _docs(response: dict[str, Any]) -> dict[str, Any]:
    """Swagger UI's page with an icon of its own inline, so the browser does not ask for /favicon.ico (the
    gateway's 401, a console error); the OpenAPI document (``?format=json``) as it is."""
    from shared.callback_page import ICON_LINK

    if str(response.get("headers", {}).get("Content-Type", "")).startswith("text/html"):
        response["body"] = str(response["body"]).replace("<head>", f"<head>{ICON_LINK}", 1)
    return response


shared.coldstart.loaded()  # what the imports and this module made is frozen; collection resumes
