"""QBO writes of exports: JournalEntry and InventoryAdjustment carrying the export's marker, and the search
that finds a document by its marker after an unknown outcome.

The marker is both the ``DocNumber`` (21 characters at most, filterable in a query) and part of the
``PrivateNote`` (what a person reads). ``requestid`` goes on every create, but Intuit does not promise what
it does (notes §2.7): a write that timed out is settled by searching for the marker, never by resending."""

from __future__ import annotations

from typing import Any

import httpx

from shared.config import ProviderUrls
from shared.contracts import PostedDocument, json_bytes
from shared.domain.postings import InventoryAdjustment, Journal, JournalLine, Posting
from shared.errors import ProviderRejected
from shared.providers.base import Session
from shared.providers.http import call, decimal_json
from shared.providers.limits import QBO_LIMITS
from shared.providers.qbo.api import MINOR_VERSION, qbo_request_id

JOURNAL, ADJUSTMENT = "JournalEntry", "InventoryAdjustment"
LINK_PATHS = {JOURNAL: "journal", ADJUSTMENT: "inventoryadjustment"}


def note(text: str, marker: str) -> str:
    return f"{text} [Partsemble export {marker}]"


def post_journal(
    client: httpx.Client, urls: ProviderUrls, session: Session, journal: Journal, *, idempotency_key: str
) -> PostedDocument:
    body = {
        "TxnDate": journal.date.isoformat(),
        "DocNumber": journal.marker,
        "PrivateNote": note(journal.narration, journal.marker),
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
    (/work/shared/providers/qbo.md section 7)."""
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
        "PrivateNote": note(adjustment.memo, adjustment.marker),
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


def find_posting(
    client: httpx.Client, urls: ProviderUrls, session: Session, posting: Posting
) -> PostedDocument | None:
    """The document carrying this posting's marker, if one was created (the oldest, should there be two)."""
    entity = JOURNAL if isinstance(posting, Journal) else ADJUSTMENT
    query = f"SELECT * FROM {entity} WHERE DocNumber = '{posting.marker}'"
    resp = call(
        client,
        session,
        "qbo",
        QBO_LIMITS,
        "GET",
        _url(urls, session, "query"),
        params={"query": query, "minorversion": MINOR_VERSION},
    )
    found = _answer(resp).get("QueryResponse", {}).get(entity, [])
    marked = [r for r in found if posting.marker in str(r.get("PrivateNote", ""))]
    if not marked:
        return None
    return _document(urls, entity, min(marked, key=lambda r: int(r["Id"])))


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
    return _document(urls, entity, _answer(resp)[entity])


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
    return PostedDocument(
        document_id=str(record["Id"]),
        document_type=entity,
        link=f"{app}/app/{LINK_PATHS[entity]}?txnId={record['Id']}",
    )
