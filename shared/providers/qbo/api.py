"""QBO Accounting API reads and writes for the catalog: paged queries by last-updated time, vendors,
company capabilities. Every call goes through the tenant's rate budget (``shared.providers.http.call``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import httpx

from shared.config import ProviderUrls
from shared.errors import ProviderError, ProviderRejected
from shared.providers import answers
from shared.providers.base import Changes, InventoryCapability, Session, SupplierDraft
from shared.providers.http import call, decimal_json
from shared.providers.limits import QBO_LIMITS
from shared.providers.qbo import mapping

MINOR_VERSION = "75"
PAGE = 1000  # QBO's largest page
BY_ID = 100  # records asked for by id in one query (``Id IN (...)``): a short URL, one page of answers
INVENTORY_PLANS = ("Plus", "Advanced")
T = TypeVar("T")


_REQUEST_IDS = uuid.UUID("0b8c35d4-5f0e-4a53-9a51-7f4d3c1e2a90")


def qbo_request_id(key: str) -> str:
    """QBO's `requestid` holds 50 characters: a UUID derived from the whole key keeps all of it."""
    return str(uuid.uuid5(_REQUEST_IDS, key))


class Found(NamedTuple):
    ids: set[str]  # the records asked for that the company has
    time: str  # QBO's time when it answered ("" when it gave none)


class Page(NamedTuple):
    records: list[dict[str, Any]]
    time: str  # QBO's time when it answered
    resume: tuple[datetime | None, int] | None  # (after, at_after) for the next page; None: the last


def _active_and(where: str) -> str:
    """Inactive name-list records too (QBO leaves them out unless asked)."""
    return " AND ".join(c for c in ("Active IN (true, false)", where) if c)


def query_records(body: dict[str, Any], entity: str) -> list[dict[str, Any]]:
    """A query's records: QBO answers ``QueryResponse`` always, an empty object (no entity key) when nothing
    matches (qbo.md section 2.3), so an answer without it is broken, not empty."""
    response = body.get("QueryResponse")
    if not isinstance(response, dict):
        raise ProviderError("qbo", "the provider answered a query without a readable QueryResponse")
    return answers.records(response, entity, "qbo", required=False)


class QboApi:
    def __init__(self, client: httpx.Client, urls: ProviderUrls) -> None:
        self.client = client
        self.urls = urls

    def _url(self, session: Session, path: str) -> str:
        return f"{self.urls.api}/v3/company/{session.tenant_id}/{path}"

    def present(self, session: Session, entity: str, ids: Iterable[str]) -> set[str]:
        """Which of these records the company has (``found``, ``BY_ID`` at a time)."""
        wanted = sorted(set(ids), key=lambda i: (len(i), i))
        found: set[str] = set()
        for start in range(0, len(wanted), BY_ID):
            found |= self.found(session, entity, wanted[start : start + BY_ID]).ids
        return found

    def found(self, session: Session, entity: str, ids: Sequence[str]) -> Found:
        """Which of these records (``BY_ID`` at most) the company has, asked for with ``Id IN (...)`` (IN is
        an operator of the query language: Intuit's data-queries page); a deleted one is not answered. An
        answer without its QueryResponse is broken (``query_records``), never "none found"."""
        ids_in = ", ".join(mapping.query_literal(i) for i in ids)
        query = f"SELECT * FROM {entity} WHERE Id IN ({ids_in}) MAXRESULTS {BY_ID}"
        body = self.get(session, "query", query=query)
        return Found({str(r.get("Id")) for r in query_records(body, entity)}, str(body.get("time") or ""))

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
        body = answers.json_object(decimal_json(resp, "qbo"), "qbo")
        if body.get("Fault"):  # QBO can answer 200 with a Fault
            raise ProviderRejected(
                "qbo",
                "; ".join(str(e.get("Detail") or e.get("Message")) for e in body["Fault"].get("Error", [])),
            )
        return body

    def query_all(self, session: Session, entity: str, where: str = "") -> list[dict[str, Any]]:
        """Every record of a query (inactive name-list records included), once each: a record edited while
        the pages are read (or sharing the stamp a page ends on) is read again, and its last read wins."""
        found = {
            str(r.get("Id")): r
            for page in answers.bounded_pages("qbo", self.updated_pages(session, entity, _active_and(where)))
            for r in page.records
        }
        return list(found.values())

    def updated_pages(
        self,
        session: Session,
        entity: str,
        where: str,
        *,
        after: datetime | None = None,
        at_after: int = 0,
        stamp: str = "LastUpdatedTime",
    ) -> Iterator[Page]:
        """The records matching ``where``, a page at a time in the order of their last update (or of another
        ``MetaData`` stamp: ``stamp``), from ``after`` (the stamp the next page starts at, inclusive) and
        ``at_after`` (how many records of the query keyed on ``after`` were read already). The one paging
        loop of QBO reads.

        Pages are keyed on the last-updated time, never on an offset into the whole list: QBO orders the
        answer by ``MetaData.LastUpdatedTime`` (Intuit data-queries page; qbo.md 2.3 "Incremental reads"),
        so a record edited while the pages are read moves to the end of the list, and an offset
        (``STARTPOSITION``) would step over the record that slid back onto a page already read. Each page
        asks for the records updated at or after the last stamp read instead (an edited one is read again at
        its new place). The offset is used only within one query: when a whole page shares one stamp (QBO
        stamps whole seconds), or when a full page ends on a record without the stamp (nothing to key the
        next page on; a query cannot ask for the records without it), the next page is the same query's
        next positions."""
        field = f"MetaData.{stamp}"
        while True:
            since = f"{field} >= {mapping.query_literal(after.isoformat())}" if after else ""
            conditions = " AND ".join(c for c in (where, since) if c)
            skip = at_after if at_after >= PAGE else 0  # a full page within one query: step on within it
            text = (
                f"SELECT * FROM {entity}{f' WHERE {conditions}' if conditions else ''} ORDERBY "
                f"{field} STARTPOSITION {skip + 1} MAXRESULTS {PAGE}"
            )
            body = self.get(session, "query", query=text)
            records = query_records(body, entity)
            if len(records) < PAGE:
                yield Page(records, str(body.get("time") or ""), None)
                return
            last = mapping.instant(records[-1], stamp)
            if last is None:
                at_after = skip + len(records)
            else:
                tied = sum(1 for r in records if mapping.instant(r, stamp) == last)
                at_after = skip + tied if last == after else tied
                after = last
            yield Page(records, str(body.get("time") or ""), (after, at_after))

    def changed(
        self, session: Session, entity: str, since: str | None, convert: Callable[[dict[str, Any]], T | None]
    ) -> Changes[T]:
        """Records updated since the cursor; the cursor moves past them unless one changed once the read
        had begun (``mapping.next_cursor``)."""
        raw: list[dict[str, Any]] = []
        started = ""
        pages = self.updated_pages(session, entity, _active_and(mapping.since_condition(since)))
        for page in answers.bounded_pages("qbo", pages):
            raw.extend(page.records)
            started = started or page.time
        latest = {str(r.get("Id")): r for r in raw}  # a record read twice: its later version
        converted = answers.converted("qbo", f"a {entity} record", convert, latest.values())
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
