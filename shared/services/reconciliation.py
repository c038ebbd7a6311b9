"""Reconciliation: for every mapped account, the provider's balance, what Partsemble has posted and what the
stock ledger says it should be, each difference explained by named items (DESIGN.md, "Reconciliation")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NamedTuple, cast

from shared.domain import books as domain
from shared.domain.books import Balances, EventKey, cogs_day
from shared.domain.catalog import KIT, Account, Product
from shared.domain.connections import PROVIDER_LABELS, ProviderName
from shared.domain.costing import line_of
from shared.domain.ledger import EntryKind
from shared.domain.postings import InventoryAdjustment, PostingAccounts
from shared.errors import Conflict, InvalidFields, query_field
from shared.model import Model
from shared.money import CENT, ZERO, to_cents
from shared.observability import logger
from shared.providers.base import AccountingProvider, PulledSale, Session
from shared.services import books, events, margins, sessions, starting_quantities, tokens
from shared.store import books as books_store
from shared.store import catalog as catalog_store
from shared.store import connections as connection_store
from shared.store import exports as export_store
from shared.store import sales as sales_store
from shared.store import settings as settings_store
from shared.store import starting_quantities as starting_store
from shared.store.exports import ExportRow

ReasonKind = Literal[
    "opening_balance",
    "others_entries",
    "not_posted",
    "trueup_due",
    "corrected_later",
    "posted_later",
    "not_exported",
    "rounding",
    "other_company",
    "deleted_in_provider",
]
UNPOSTED = ("pending", "posting", "waiting", "failed")


class Reason(Model):
    kind: ReasonKind
    amount: Decimal  # debits positive
    note: str
    export_id: str | None = None


class AccountReconciliation(Model):
    account_id: str
    code: str
    name: str
    roles: list[str]
    provider_balance: Decimal | None  # None: the provider's report has no figure for it (zero)
    posted: Decimal  # by Partsemble, dated on or before as_of
    subledger: Decimal  # the stock ledger's value, rounded to the cent
    difference: Decimal  # provider balance - subledger
    reasons: list[Reason]
    unexplained: Decimal


class ItemQuantity(Model):
    product_id: str
    item_id: str
    label: str
    provider_quantity: Decimal | None
    on_hand: Decimal
    # units sales took that no lot covered (QBO counts them out, Partsemble can't), net of the units credits
    # gave back that no lot took back (QBO counts those in again)
    sold_without_stock: Decimal
    built_without_stock: Decimal  # units builds used that no lot covers (a sale pulled later, dated before
    # the build, took them first): QBO counted them out with the build's adjustment
    # units credits gave back that Partsemble wrote off (their note says not restockable) or that no lot took
    # (a credit matching no sale, with no lot before it to cost its units): QBO counted them in
    written_off_credits: Decimal
    # what QuickBooks held of its own before Partsemble's first adjustment of the item (read then, with the
    # sales Partsemble had read by then added back; all it holds while Partsemble has adjusted none); None:
    # not known (adjusted before starting quantities were recorded)
    starting_quantity: Decimal | None
    # units Partsemble holds that this company's QuickBooks has not from it: adjustments not posted yet, or
    # stock adjusted into another company before a switch of company
    not_in_quickbooks: Decimal | None
    # units Partsemble's posted adjustments moved that QuickBooks no longer counts: those adjustments were
    # deleted there (``Reconciliation.deleted`` names them; retrying each posts it again)
    deleted_in_quickbooks: Decimal
    # units QuickBooks holds beyond Partsemble because of kits sold as plain items (``Reconciliation.kits``):
    # on a kit's item, less the units its sales counted out of it (Partsemble took the kit's components); on a
    # component, the units those sales took of it in Partsemble (QuickBooks did not count them out of it)
    kit_sales: Decimal
    difference: Decimal | None  # provider quantity - on hand
    # QuickBooks' quantity beyond what it should hold: its starting quantity, what Partsemble's posted
    # adjustments moved, less what the sales documents read from it counted out (None: no quantity)
    unexplained: Decimal | None


class DeletedDocument(Model):
    """A document an export posted that the provider no longer has: retrying the export posts it again."""

    export_id: str
    kind: str  # the export's: receipt, rejection, build, cogs, trueup
    record_id: str
    document_type: str
    document_id: str


class KitSales(Model):
    """A kit linked to a QuickBooks item that is no bundle: QuickBooks counts the kit's sales out of that
    item, and books their cost from it, while Partsemble takes the kit's components (only a bundle's sales
    lines relieve its components: qbo.md section 3.2)."""

    product_id: str
    item_id: str
    label: str
    quantity: Decimal  # the units the sales Partsemble tracks counted out of the item, net of credits
    documents: list[str]  # those sales documents by date, e.g. "invoice 1042"


class Reconciliation(Model):
    provider: ProviderName
    as_of: date
    mode: Literal["journals", "inventory_adjustments"]
    status: Literal["balanced", "explained", "discrepancy"]
    accounts: list[AccountReconciliation]
    items: list[ItemQuantity]
    notes: list[str]
    # looked for only when something in the provider is not Partsemble's (or, QBO inventory mode, unexplained)
    deleted: list[DeletedDocument]
    kits: list[KitSales]  # QBO inventory mode: the kits sold as plain items


def _add(into: dict[str, list[Reason]], amounts: Mapping[str, Decimal], make: Any) -> None:
    for account_id, amount in amounts.items():
        if amount:
            into.setdefault(account_id, []).append(make(amount))


def reconcile(organisation_id: str, as_of: date | None, now: datetime) -> Reconciliation:
    """The books at the end of ``as_of`` (None: today where the organisation is, the day its exports found
    now are dated)."""
    connection = sessions.in_use(organisation_id)
    if connection is None:
        raise Conflict("this organisation is not connected to QuickBooks Online or Xero")
    name = connection.provider
    chosen = settings_store.get_export_settings(organisation_id, name)
    if not chosen or not chosen.for_company(connection.tenant_id):  # the accounts of another company
        raise Conflict(f"choose the export accounts for {PROVIDER_LABELS[name]} first")
    api, session = tokens.provider(name), sessions.session_for(connection)
    if name == "qbo" and chosen.quantity_mode:
        return _quantities(organisation_id, as_of, now, api, session)
    currency = export_store.home_currency(organisation_id, name, session.tenant_id) or api.home_currency(
        session
    )
    roles = {role: chosen.account(role) for role in books.ROLES}
    company = connection.tenant_id or ""
    accounts = PostingAccounts(home_currency=currency, company=company, **roles)
    state = books.State(organisation_id, name, accounts)
    as_of = as_of or now.astimezone(state.zone).date()
    every = [r for r in export_store.list_exports(organisation_id) if r.plan_provider]
    dates = state.event_dates() | _planned_days(every)
    events = [e for e in state.found if dates.get(e, as_of) <= as_of]
    subledger = {a: to_cents(v) for a, v in state.exact(events).items()}
    rows = [r for r in every if r.plan_provider == name and r.plan_type == "journal"]
    # planned for the company connected before a switch of company, or of provider (as journals, or as QBO
    # inventory adjustments): in that company's books, not this one's
    theirs_rows = [
        r for r in every if r.plan_provider != name or not domain.of_company(r.plan_tenant, company)
    ]
    elsewhere = {r.export_id for r in theirs_rows}
    # their events, at their values now (the stock ledger's, exact), by date: (date, where, value, provider),
    # where "posted" (or skipped) there, "planned" there and not posted, or "unexported": the cost of goods
    # sold of their sales documents, exported when that company is connected again
    theirs: list[Theirs] = []
    for row in theirs_rows:
        event = cast(EventKey, (row.kind, row.record_id))  # a true-up (no event) is not dated there
        if (day := dates.get(event)) is not None and day <= as_of:
            where = "posted" if row.status in ("posted", "skipped") else "planned"
            if where == "planned" and _of_another(event, company):  # it waits for that company
                where = "unexported"
            theirs.append(Theirs(day, where, state.exact([event]), cast(ProviderName, row.plan_provider)))
    booked_elsewhere = {(r.kind, r.record_id) for r in theirs_rows}
    # the provider each company's sales were read from (a document id starts with it)
    read_from = {tenant: document.split(":", 1)[0] for document, tenant in state.sales_documents.items()}
    for event in events:
        if _of_another(event, company) and event not in booked_elsewhere and event not in state.planned:
            provider = read_from.get(domain.cogs_company(event[1]), name)
            theirs.append(
                Theirs(dates[event], "unexported", state.exact([event]), cast(ProviderName, provider))
            )
            booked_elsewhere.add(event)
    reasons: dict[str, list[Reason]] = {}
    posted: Balances = {}
    dated = {r.export_id: day for r in rows if (day := books.dated(r))}
    # the day each export's values belong to: its record's own (its journal may be dated later, past a lock)
    # (a failed export re-planned on retry is not planned meanwhile: its event still dates it)
    own_day = {r.export_id: dates[key] for r in state.rows if (key := (r.kind, r.record_id)) in dates}
    day_of = {r.export_id: own_day.get(r.export_id, dated.get(r.export_id)) for r in rows}

    def by_then(export_id: str) -> bool:
        day = day_of.get(export_id)
        return day is None or day <= as_of

    partly: Balances = {}  # what the true-ups correcting only part of that date correct of it (exact)
    counted: list[tuple[ExportRow, date]] = []  # the posted exports ``posted`` holds, with their dates
    for row in rows:
        if (day := dated.get(row.export_id)) is None or row.export_id in elsewhere:
            continue
        change = books.change_of(str(row.plan))
        if day > as_of:
            if row.kind == "trueup":  # the subledger (costed as of now) already holds what it corrects then
                corrects, rounding = books.corrections(row.plan_exact), books.rounding_of(row.plan_exact)
                corrected = books.corrected_by_then(change, corrects, rounding, by_then, partly)
                # the rounding account has no subledger: what it holds by then is all its own "rounding"
                # reason, so the cents a later true-up leaves it correct nothing there
                corrected.pop(roles.get("rounding") or "", None)
                _add(reasons, {a: -v for a, v in corrected.items()}, lambda v, r=row, d=day: Reason(
                    kind="corrected_later", amount=v, export_id=r.export_id,
                    note=f"true-up {r.export_id} dated {d} corrects values before this date",
                ))  # fmt: skip
            own = dates.get((row.kind, row.record_id))  # type: ignore[arg-type]  # an event's export
            if own is None or own > as_of:
                continue
            if row.status == "posted":  # re-dated past a lock date; one not posted yet is named below
                _add(reasons, {a: -v for a, v in change.items()}, lambda v, r=row, d=day, o=own: Reason(
                    kind="posted_later", amount=v, export_id=r.export_id,
                    note=f"export {r.export_id} of {o} is dated {d}: that period was locked",
                ))  # fmt: skip
                continue
        if row.status == "posted":
            counted.append((row, day))
            for account_id, amount in change.items():
                posted[account_id] = posted.get(account_id, ZERO) + amount
        elif row.status in UNPOSTED:
            what = f"{row.kind} {row.record_id}"
            _add(reasons, {a: -v for a, v in change.items()}, lambda v, r=row, w=what: Reason(
                kind="not_posted", amount=v, export_id=r.export_id,
                note=f"export {r.export_id} ({w}) is {r.status}"
                + (f": {r.last_error}" if r.last_error else ""),
            ))  # fmt: skip
    if as_of >= now.astimezone(state.zone).date():  # a true-up found now is dated today where the books are
        due = state.due()
    else:  # only the changes of exports of that date or before (exact, to the cent)
        changes = [c for key, c in state.changes().items() if by_then(state.planned[key].export_id)]
        changes += [c for export_id, c in state.books.taken_back.items() if by_then(export_id)]
        due = {a: to_cents(v) for a, v in domain.summed(changes).items()}
    _add(reasons, due, lambda v: Reason(
        kind="trueup_due", amount=-v, note="values already posted changed; the next export or the "
        "hourly pass plans a true-up",
    ))  # fmt: skip
    unplanned = [e for e in events if e not in state.planned and e not in booked_elsewhere]
    for event in unplanned:
        label = (
            f"cost of goods sold for {cogs_day(event[1]).isoformat()}"
            if event[0] == "cogs"
            else f"{event[0]} {event[1]}"
        )
        _add(reasons, {a: -v for a, v in state.exact([event]).items()}, lambda v, w=label: Reason(
            kind="not_exported", amount=v, note=f"{w} is not exported yet",
        ))  # fmt: skip
    balances = api.account_balances(session, as_of)
    year_start = api.financial_year_start(session, as_of)
    ours = [r for r in rows if r.export_id not in elsewhere]
    posted_dates = [books.stored_journal(r.plan).date for r in ours if r.plan and r.status == "posted"]
    first = min(posted_dates, default=None)
    # what the provider held before Partsemble's first journal: opening balances, not someone else's entries
    # (all it holds at a date before that journal, or when none is posted yet)
    since = first if first is not None and first <= as_of else None
    opening = api.account_balances(session, since - timedelta(days=1)) if since else balances
    mapped = sorted({a for a in roles.values() if a} | set(subledger) | set(posted))
    chart = {a.account_id: a for a in catalog_store.get_accounts(organisation_id, name, mapped)}
    # Income and expense accounts: the trial balance holds the financial year to date (earlier years went to
    # retained earnings), so what earlier years' journals posted leaves both Partsemble's figures.
    earlier = _posted_before(ours, year_start)
    figures = {}
    for account_id in mapped:
        held, expected = posted.get(account_id, ZERO), subledger.get(account_id, ZERO)
        before = opening.get(account_id, ZERO)
        mapped_as = sorted(role for role, a in roles.items() if a == account_id)
        this_year = _profit_and_loss(chart.get(account_id), mapped_as)
        if this_year:  # (the other company's events of earlier years are in neither figure either)
            held = held - earlier.get(account_id, ZERO)
            expected -= earlier.get(account_id, ZERO) + to_cents(
                sum((t.values.get(account_id, ZERO) for t in theirs if t.day < year_start), ZERO)
            )
            if since is not None and since - timedelta(days=1) < year_start:
                before = ZERO  # held in an earlier year: not in this year's figures
        figures[account_id] = (held, expected, before, mapped_as, this_year)
    # only when some account holds what Partsemble did not post is the provider asked which journals are gone
    suspect = any(balances.get(a, ZERO) - held - before for a, (held, _, before, _, _) in figures.items())
    gone_rows = _gone(api, session, [row for row, _ in counted]) if suspect else []
    deleted = _deleted(gone_rows, dict((row.export_id, day) for row, day in counted), name)
    lines = []
    for account_id, (held, expected, before, mapped_as, this_year) in figures.items():
        provider_balance = balances.get(account_id)
        found = list(reasons.get(account_id, []))
        found += _theirs(theirs, account_id, year_start if this_year else None, name)
        if before:
            found.insert(0, Reason(kind="opening_balance", amount=before, note=(
                f"in {PROVIDER_LABELS[name]} before Partsemble's first journal")))  # fmt: skip
        gone = [r for r, on_day in deleted.get(account_id, []) if not this_year or on_day >= year_start]
        found += gone
        others = (provider_balance or ZERO) - held - before - sum((r.amount for r in gone), ZERO)
        if others:
            found.insert(0, Reason(kind="others_entries", amount=others, note=(
                f"entries in {PROVIDER_LABELS[name]} not made by Partsemble (by a person, another app, or "
                "opening balances), or Partsemble's own journals edited or deleted there")))  # fmt: skip
        if account_id == roles.get("rounding") and held != expected:
            note = "the cents rounding left over, so that every other account holds its rounded value"
            found.append(Reason(kind="rounding", amount=held - expected, note=note))
        difference = (provider_balance or ZERO) - expected
        left = difference - sum((r.amount for r in found), ZERO)
        if left and abs(left) < 2 * CENT:  # the stock ledger's exact value against whole cents posted
            note = "cents rounding: journals post whole cents, the stock ledger keeps the exact value"
            found.append(Reason(kind="rounding", amount=left, note=note))
            left = ZERO
        account = chart.get(account_id)
        lines.append(
            AccountReconciliation(
                account_id=account_id,
                code=account.code if account else "",
                name=account.name if account else "(not in the synced chart)",
                roles=mapped_as,
                provider_balance=provider_balance,
                posted=held,
                subledger=expected,
                difference=difference,
                reasons=found,
                unexplained=left,
            )
        )
    foreign = any(r.kind in ("others_entries", "deleted_in_provider") for line in lines for r in line.reasons)
    status: Literal["balanced", "explained", "discrepancy"] = (
        "discrepancy"
        if foreign or any(line.unexplained for line in lines)
        else "explained"
        if any(line.difference for line in lines)
        else "balanced"
    )
    notes = [
        f"Income and expense accounts are compared for the financial year from {year_start.isoformat()}, as "
        f"{PROVIDER_LABELS[name]}'s trial balance reports them: posted and subledger leave out what journals "
        "dated in earlier years posted (those years' profit sits in retained earnings).",
        *_sold_without_stock(organisation_id, state, as_of),
    ]
    return Reconciliation(
        provider=name,
        as_of=as_of,
        mode="journals",
        status=status,
        accounts=lines,
        items=[],
        notes=notes,
        deleted=_as_deleted(gone_rows),
        kits=[],
    )


LISTED = 5  # products (sales documents) named in a note (the rest are counted)


def _sold_without_stock(organisation_id: str, state: books.State, as_of: date) -> list[str]:
    """Units sold by ``as_of`` that no lot covered, per product (net of credits that gave them back): no cost
    of goods sold is posted for them, so the books balance with the stock ledger while cost of goods sold is
    short of what was sold. Named here, or an accountant would not see it. Likewise the units builds used
    that no lot covered (a sale dated before the build took the stock first: the stored ledger a build is
    checked against holds no sales): the built lot is posted without their cost."""
    ledger = state.ledger
    short: dict[str, Decimal] = {}
    since: dict[str, date] = {}
    built: dict[str, Decimal] = {}
    built_since: dict[str, date] = {}
    # only the products some result left uncovered (read from the results), not every entry of the ledger
    products = sorted({p for _, p in ledger.uncovered(ledger.products())})
    for entry in (e for p in products for e in ledger.entries(p)):
        day, product = entry.at.astimezone(state.zone).date(), entry.product_id
        if day > as_of:
            continue
        if entry.kind is EntryKind.SALE_CONSUME and entry.uncosted:
            short[product] = short.get(product, ZERO) + entry.uncosted
            since.setdefault(product, day)
        elif entry.kind is EntryKind.BUILD_CONSUME and entry.uncosted:
            built[product] = built.get(product, ZERO) + entry.uncosted
            built_since.setdefault(product, day)
        elif entry.kind in (EntryKind.SALE_RETURN, EntryKind.RETURN_WASTE) and product in short:
            # a credit undoes first the part of its sale no lot covered (its units beyond the sale: uncosted)
            short[product] -= entry.given_back
            if short[product] <= 0:  # all given back: a later uncovered sale is the first again
                del short[product], since[product]
    if not short and not built:
        return []
    labels = {
        p.product_id: " ".join(part for part in (p.sku, p.name) if part)
        for p in catalog_store.get_products(organisation_id, {*short, *built})
    }

    def named(units: dict[str, Decimal], first: dict[str, date]) -> str:
        listed = sorted(units, key=lambda p: (first[p], labels.get(p, p)))
        text = "; ".join(
            f"{units[p].normalize():f} of {labels.get(p, p)} (the first on {first[p].isoformat()})"
            for p in listed[:LISTED]
        )
        return text + (f"; and {len(listed) - LISTED} more product(s)" if len(listed) > LISTED else "")

    notes = []
    if short:
        notes.append(
            f"Sold without stock, so no cost of goods sold is posted for them (the margins show them "
            f"uncosted): {named(short, since)}. Record the receipts or builds they came from, dated before "
            "those sales: the next true-up posts their cost."
        )
    if built:
        notes.append(
            f"Built without stock (sales dated before the builds took it first), so the built lots are "
            f"posted without their cost: {named(built, built_since)}. Record the receipts or builds they "
            "came from, dated before those builds: the next true-up posts their cost."
        )
    return notes


PROFIT_AND_LOSS_KINDS = ("revenue", "cogs", "expense")
PROFIT_AND_LOSS_ROLES = ("cogs", "waste", "rounding")  # an account no longer in the synced chart


def _profit_and_loss(account: Account | None, roles: Sequence[str]) -> bool:
    """By the synced chart's kind; for an account no longer in it, by the roles it is mapped to."""
    if account is not None:
        return account.kind in PROFIT_AND_LOSS_KINDS
    return bool(roles) and all(role in PROFIT_AND_LOSS_ROLES for role in roles)


def _planned_days(rows: list[ExportRow]) -> dict[EventKey, date]:
    """The day each receipt, rejection or build whose journal is planned was dated when it was planned (a
    time zone set since would date it otherwise now), unless a person chose a later day (``post_on``)."""
    return {
        cast(EventKey, (r.kind, r.record_id)): books.stored_journal(r.plan).date
        for r in rows
        if r.kind in ("receipt", "rejection", "build")
        and r.plan
        and r.plan_type == "journal"
        and not r.post_on
    }


def _of_another(event: EventKey, company: str) -> bool:
    """Whether an event is the cost of goods sold of sales read from a company other than ``company``."""
    return event[0] == "cogs" and domain.sales_of_another(event[1], company)


class Theirs(NamedTuple):
    """An event of a company connected before a switch (of company, or of provider), at its value now."""

    day: date
    where: str  # "posted" there (or skipped), "planned" there and not posted, "unexported" (COGS waiting)
    values: Balances
    provider: ProviderName  # the company's provider


def _theirs(theirs: list[Theirs], account_id: str, since: date | None, here: ProviderName) -> list[Reason]:
    """What the events of the companies connected before a switch hold in ``account_id`` (dated ``since`` or
    later), each sum rounded once as the subledger is: posted there; planned there but not posted (a retry
    plans those for this company, or, of another provider, waits for that one); the cost of goods sold of
    its sales, exported when it is connected."""
    found = []
    for provider in sorted({t.provider for t in theirs}, key=lambda p: p != here):
        label = PROVIDER_LABELS[provider]
        for where in ("posted", "planned", "unexported"):
            gone = [
                t.values[account_id]
                for t in theirs
                if t.provider == provider
                and t.where == where
                and t.values.get(account_id)
                and (since is None or t.day >= since)
            ]
            if not (total := to_cents(sum(gone, ZERO))):
                continue
            if where == "posted":
                found.append(Reason(kind="other_company", amount=-total, note=(
                    f"posted to the {label} company connected before the switch to this one ({len(gone)} "
                    "export(s)): in that company's books, not this one's; an opening balance entered here "
                    "would bring it over")))  # fmt: skip
            elif where == "planned":
                retry = (
                    "retry them to plan them for this company"
                    if provider == here
                    else f"they are posted there once {label} is connected again (a failed one once retried)"
                )
                found.append(Reason(kind="not_posted", amount=-total, note=(
                    f"planned for the {label} company connected before the switch to this one and not posted "
                    f"there ({len(gone)} export(s)): {retry}")))  # fmt: skip
            else:
                found.append(Reason(kind="other_company", amount=-total, note=(
                    f"the cost of goods sold of the sales read from the {label} company connected before the "
                    f"switch to this one ({len(gone)} day(s)): exported to that company when it is connected "
                    "again (a failed one once retried)")))  # fmt: skip
    return found


def _gone(api: AccountingProvider, session: Session, rows: Sequence[ExportRow]) -> list[ExportRow]:
    """The posted exports whose documents the provider no longer has (deleted in QuickBooks, voided in Xero),
    asked for by document type."""
    by_type: dict[str, dict[str, ExportRow]] = {}
    for row in rows:
        if row.status == "posted" and row.document_id and row.document_type:
            by_type.setdefault(row.document_type, {})[row.document_id] = row
    return [
        of_type[document_id]
        for document_type, of_type in sorted(by_type.items())
        for document_id in sorted(api.documents_gone(session, document_type, sorted(of_type)))
    ]


def _as_deleted(rows: Sequence[ExportRow]) -> list[DeletedDocument]:
    return [
        DeletedDocument(
            export_id=r.export_id,
            kind=r.kind,
            record_id=r.record_id,
            document_type=r.document_type or "",
            document_id=r.document_id or "",
        )
        for r in rows
    ]


def _deleted(
    gone: Sequence[ExportRow], days: Mapping[str, date], name: ProviderName
) -> dict[str, list[tuple[Reason, date]]]:
    """Per account, what each posted journal the provider no longer holds moved there, as its reason (the
    provider lacks it), with the journal's date (``days``, by export). Retrying the export posts it again
    (``exports.retry``)."""
    found: dict[str, list[tuple[Reason, date]]] = {}
    for row in gone:
        day = days[row.export_id]
        subject = "true-up" if row.kind == "trueup" else f"{row.kind} {row.record_id}"
        note = (
            f"export {row.export_id} ({subject}) posted journal {row.document_id} dated {day.isoformat()}, "
            f"which is no longer in {PROVIDER_LABELS[name]} (deleted or voided there): retry the export to "
            "post it again"
        )
        for account_id, amount in books.change_of(str(row.plan)).items():
            reason = Reason(kind="deleted_in_provider", amount=-amount, note=note, export_id=row.export_id)
            found.setdefault(account_id, []).append((reason, day))
    return found


def _posted_before(rows: list[ExportRow], day: date) -> Balances:
    """Per account, what the posted journals dated before ``day`` moved."""
    found: Balances = {}
    for row in rows:
        if row.status == "posted" and row.plan and books.stored_journal(row.plan).date < day:
            for account_id, amount in books.change_of(row.plan).items():
                found[account_id] = found.get(account_id, ZERO) + amount
    return found


def _quantities(
    organisation_id: str, as_of: date | None, now: datetime, api: AccountingProvider, session: Session
) -> Reconciliation:
    """QBO inventory mode: each linked item's QtyOnHand against Partsemble's on hand (today's figures)."""
    today = domain.record_day(sales_store.business_zone(organisation_id))(now)
    if as_of is not None and as_of != today:  # QBO answers an item's quantity on hand now, of no other day
        problem = f"in QuickBooks inventory mode the books check compares today's quantities ({today}) only"
        raise InvalidFields(f"as_of: {problem}", [{"field": query_field("as_of"), "problem": problem}])
    found = api.items(session, None).records
    held = {i.item_id: i.quantity_on_hand for i in found}
    costed = margins.costed_ledger(organisation_id)
    ledger = costed.ledger
    company = session.tenant_id
    adjusted, posted = starting_quantities.adjusted(organisation_id, company)
    tracking = sales_store.get_tracking(organisation_id, "qbo")
    start_date = tracking.start_date if tracking else None
    documents = list(starting_quantities.stored_documents(organisation_id).values())
    starting = starting_quantities.starting_now(
        starting_store.starting_quantities(organisation_id, "qbo", company), documents, start_date, company
    )
    counted = starting_quantities.counted_out(documents, start_date, company, set(held))
    # the lines of credits whose units no lot took: matching no sale, written off or with no lot to cost them
    moved = {(e.document_id, line_of(e.document_id, e.movement_id)) for e in ledger.entries()}
    credits = [
        d.model_copy(update={"lines": tuple(x for x in d.lines if (d.document_id, x.line_id) not in moved)})
        for d in documents
        if d.kind == "credit_note"
    ]
    credited = starting_quantities.counted_out(credits, start_date, company, set(held))
    products = catalog_store.products(organisation_id)
    bundles = {i.item_id for i in found if i.kind == "bundle"}
    kits, drawn = _kits_sold_as_items(products, bundles, documents, start_date, company, counted)
    items = []
    for product in products:
        item_id = product.provider_links.get("qbo")
        kit = kits.get(product.product_id)
        if not item_id or (product.type == KIT and kit is None):  # a bundle: QuickBooks relieves its parts
            continue
        on_hand = ledger.on_hand(product.product_id)
        quantity = held.get(item_id)
        short = {EntryKind.SALE_CONSUME: ZERO, EntryKind.BUILD_CONSUME: ZERO}
        written_off = ZERO
        for entry in ledger.entries(product.product_id):
            if entry.kind in short:
                short[entry.kind] += entry.uncosted
            elif entry.kind is EntryKind.SALE_RETURN:
                # a credit's units QBO puts back in stock but no lot of ours takes back: those of the sale's
                # part no lot covered (undone first), or beyond what the sale took; netted from the sales'
                short[EntryKind.SALE_CONSUME] -= entry.quantity - sum((d.quantity for d in entry.draws), ZERO)
            elif entry.kind is EntryKind.RETURN_WASTE:
                written_off += entry.quantity  # QBO puts every unit of a credit memo back in stock
        if kit is None:  # (counted out negative: credits put units back; a kit's go back to its item)
            written_off -= credited.get(item_id, ZERO)
        by_kits = -kit.quantity if kit else drawn.get(product.product_id, ZERO)
        start = starting.get(item_id)
        out = counted.get(item_id, ZERO)
        if start is None and item_id not in adjusted and quantity is not None:  # all it holds is its own
            start = quantity + out
        sold, built = short[EntryKind.SALE_CONSUME], short[EntryKind.BUILD_CONSUME]
        difference = unexplained = only_here = None
        if quantity is not None:
            difference = quantity - on_hand
            # what QuickBooks should hold: its own, what Partsemble's posted adjustments moved, less what
            # the sales documents Partsemble read from this company counted out
            unexplained = quantity - ((start or ZERO) + posted.get(item_id, ZERO) - out)
            only_here = (start or ZERO) - sold - built + written_off + by_kits + unexplained - difference
        items.append(
            ItemQuantity(
                product_id=product.product_id,
                item_id=item_id,
                label=" ".join(p for p in (product.sku, product.name) if p),
                provider_quantity=quantity,
                on_hand=on_hand,
                sold_without_stock=sold,
                built_without_stock=built,
                written_off_credits=written_off,
                starting_quantity=start,
                not_in_quickbooks=only_here,
                difference=difference,
                unexplained=unexplained,
                deleted_in_quickbooks=ZERO,
                kit_sales=by_kits,
            )
        )
    gone: list[ExportRow] = []
    if any(i.unexplained for i in items):  # perhaps an adjustment of Partsemble's deleted in QuickBooks
        ours = [
            r
            for r in export_store.list_exports(organisation_id)
            if r.plan_type == "adjustment" and r.plan and domain.of_company(r.plan_tenant, company)
        ]
        gone = _gone(api, session, ours)
        items = _less_deleted(items, gone)
    notes = [
        "QuickBooks Online values inventory adjustments itself (its own cost of each item) and books cost of "
        "goods sold from its invoices, so value is QuickBooks' in this mode; Partsemble checks quantities.",
        "A difference is explained by stock QuickBooks held before Partsemble (starting_quantity: its "
        "QtyOnHand read before Partsemble's first adjustment of the item, with the units of the sales "
        "Partsemble tracks that QuickBooks had entered by then added back), units sold with no stock "
        "recorded in Partsemble "
        "(sold_without_stock: QuickBooks counts them out), units a build used that a sale pulled later and "
        "dated before it took first (built_without_stock: the build's adjustment counted them out), and "
        "units of credits Partsemble wrote off as not restockable (written_off_credits: QuickBooks puts a "
        "credit memo's units back in stock; record their disposal in QuickBooks with an inventory "
        "adjustment), and units Partsemble holds that this company's QuickBooks has not from it "
        "(not_in_quickbooks: adjustments not posted yet, or stock adjusted into the company connected before "
        "a switch), and the units of Partsemble's adjustments deleted in QuickBooks (deleted_in_quickbooks: "
        "retry each export named in deleted to post it again), and the units of kits sold as plain items "
        "(kit_sales: QuickBooks counts them out of the kit's item, Partsemble out of its components). "
        "What is left (unexplained: QuickBooks' "
        "quantity against its starting quantity, "
        "Partsemble's posted adjustments and the sales read from it) is usually an adjustment made in "
        "QuickBooks (record it in Partsemble as a receipt, or correct it in QuickBooks) or a sale entered "
        "in QuickBooks that Partsemble has not read yet.",
    ]
    notes += [
        f"Kit {k.label} is linked to QuickBooks item {k.item_id}, which is no bundle: QuickBooks counts the "
        f"kit's sales out of that item and books their cost from it ({k.quantity.normalize():f} so far"
        + "".join(f"; {d}" for d in k.documents[:LISTED])
        + (f"; and {len(k.documents) - LISTED} more" if len(k.documents) > LISTED else "")
        + "), while Partsemble takes its components. Make the kit a bundle of its components in QuickBooks "
        "and sync items, so both count the same units."
        for k in kits.values()
    ]
    status: Literal["balanced", "explained", "discrepancy"] = (
        "discrepancy"
        if gone or any(i.unexplained for i in items)
        else "explained"
        if any(i.difference for i in items)
        else "balanced"
    )
    return Reconciliation(
        provider="qbo",
        as_of=today,
        mode="inventory_adjustments",
        status=status,
        accounts=[],
        items=items,
        notes=notes,
        deleted=_as_deleted(gone),
        kits=list(kits.values()),
    )


def _kits_sold_as_items(
    products: Sequence[Product],
    bundles: set[str],
    documents: Sequence[PulledSale],
    start_date: date | None,
    company: str,
    counted: Mapping[str, Decimal],
) -> tuple[dict[str, KitSales], dict[str, Decimal]]:
    """The kits linked to a QuickBooks item that is no bundle, by product id, and per component the units
    their sales took in Partsemble (as the sales split a kit's line: ``margins._sale_lines``)."""
    known = {p.product_id for p in products}
    kits: dict[str, KitSales] = {}
    drawn: dict[str, Decimal] = {}
    for kit in products:
        item_id = kit.provider_links.get("qbo")
        parts = [c for c in kit.components if c.ref in known]
        if kit.type != KIT or not item_id or item_id in bundles or not parts:
            continue
        out = counted.get(item_id, ZERO)
        sales = [
            f"{d.kind.replace('_', ' ')} {d.number or d.document_id}"
            for d in sorted(documents, key=lambda d: (d.issued or date.min, d.number, d.document_id))
            if starting_quantities.counts(d, start_date, company)
            and any(line.item_id == item_id for line in d.lines)
        ]
        label = " ".join(p for p in (kit.sku, kit.name) if p)
        kits[kit.product_id] = KitSales(
            product_id=kit.product_id, item_id=item_id, label=label, quantity=out, documents=sales
        )
        for part in parts:
            drawn[part.ref] = drawn.get(part.ref, ZERO) + out * part.quantity
    return kits, drawn


def _less_deleted(items: list[ItemQuantity], gone: Sequence[ExportRow]) -> list[ItemQuantity]:
    """The items with the units of Partsemble's adjustments deleted in QuickBooks (``gone``) named, and out
    of what is unexplained: QuickBooks no longer counts them."""
    deleted: dict[str, Decimal] = {}
    for row in gone:
        for line in InventoryAdjustment.model_validate_json(str(row.plan)).lines:
            deleted[line.item_id] = deleted.get(line.item_id, ZERO) + line.quantity_diff
    return [
        i.model_copy(
            update={
                "deleted_in_quickbooks": deleted.get(i.item_id, ZERO),
                "unexplained": None
                if i.unexplained is None
                else i.unexplained + deleted.get(i.item_id, ZERO),
            }
        )
        for i in items
    ]


def check_once_a_day(connection: connection_store.Connection, now: datetime) -> bool:
    """One connection's daily check (the hourly pull message of each connection runs it), when it is
    connected and has export settings: the first run of the day reconciles, later ones do nothing. A
    discrepancy is logged and raises a ``BooksOutOfBalance`` event. True when the books are out of balance;
    a failure is logged, never raised (tomorrow tries again)."""
    organisation, name = connection.organisation_id, connection.provider
    if connection.status != "connected" or not settings_store.get_export_settings(organisation, name):
        return False
    day = now.date().isoformat()
    if books_store.last_check(organisation, name) == day:
        return False
    try:
        result = reconcile(organisation, None, now)
    except Exception:
        logger.exception("daily reconciliation failed", extra={"organisation_id": organisation})
        return False
    books_store.put_check(organisation, name, day, result.status)
    if result.status != "discrepancy":
        return False
    unexplained = {a.code or a.account_id: str(a.unexplained) for a in result.accounts if a.unexplained}
    unexplained |= {i.label: str(i.unexplained) for i in result.items if i.unexplained}
    # the exports whose documents were deleted or voided in the provider (either mode): retry each to post it
    gone = [d.export_id for d in result.deleted]
    logger.warning(
        "books out of balance",
        extra={"organisation_id": organisation, "accounts": unexplained, "deleted_in_provider": gone},
    )
    events.emit(
        "BooksOutOfBalance",
        {
            "organisation_id": organisation,
            "provider": name,
            "as_of": result.as_of.isoformat(),
            "unexplained": unexplained,
            "deleted_in_provider": gone,
        },
    )
    return True
