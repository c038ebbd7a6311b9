"""Xero writes of exports: a POSTED manual journal carrying the export's marker in its Narration (manual
journals have no reference field), and the search that finds it by that marker after an unknown outcome.

Every create sends an ``Idempotency-Key``; Xero keeps it six minutes and replays errors to it too, so the
key changes with every attempt and a lost answer is settled by the search, not by the key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from shared.config import ProviderUrls
from shared.contracts import PostedDocument, json_bytes
from shared.domain.postings import Journal, marker_tag, noted
from shared.errors import ProviderRejected
from shared.providers import answers
from shared.providers.base import Session
from shared.providers.http import call, decimal_json
from shared.providers.limits import XERO_LIMITS
from shared.providers.xero.api import XeroApi
from shared.providers.xero.mapping import where_literal

MANUAL_JOURNAL = "ManualJournal"
GONE = ("DELETED", "VOIDED")
# a draft (a copy of a voided journal keeps its marker) posts nothing. ARCHIVED is not here: a person
# archives posted journals "that you don't need to see", on the Posted tab, while "voided journals are
# reversed from the general ledger" (Xero Central, "Void or archive multiple journals",
# help.xero.com/au/ManualJournals-VoidArchive): an archived journal is still posted, and adopting it leaves
# the books whole (the status codes at developer.xero.com/documentation/api/accounting/types describe
# DRAFT, POSTED, DELETED and VOIDED only; that archiving never reverses a journal: UNSURE, no page says so)
NOT_IN_BOOKS = (*GONE, "DRAFT")


def _url(urls: ProviderUrls) -> str:
    return f"{urls.api}/api.xro/2.0/ManualJournals"


def post_journal(
    client: httpx.Client, urls: ProviderUrls, session: Session, journal: Journal, *, idempotency_key: str
) -> PostedDocument:
    element = {
        "Narration": noted(journal.narration, journal.marker),
        "Date": journal.date.isoformat(),
        "Status": "POSTED",
        "LineAmountTypes": "NoTax",
        "JournalLines": [
            {
                # by id, not code: a line takes "AccountCode or AccountID" (../shared/providers/xero.md 4.4;
                # AccountID added to ManualJournalLine in XeroAPI/Xero-OpenAPI#251). A code can be changed in
                # Xero after the sync, and an unknown code is only dropped with a warning; an id never changes
                "AccountID": line.account_id,
                "LineAmount": line.amount if line.side == "debit" else -line.amount,  # credits are negative
                "Description": line.description,
            }
            for line in journal.lines
        ],
    }
    resp = call(
        client,
        session,
        "xero",
        XERO_LIMITS,
        "PUT",
        _url(urls),
        retry_unknown_outcome=False,
        content=json_bytes({"ManualJournals": [element]}),
        params={"summarizeErrors": "false"},
        headers={
            "xero-tenant-id": session.tenant_id,
            "idempotency-key": idempotency_key[:128],
            "content-type": "application/json",
        },
    )
    created = answers.written(decimal_json(resp, "xero"), "ManualJournals", "xero")
    if created.get("ValidationErrors"):  # summarizeErrors=false: refused elements come back with 200
        raise ProviderRejected("xero", "; ".join(str(e.get("Message")) for e in created["ValidationErrors"]))
    return _document(created)


def find_posting(
    client: httpx.Client, urls: ProviderUrls, session: Session, journal: Journal
) -> PostedDocument | None:
    """The live manual journal carrying this journal's marker, if one was created (posted: not a draft).
    Xero's envelope always names its collection, an empty list when nothing matches (xero.md section 4), so
    an answer without ``ManualJournals`` is broken (a ``ProviderError``: the export comes back), never "not
    posted": that would post a lost write's journal a second time."""
    resp = call(
        client,
        session,
        "xero",
        XERO_LIMITS,
        "GET",
        _url(urls),
        headers={"xero-tenant-id": session.tenant_id},
        params={"where": f"Narration.Contains({where_literal(marker_tag(journal.marker))})", "page": "1"},
    )
    body = answers.json_object(decimal_json(resp, "xero"), "xero")
    found = [
        j
        for j in answers.records(body, "ManualJournals", "xero", required=True)
        if marker_tag(journal.marker) in str(j.get("Narration", "")) and j.get("Status") not in NOT_IN_BOOKS
    ]
    return _document(found[0]) if found else None


def journals_gone(api: XeroApi, session: Session, document_ids: Iterable[str]) -> set[str]:
    """Of these manual journals, the ones the organisation's books no longer hold: Xero keeps a voided (or
    deleted) journal with that status (ManualJournal Status: DRAFT, POSTED, DELETED, VOIDED, ARCHIVED in the
    spec), so those are read, a page of ``PAGE`` at a time, and matched by id. An archived journal is still
    posted (``NOT_IN_BOOKS`` cites the source): not gone, so its export is not posted again."""
    wanted = set(document_ids)
    if not wanted:
        return set()
    where = " OR ".join(f"Status=={where_literal(status)}" for status in GONE)
    gone = api.list_paged(session, "ManualJournals", params={"where": where})
    return {str(j.get("ManualJournalID")) for j in gone} & wanted


def _document(record: dict[str, Any]) -> PostedDocument:
    journal_id = answers.written_id(record, "ManualJournalID", "xero")
    return PostedDocument(
        document_id=journal_id,
        document_type=MANUAL_JOURNAL,
        link=f"https://go.xero.com/Journal/View.aspx?invoiceID={journal_id}",
    )
