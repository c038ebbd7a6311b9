"""Export settings per organisation and provider: the mode (QBO inventory adjustments, or Partsemble-only
journals; Xero is always journals) and the account of each role, checked against the synced chart and,
for QBO inventory mode, against what the company can do."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from shared.bodies import ExportSettingsRequest
from shared.domain.books import of_company
from shared.domain.catalog import (
    ROLES,
    Account,
    ExportMode,
    ExportSettings,
    Role,
    export_settings_problems,
    name_required,
)
from shared.domain.connections import PROVIDER_LABELS, ProviderName
from shared.errors import InvalidFields
from shared.model import Model
from shared.providers import provider_name
from shared.services import catalog, sessions, tokens
from shared.store import books as books_store
from shared.store import catalog as catalog_store
from shared.store import connections as connection_store
from shared.store import exports as export_store
from shared.store import settings as store


class InvalidExportSettings(InvalidFields):
    """Settings that can't be used; the message names each field and why."""


class AccountChoice(Model):
    account_id: str
    code: str
    name: str


class ExportSettingsView(Model):
    provider: ProviderName
    configured: bool
    mode: ExportMode
    accounts: dict[str, AccountChoice | None]
    updated_at: str | None = None
    warnings: list[str] | None = None  # None: not checked (asked for without them)


def _view(
    provider: ProviderName,
    stored: ExportSettings | None,
    chart: dict[str, Account],
    warnings: list[str] | None,
) -> ExportSettingsView:

    def choice(account_id: str | None) -> AccountChoice | None:
        if not account_id:
            return None
        account = chart.get(account_id)
        return AccountChoice(
            account_id=account_id,
            code=account.code if account else "",
            name=account.name if account else "(no longer in the chart)",
        )

    return ExportSettingsView(
        provider=provider,
        configured=stored is not None,
        mode=stored.mode if stored else "journals",
        accounts={role: choice(stored.account(role) if stored else None) for role in ROLES},
        updated_at=stored.updated_at if stored else None,
        warnings=warnings,
    )


LISTED = 5


def _warnings(
    organisation_id: str, provider: ProviderName, stored: ExportSettings | None, chart: dict[str, Account]
) -> list[str]:
    return _unmapped_balances(organisation_id, provider, stored, chart) + _tracked_items(
        organisation_id, provider, stored
    )


# retiring an account so that a journal line can no longer name it, in each provider's words
RETIRE = {"qbo": "make {} inactive in QuickBooks (it would refuse the true-up)", "xero": "archive {} in Xero"}


def _unmapped_balances(
    organisation_id: str, provider: ProviderName, stored: ExportSettings | None, chart: dict[str, Account]
) -> list[str]:
    """Accounts Partsemble posted to that no role maps any more (a remap): the next true-up moves what they
    hold onto the accounts now chosen, which the provider refuses while the old account is retired."""
    if stored is None:
        return []
    mapped = set(stored.accounts.values())
    posted = books_store.get_books(organisation_id, provider, stored.tenant_id or "").posted
    held = sorted((a, cents) for a, cents in posted.items() if cents and a not in mapped)
    warnings = []
    for account_id, cents in held:
        account = chart.get(account_id)
        label = f"{account.code} {account.name}".strip() if account else account_id
        balance = f"a debit of {cents}" if cents > 0 else f"a credit of {-cents}"
        warnings.append(
            f"{label} holds {balance} that Partsemble posted and no role maps any more: the next true-up "
            f"moves it onto the accounts now chosen. Don't {RETIRE[provider].format(label)} until that "
            "true-up has posted"
        )
    return warnings


def _tracked_items(organisation_id: str, provider: ProviderName, stored: ExportSettings | None) -> list[str]:
    """Journals with products linked to items the provider tracks: it books cost of goods sold for those
    items itself when they are invoiced, so with Partsemble's own COGS journals the general ledger would
    count them twice. QuickBooks: an inventory item's sale credits its asset account and debits its expense
    account at QuickBooks' cost (Intuit, "Track inventory in QuickBooks Online"); not in inventory mode,
    where Partsemble posts no COGS. Xero: a tracked item's sale moves its average cost from its inventory
    asset account to its COGS account (xero.md 4.2, tracked inventory; "Design implications": with tracked
    items for the same SKUs "our journals would double-count stock")."""
    if stored is None or stored.quantity_mode:
        return []
    products = catalog_store.iter_products(organisation_id)
    linked = {p.provider_links[provider]: p.sku for p in products if provider in p.provider_links}
    tracked = sorted(
        linked[i.item_id]
        for i in catalog_store.get_provider_items(organisation_id, provider, linked)
        if i.tracked and i.kind == "inventory"
    )
    if not tracked:
        return []
    items = f"{len(tracked)} linked item(s) ({', '.join(tracked[:LISTED])}"
    items += f" and {len(tracked) - LISTED} more)" if len(tracked) > LISTED else ")"
    if provider == "xero":
        return [
            f"Xero tracks inventory for {items} and books their cost of goods sold itself when they are "
            "invoiced, while Partsemble's journals post cost of goods sold and the stock's value too: make "
            "them untracked items in Xero (no inventory asset account), so that each is counted once"
        ]
    return [
        f"QuickBooks tracks quantity on hand for {items} and books their cost of goods sold itself when they "
        "are invoiced, while journals mode posts cost of goods sold from Partsemble too: make them "
        "non-inventory items in QuickBooks, or choose inventory adjustments mode, so that it is counted once"
    ]


def _chart(organisation_id: str, provider: ProviderName) -> dict[str, Account]:
    return {a.account_id: a for a in catalog_store.accounts(organisation_id, provider)}


def get_settings(organisation_id: str, name: str, *, warnings: bool = True) -> ExportSettingsView:
    """The stored settings; with ``warnings``, checked against the catalog too (which reads every product:
    a caller that wants only the settings asks without them)."""
    wanted = provider_name(name)
    stored = store.get_export_settings(organisation_id, wanted)
    connection = connection_store.get_connection(organisation_id, wanted)
    if stored and connection and not stored.for_company(connection.tenant_id):
        return _view(wanted, None, {}, [OTHER_COMPANY.format(PROVIDER_LABELS[wanted])] if warnings else None)
    chart = _chart(organisation_id, wanted)
    found = _warnings(organisation_id, wanted, stored, chart) if warnings else None
    return _view(wanted, stored, chart, found)


OTHER_COMPANY = (
    "the export accounts were chosen for another {} company, before the switch to this one: choose them "
    "again (until then an export fails saying so; retry it once they are chosen)"
)


PLAN_TYPES: dict[ExportMode, str] = {"journals": "journal", "inventory_adjustments": "adjustment"}
PLANNED_AS = {"journal": "journals", "adjustment": "inventory adjustments"}


def _mode_problems(
    organisation_id: str, provider: ProviderName, mode: ExportMode, company: str | None
) -> list[tuple[str, str]]:
    """A switch to ``mode`` once exports are planned (posted, or about to be) in another mode for this
    company. Journals put the stock's value from Partsemble's lots in the mapped accounts; inventory
    adjustments move QuickBooks' quantities, which QuickBooks values itself. Neither can take over or reverse
    the other's documents, so the general ledger would stay off the stock ledger for good (a changed account
    is trued up instead). A company connected after a switch starts with a free choice: what was planned for
    the one before is in that one's books."""
    planned = [
        row.plan_type
        for row in export_store.plan_index(organisation_id)
        if row.plan_provider == provider
        and row.plan_type != PLAN_TYPES[mode]
        and of_company(row.plan_tenant, company or "")
    ]
    if not planned:
        return []
    held = PLANNED_AS[planned[0]]
    problem = (
        f"can't change once exports are planned: {len(planned)} export(s) are already posted or planned as "
        f"{held}, and {PLANNED_AS[PLAN_TYPES[mode]]} can neither take over nor reverse what they put in the "
        f"books, so the general ledger would stop matching the stock ledger. Keep {held}"
    )
    return [("mode", problem)]


def _named_moves(
    organisation_id: str,
    provider: ProviderName,
    current: ExportSettings,
    accounts: Mapping[Role, str | None],
    chart: dict[str, Account],
    company: str | None,
) -> list[tuple[str, str]]:
    """A remap whose true-up would need a line on an account every journal line on which must name someone
    (QBO's Accounts Payable: a vendor), moving what Partsemble posted to the old account: a true-up names
    nobody, QuickBooks refuses it (6000) however often it is retried, and the books could never follow the
    new mapping. Refused while the old account holds what Partsemble posted (before that, nothing moves)."""
    posted = books_store.get_books(organisation_id, provider, company or "").posted
    problems: list[tuple[str, str]] = []
    for role in ROLES:
        old, new = current.account(role), accounts.get(role)
        if not old or not new or old == new or not posted.get(old):
            continue
        named = [(a, kind) for a in (old, new) if (a in chart and (kind := name_required(chart[a])))]
        if not named:
            continue
        account, kind = named[0]
        held = chart[old].label if old in chart else old
        problem = (
            f"can't move from {held} while it holds what Partsemble posted there: the true-up moving it "
            f"would need a {kind.lower()} on its {chart[account].label} lines, which a true-up has none of "
            f"({PROVIDER_LABELS[provider]} refuses it)"
        )
        problems.append((role, problem))
    return problems


def _invalid(problems: list[tuple[str, str]]) -> InvalidExportSettings:
    return InvalidExportSettings(
        "; ".join(f"{field}: {problem}" for field, problem in problems),
        [{"field": field, "problem": problem} for field, problem in problems],
    )


def put_settings(
    organisation_id: str, name: str, request: ExportSettingsRequest, now: datetime
) -> ExportSettingsView:
    wanted, connection = sessions.connected(organisation_id, name)
    accounts = request.accounts.by_role()
    chart = _chart(organisation_id, wanted)
    if any(a and a not in chart for a in accounts.values()):  # chosen from a newer chart: read it again
        chart = {
            a.account_id: a for a in catalog.refresh_accounts(organisation_id, wanted, connection).accounts
        }
    problems = export_settings_problems(wanted, request.mode, accounts, chart)
    current = store.get_export_settings(organisation_id, wanted)
    if current and (current.mode != request.mode or not current.for_company(connection.tenant_id)):
        # the saved mode may be another company's (before a switch): this company's plans decide
        problems += _mode_problems(organisation_id, wanted, request.mode, connection.tenant_id)
    if current and current.for_company(connection.tenant_id) and request.mode == "journals":
        problems += _named_moves(organisation_id, wanted, current, accounts, chart, connection.tenant_id)
    if not problems and request.mode == "inventory_adjustments":
        capability = tokens.provider(wanted).inventory_capability(sessions.session_for(connection))
        if not capability.allowed:
            problems.append(
                ("mode", f"QuickBooks Online inventory mode is not available: {capability.reason}")
            )
    if problems:
        raise _invalid(problems)
    stored = ExportSettings(
        mode=request.mode,
        accounts={role: a for role, a in accounts.items() if a},
        updated_at=now.isoformat(),
        tenant_id=connection.tenant_id,
    )
    warnings = _warnings(organisation_id, wanted, stored, chart)  # read first: a 503 after the write lied
    if not store.put_export_settings(organisation_id, wanted, stored):  # an export took the mode meanwhile
        raise _invalid(
            _mode_problems(organisation_id, wanted, request.mode, connection.tenant_id)
            or [
                (
                    "mode",
                    "can't change once exports are planned: an export is being planned in the other mode",
                )
            ]
        )
    return _view(wanted, stored, chart, warnings)
