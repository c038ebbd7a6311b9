"""Accounting providers behind one interface; ``get_provider`` is the only place that knows both."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.config import ProviderUrls
from shared.domain.connections import PROVIDERS, ProviderName
from shared.errors import UnknownProvider

if TYPE_CHECKING:  # the OAuth client loads httpx: only a provider's calls need it (not a scheduled pass)
    from shared.providers.base import AccountingProvider  # the protocol: what names a provider needs
    from shared.providers.oauth import CredentialsSource


def provider_name(value: str) -> ProviderName:
    """The provider a path names, or ``UnknownProvider``."""
    for name in PROVIDERS:
        if value == name:
            return name
    raise UnknownProvider(f"unknown accounting provider {value!r}; expected one of: {', '.join(PROVIDERS)}")


def get_provider(
    name: ProviderName, credentials: CredentialsSource, urls: ProviderUrls
) -> AccountingProvider:
    if name == "qbo":
        from shared.providers.qbo.client import QboProvider

        return QboProvider(credentials, urls)
    from shared.providers.xero.client import XeroProvider

    return XeroProvider(credentials, urls)
