"""What the service needs from an accounting system, whatever it is: one protocol, two implementations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar

from pydantic import ConfigDict

from shared.domain.connections import ClientCredentials, Grant, ProviderName, Tenant, TokenSet
from shared.errors import ServiceError
from shared.model import Model
from shared.providers.limits import RateBudget

if TYPE_CHECKING:  # only the protocol's signatures name these: the handlers' cold start skips them
    from shared.contracts import PostedDocument
    from shared.domain.catalog import Account, ProviderItem, Supplier
    from shared.domain.postings import InventoryAdjustment, Journal, Posting

__all__ = [
    "AccountingProvider",
    "Changes",
    "ClientCredentials",
    "Grant",
    "InventoryCapability",
    "ProviderName",
    "Session",
    "SupplierDraft",
    "Tenant",
    "TokenSet",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Session:
    """One tenant's calls: its id, its access token (``token(True)`` replaces one the provider refused,
    through the vault, once) and the rate budget shared with every other Lambda."""

    tenant_id: str
    token: Callable[[bool], str]
    budget: RateBudget
    # called with the reason when the provider refuses the connection itself (a 403: QBO 3100, Xero
    # AuthenticationUnsuccessful): the service marks it expired at once, whatever the call was
    refused: Callable[[str], None] | None = None
    # the longest Retry-After (a provider's 429) waited out in place; a longer one is raised as RateLimited
    # for the caller to schedule. None: up to ``http.MAX_INLINE_WAIT``
    retry_after_limit: float | None = None


@dataclass(frozen=True)
class Changes(Generic[T]):
    """Records changed since a cursor, and the cursor to read from next time (store it only after the
    records are stored)."""

    records: tuple[T, ...]
    cursor: str | None
    # a read that stopped part way (``stop`` said so): where the next read goes on (pass it as ``resume``);
    # ``cursor`` is then still the one read from, to be moved only once a read ends without ``resume``
    resume: str | None = None


class SupplierDraft(Model):
    model_config = ConfigDict(frozen=True)
    name: str
    email: str = ""


class InventoryCapability(Model):
    model_config = ConfigDict(frozen=True)
    allowed: bool
    reason: str = ""


SaleKind = Literal["invoice", "sales_receipt", "credit_note"]


class PulledLine(Model):
    """A sales document's line as the provider holds it (a QBO bundle line arrives as its components)."""

    model_config = ConfigDict(frozen=True)
    line_id: str
    item_id: str | None = None  # QBO item id; Xero ItemID once the service resolves the code
    item_code: str | None = None  # Xero ItemCode
    description: str = ""
    quantity: Decimal | None = None
    amount: Decimal | None = None  # net, in the document's currency
    unit_price: Decimal | None = None
    bundle_item_id: str | None = None  # the QBO group item this component line came from


class PulledSale(Model):
    """A sales document changed since a cursor; a deleted one carries only its id and status."""

    model_config = ConfigDict(frozen=True)
    document_id: (
        str  # "qbo:<realm>:<entity>:<id>" or "xero:<entity>:<GUID>", unique in the organisation's ledger
    )
    tenant_id: str = ""  # the company it was read from (a QBO realm, a Xero tenant)
    kind: SaleKind
    status: Literal["active", "voided", "deleted", "draft"]
    version: str  # the provider's change stamp or sync token
    number: str = ""
    customer_id: str = ""
    issued: date | None = None  # the document date
    currency: str = ""
    rate: Decimal | None = None  # home units per document unit, as the document states it
    lines: tuple[PulledLine, ...] = ()
    sale_ids: tuple[str, ...] = ()  # the sales a credit names (QBO LinkedTxn, Xero allocations)
    note: str = ""  # QBO PrivateNote, Xero Reference
    created: datetime | None = None  # when it was entered in the provider (QBO MetaData.CreateTime)
    first_read: datetime | None = None  # when a pull first stored it (None: stored before this was kept)
    stored_by: str = ""  # the part of a pull that stored this version (services.sales; "": not kept then)


class AccountingProvider(Protocol):
    name: ProviderName
    uses_pkce: bool

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str) -> str: ...

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, now: datetime, realm_id: str | None
    ) -> Grant:
        """Exchanges the callback's code and reads the tenants of this consent with their names."""
        ...

    def refresh(self, refresh_token: str, *, now: datetime) -> TokenSet: ...

    def release(self, tokens: TokenSet) -> None:
        """Ends the consent at the provider unless it still reaches another tenant (Xero revokes per person,
        so revoking a consent in use would disconnect every organisation that person connected)."""
        ...

    def disconnect_tenant(self, tokens: TokenSet, tenant: Tenant) -> None:
        """Removes one tenant, and the consent with it when nothing else uses that consent."""
        ...

    def check_tenant(self, access_token: str, tenant: Tenant) -> Tenant:
        """A cheap call proving the connection still works; returns the tenant's current name."""
        ...

    def items(self, session: Session, since: str | None) -> Changes[ProviderItem]:
        """Every item (active or not) changed since the cursor; all of them without one."""
        ...

    def accounts(self, session: Session) -> list[Account]:
        """The whole chart of accounts, archived accounts included."""
        ...

    def suppliers(self, session: Session, since: str | None) -> Changes[Supplier]: ...

    def find_supplier(self, session: Session, name: str) -> Supplier | None:
        """The active supplier (QBO vendor, Xero contact) with exactly this name."""
        ...

    def supplier_name_problem(self, name: str) -> str | None:
        """Why the provider can't hold a supplier of this name (None: it can), said before it is asked."""
        ...

    def create_supplier(
        self, session: Session, draft: SupplierDraft, *, idempotency_key: str
    ) -> Supplier: ...

    def inventory_capability(self, session: Session) -> InventoryCapability:
        """Whether quantity adjustments can be posted to this company, and why not."""
        ...

    def sales_changes(
        self,
        session: Session,
        since: str | None,
        *,
        start: date,
        now: datetime,
        on_page: Callable[[], None] | None = None,
        stop: Callable[[], bool] | None = None,
        resume: str | None = None,
        held: Callable[[], Iterable[str]] | None = None,
    ) -> Changes[PulledSale]:
        """Sales documents (invoices, sales receipts, credits; voids and deletions included) changed since
        the cursor; without one, those dated on or after ``start``. A document edited while the pages are
        read is never skipped, and appears once (its latest version). ``on_page`` runs after each page;
        when ``stop`` says so after a page and more remain, the read ends there with ``resume`` set, and a
        read given that ``resume`` (and the same cursor) goes on from there. ``held`` names the documents
        the caller holds as not deleted: a read that cannot name deletions (QBO past its change feed's
        window) asks for each of them and answers a deletion for those the company no longer has."""
        ...

    def home_currency(self, session: Session) -> str: ...

    def time_zone(self, session: Session) -> str:
        """The organisation's time zone as an IANA name ("UTC" when unknown): document dates are local
        dates there."""
        ...

    def financial_year_start(self, session: Session, on: date) -> date:
        """The first day of the organisation's financial year holding ``on``: the trial balance reports
        income and expense accounts from that day."""
        ...

    def account_balances(self, session: Session, as_of: date) -> dict[str, Decimal]:
        """Each account's balance in the provider's general ledger at the end of ``as_of``, as its trial
        balance reports it, in the home currency: account id -> balance, debits positive, credits
        negative. Balance-sheet accounts carry everything up to the date; income and expense accounts
        the financial year to date (earlier years sit in retained earnings). Accounts without a balance
        are absent. Xero needs the accounting.reports.trialbalance.read scope (PermissionDenied without)."""
        ...

    def post_journal(self, session: Session, journal: Journal, *, idempotency_key: str) -> PostedDocument:
        """Creates the balanced journal carrying ``journal.marker``; a timeout leaves the outcome unknown."""
        ...

    def post_inventory_adjustment(
        self, session: Session, adjustment: InventoryAdjustment, *, idempotency_key: str
    ) -> PostedDocument:
        """QBO inventory mode: the quantity adjustment carrying ``adjustment.marker``."""
        ...

    def find_posting(
        self, session: Session, posting: Posting, *, since: datetime, until: datetime
    ) -> PostedDocument | None:
        """The document carrying ``posting.marker``, if the provider has one (settles an unknown outcome);
        any attempt to post it was made between ``since`` (the export's creation) and ``until`` (now)."""
        ...

    def documents_gone(self, session: Session, document_type: str, document_ids: Sequence[str]) -> set[str]:
        """Of these documents Partsemble posted (of one ``PostedDocument.document_type``), the ones no longer
        in the books: journals and inventory adjustments deleted in QuickBooks, journals voided or deleted in
        Xero."""
        ...


@contextmanager
def ended_unless_checked(provider: AccountingProvider, tokens: TokenSet) -> Iterator[None]:
    """A new consent whose check fails is ended at the provider (best effort) rather than left live with
    nobody holding its tokens."""
    try:
        yield
    except ServiceError:
        with suppress(ServiceError):
            provider.release(tokens)
        raise
