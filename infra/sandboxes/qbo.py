"""QuickBooks Online sandbox: the accounting API, its rate limits, faults and request ids, on one base URL
with Intuit OAuth (``qbo_oauth``), the books and their rules (``qbo_books``) and admin (``qbo_admin``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from infra.sandboxes.common import FixedWindow, InFlight, Sandbox, json_body, json_response
from infra.sandboxes.qbo_admin import QboAdmin
from infra.sandboxes.qbo_books import (
    ENTITY_BY_SEGMENT,
    ENTITY_SEGMENTS,
    SALES_DOCS,
    TRANSACTIONS,
    WRITABLE_FIELDS,
    Company,
    QboFault,
    business_error,
    required,
    wire,
)
from infra.sandboxes.qbo_demo import seed_demo
from infra.sandboxes.qbo_query import SINGLETONS, QueryError, execute, parse_query
from infra.sandboxes.qbo_reports import Report, ReportError, current_balances, trial_balance
from infra.sandboxes.qbo_statements import balance_sheet, profit_and_loss

API_PREFIX = "/v3/company/"
VOID_OPERATION = {"Invoice": "void", "SalesReceipt": "update&include=void"}  # see _sales_operation
BATCH_MAX, BATCH_PER_MINUTE = 30, 40  # items in one batch; batches a minute per company (qbo.md 2.5)
CDC_LOOKBACK = timedelta(days=30)
CDC_MAX_OBJECTS = 1000
CDC_UNSUPPORTED = ("JournalCode", "TaxAgency", "TimeActivity", "TaxCode", "TaxRate")  # qbo.md section 2.4
REQUESTID_MEMORY = timedelta(hours=24)  # the sandbox's choice: Intuit promises no window (notes §2.7)
ISO3 = {"US": "USA", "CA": "CAN", "GB": "GBR", "AU": "AUS"}


@dataclass
class QboSandbox(Sandbox, QboAdmin):
    """Speaks QBO's accounting API and Intuit OAuth on one base URL; ``seed=True`` loads the demo data."""

    name: str = "qbo"
    seed: bool = False
    latency_seconds: float = 0.0  # real seconds each API call takes, outside the lock, to observe concurrency
    # How throttling answers: 429 with a JSON Fault (Intuit's limits page), or 403 with the XML Fault an older
    # report saw despite `Accept: application/json`, `statusCode=403` in its message (qbo.md section 2.6;
    # ej2/python-quickbooks#43). Both carry code 3001, which is how a client must recognise them.
    throttle_status: int = 429

    def __post_init__(self) -> None:
        super().__post_init__()
        self.in_flight = InFlight(10)
        self._clear_data()
        for method, pattern, handler in self.oauth_endpoints():
            self.route(method, pattern)(handler)
        self._register_api()
        for method, pattern, handler in self.admin_endpoints():
            self.route(method, pattern)(handler)
        self.route("POST", "/_admin/throttle")(self._admin_throttle)
        if self.seed:
            seed_demo(self)

    def _admin_throttle(self, request: httpx.Request) -> httpx.Response:
        """``{"status": 403}``: throttling answers as the older report saw it; ``429`` as documented."""
        status = (json_body(request) or {}).get("status")
        if status not in (403, 429):
            return json_response(400, {"error": "status must be 403 or 429"})
        self.throttle_status = status
        return json_response(200, {"throttle_status": status})

    def _clear_data(self) -> None:
        self.companies: dict[str, Company] = {}
        self._clear_identity()
        self.per_minute = FixedWindow(500, 60)
        self.batch_minute = FixedWindow(BATCH_PER_MINUTE, 60)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._clear_data()
            if self.seed:
                seed_demo(self)

    # ---- provider-shaped responses ------------------------------------------------------------------

    def ok(self, company: Company, body: dict[str, Any]) -> httpx.Response:
        return json_response(200, wire({**body, "time": self._time(company)}))

    def fault(self, err: QboFault, company: Company | None = None) -> httpx.Response:
        return json_response(err.status, {"Fault": self.fault_body(err), "time": self._time(company)})

    @staticmethod
    def fault_body(err: QboFault) -> dict[str, Any]:
        error = {"Message": err.message, "Detail": err.detail, "code": err.code, "element": err.element}
        return {"Error": [error], "type": err.kind}

    def _company_of(self, path: str) -> Company | None:
        """The company an API path names (None: not an API path, or no such company)."""
        return (
            self.companies.get(path[len(API_PREFIX) :].split("/", 1)[0])
            if path.startswith(API_PREFIX)
            else None
        )

    def error_response(self, status: int, message: str) -> httpx.Response:
        return self.fault(QboFault("500", "Unsupported Operation", message, status))

    def fault_response(self, kind: str, request: httpx.Request) -> httpx.Response:
        tid = {"intuit_tid": str(uuid.uuid4())}
        if not request.url.path.startswith(API_PREFIX):
            error = {"429": "slow_down", "500": "server_error", "503": "temporarily_unavailable"}[kind]
            return json_response(int(kind), {"error": error}, tid)
        if kind == "429":
            response = self._throttled(self._company_of(request.url.path))
        else:
            detail = (
                "System Failure Error: An unexpected error occurred while accessing or saving your data."
                if kind == "500"
                else "Service Unavailable: the service is temporarily unavailable."
            )
            response = self.fault(
                QboFault(
                    "10000",
                    "An application error has occurred while processing your request",
                    detail,
                    int(kind),
                    "SystemFault",
                ),
                self._company_of(request.url.path),
            )
        response.headers.update(tid)
        return response

    def _throttled(self, company: Company | None) -> httpx.Response:
        message = f"message=ThrottleExceeded; errorCode=003001; statusCode={self.throttle_status}"
        if self.throttle_status == 429:
            fault = QboFault("3001", message, "The request limit was reached.", 429, "SERVICE")
            return self.fault(fault, company)
        xml = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{self._time(company)}">'
            '<Fault type="SERVICE"><Error code="3001">'
            f"<Message>{message}</Message><Detail>The request limit was reached.</Detail>"
            "</Error></Fault></IntuitResponse>"
        )
        return httpx.Response(
            self.throttle_status, content=xml.encode(), headers={"content-type": "application/xml"}
        )

    def _unauthenticated(self, detail: str) -> httpx.Response:
        error = {
            "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "detail": detail,
            "code": "3200",
            "element": None,
        }
        body = {
            "warnings": None,
            "intuitObject": None,
            "fault": {"error": [error], "type": "AUTHENTICATION"},
            "time": int(self.now().timestamp() * 1000),
        }
        return json_response(401, body, {"www-authenticate": 'Bearer realm="Intuit", error="invalid_token"'})

    # ---- entry: rate limits, auth, intuit_tid ---------------------------------------------------
    def serve_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith(API_PREFIX):
            realm = path[len(API_PREFIX) :].split("/", 1)[0]
            with self.lock:
                within_minute = self.per_minute.hit(realm, self.now())
            with self.in_flight.enter(realm) as within_concurrency:
                if not (within_minute and within_concurrency):
                    response = self._throttled(self.companies.get(realm))
                else:
                    if self.latency_seconds:
                        time.sleep(self.latency_seconds)
                    with self.lock:
                        response = self._authorize_api(request, realm) or self._dispatch(self.routes, request)
        else:
            with self.lock:
                response = self._dispatch(self.routes, request)
        response.headers["intuit_tid"] = str(uuid.uuid4())
        return response

    def _authorize_api(self, request: httpx.Request, realm: str) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        grant = self.access_index.get(token)
        if grant is None:
            return self._unauthenticated("Token invalid")
        if grant.revoked or grant.access_tokens.get(token, self.now()) <= self.now():
            return self._unauthenticated("Token expired")
        if grant.realm_id != realm or realm not in self.companies:
            return self.fault(
                QboFault(
                    "3100",
                    "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                    "",
                    403,
                    "AuthorizationFault",
                )
            )
        return None

    # ---- accounting API -------------------------------------------------------------------------
    def _register_api(self) -> None:
        company = API_PREFIX + r"(?P<realm>[^/]+)"
        self.route("GET", company + r"/companyinfo/(?P<company_id>[^/]+)")(self._company_info)
        self.route("GET", company + "/preferences")(self._preferences)
        self.route("GET", company + "/query")(self._query)
        self.route("POST", company + "/query")(self._query)
        self.route("GET", company + "/cdc")(self._cdc)
        self.route("POST", company + "/batch")(self._batch)
        self.route("GET", company + "/reports/TrialBalance")(self._report(trial_balance))
        self.route("GET", company + "/reports/BalanceSheet")(self._report(balance_sheet))
        self.route("GET", company + "/reports/ProfitAndLoss")(self._report(profit_and_loss))
        self.route("GET", company + rf"/(?P<segment>{ENTITY_SEGMENTS})/(?P<record_id>[^/]+)")(self._read)
        self.route(
            "POST",
            company + r"/(?P<segment>journalentry|inventoryadjustment|vendor|customer|item|account|invoice"
            r"|salesreceipt|creditmemo|refundreceipt)",
        )(self._write)

    def _company_info(self, request: httpx.Request, realm: str, company_id: str) -> httpx.Response:
        company = self.companies[realm]
        if company_id != realm:
            return self.fault(
                QboFault("610", "Object Not Found", f"CompanyInfo {company_id} not found"), company
            )
        return self.ok(company, {"CompanyInfo": self._company_info_record(company)})

    def _company_info_record(self, company: Company) -> dict[str, Any]:
        created = self.stamp(company, company.created)
        return {
            "Id": company.realm_id,
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "CompanyName": company.name,
            "LegalName": company.name,
            "Country": company.country,
            "CompanyAddr": {"Country": ISO3.get(company.country, company.country)},
            "FiscalYearStartMonth": "January",
            "SupportedLanguages": "en",
            "NameValue": [
                {"Name": "OfferingSku", "Value": f"QuickBooks Online {company.plan}"},
                {"Name": "NeoEnabled", "Value": "true"},
            ],
            "MetaData": {"CreateTime": created, "LastUpdatedTime": created},
        }

    def _preferences(self, request: httpx.Request, realm: str) -> httpx.Response:
        company = self.companies[realm]
        return self.ok(company, {"Preferences": self._preferences_record(company)})

    def _preferences_record(self, company: Company) -> dict[str, Any]:
        accounting: dict[str, Any] = {"TrackDepartments": False, "ClassTrackingPerTxn": False}
        if company.closing_date:
            accounting["BookCloseDate"] = company.closing_date.isoformat()
        return {
            "Id": "1",
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "AccountingInfoPrefs": accounting,
            "ProductAndServicesPrefs": {
                "ForSales": True,
                "ForPurchase": True,
                "QuantityWithPriceAndRate": True,
                "QuantityOnHand": company.inventory_tracking,
            },
            "CurrencyPrefs": {
                "MultiCurrencyEnabled": company.multicurrency,
                "HomeCurrency": {"value": company.home_currency},
            },
            "MetaData": {
                "CreateTime": self.stamp(company, company.created),
                "LastUpdatedTime": self.stamp(company, company.created),
            },
        }

    def _query(self, request: httpx.Request, realm: str) -> httpx.Response:
        company = self.companies[realm]
        text = request.url.params.get("query", "") if request.method == "GET" else request.content.decode()
        try:
            return self.ok(company, {"QueryResponse": self._answer_query(company, text)})
        except QboFault as err:
            return self.fault(err, company)

    def _answer_query(self, company: Company, text: str) -> dict[str, Any]:
        try:
            query = parse_query(text)
        except QueryError as err:
            raise QboFault(err.code, err.message, err.detail) from None
        if query.entity in SINGLETONS:
            records = [
                self._company_info_record(company)
                if query.entity == "CompanyInfo"
                else self._preferences_record(company)
            ]
        else:
            records = self._shown(company, query.entity, list(company.records[query.entity].values()))
        return execute(query, records)

    @staticmethod
    def _shown(company: Company, entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Records as a read answers them: an account with its CurrentBalance (and, with no sub-accounts in
        the sandbox, CurrentBalanceWithSubAccounts) from what is posted now."""
        if entity != "Account" or not records:
            return records
        balances = current_balances(company)
        return [
            {
                **r,
                "CurrentBalance": balances.get(r["Id"], Decimal(0)),
                "CurrentBalanceWithSubAccounts": balances.get(r["Id"], Decimal(0)),
            }
            for r in records
        ]

    def _cdc(self, request: httpx.Request, realm: str) -> httpx.Response:
        company = self.companies[realm]
        names = [n.strip() for n in request.url.params.get("entities", "").split(",") if n.strip()]
        since_text = request.url.params.get("changedSince", "")
        if not names or not since_text:
            return self.fault(required("entities" if not names else "changedSince"), company)
        unknown = [n for n in names if n.lower() not in ENTITY_BY_SEGMENT or n in CDC_UNSUPPORTED]
        if unknown:
            return self.fault(
                QboFault("4001", "Invalid query", f"CDC is not supported for {unknown[0]}"), company
            )
        try:
            since = datetime.fromisoformat(since_text)
        except ValueError:
            return self.fault(
                QboFault("2010", "Invalid date/time", f"changedSince {since_text!r} is not a date"), company
            )
        since = since if since.tzinfo else since.replace(tzinfo=company.zone)
        if since < self.now() - CDC_LOOKBACK:
            return self.fault(
                QboFault(
                    "6000",
                    "A business validation error has occurred while processing your request",
                    f"Operation cdc with changedSince date {since_text} which is "
                    "older than fixed days is not supported.",
                ),
                company,
            )
        budget = CDC_MAX_OBJECTS
        blocks: list[dict[str, Any]] = []
        for name in names:
            entity = ENTITY_BY_SEGMENT[name.lower()]
            changed = [
                r
                for r in self._shown(company, entity, list(company.records[entity].values()))
                if datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]) >= since
            ]
            changed += [
                {
                    "domain": "QBO",
                    "status": "Deleted",
                    "Id": rid,
                    "MetaData": {"LastUpdatedTime": self.stamp(company, at)},
                }
                for kind, rid, at in company.tombstones
                if kind == entity and at >= since
            ]
            changed.sort(key=lambda r: datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]))
            changed = changed[:budget]
            budget -= len(changed)
            blocks.append(
                {entity: changed, "startPosition": 1, "maxResults": len(changed)} if changed else {}
            )
        return self.ok(company, {"CDCResponse": [{"QueryResponse": blocks}]})

    def _report(self, make: Report) -> Callable[..., httpx.Response]:
        """The handler of ``GET .../reports/<name>``. Reports answer with the report itself (its Header
        carries the time), not an entity envelope."""

        def handler(request: httpx.Request, realm: str) -> httpx.Response:
            company = self.companies[realm]
            try:
                today, stamp = self.today(company), self._time(company)
                report = make(company, request.url.params, today=today, time=stamp)
            except ReportError as err:
                # The sandbox's choice of code: Intuit documents no specific one for a bad report parameter.
                return self.fault(
                    QboFault("2010", "Request has invalid or unsupported property", str(err)), company
                )
            return json_response(200, report)

        return handler

    def _read(self, request: httpx.Request, realm: str, segment: str, record_id: str) -> httpx.Response:
        company = self.companies[realm]
        entity = ENTITY_BY_SEGMENT[segment.lower()]
        record = company.find(entity, record_id)
        if record is None:
            return self.fault(
                QboFault(
                    "610",
                    "Object Not Found",
                    f"Object Not Found : Something you're trying to use has been made inactive "
                    f"or deleted. ({entity} {record_id})",
                ),
                company,
            )
        return self.ok(company, {entity: self._shown(company, entity, [record])[0]})

    def _write(self, request: httpx.Request, realm: str, segment: str) -> httpx.Response:
        entity = ENTITY_BY_SEGMENT[segment.lower()]
        operation = _operation(request.url.params)
        return self._once(
            request,
            realm,
            lambda company, body: self.ok(
                company, {entity: self._apply_write(company, entity, body, operation)}
            ),
        )

    def _batch(self, request: httpx.Request, realm: str) -> httpx.Response:
        """``POST /batch``: each BatchItemRequest (``bId`` with ``operation`` create, update or delete and one
        entity, or a ``Query``) answered on its own, a failure as that item's Fault, the rest unaffected, in a
        ``BatchItemResponse`` of the same bIds (Intuit's batch reference, developer.intuit.com/app/developer/
        qbo/docs/api/accounting/all-entities/batch; qbo.md section 2.5). At most 30 items, and 40 batch
        requests a minute per company (both CONFIRMED, qbo.md 2.5/2.6): the sandbox refuses a 31st item with
        a ValidationFault (QBO's code for it is UNSURE) and throttles the 41st batch in a minute like any
        throttled call (429, 3001)."""
        company = self.companies[realm]
        if not self.batch_minute.hit(realm, self.now()):
            return self._throttled(company)

        def answer(company: Company, body: dict[str, Any]) -> httpx.Response:
            items = body.get("BatchItemRequest")
            if not isinstance(items, list) or not items:
                raise required("BatchItemRequest")
            if len(items) > BATCH_MAX:
                raise QboFault(
                    "2010",
                    "Request has invalid or unsupported property",
                    f"A batch holds at most {BATCH_MAX} BatchItemRequest objects; this one has {len(items)}",
                )
            return self.ok(company, {"BatchItemResponse": [self._batch_item(company, i) for i in items]})

        return self._once(request, realm, answer)

    def _batch_item(self, company: Company, item: Any) -> dict[str, Any]:
        bid = item.get("bId") if isinstance(item, dict) else None
        try:
            if not bid:
                raise required("bId")
            if "Query" in item:
                return {"bId": bid, "QueryResponse": self._answer_query(company, str(item["Query"]))}
            operation = item.get("operation")
            named = [k for k in item if k in WRITABLE_FIELDS or k in SALES_DOCS]
            if operation not in ("create", "update", "delete") or len(named) != 1:
                raise QboFault(
                    "2010",
                    "Request has invalid or unsupported property",
                    "A BatchItemRequest needs operation create, update or delete and one entity, or a Query",
                )
            entity, body = named[0], item[named[0]]
            if not isinstance(body, dict):
                raise required(entity)
            if operation == "create" and "Id" in body:
                raise _id_on_create(entity)
            if operation != "create" and "Id" not in body:
                raise required("Id")
            write = operation if operation == "delete" else None
            return {"bId": bid, entity: self._apply_write(company, entity, body, write)}
        except QboFault as err:
            return {"bId": bid, "Fault": self.fault_body(err)}

    def _once(
        self,
        request: httpx.Request,
        realm: str,
        produce: Callable[[Company, dict[str, Any]], httpx.Response],
    ) -> httpx.Response:
        """A write's answer, given again for a ``requestid`` already seen instead of writing again (qbo.md
        section 2.7); ``produce`` answers the JSON object the request carries."""
        company = self.companies[realm]
        request_id = request.url.params.get("requestid")
        remembered = company.request_ids.get(request_id or "")
        if remembered and remembered[0] > self.now():
            return httpx.Response(
                remembered[1], content=remembered[2], headers={"content-type": "application/json"}
            )
        try:
            body = json.loads(request.content or b"{}", parse_float=Decimal)
            if not isinstance(body, dict):
                raise QboFault(
                    "2010", "Request has invalid or unsupported property", "The body is not an object"
                )
            response = produce(company, body)
        except json.JSONDecodeError:
            response = self.fault(
                QboFault(
                    "2010", "Request has invalid or unsupported property", "Could not parse the request body"
                ),
                company,
            )
        except QboFault as err:
            response = self.fault(err, company)
        if request_id:
            company.request_ids[request_id] = (
                self.now() + REQUESTID_MEMORY,
                response.status_code,
                response.content,
            )
        return response

    def _apply_write(
        self, company: Company, entity: str, body: dict[str, Any], operation: str | None
    ) -> dict[str, Any]:
        if entity in SALES_DOCS:
            return self._sales_operation(company, entity, body, operation)
        unknown = sorted(set(body) - WRITABLE_FIELDS[entity])
        if unknown:
            raise QboFault(
                "2010",
                "Request has invalid or unsupported property",
                f'Property Name:Unrecognized field "{unknown[0]}" (class '
                f"com.intuit.schema.finance.v3.{entity}), not marked as ignorable specified is "
                f"unsupported or invalid",
            )
        if operation == "delete":
            if entity not in TRANSACTIONS:
                raise QboFault(
                    "500", "Unsupported Operation", f"Operation delete is not supported for {entity}"
                )
            return self._delete(company, entity, body)
        if operation:
            raise QboFault("500", "Unsupported Operation", f"Operation {operation} is not supported")
        if entity == "Item" and (
            body.get("Type") == "Group"
            or (body.get("Id") and (company.find("Item", body["Id"]) or {}).get("Type") == "Group")
        ):
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: Bundle (Group) items can't be created or changed through "
                "the API.",
            )
        if "Id" not in body:
            return self._insert(company, entity, self._validate(company, entity, body))
        current = self._current(company, entity, body)
        # A full update replaces every writable field (those left out are cleared), a sparse one
        # ("sparse": true) only those sent: Intuit's references, "Full update" / "Sparse update" of each
        # entity, JournalEntry included (developer.intuit.com/app/developer/qbo/docs/api/accounting/
        # all-entities/journalentry).
        merged = {**current, **body} if body.get("sparse") else {**body, "Id": current["Id"]}
        if entity == "InventoryAdjustment":
            return self._update_adjustment(company, current, body, merged)
        return self._replace(company, current, self._validate(company, entity, merged))

    def _update_adjustment(
        self, company: Company, current: dict[str, Any], body: dict[str, Any], merged: dict[str, Any]
    ) -> dict[str, Any]:
        """Intuit's inventory adjustment workflow page (developer.intuit.com/app/developer/qbo/docs/workflows/
        manage-inventory/inventory-adjustment; qbo.md section 3.8): only a sparse update is supported and the
        TxnDate cannot be edited after creation. QBO's code and wording for either refusal are UNSURE. The
        quantities the adjustment moved are taken back and its lines as they now stand applied."""
        if not body.get("sparse"):
            raise business_error(
                'Only a sparse update ("sparse": true) is supported for InventoryAdjustment.'
            )
        if str(merged.get("TxnDate")) != current["TxnDate"]:
            raise business_error("The date of an inventory adjustment can't be changed.")
        record = self._validate(company, "InventoryAdjustment", merged)
        self._reverse_stock(company, current["Id"])
        updated = self._replace(company, current, record)
        self._apply_stock(company, updated)
        return updated

    def _sales_operation(
        self, company: Company, entity: str, body: dict[str, Any], operation: str | None
    ) -> dict[str, Any]:
        """A sales document voided or deleted through the API (each takes the Id and current SyncToken).
        Void keeps it with amounts and quantities 0 and "Voided" before its private note: Intuit's API
        reference, Invoice, "Void an invoice" and "Delete an invoice"
        (developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice); an invoice with
        ``operation=void``, a sales receipt with ``operation=update&include=void`` (and ``sparse``), as the
        official client sends them (python-quickbooks ``VoidMixin``; ../shared/providers/qbo.md section 3).
        A credit memo or refund receipt is deleted the same way: Intuit's reference lists a delete for both,
        and python-quickbooks 0.9.12 gives both its ``DeleteMixin`` (``POST /creditmemo?operation=delete``
        with Id and SyncToken). The sandbox voids neither (UNSURE whether QBO's API can). Without an
        operation the document is created or updated (``_write_sales_doc``)."""
        if entity in VOID_OPERATION and operation == VOID_OPERATION[entity]:
            return self.void_record(company.realm_id, entity, self._current(company, entity, body)["Id"])
        if operation == "delete":
            return self._delete(company, entity, body)
        if operation:
            raise QboFault("500", "Unsupported Operation", f"Operation {operation} is not supported")
        return self._write_sales_doc(company, entity, body)

    def _write_sales_doc(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """A sales document created, or updated (full or sparse), as Intuit's references describe it
        (developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice, .../salesreceipt,
        .../creditmemo, .../refundreceipt): CustomerRef and Line are required; TxnDate defaults to today and
        must be after the closing date (6210); totals are QBO's to compute, so what the body says of them is
        not taken; stock moves as for a document made in QBO (``_restock``). python-quickbooks sends ""
        for every date and text it was not given (TxnDate, DueDate, ShipDate, TotalAmt...): taken as absent,
        as QBO does (its integration test creates an invoice so against an Intuit sandbox company). A Line's
        Amount is taken as sent even with Qty and UnitPrice 0, as the same test reads it back."""
        given = {k: v for k, v in body.items() if v != "" and k not in ("HomeBalance", "TotalAmt", "Balance")}
        current = self._current(company, entity, given) if "Id" in given else None
        if current is not None and given.get("sparse"):
            given = {**current, **given}
        for key in ("CustomerRef", "Line"):
            if not given.get(key):
                raise required(key)
        self._active_ref(company, "Customer", given["CustomerRef"], "CustomerRef")
        given["TxnDate"] = self._txn_date(company, given).isoformat()
        record = self._validate(company, entity, given)
        if current is None:
            return self._insert(company, entity, record)
        updated = self._replace(company, current, record)
        self._restock(company, entity, updated)  # an edit moves the difference
        return updated

    def _delete(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        current = self._current(company, entity, body)
        self.delete_record(company.realm_id, entity, current["Id"])
        return {"status": "Deleted", "domain": "QBO", "Id": current["Id"]}

    def _current(self, company: Company, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        current = company.find(entity, str(body.get("Id", "")))
        if current is None:
            raise QboFault("610", "Object Not Found", f"Object Not Found : {entity} {body.get('Id')}")
        if str(body.get("SyncToken")) != current["SyncToken"]:
            raise QboFault(
                "5010",
                "Stale Object Error",
                f"Stale Object Error : You and another user were working on the same thing. "
                f"SyncToken {body.get('SyncToken')} is not current ({current['SyncToken']}).",
            )
        return current


def _operation(params: httpx.QueryParams) -> str | None:
    """A write's ``operation``, with ``include=void`` kept: a sales receipt is voided by an update that
    includes it."""
    operation: str | None = params.get("operation")
    if operation == "update" and params.get("include") == "void":
        return "update&include=void"
    return operation


def _id_on_create(entity: str) -> QboFault:
    """A batch create naming an Id: the sandbox refuses it (UNSURE whether QBO refuses or ignores the Id)."""
    return QboFault(
        "2010",
        "Request has invalid or unsupported property",
        f"Id is read only: a new {entity} can't name one",
    )
