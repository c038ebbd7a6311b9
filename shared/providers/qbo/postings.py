"""QBO writes of exports: JournalEntry and InventoryAdjustment carrying the export's marker, and the search
that finds a document by its marker after an unknown outcome.

The marker is both the ``DocNumber`` (21 characters at most) and part of the ``PrivateNote`` (what a person
reads); searches use only properties the reference marks filterable (``find_posting``). ``requestid`` goes
on every create, but Intuit does not promise what it does (notes §2.7): a write that timed out is settled by
searching for the marker, never by resending."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx

from shared.config import ProviderUrls
from shared.contracts import PostedDocument, json_bytes
from shared.domain.postings import InventoryAdjustment, Journal, JournalLine, Posting, marker_tag, noted
from shared.errors import ProviderRejected
from shared.providers import answers
from shared.providers.base import Session
from shared.providers.http import call, decimal_json
from shared.providers.limits import QBO_LIMITS
from shared.providers.qbo.api import MINOR_VERSION, QboApi, qbo_request_id
from shared.providers.qbo.mapping import query_literal

JOURNAL, ADJUSTMENT = "JournalEntry", "InventoryAdjustment"
LINK_PATHS = {JOURNAL: "journal", ADJUSTMENT: "inventoryadjustment"}


def post_journal(
    client: httpx.Client, urls: ProviderUrls, session: Session, journal: Journal, *, idempotency_key: str
) -> PostedDocument:
    body = {
        "TxnDate": journal.date.isoformat(),
        "DocNumber": journal.marker,
        "PrivateNote": noted(journal.narration, journal.marker),
        "CurrencyRef": {"value": journal.currency},
        "Line": [
            {
                "Amount": line.amount,
                "Description": line.description,
                "DetailType": "JournalEntryLineDetail",
                "JournalEntryLineDetail": {
                    "PostingType": "Debit" if line.side == "debit" else "Credit",
                    "AccountRef": {"value": line.account_id},
                    **_entity(line),
                },
            }
            for line in journal.lines
        ],
    }
    return _create(client, urls, session, JOURNAL, body, idempotency_key)


def _entity(line: JournalLine) -> dict[str, Any]:
    """The line's Name: a line on Accounts Payable must carry its vendor as JournalEntryLineDetail.Entity
    {"Type": "Vendor", "EntityRef": {"value": <vendor id>}} (Intuit's JournalEntry reference), else QBO
    answers 6000 "When you use Accounts Payable, you must choose a vendor in the Name field."
    (../shared/providers/qbo.md section 7)."""
    if not line.supplier_id:
        return {}
    return {"Entity": {"Type": "Vendor", "EntityRef": {"value": line.supplier_id}}}


def post_inventory_adjustment(
    client: httpx.Client,
    urls: ProviderUrls,
    session: Session,
    adjustment: InventoryAdjustment,
    *,
    idempotency_key: str,
) -> PostedDocument:
    body = {
        "TxnDate": adjustment.date.isoformat(),
        "DocNumber": adjustment.marker,
        "PrivateNote": noted(adjustment.memo, adjustment.marker),
        "AdjustAccountRef": {"value": adjustment.account_id},
        "Line": [
            {
                "DetailType": "ItemAdjustmentLineDetail",
                "ItemAdjustmentLineDetail": {
                    "ItemRef": {"value": line.item_id},
                    "QtyDiff": line.quantity_diff,
                },
            }
            for line in adjustment.lines
        ],
    }
    return _create(client, urls, session, ADJUSTMENT, body, idempotency_key)


SEARCH_MARGIN = timedelta(minutes=10)  # clocks differ; a write may commit a little after it was sent


def find_posting(
    api: QboApi, session: Session, posting: Posting, *, since: datetime, until: datetime
) -> PostedDocument | None:
    """The document carrying this posting's marker, if one was created (the oldest, should there be two),
    found with queries on properties Intuit's reference marks filterable for that entity only: a real
    company refuses any other with 4001 "QueryValidationError: property '...' is not queryable" (qbo.md
    section 7; ruckus/quickbooks-ruby#403). The pages are read by the one paging loop
    (``QboApi.updated_pages``).

    - JournalEntry: ``DocNumber`` is filterable (Intuit JournalEntry reference: DocNumber "filterable,
      sortable"), so it is asked for directly.
    - InventoryAdjustment: only ``Id`` and ``MetaData.CreateTime`` are documented as filterable (CData's QBO
      driver, cdn.cdata.com/help/RNM/jp/ado/pg_table-inventoryadjustments.htm; DocNumber is UNSURE, so never
      relied on): the adjustments created in the window of the export's attempts (``since`` .. ``until``,
      widened by a margin) are read, paged on their creation time, and the marker matched in their
      DocNumber and PrivateNote here."""
    if isinstance(posting, Journal):
        entity, stamp = JOURNAL, "LastUpdatedTime"
        where = f"DocNumber = {query_literal(posting.marker)}"
    else:
        entity, stamp = ADJUSTMENT, "CreateTime"
        start, end = (since - SEARCH_MARGIN).isoformat(), (until + SEARCH_MARGIN).isoformat()
        where = (
            f"MetaData.CreateTime >= {query_literal(start)} AND MetaData.CreateTime <= {query_literal(end)}"
        )
    marked = {
        str(r["Id"]): r
        for page in api.updated_pages(session, entity, where, stamp=stamp)
        for r in page.records
        if _carries(r, posting.marker)
    }
    if not marked:
        return None
    return _document(api.urls, entity, min(marked.values(), key=lambda r: int(r["Id"])))


def documents_gone(
    api: QboApi, session: Session, document_type: str, document_ids: Iterable[str]
) -> set[str]:
    """Of these journal entries or inventory adjustments (``document_type``: the entity), the ones the company
    no longer has: deleted in QuickBooks (a deleted transaction is gone from queries; QBO voids neither).
    ``Id`` is filterable on both (Intuit's JournalEntry reference; for InventoryAdjustment, CData's QBO
    driver: see ``find_posting``)."""
    wanted = set(document_ids)
    if document_type not in LINK_PATHS or not wanted:
        return set()
    return wanted - api.present(session, document_type, wanted)


def _carries(record: dict[str, Any], marker: str) -> bool:
    return record.get("DocNumber") == marker or marker_tag(marker) in str(record.get("PrivateNote") or "")


def _create(
    client: httpx.Client, urls: ProviderUrls, session: Session, entity: str, body: dict[str, Any], key: str
) -> PostedDocument:
    request_id = qbo_request_id(key)
    resp = call(
        client,
        session,
        "qbo",
        QBO_LIMITS,
        "POST",
        _url(urls, session, entity.lower()),
        retry_unknown_outcome=False,
        content=json_bytes(body),
        headers={"content-type": "application/json"},
        params={"minorversion": MINOR_VERSION, "requestid": request_id},
    )
    return _document(urls, entity, answers.written(_answer(resp), entity, "qbo"))


def _url(urls: ProviderUrls, session: Session, path: str) -> str:
    return f"{urls.api}/v3/company/{session.tenant_id}/{path}"


def _answer(resp: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = decimal_json(resp, "qbo")
    if body.get("Fault"):  # QBO can answer 200 with a Fault
        raise ProviderRejected(
            "qbo", "; ".join(str(e.get("Detail") or e.get("Message")) for e in body["Fault"].get("Error", []))
        )
    return body


def _document(urls: ProviderUrls, entity: str, record: dict[str, Any]) -> PostedDocument:
    app = "https://app.sandbox.qbo.intuit.com" if "sandbox" in urls.api else "https://app.qbo.intuit.com"
    document_id = answers.written_id(record, "Id", "qbo")
    return PostedDocument(
        document_id=document_id,
        document_type=entity,
        link=f"{app}/app/{LINK_PATHS[entity]}?txnId={document_id}",
    )
