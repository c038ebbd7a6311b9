"""The books bench reports what its random history did: a receipt (a build, a sale) counts as back-dated
(late) when it is dated before something the history had already recorded, and only then; its rare events
(voids and deletions, credit notes, late sales, faults) do in the sandbox what they say."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from bench import bench_books
from infra.local.stack import LocalStack
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from tests.conftest import Sandboxes


def test_the_books_bench_counts_the_receipts_it_back_dated(aws: LocalStack, sandboxes: Sandboxes) -> None:
    organisation, parts = bench_books.prepare(sandboxes, "xero", "journals")
    history = bench_books.History(sandboxes, "xero", organisation, parts)
    start = bench_books.START
    history.receipt(0, start)
    history.receipt(1, start + timedelta(days=1))  # after everything recorded
    history.receipt(2, start - timedelta(days=3))  # before both: back-dated
    history.receipt(3, start + timedelta(days=1))  # at the latest time recorded, not before it
    history.build(4, start + timedelta(days=2))
    history.receipt(5, start + timedelta(days=1, hours=12))  # before the build
    assert history.kinds == Counter({"receipt": 3, "back-dated receipt": 2, "build": 1})


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_the_books_bench_rare_events_happen_in_the_sandbox(
    aws: LocalStack, sandboxes: Sandboxes, provider: str
) -> None:
    organisation, parts = bench_books.prepare(sandboxes, provider, "journals")
    history = bench_books.History(sandboxes, provider, organisation, parts)
    start = bench_books.START
    history.receipt(0, start + timedelta(days=2))
    history.sale(3, start + timedelta(days=3))
    history.sale(4, start + timedelta(days=1))  # late
    history.credit(5, start + timedelta(days=3))
    first, second = history.invoices
    history.void()
    assert len(history.invoices) == 1
    gone = second if history.invoices == [first] else first
    history.fault()
    method, path = bench_books.JOURNAL_WRITES[provider]
    sandbox = sandboxes.qbo if provider == "qbo" else sandboxes.xero
    assert [(f.method, f.path_prefix, f.remaining) for f in sandbox.faults] == [(method, path, 1)]
    assert sandbox.faults[0].kind in bench_books.FAULTS
    if provider == "qbo":
        credits = sandboxes.qbo.list_records(DEMO_REALM_ID, "CreditMemo")
        live = {r["Id"]: r for r in sandboxes.qbo.list_records(DEMO_REALM_ID, "Invoice")}
        assert any(r["DocNumber"] == "C-5" for r in credits)
        assert gone[0] not in live or str(live[gone[0]]["PrivateNote"]).startswith("Voided")
    else:
        notes = sandboxes.xero.list_records(AU_TENANT_ID, "CreditNotes")
        invoices = {r["InvoiceID"]: r for r in sandboxes.xero.list_records(AU_TENANT_ID, "Invoices")}
        assert any(r["CreditNoteNumber"] == "C-5" and r["Type"] == "ACCRECCREDIT" for r in notes)
        assert invoices[gone[0]]["Status"] == "VOIDED"
    removed = Counter({"sale voided": 1}) if history.kinds["sale voided"] else Counter({"sale deleted": 1})
    expected = {"receipt": 1, "sale": 1, "late sale": 1, "credit": 1}
    assert history.kinds == Counter(expected) + removed + Counter({f"fault {sandbox.faults[0].kind}": 1})
