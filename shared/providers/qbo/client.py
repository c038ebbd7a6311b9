"""QuickBooks Online: Intuit OAuth 2.0 and the Accounting API calls the connection needs."""

from __future__ import annotations

from datetime import datetime

from shared.config import ProviderUrls
from shared.errors import ProviderRejected
from shared.providers import oauth
from shared.providers.base import ClientCredentials, Grant, ProviderName, Tenant, TokenSet
from shared.providers.http import basic_auth, json_or_error, new_client, raise_for_token_response, send

SCOPE = "com.intuit.quickbooks.accounting"
MINOR_VERSION = "75"
HARD_EXPIRY_HEADER = {"x-include-refresh-token-hard-expires-in": "true"}


class QboProvider:
    name: ProviderName = "qbo"
    uses_pkce = True

    def __init__(self, credentials: ClientCredentials, urls: ProviderUrls) -> None:
        self.credentials = credentials
        self.urls = urls
        self.client = new_client()

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str) -> str:
        return oauth.authorize_url(self.urls.authorize, self.credentials, scope=SCOPE, state=state,
                                   redirect_uri=redirect_uri, code_challenge=code_challenge)

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str, now: datetime,
                      realm_id: str | None) -> Grant:
        if not realm_id:
            raise ProviderRejected(self.name, "the callback did not name a company (realmId)")
        body = oauth.token_request(self.client, self.name, self.urls.token, self.credentials, {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier}, HARD_EXPIRY_HEADER)
        tokens = oauth.token_set(body, now)
        return Grant(tokens=tokens, tenants=(self.check_tenant(tokens.access_token, Tenant(
            tenant_id=realm_id, name=realm_id)),))

    def refresh(self, refresh_token: str, *, now: datetime) -> TokenSet:
        body = oauth.token_request(self.client, self.name, self.urls.token, self.credentials, {
            "grant_type": "refresh_token", "refresh_token": refresh_token}, HARD_EXPIRY_HEADER)
        return oauth.token_set(body, now, previous_refresh=refresh_token)

    def revoke(self, tokens: TokenSet) -> None:
        resp = send(self.client, self.name, "POST", self.urls.revoke, json={"token": tokens.refresh_token},
                    headers={"authorization": basic_auth(self.credentials.client_id,
                                                         self.credentials.client_secret)})
        raise_for_token_response(resp, self.name)

    def disconnect_tenant(self, tokens: TokenSet, tenant: Tenant) -> None:
        self.revoke(tokens)  # a QBO consent reaches exactly one company

    def check_tenant(self, access_token: str, tenant: Tenant) -> Tenant:
        url = f"{self.urls.api}/v3/company/{tenant.tenant_id}/companyinfo/{tenant.tenant_id}"
        resp = send(self.client, self.name, "GET", url, params={"minorversion": MINOR_VERSION},
                    headers={"authorization": f"Bearer {access_token}"})
        info = json_or_error(resp, self.name).get("CompanyInfo", {})
        return Tenant(tenant_id=tenant.tenant_id, name=info.get("CompanyName") or tenant.name)
