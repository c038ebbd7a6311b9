"""Xero Accounting API reads and writes for the catalog: items, accounts, supplier contacts (paged,
``If-Modified-Since``) and contact creation with an ``Idempotency-Key``. Every call goes through the
tenant's rate budget (``shared.providers.http.call``)."""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import httpx

from shared.config import ProviderUrls
from shared.errors import ProviderRejected
from shared.providers import answers
from shared.providers.base import Session, SupplierDraft
from shared.providers.http import call, decimal_json
from shared.providers.limits import XERO_LIMITS
from shared.providers.xero import mapping

PAGE = 1000  # Xero's largest page (since July 2024)


def _page_count(body: dict[str, Any]) -> int:
    """``pagination.pageCount`` (xero.md section 5); 0 when the answer gives none that is a whole number:
    pages are then read until a short one."""
    pagination = body.get("pagination")
    count = pagination.get("pageCount") if isinstance(pagination, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


class Page(NamedTuple):
    records: list[dict[str, Any]]
    time: str  # Xero's time when it answered


class XeroApi:
    def __init__(self, client: httpx.Client, urls: ProviderUrls) -> None:
        self.client = client
        self.urls = urls

    def _request(
        self,
        session: Session,
        method: str,
        collection: str,
        *,
        since: str | None = None,
        headers: dict[str, str] | None = None,
        retry_unknown_outcome: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        all_headers = {"xero-tenant-id": session.tenant_id, **(headers or {})}
        if since:
            all_headers["if-modified-since"] = mapping.modified_since(since)
        resp = call(
            self.client,
            session,
            "xero",
            XERO_LIMITS,
            method,
            f"{self.urls.api}/api.xro/2.0/{collection}",
            headers=all_headers,
            retry_unknown_outcome=retry_unknown_outcome,
            **kwargs,
        )
        return answers.json_object(decimal_json(resp, "xero"), "xero")

    def read(
        self,
        session: Session,
        collection: str,
        *,
        since: str | None = None,
        params: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """A whole unpaged collection (Items, Accounts). Xero's envelope always names it (an empty list when
        there is none, xero.md section 4): an answer without it is broken, never a collection emptied."""
        body = self._request(session, "GET", collection, since=since, params=params or {})
        return answers.records(body, collection, "xero", required=True)

    def report(self, session: Session, name: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET Reports/<name>``: the answer's ``Reports`` (the spec's ReportWithRows)."""
        reports: list[dict[str, Any]] = self._request(session, "GET", f"Reports/{name}", params=params).get(
            "Reports", []
        )
        return reports

    def list_paged(
        self,
        session: Session,
        collection: str,
        *,
        since: str | None = None,
        params: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for page in answers.bounded_pages("xero", itertools.count(1)):
            body = self._request(
                session,
                "GET",
                collection,
                since=since,
                params={**(params or {}), "page": str(page), "pageSize": str(PAGE)},
            )
            # the envelope always names the collection, as in ``page``: an answer without it is never "none"
            chunk = answers.records(body, collection, "xero", required=True)
            records.extend(chunk)
            pages = _page_count(body)
            if len(chunk) < PAGE or (pages and page >= pages):
                break
        return records

    def page(
        self,
        session: Session,
        collection: str,
        *,
        since: str | None,
        params: dict[str, str],
        page: int,
    ) -> Page:
        """One page of a paged collection (``PAGE`` records at most) and Xero's time when it answered (the
        envelope's ``DateTimeUTC``, xero.md section 4; "" when missing)."""
        body = self._request(
            session,
            "GET",
            collection,
            since=since,
            params={**params, "page": str(page), "pageSize": str(PAGE)},
        )
        # every answer holds its collection, an empty list when nothing matches (the response envelope,
        # xero.md section 4): an answer without it is broken, and read as "nothing changed" it would move a
        # sales pull's cursor past the documents changed meanwhile, for good
        return Page(
            answers.records(body, collection, "xero", required=True), mapping.stamp(body.get("DateTimeUTC"))
        )

    def create_contact(self, session: Session, draft: SupplierDraft, idempotency_key: str) -> dict[str, Any]:
        contact: dict[str, Any] = {"Name": draft.name}
        if draft.email:
            contact["EmailAddress"] = draft.email
        # Xero replays the first answer to a repeated Idempotency-Key for a few minutes, so a lost
        # response can be asked again safely; a replayed error is the caller's to settle by looking up.
        # PUT creates only: "if an existing contact matches your ContactName or ContactNumber then you will
        # receive an error", where POST would update that contact (Xero's Contacts page, PUT Contacts).
        body = self._request(
            session,
            "PUT",
            "Contacts",
            headers={"idempotency-key": idempotency_key[:128]},
            json={"Contacts": [contact]},
            params={"summarizeErrors": "false"},
        )
        element: dict[str, Any] = body["Contacts"][0]
        if element.get("ValidationErrors"):
            raise ProviderRejected(
                "xero", "; ".join(str(e.get("Message")) for e in element["ValidationErrors"])
            )
        return element
