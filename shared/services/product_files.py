"""Product import from a CSV or XLSX file: a dry run reports every row; an apply reads the file once as a
dry run and writes the valid rows only if it has no file error, so a refused file never leaves a
half-written catalog (DESIGN.md, "Product files: importing")."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from time import monotonic
from typing import Literal

from shared.aws import is_outage
from shared.domain.catalog import Product, new_product_id, sku_key
from shared.domain.product_changes import CatalogIndex, fields_set, merged
from shared.domain.product_import import HostileFile, OutOfTime, ReadBudget
from shared.domain.product_rows import ImportSummary, ProductRow, RowOutcome
from shared.domain.product_summary import summarise_file
from shared.errors import Conflict, ImportInterrupted, ImportOutOfTime, InvalidFields
from shared.store import catalog as store

Mode = Literal["dry_run", "apply"]

# Seconds an import keeps from the time its caller has left, to answer before that time runs out (Lambda
# ends an invocation at its timeout, and the client then gets the gateway's opaque error): the writing pass
# looks at the time between chunks, so this must hold the last chunk's write (one read and one transaction
# of up to 100 products, retried by boto3 when throttled) and the answer.
ANSWER_MARGIN = 5.0

clock: Callable[[], float] = monotonic  # an import's deadline is on this clock; tests move it


class FileImportResult(ImportSummary):
    """The file's summary; in a dry run, created/updated/unchanged say what an apply would do."""

    mode: Mode


def import_file(
    organisation_id: str, content: bytes, mode: Mode, seconds_left: float | None = None
) -> FileImportResult:
    """`seconds_left` is the time the caller has to answer (a Lambda's remaining time): the reading pass
    stops within it, and an apply's writing pass stops between two chunks, ANSWER_MARGIN before its end.
    Without it (a script), the reading pass has MAX_READ_SECONDS and the writing pass runs to the end."""
    deadline = float("inf") if seconds_left is None else clock() + seconds_left - ANSWER_MARGIN
    index = CatalogIndex(store.iter_catalog_entries(organisation_id))
    try:
        budget = ReadBudget(memory_growth=memory_growth_probe(), clock=clock, until=deadline)
        summary = summarise_file(content, index.outcomes, budget=budget)
    except HostileFile as refused:
        raise InvalidFields(f"file: {refused}", [{"field": "file", "problem": str(refused)}]) from None
    if mode == "apply" and not summary.file_errors:
        summary = _apply(organisation_id, content, index, deadline, summary.valid_count)
    return FileImportResult(mode=mode, **dict(summary))


def _apply(
    organisation_id: str, content: bytes, index: CatalogIndex, deadline: float, valid_count: int
) -> ImportSummary:
    """The writing pass. Reaching the deadline, or a dependency's outage, part way answers 503, saying that
    what was written stays and that applying the file again writes the rest (the deadline is looked at only
    while reading; a chunk is written whole, in one transaction). An outage before the first chunk was
    written is the plain 503 that says nothing was changed."""
    done: Counter[RowOutcome] = Counter()
    written = False  # whether a chunk is written (each in one transaction)

    def wrote() -> None:
        nonlocal written
        written = True

    def write(rows: list[ProductRow]) -> list[RowOutcome]:
        outcomes = _write(organisation_id, rows, index, wrote)
        done.update(outcomes)
        return outcomes

    try:
        return summarise_file(
            content, write, budget=ReadBudget(seconds=float("inf"), clock=clock, until=deadline)
        )
    except OutOfTime:
        raise _out_of_time(done, valid_count) from None
    except Exception as error:
        if not (written and is_outage(error)):
            raise
        raise ImportInterrupted(
            "The import stopped part way, after writing some of the file's products: a service Partsemble "
            "depends on is busy or unavailable. Nothing is lost: apply the same file again shortly to "
            "finish it (the products already written are left as they are)."
        ) from error


def _out_of_time(done: Counter[RowOutcome], valid_count: int) -> ImportOutOfTime:
    created, updated, unchanged = (
        done[o] for o in (RowOutcome.CREATED, RowOutcome.UPDATED, RowOutcome.UNCHANGED)
    )
    return ImportOutOfTime(
        "The import stopped part way, as the time one request may take was running out: "
        f"{created + updated + unchanged:,} of the file's {valid_count:,} valid rows are done ({created:,} "
        f"products created, {updated:,} updated, {unchanged:,} unchanged) and the others are not written "
        "yet. Nothing is lost: apply the same file again to write the rest (the products already written are "
        "left as they are)."
    )


def resident_bytes() -> int | None:
    """The process's resident memory now (Linux, as Lambda runs), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def memory_growth_probe() -> Callable[[], int] | None:
    """How much the process has grown since the probe was made, or None where memory cannot be read."""
    start = resident_bytes()
    if start is None:
        return None
    return lambda: (resident_bytes() or start) - start


def _write(
    organisation_id: str, rows: list[ProductRow], index: CatalogIndex, wrote: Callable[[], None]
) -> list[RowOutcome]:
    """Writes a chunk of valid rows, whole or not at all (`wrote` is called once it is written); each row's
    outcome is what was done (re-checked on the full product). A product a row makes is created only where
    no product has its id (``new_product_id``): one another import made since the index was read (a file's
    apply or the provider's items, at once with this one) is read and updated instead, never made twice.

    A stored product is updated in the fields its row sets only (``fields_set``), and only while it still has
    the SKU it was read with: that SKU is what the row was matched by, the one thing the decision to update
    this product rests on. Its other attributes (provider links an item sync or a provider import adds,
    components) are left as they are when the write lands, never put back as read. A field the row sets is
    the file's whatever another request wrote to it meanwhile (the later write wins, as two imports of one
    SKU always did), so no other attribute is checked: a product gone, or given another SKU, is read again
    and the row decided anew."""
    indexed = index.outcomes(rows)
    ids = [index.product_id(row.key) for row, o in zip(rows, indexed, strict=True) if o is RowOutcome.UPDATED]
    current = {
        sku_key(p.sku): p for p in store.get_products(organisation_id, [i for i in ids if i is not None])
    }
    for _ in range(3):  # each time, products made or changed meanwhile by others (a third time: rarer still)
        outcomes, made, changed = _changes(organisation_id, rows, indexed, current)
        refused = set(store.write_products(organisation_id, made, changed))  # a chunk fits one transaction
        if not refused:
            break
        current = {k: p for k, p in current.items() if p.product_id not in refused}
        current.update((sku_key(p.sku), p) for p in store.get_products(organisation_id, refused))
    else:
        raise Conflict(
            "Other imports are making this file's products right now. Apply the file again shortly: "
            "what is written stays, and the rest is written then."
        )
    if made or changed:
        wrote()
    return outcomes


def _changes(
    organisation_id: str, rows: list[ProductRow], indexed: list[RowOutcome], current: dict[str, Product]
) -> tuple[list[RowOutcome], list[Product], list[store.ProductChange]]:
    """Each row's outcome, the products to create and the changes to stored ones, for a chunk: `indexed`
    holds the rows' outcomes by the catalog's index, `current` the stored products by normalised SKU."""
    outcomes = list(indexed)
    made: list[Product] = []
    changed: list[store.ProductChange] = []
    for number, (row, outcome) in enumerate(zip(rows, outcomes, strict=True)):
        if outcome is RowOutcome.UNCHANGED:
            continue
        existing = current.get(row.key)
        if existing is None:
            # a new SKU, a product deleted (or given another SKU) since the index was read, or one whose
            # SKU's hash the row's shares (CatalogIndex: odds below 10^-10)
            outcomes[number] = RowOutcome.CREATED
            product_id = new_product_id(organisation_id, row.key)
            made.append(merged(row, Product(product_id=product_id, sku=row.sku, name=row.name)))
            continue
        product = merged(row, existing)
        if product == existing:  # changed to these values since the index was read, or made so meanwhile
            outcomes[number] = RowOutcome.UNCHANGED
            continue
        outcomes[number] = RowOutcome.UPDATED
        changed.append(store.ProductChange(product, fields_set(row, existing), existing.sku))
    return outcomes, made, changed
