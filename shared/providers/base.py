"""What the service needs from an accounting system, whatever it is: one protocol, two implementations."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.domain.connections import ClientCredentials, Grant, ProviderName, Tenant, TokenSet

__all__ = ["AccountingProvider", "ClientCredentials", "Grant", "ProviderName", "Tenant", "TokenSet"]

class AccountingProvider(Protocol):
    name: ProviderName
    uses_pkce: bool

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str) -> str: ...

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str, now: datetime,
                      realm_id: str | None) -> Grant:
        """Exchanges the callback's code and reads the tenants of this consent with their names."""
        ...

    def refresh(self, refresh_token: str, *, now: datetime) -> TokenSet: ...

    def revoke(self, tokens: TokenSet) -> None:
        """Revokes the whole consent at the provider."""
        ...

    def disconnect_tenant(self, tokens: TokenSet, tenant: Tenant) -> None:
        """Removes one tenant from the consent (Xero) or revokes it (QBO, one company per consent)."""
        ...

    def check_tenant(self, access_token: str, tenant: Tenant) -> Tenant:
        """A cheap call proving the connection still works; returns the tenant's current name."""
        ...
