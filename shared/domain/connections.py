"""Connection values: providers, token sets, tenants, the result of a consent, connection states."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from shared.model import Model

ProviderName = Literal["qbo", "xero"]
PROVIDERS: tuple[ProviderName, ...] = ("qbo", "xero")
ConnectionStatus = Literal["connected", "expired", "disconnected"]
# The organisation's connection: working, or waiting for a reconnect. Work for it is accepted (an expired one
# holds it until the reconnect); a disconnected one keeps its data and is never used.
IN_USE: frozenset[ConnectionStatus] = frozenset({"connected", "expired"})
PROVIDER_LABELS: dict[str, str] = {"qbo": "QuickBooks Online", "xero": "Xero"}


class ClientCredentials(Model):
    model_config = ConfigDict(frozen=True)
    client_id: str
    client_secret: str


class TokenSet(Model):
    """One consent's tokens. Expiry instants are absolute (computed from `expires_in` at receipt)."""

    model_config = ConfigDict(frozen=True)
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime | None = None
    hard_expires_at: datetime | None = None  # QBO's 5-year cap, when the provider tells it


class Tenant(Model):
    """A company (QBO realm) or organisation (Xero tenant) a consent reaches."""

    model_config = ConfigDict(frozen=True)
    tenant_id: str
    name: str
    connection_id: str | None = None  # Xero's connection id (what DELETE /connections/{id} takes)


class Grant(Model):
    """The result of one consent: its tokens and the tenants the person chose in it."""

    model_config = ConfigDict(frozen=True)
    tokens: TokenSet
    tenants: tuple[Tenant, ...]
