"""QBO Accounting API reads and writes for the catalog: paged queries by last-updated time, vendors,
company capabilities. Every call goes through the tenant's rate budget (``shared.providers.http.call``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from shared.config import ProviderUrls
from shared.errors import ProviderRejected
from shared.providers.base import Changes, InventoryCapability, Session, SupplierDraft
from shared.providers.http import call, decimal_json
from shared.providers.limits import QBO_LIMITS
from shared.providers.qbo import mapping

MINOR_VERSION = "75"
PAGE = 1000  # QBO's largest page
INVENTORY_PLANS = ("Plus", "Advanced")
T = TypeVar("T")


_REQUEST_IDS = uuid.UUID("0b8c35d4-5f0e-4a53-9a51-7f4d3c1e2a90")


def qbo_request_id(key: str) -> str:
    """QBO's `requestid` holds 50 characters: a UUID derived from the whole key keeps all of it."""
    return str(uuid.uuid5(_REQUEST_IDS, key))


class QboApi:
    def __init__(self, client: httpx.Client, urls: ProviderUrls) -> None:
        self.client = client
        self.urls = urls

    def _url(self, session: Session, path: str) -> str:
        return f"{self.urls.api}/v3/company/{session.tenant_id}/{path}"

    def get(self, session: Session, path: str, **params: str) -> dict[str, Any]:
        resp = call(
            self.client,
            session,
            "qbo",
            QBO_LIMITS,
            "GET",
            self._url(session, path),
            params={**params, "minorversion": MINOR_VERSION},
        )
        return self._body(resp)

    def _body(self, resp: httpx.Response) -> dict[str, Any]:
        body: dict[str, Any] = decimal_json(resp, "qbo")
        if body.get("Fault"):  # QBO can answer 200 with a Fault
            raise ProviderRejected(
                "qbo",
                "; ".join(str(e.get("Detail") or e.get("Message")) for e in body["Fault"].get("Error", [])),
            )
        return body

    def query_all(
        self, session: Session, entity: str, where: str = "", order: str = ""
    ) -> list[dict[str, Any]]:
        """Every record of a query (inactive name-list records included)."""
        return self._pages(session, entity, where, order)[0]

    def _pages(
        self, session: Session, entity: str, where: str, order: str
    ) -> tuple[list[dict[str, Any]], str]:
        """The records, page by page until a short page, and QBO's time when the first page was read."""
        conditions = " AND ".join(c for c in ("Active IN (true, false)", where) if c)
        records: list[dict[str, Any]] = []
        started = ""
        while True:
            text = (
                f"SELECT * FROM {entity} WHERE {conditions}{f' ORDERBY {order}' if order else ''} "
                f"STARTPOSITION {len(records) + 1} MAXRESULTS {PAGE}"
            )
            body = self.get(session, "query", query=text)
            started = started or str(body.get("time") or "")
            page = body.get("QueryResponse", {}).get(entity, [])
            records.extend(page)
            if len(page) < PAGE:
                return records, started

    def changed(
        self, session: Session, entity: str, since: str | None, convert: Callable[[dict[str, Any]], T | None]
    ) -> Changes[T]:
        """Records updated since the cursor. Pages are offsets into a list ordered by update time, so a
        record changed while they are read can push another past the reader: then the cursor stays
        where it was and the next sync reads the same range again (what it already has is skipped)."""
        raw, started = self._pages(
            session, entity, mapping.since_condition(since), order="MetaData.LastUpdatedTime"
        )
        converted = tuple(c for c in map(convert, raw) if c is not None)
        return Changes(converted, mapping.next_cursor([mapping.updated_at(r) for r in raw], started, since))

    def create_vendor(self, session: Session, draft: SupplierDraft, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"DisplayName": draft.name, "CompanyName": draft.name}
        if draft.email:
            body["PrimaryEmailAddr"] = {"Address": draft.email}
        # requestid is not a promise (notes §2.7): an unknown outcome is settled by looking the name up
        resp = call(
            self.client,
            session,
            "qbo",
            QBO_LIMITS,
            "POST",
            self._url(session, "vendor"),
            retry_unknown_outcome=False,
            json=body,
            params={"minorversion": MINOR_VERSION, "requestid": qbo_request_id(request_id)},
        )
        vendor: dict[str, Any] = self._body(resp)["Vendor"]
        return vendor

    def inventory_capability(self, session: Session) -> InventoryCapability:
        info = self.get(session, f"companyinfo/{session.tenant_id}").get("CompanyInfo", {})
        sku = next(
            (str(nv.get("Value", "")) for nv in info.get("NameValue", []) if nv.get("Name") == "OfferingSku"),
            "",
        )
        country = str(info.get("Country") or "")
        if country != "US" or not any(plan in sku for plan in INVENTORY_PLANS):
            return InventoryCapability(
                allowed=False,
                reason=(
                    "inventory adjustments need QuickBooks Online Plus or Advanced in the US "
                    f"(this company: {sku or 'unknown plan'}, {country or 'unknown country'})"
                ),
            )
        prefs = self.get(session, "preferences").get("Preferences", {})
        if not (prefs.get("ProductAndServicesPrefs") or {}).get("QuantityOnHand"):
            return InventoryCapability(
                allowed=False,
                reason=("inventory tracking (track quantity on hand) is turned off in QuickBooks Online"),
            )
        return InventoryCapability(allowed=True)
