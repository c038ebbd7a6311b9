"""Catalog values (products, provider items, accounts, suppliers) and the rules that tie them together:
how provider items match products, which products a provider would refuse, how receiving finds a
supplier, and which accounts make sense for each export role."""

from __future__ import annotations

import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field, field_validator

from shared.domain.connections import PROVIDER_LABELS, ProviderName
from shared.model import Model

_VALUE = ConfigDict(frozen=True)
ItemKind = Literal["inventory", "non_inventory", "service", "bundle"]
KIT = "kit"  # the type of a product made from a provider's bundle: its sales consume its components
AccountKind = Literal["asset", "liability", "equity", "revenue", "cogs", "expense"]
XERO_CODE_MAX = 30
QBO_NAME_FORBIDDEN = (":", "\\")
# What a provider's record may hold, well past what either documents (QBO ids are numbers and item names
# 100 characters, qbo.md section 3.2; Xero ids are GUIDs, item names 50, contact names 255, xero.md section
# 4): an answer beyond these is not the provider's, and refused before anything of it is stored.
ProviderId = Annotated[str, Field(min_length=1, max_length=100)]
ProviderText = Annotated[str, Field(max_length=1000)]


# ---- values ------------------------------------------------------------------------------------------
class Component(Model):
    """One part of a bundle: a provider item (``ref`` is its id) or a product (``ref`` is the product id)."""

    model_config = _VALUE
    ref: str
    quantity: Decimal


class ProviderItem(Model):
    """An item as the provider holds it; ``version`` changes whenever the provider changes the item."""

    model_config = _VALUE
    provider: ProviderName
    item_id: ProviderId
    name: ProviderText
    sku: ProviderText | None = None
    kind: ItemKind
    tracked: bool = False
    active: bool = True
    unit_cost: Decimal | None = None
    unit_price: Decimal | None = None  # the sales price, a product's ``sale_price``; None: it has none
    quantity_on_hand: Decimal | None = None  # QBO QtyOnHand of a tracked inventory item
    components: Annotated[tuple[Component, ...], Field(max_length=1000)] = ()  # QBO: 50 to a bundle
    version: ProviderText = ""
    updated_at: ProviderText = ""  # the provider's own change stamp, what incremental reads compare

    @field_validator("unit_price")
    @classmethod
    def _no_price(cls, value: Decimal | None) -> Decimal | None:
        """0 is no sales price: an item given none holds ``UnitPrice`` 0 in QuickBooks and
        ``SalesDetails.UnitPrice`` 0 in Xero, or no SalesDetails (an item not sold: xero.md section 4.2), as
        our sandboxes answer (infra/sandboxes/qbo_books.py, xero_books.py). Checked on every read, so an item
        stored before this rule reads the same."""
        return value if value else None


class Product(Model):
    model_config = _VALUE
    product_id: str
    sku: str
    name: str
    type: str = "component"
    unit_cost: Decimal | None = None
    unit: str = "each"
    # kept for the user, as a product file gives them (an import writes them; provider imports keep them)
    reorder_point: Decimal | None = None
    sale_price: Decimal | None = None
    barcode: str = ""
    provider_links: dict[str, str] = Field(default_factory=dict)  # provider -> provider item id
    components: tuple[Component, ...] = ()
    # "<provider>:<company id>" -> item id: links to the items of a company connected before a switch of
    # company, which that company's sales documents still map by (``with_company``)
    former_links: dict[str, str] = Field(default_factory=dict)

    def with_company(self, provider: str, before: str, after: str) -> Product:
        """The product once ``provider``'s company ``before`` gives way to ``after``: its link to the
        company before is kept among the former links, and a link it had to ``after`` when that company was
        connected before comes back (item ids are the company's own: none is valid in another company).
        Done once: a product that keeps a link to ``before`` aside has given way already (a switch finished
        after its process died part way; while a company is connected, no product keeps its link aside)."""
        if f"{provider}:{before}" in self.former_links:
            return self
        former = dict(self.former_links)
        if provider in self.provider_links:
            former[f"{provider}:{before}"] = self.provider_links[provider]
        links = {k: v for k, v in self.provider_links.items() if k != provider}
        if f"{provider}:{after}" in former:
            links[provider] = former.pop(f"{provider}:{after}")
        return self.model_copy(update={"provider_links": links, "former_links": former})


class Account(Model):
    model_config = _VALUE
    provider: ProviderName
    account_id: ProviderId
    code: ProviderText = ""
    name: ProviderText
    type: ProviderText  # the provider's own type (QBO AccountType, Xero Type)
    kind: AccountKind
    active: bool = True
    tracked_inventory: bool = False  # Xero INVENTORY accounts: owned by Xero's tracked items
    system_account: str = ""  # Xero SystemAccount (DEBTORS, CREDITORS, ...); "" for QBO and ordinary accounts

    @property
    def label(self) -> str:
        return f"{self.code} {self.name}".strip()


class Supplier(Model):
    model_config = _VALUE
    provider: ProviderName
    supplier_id: ProviderId
    name: ProviderText
    email: ProviderText = ""
    active: bool = True
    updated_at: str = ""


def sku_key(sku: str | None) -> str:
    """SKUs match ignoring surrounding spaces, letter case and how an accent is encoded ("É" as one character
    or as "E" and a combining accent, as some programs save it: NFC), so "ab-1 " and "AB-1" are one SKU."""
    return unicodedata.normalize("NFC", (sku or "").strip().casefold())


_PRODUCT_IDS = uuid.UUID("5f0c7e52-3b8e-4f4e-9a55-0d3f2c1b7a64")  # the namespace of made products' ids


def new_product_id(organisation_id: str, key: str) -> str:
    """The id of the product an import (a file's or the provider's items') makes for a normalised SKU: the
    same for every import, so two at once, each finding the SKU new, make one product rather than two (the
    store creates it only where it does not exist: ``store.catalog.write_products``). A product's SKU
    never changes its normalised key, so no other product holds this id."""
    return str(uuid.uuid5(_PRODUCT_IDS, f"{organisation_id}\n{key}"))


# ---- item matching -----------------------------------------------------------------------------------
class Skipped(Model):
    model_config = _VALUE
    reason: str
    item_id: str | None = None
    product_id: str | None = None
    sku: str | None = None
    name: str = ""


class Match(Model):
    model_config = _VALUE
    product_id: str
    item_id: str
    sku: str
    by: Literal["link", "sku"]


class ItemMatching(Model):
    """How the provider's items and the products relate after a sync."""

    model_config = _VALUE
    matches: tuple[Match, ...]
    unmatched_items: tuple[str, ...]  # importable: no product, not skipped
    unmatched_products: tuple[Skipped, ...]  # products no item stands for, and why
    skipped: tuple[Skipped, ...]


def match_items(
    provider: ProviderName, items: Iterable[ProviderItem], products: Iterable[Product]
) -> ItemMatching:
    """Links hold by provider item id (so renames and SKU edits in the provider keep them); an unlinked
    product links to the one active item with its SKU. Items without a SKU, and SKUs several active
    items share, can't be matched and are reported with the reason. A product linked to an item made
    inactive moves to the one active item with its SKU, if there is one: QBO refuses transactions naming
    an inactive item (error 610, "Something you're trying to use has been made inactive": qbo.md section
    2.8); without one the link stays, for the item to be made active again."""
    label = PROVIDER_LABELS[provider]
    by_id = {i.item_id: i for i in items}
    linked: dict[str, str] = {}  # item id -> product id
    matches: list[Match] = []
    waiting: list[Product] = []
    held: dict[str, str] = {}  # product id -> the inactive item it links to, until an active one has its SKU
    for product in sorted(products, key=lambda p: p.product_id):
        item_id = product.provider_links.get(provider)
        if item_id in by_id and item_id not in linked and by_id[item_id].active:
            linked[item_id] = product.product_id
            matches.append(Match(product_id=product.product_id, item_id=item_id, sku=product.sku, by="link"))
        else:
            if item_id in by_id and item_id not in linked:
                held[product.product_id] = item_id
                linked[item_id] = product.product_id
            waiting.append(product)
    skipped: list[Skipped] = []
    by_sku: dict[str, list[ProviderItem]] = defaultdict(list)
    for item in sorted(by_id.values(), key=lambda i: i.item_id):
        if not item.active:
            continue
        if not sku_key(item.sku):
            if item.item_id not in linked:
                what = "item code" if provider == "xero" else "SKU"
                skipped.append(
                    Skipped(
                        reason=f"no {what} in {label}, so it can't be matched to a product",
                        item_id=item.item_id,
                        name=item.name,
                    )
                )
            continue
        by_sku[sku_key(item.sku)].append(item)
    for group in by_sku.values():
        if len(group) > 1:
            ids = ", ".join(i.item_id for i in group)
            skipped.extend(
                Skipped(
                    reason=f"duplicate SKU {i.sku!r} in {label} (items {ids})",
                    item_id=i.item_id,
                    sku=i.sku,
                    name=i.name,
                )
                for i in group
                if i.item_id not in linked
            )
    unmatched_products: list[Skipped] = []
    for product in waiting:
        group = by_sku.get(sku_key(product.sku), [])
        kept = held.get(product.product_id)
        if len(group) == 1 and group[0].item_id not in linked:
            linked[group[0].item_id] = product.product_id
            if kept:
                del linked[kept]
            matches.append(
                Match(product_id=product.product_id, item_id=group[0].item_id, sku=product.sku, by="sku")
            )
        elif kept:
            matches.append(Match(product_id=product.product_id, item_id=kept, sku=product.sku, by="link"))
        else:
            reason = _why_unmatched(provider, product, group)
            unmatched_products.append(
                Skipped(reason=reason, product_id=product.product_id, sku=product.sku, name=product.name)
            )
    skipped_ids = {s.item_id for s in skipped}
    unmatched_items = tuple(
        i for i in sorted(by_id) if i not in linked and i not in skipped_ids and by_id[i].active
    )
    return ItemMatching(
        matches=tuple(matches),
        unmatched_items=unmatched_items,
        unmatched_products=tuple(unmatched_products),
        skipped=tuple(skipped),
    )


def _why_unmatched(provider: ProviderName, product: Product, group: list[ProviderItem]) -> str:
    label = PROVIDER_LABELS[provider]
    if len(group) > 1:
        return f"several items in {label} have its SKU"
    if group:
        return f"the {label} item with its SKU is linked to another product"
    refusal = refusal_in_provider(provider, product)
    if refusal:
        return f"{label} can't hold an item for it: {refusal}"
    return f"no active item in {label} has its SKU"


def refusal_in_provider(provider: ProviderName, product: Product) -> str | None:
    """Why the provider would refuse an item made from this product, before asking it."""
    if not product.sku.strip():
        return "the product has no SKU to match or create an item by"
    if provider == "xero" and len(product.sku.strip()) > XERO_CODE_MAX:
        return f"the SKU is longer than Xero's {XERO_CODE_MAX}-character item code"
    if provider == "qbo" and any(c in product.name for c in QBO_NAME_FORBIDDEN):
        return "QuickBooks Online refuses item names containing ':' or '\\'"
    return None


def kit_apart(product: Product, item: ProviderItem) -> Skipped | None:
    """A kit linked to a QuickBooks item that is no bundle: the link holds, but QuickBooks counts a sale of
    that item out of the item itself, while Partsemble takes the kit's components (only a bundle's sales
    lines relieve its components: qbo.md section 3.2), so the books check names the kit's sales
    (``services.reconciliation``)."""
    if product.type != KIT or not product.components or item.provider != "qbo" or item.kind == "bundle":
        return None
    reason = (
        f"a kit, linked to {item.name!r}, which is no bundle in QuickBooks Online: QuickBooks counts its "
        "sales out of that item, Partsemble out of the kit's components; make it a bundle of them there and "
        "sync items"
    )
    return Skipped(reason=reason, item_id=item.item_id, product_id=product.product_id, sku=product.sku)


def bundle_parts(
    item: ProviderItem, items: Mapping[str, ProviderItem]
) -> tuple[list[ProviderItem], list[str]]:
    """Every item a bundle is made of (those of bundles inside it too), and the ids of its parts that are
    not among ``items``."""
    found: dict[str, ProviderItem] = {}
    missing: list[str] = []
    refs = [c.ref for c in item.components]
    while refs:
        ref = refs.pop()
        if ref in found or ref in missing or ref == item.item_id:
            continue
        part = items.get(ref)
        if part is None:
            missing.append(ref)
            continue
        found[ref] = part
        refs.extend(c.ref for c in part.components)
    return list(found.values()), sorted(missing)


def product_from_item(item: ProviderItem, product_id: str, components: Mapping[str, str]) -> Product:
    """A new product carrying the provider item's name, SKU, cost and sales price, linked to it; bundle
    components are kept where their items are products (``components`` maps item id -> product id)."""
    parts = tuple(
        Component(ref=components[c.ref], quantity=c.quantity) for c in item.components if c.ref in components
    )
    return Product(
        product_id=product_id,
        sku=(item.sku or "").strip(),
        name=item.name,
        type=KIT if item.kind == "bundle" else "component",
        unit_cost=item.unit_cost,
        sale_price=item.unit_price,
        provider_links={item.provider: item.item_id},
        components=parts,
    )


# ---- suppliers -----------------------------------------------------------------------------------------
def find_supplier(
    suppliers: Iterable[Supplier],
    *,
    supplier_id: str | None = None,
    email: str | None = None,
    name: str | None = None,
) -> Supplier | None:
    """Receiving's rule: the linked provider id, then the same email (ignoring case), then the exact name."""
    active = [s for s in suppliers if s.active]
    if supplier_id:
        found = next((s for s in active if s.supplier_id == supplier_id), None)
        if found:
            return found
    if email and email.strip():
        wanted = email.strip().casefold()
        found = next((s for s in active if s.email.strip().casefold() == wanted), None)
        if found:
            return found
    if name:
        return next((s for s in active if s.name == name), None)
    return None


# ---- export accounts -----------------------------------------------------------------------------------
# build_credit is accepted and never posted to (a build credits the account each consumed lot sits in): it
# stays so that saved settings and clients that still send it keep working (README, "build_credit").
Role = Literal[
    "build_debit",
    "build_credit",
    "receiving_debit",
    "receiving_credit",
    "waste",
    "adjustment",
    "cogs",
    "rounding",
    "subassembly",
]
ROLE_KINDS: dict[Role, tuple[frozenset[str], str]] = {
    "build_debit": (frozenset({"asset"}), "an asset account (finished goods)"),
    "build_credit": (frozenset({"asset", "cogs"}), "an asset (raw materials) or cost of goods sold account"),
    "receiving_debit": (frozenset({"asset"}), "an asset account (inventory)"),
    "receiving_credit": (frozenset({"liability"}), "a liability account (payables or receiving clearing)"),
    "waste": (frozenset({"cogs", "expense"}), "a cost of goods sold or expense account"),
    "adjustment": (
        frozenset({"cogs", "expense", "equity"}),
        "a cost of goods sold, expense or equity account",
    ),
    "cogs": (frozenset({"cogs"}), "a cost of goods sold account"),
    "rounding": (frozenset({"cogs", "expense"}), "a cost of goods sold or expense account (rounding)"),
    "subassembly": (frozenset({"asset"}), "an asset account (work in progress: sub-assemblies)"),
}
KIND_WORDS = {
    "asset": "an asset",
    "liability": "a liability",
    "equity": "an equity",
    "revenue": "a revenue",
    "cogs": "a cost of goods sold",
    "expense": "an expense",
}


# QBO refuses a JournalEntry line on Accounts Payable without a vendor, on Accounts Receivable without a
# customer, in JournalEntryLineDetail.Entity (error 6000; ../shared/providers/qbo.md section 7). The
# QBO account type -> the kind of name its journal lines must carry.
QBO_NAMED_LEDGERS: dict[str, Literal["Vendor", "Customer"]] = {
    "Accounts Payable": "Vendor",
    "Accounts Receivable": "Customer",
}
# Xero refuses manual journal lines on its DEBTORS / CREDITORS system accounts and says to journal to a
# secondary account (help.xero.com/nz/Q_Accruals_ARAP; ../shared/providers/xero.md "Added 2026-11-30"); its
# Manual Journals page names retained earnings and bank accounts as reserved too ("system accounts (accounts
# receivable, accounts payable & retained earnings) and bank accounts ... a 400 validation error",
# developer.xero.com/documentation/api/accounting/manualjournals).
XERO_LEDGER_SYSTEM_ACCOUNTS = {
    "DEBTORS": "Accounts Receivable",
    "CREDITORS": "Accounts Payable",
    "RETAINEDEARNINGS": "Retained Earnings",
}
CLEARING_ADVICE = (
    "use a receiving clearing account instead (a current liability such as 'Goods received not invoiced')"
)


def name_required(account: Account) -> Literal["Vendor", "Customer"] | None:
    """The kind of name (QBO Entity) every journal line on this account must carry, if any."""
    return QBO_NAMED_LEDGERS.get(account.type) if account.provider == "qbo" else None


def account_problem(
    role: Role, account_id: str, chart: Mapping[str, Account], *, journal: bool
) -> str | None:
    """Why ``account_id`` can't serve ``role`` (None when it can). ``journal``: the role is posted in a
    journal, which Xero refuses on its tracked-inventory (INVENTORY) accounts."""
    account = chart.get(account_id)
    if account is None:
        return f"no account {account_id!r} in the synced chart of accounts"
    if not account.active:
        return f"{account.label!r} is archived or inactive"
    kinds, wanted = ROLE_KINDS[role]
    if account.kind not in kinds:
        return f"{account.label!r} is {KIND_WORDS[account.kind]} account; choose {wanted}"
    if journal and account.tracked_inventory:
        return f"{account.label!r} is Xero's tracked inventory account, which manual journals can't post to"
    ledger = XERO_LEDGER_SYSTEM_ACCOUNTS.get(account.system_account)
    if journal and ledger:
        advice = CLEARING_ADVICE if role == "receiving_credit" else f"choose {wanted}"
        return (
            f"{account.label!r} is Xero's {ledger} system account ({account.system_account}), which manual "
            f"journals can't post to; {advice}"
        )
    if journal and account.provider == "xero" and account.type == "BANK":
        return (
            f"{account.label!r} is a bank account, which Xero's manual journals can't post to; "
            f"choose {wanted}"
        )
    if journal and name_required(account) == "Customer":  # Partsemble's journals never name a customer
        return (
            f"{account.label!r} is Accounts Receivable, where QuickBooks Online needs a customer on every "
            f"journal line; choose {wanted}"
        )
    return None


ExportMode = Literal["inventory_adjustments", "journals"]
ROLES: tuple[Role, ...] = get_args(Role)


class ExportSettings(Model):
    """A provider's saved export settings: the mode and the account chosen for each role."""

    model_config = _VALUE
    mode: ExportMode = "journals"
    accounts: dict[str, str] = Field(default_factory=dict)  # role -> account id; a role left unset is absent
    updated_at: str | None = None
    planned_mode: ExportMode | None = None  # the mode of the first export planned: fixed from then on
    tenant_id: str | None = (
        None  # the company whose chart the accounts are from (None: saved before it was kept)
    )

    def for_company(self, tenant_id: str | None) -> bool:
        """Whether the accounts are this company's: after a switch to another company (QBO account ids are
        small numbers, so the old ids name unrelated accounts there) they must be chosen again."""
        return self.tenant_id is None or self.tenant_id == tenant_id

    @property
    def quantity_mode(self) -> bool:
        """QBO inventory mode: quantities go to QBO as adjustments and QBO books its own cost of sales."""
        return self.mode == "inventory_adjustments"

    def account(self, role: str) -> str | None:
        return self.accounts.get(role)


def export_settings_problems(
    provider: ProviderName,
    mode: ExportMode,
    accounts: Mapping[Role, str | None],
    chart: Mapping[str, Account],
) -> list[tuple[str, str]]:
    """(field, problem) for every setting that can't stand; empty when the settings are usable. Whether
    the company itself allows inventory mode is the provider's to say, after these pass."""
    if provider == "xero" and mode == "inventory_adjustments":
        return [("mode", "Xero exports are always Partsemble-only journals; choose 'journals'")]
    problems: list[tuple[str, str]] = []
    for role in ROLES:
        account_id = accounts.get(role)
        if role == "adjustment" and mode == "journals":
            if account_id:
                problems.append((f"accounts.{role}", "the adjustment account is used only in inventory mode"))
            continue
        if not account_id:
            # build_credit is no longer posted to (a consumed lot leaves the account it sits in); rounding
            # and subassembly are optional (without them: the account nearest its half cent takes the odd
            # cent; sub-assemblies sit in finished goods)
            if role not in ("build_credit", "rounding", "subassembly"):
                problems.append((f"accounts.{role}", "choose an account"))
            continue
        problem = account_problem(role, account_id, chart, journal=mode == "journals")
        if problem:
            problems.append((f"accounts.{role}", problem))
    return problems
