"""QuickBooks Online: Intuit OAuth 2.0, the connection check, and the catalog calls (``api.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

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
from shared.providers.http import json_or_error, new_client, send
from shared.providers.oauth import CredentialsSource, OAuthClient
from shared.providers.qbo import mapping

if TYPE_CHECKING:  # exports and sales load their modules on first use: a token refresh never needs them
    from shared.contracts import PostedDocument
    from shared.domain.postings import InventoryAdjustment, Journal, Posting
from shared.providers.qbo.api import MINOR_VERSION, QboApi

SCOPE = "com.intuit.quickbooks.accounting"
REALM_ID = re.compile(r"[0-9]{1,32}")
HARD_EXPIRY_HEADER = {"x-include-refresh-token-hard-expires-in": "true"}


class QboProvider(CompanyReads):
    sales_module = lazy_module("shared.providers.qbo.sales")
    reports_module = lazy_module("shared.providers.qbo.reports")
    api: QboApi
    name: ProviderName = "qbo"
    uses_pkce = True

    def __init__(self, credentials: CredentialsSource, urls: ProviderUrls) -> None:
        self.urls = urls
        self.client = new_client()
        self.api = QboApi(self.client, urls)
        self.oauth = OAuthClient(
            self.name,
            credentials,
            urls,
            self.client,
            SCOPE,
            token_headers=HARD_EXPIRY_HEADER,
            revoke_as="json",
        )

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str) -> str:
        return self.oauth.authorize_url(state=state, redirect_uri=redirect_uri, code_challenge=code_challenge)

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, now: datetime, realm_id: str | None
    ) -> Grant:
        if not realm_id:
            raise ProviderRejected(self.name, "the callback did not name a company (realmId)")
        # realmId is the company id every API path holds (../shared/providers/qbo.md, "OAuth"), a number
        # (9130350000000001): anything else would reach those paths and the keys the books are kept under
        if not REALM_ID.fullmatch(realm_id):
            raise ProviderRejected(self.name, "the callback named no valid company (realmId is not a number)")
        tokens = self.oauth.exchange(
            code=code, redirect_uri=redirect_uri, code_verifier=code_verifier, now=now
        )
        with ended_unless_checked(self, tokens):
            checked = self.check_tenant(tokens.access_token, Tenant(tenant_id=realm_id, name=realm_id))
        return Grant(tokens=tokens, tenants=(checked,))

    def refresh(self, refresh_token: str, *, now: datetime) -> TokenSet:
        return self.oauth.refresh(refresh_token, now=now)

    def release(self, tokens: TokenSet) -> None:
        self.oauth.revoke(tokens)  # a QBO consent reaches exactly one company

    def disconnect_tenant(self, tokens: TokenSet, tenant: Tenant) -> None:
        self.release(tokens)

    def check_tenant(self, access_token: str, tenant: Tenant) -> Tenant:
        url = f"{self.urls.api}/v3/company/{tenant.tenant_id}/companyinfo/{tenant.tenant_id}"
        resp = send(
            self.client,
            self.name,
            "GET",
            url,
            params={"minorversion": MINOR_VERSION},
            headers={"authorization": f"Bearer {access_token}"},
        )
        info = json_or_error(resp, self.name).get("CompanyInfo", {})
        return Tenant(tenant_id=tenant.tenant_id, name=info.get("CompanyName") or tenant.name)

    # ---- catalog ---------------------------------------------------------------------------------------
    def items(self, session: Session, since: str | None) -> Changes[ProviderItem]:
        return self.api.changed(session, "Item", since, mapping.item)

    def accounts(self, session: Session) -> list[Account]:
        return list(
            answers.converted(
                "qbo", "an Account record", mapping.account, self.api.query_all(session, "Account")
            )
        )

    def suppliers(self, session: Session, since: str | None) -> Changes[Supplier]:
        return self.api.changed(session, "Vendor", since, mapping.vendor)

    def find_supplier(self, session: Session, name: str) -> Supplier | None:
        found = self.api.query_all(session, "Vendor", f"DisplayName = {mapping.query_literal(name)}")
        vendors = answers.converted("qbo", "a Vendor record", mapping.vendor, found)
        return next((v for v in vendors if v.active), None)

    def supplier_name_problem(self, name: str) -> str | None:
        return mapping.display_name_problem(name)

    def create_supplier(self, session: Session, draft: SupplierDraft, *, idempotency_key: str) -> Supplier:
        return mapping.vendor(self.api.create_vendor(session, draft, idempotency_key))

    def inventory_capability(self, session: Session) -> InventoryCapability:
        return self.api.inventory_capability(session)

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
        from shared.providers.qbo import sales

        return sales.sales_changes(
            self.api,
            session,
            since,
            start=start,
            now=now,
            on_page=on_page,
            stop=stop,
            resume=resume,
            held=held,
        )

    # ---- exports ---------------------------------------------------------------------------------------
    def post_journal(self, session: Session, journal: Journal, *, idempotency_key: str) -> PostedDocument:
        from shared.providers.qbo import postings

        return postings.post_journal(
            self.client, self.urls, session, journal, idempotency_key=idempotency_key
        )

    def post_inventory_adjustment(
        self, session: Session, adjustment: InventoryAdjustment, *, idempotency_key: str
    ) -> PostedDocument:
        from shared.providers.qbo import postings

        return postings.post_inventory_adjustment(
            self.client, self.urls, session, adjustment, idempotency_key=idempotency_key
        )

    def documents_gone(self, session: Session, document_type: str, document_ids: Sequence[str]) -> set[str]:
        from shared.providers.qbo import postings

        return postings.documents_gone(self.api, session, document_type, document_ids)

    def find_posting(
        self, session: Session, posting: Posting, *, since: datetime, until: datetime
    ) -> PostedDocument | None:
        from shared.providers.qbo import postings

        return postings.find_posting(self.api, session, posting, since=since, until=until)
