"""Xero: identity (OAuth 2.0, single-use refresh tokens, tenants of a consent) and the calls the
connection needs. The access token is a JWT whose ``authentication_event_id`` names this consent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from shared.config import ProviderUrls
from shared.domain.catalog import Account, ProviderItem, Supplier
from shared.errors import ProviderRejected
from shared.lazy import lazy_module
from shared.providers import answers
from shared.providers.base import (
    Changes,
    Grant,
    InventoryCapability,
    ProviderName,
    PulledSale,
    Session,
    SupplierDraft,
    Tenant,
    TokenSet,
    ended_unless_checked,
)
from shared.providers.company import CompanyReads
from shared.providers.http import (
    json_or_error,
    new_client,
    raise_for_provider,
    send,
)
from shared.providers.oauth import CredentialsSource, OAuthClient
from shared.providers.xero import mapping

if TYPE_CHECKING:  # exports and sales load their modules on first use: a token refresh never needs them
    from shared.contracts import PostedDocument
    from shared.domain.postings import InventoryAdjustment, Journal, Posting
from shared.providers.xero.api import XeroApi

SCOPE = (
    "offline_access accounting.settings.read accounting.invoices "
    "accounting.manualjournals accounting.contacts accounting.reports.trialbalance.read"
)


class XeroProvider(CompanyReads):
    sales_module = lazy_module("shared.providers.xero.sales")
    reports_module = lazy_module("shared.providers.xero.reports")
    api: XeroApi
    name: ProviderName = "xero"
    uses_pkce = True

    def __init__(self, credentials: CredentialsSource, urls: ProviderUrls) -> None:
        self.urls = urls
        self.client = new_client()
        self.api = XeroApi(self.client, urls)
        self.oauth = OAuthClient(self.name, credentials, urls, self.client, SCOPE)

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str) -> str:
        return self.oauth.authorize_url(state=state, redirect_uri=redirect_uri, code_challenge=code_challenge)

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, now: datetime, realm_id: str | None
    ) -> Grant:
        tokens = self.oauth.exchange(
            code=code, redirect_uri=redirect_uri, code_verifier=code_verifier, now=now
        )
        with ended_unless_checked(self, tokens):
            tenants = tuple(self._tenants_of_this_consent(tokens.access_token))
        return Grant(tokens=tokens, tenants=tenants)

    def _tenants_of_this_consent(self, access_token: str) -> list[Tenant]:
        # The claims are read, not verified: the token came straight from Xero's token endpoint over TLS.
        import jwt  # on first use: only a new consent needs its claims

        claims: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
        event = claims.get("authentication_event_id")
        if not event:
            raise ProviderRejected(self.name, "the access token names no authentication event")
        resp = send(
            self.client,
            self.name,
            "GET",
            f"{self.urls.api}/connections",
            params={"authEventId": event},
            headers={"authorization": f"Bearer {access_token}"},
        )
        connections = json_or_error(resp, self.name)
        tenants = [
            Tenant(tenant_id=c["tenantId"], name=c.get("tenantName") or c["tenantId"], connection_id=c["id"])
            for c in connections
            if c.get("tenantType", "ORGANISATION") == "ORGANISATION"
        ]
        if not tenants:
            raise ProviderRejected(self.name, "no Xero organisation was chosen in the consent")
        return tenants

    def refresh(self, refresh_token: str, *, now: datetime) -> TokenSet:
        return self.oauth.refresh(refresh_token, now=now)

    def release(self, tokens: TokenSet) -> None:
        resp = send(
            self.client,
            self.name,
            "GET",
            f"{self.urls.api}/connections",
            headers={"authorization": f"Bearer {tokens.access_token}"},
        )
        if json_or_error(resp, self.name):  # the person's consent still reaches an organisation: keep it
            return
        self.oauth.revoke(tokens)

    def disconnect_tenant(self, tokens: TokenSet, tenant: Tenant) -> None:
        resp = send(
            self.client,
            self.name,
            "DELETE",
            f"{self.urls.api}/connections/{tenant.connection_id}",
            headers={"authorization": f"Bearer {tokens.access_token}"},
        )
        if resp.status_code != 404:  # already gone is what we wanted
            raise_for_provider(resp, self.name)
        self.release(tokens)

    def check_tenant(self, access_token: str, tenant: Tenant) -> Tenant:
        resp = send(
            self.client,
            self.name,
            "GET",
            f"{self.urls.api}/api.xro/2.0/Organisation",
            headers={"authorization": f"Bearer {access_token}", "xero-tenant-id": tenant.tenant_id},
        )
        organisations = json_or_error(resp, self.name).get("Organisations") or [{}]
        return Tenant(
            tenant_id=tenant.tenant_id,
            name=organisations[0].get("Name") or tenant.name,
            connection_id=tenant.connection_id,
        )

    # ---- catalog ---------------------------------------------------------------------------------------
    def items(self, session: Session, since: str | None) -> Changes[ProviderItem]:
        # Xero rounds unit prices to 2 places unless asked for 4 (spec parameter unitdp; xero.md section 4.2)
        raw = self.api.read(session, "Items", since=since, params={"unitdp": "4"})
        return Changes(
            answers.converted("xero", "an item", mapping.item, raw),
            mapping.latest([mapping.stamp(r.get("UpdatedDateUTC")) for r in raw], since),
        )

    def accounts(self, session: Session) -> list[Account]:
        return list(
            answers.converted("xero", "an account", mapping.account, self.api.read(session, "Accounts"))
        )

    def suppliers(self, session: Session, since: str | None) -> Changes[Supplier]:
        # Xero leaves ARCHIVED contacts out unless asked (spec: includeArchived "Contacts with a status of
        # ARCHIVED will be included"): without it a supplier archived in Xero would stay active here for good.
        # Every sync reads all suppliers, without If-Modified-Since: a contact's first bill makes it a
        # supplier without changing its UpdatedDateUTC ("changes to the Balances, IsCustomer or IsSupplier
        # values will not trigger a contact to be returned with the Modified-After filter", Xero's Contacts
        # page), so a read since the cursor would never see it become one.
        params = {"where": "IsSupplier==true", "includeArchived": "true"}
        raw = self.api.list_paged(session, "Contacts", params=params)
        return Changes(
            answers.converted("xero", "a contact", mapping.contact, raw),
            mapping.latest([mapping.stamp(r.get("UpdatedDateUTC")) for r in raw], since),
        )

    def find_supplier(self, session: Session, name: str) -> Supplier | None:
        found = self.api.list_paged(
            session, "Contacts", params={"where": f"Name=={mapping.where_literal(name)}"}
        )
        wanted = name.strip().casefold()  # Xero keeps active contact names unique regardless of case
        return next(
            (
                mapping.contact(r)
                for r in found
                if str(r.get("Name", "")).strip().casefold() == wanted and r.get("ContactStatus") == "ACTIVE"
            ),
            None,
        )

    def supplier_name_problem(self, name: str) -> str | None:
        return None  # what Xero can't take (over 255 characters, a line break) the request body refuses

    def create_supplier(self, session: Session, draft: SupplierDraft, *, idempotency_key: str) -> Supplier:
        return mapping.contact(self.api.create_contact(session, draft, idempotency_key))

    def inventory_capability(self, session: Session) -> InventoryCapability:
        return InventoryCapability(allowed=False, reason="Xero exports are always Partsemble-only journals")

    # ---- sales -----------------------------------------------------------------------------------------
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
        from shared.providers.xero import sales

        # ``held`` is not needed: a deleted or voided document is read as changed, with its status
        return sales.sales_changes(
            self.api, session, since, start=start, on_page=on_page, stop=stop, resume=resume
        )

    # ---- exports ---------------------------------------------------------------------------------------
    def post_journal(self, session: Session, journal: Journal, *, idempotency_key: str) -> PostedDocument:
        from shared.providers.xero import postings

        return postings.post_journal(
            self.client, self.urls, session, journal, idempotency_key=idempotency_key
        )

    def post_inventory_adjustment(
        self, session: Session, adjustment: InventoryAdjustment, *, idempotency_key: str
    ) -> PostedDocument:
        raise ProviderRejected(self.name, "Xero has no inventory adjustments; exports to Xero are journals")

    def documents_gone(self, session: Session, document_type: str, document_ids: Sequence[str]) -> set[str]:
        from shared.providers.xero import postings

        if document_type != postings.MANUAL_JOURNAL:  # the only documents exports make in Xero
            return set()
        return postings.journals_gone(self.api, session, document_ids)

    def find_posting(
        self, session: Session, posting: Posting, *, since: datetime, until: datetime
    ) -> PostedDocument | None:
        from shared.domain.postings import Journal
        from shared.providers.xero import postings

        if not isinstance(posting, Journal):
            return None
        return postings.find_posting(self.client, self.urls, session, posting)
