"""Configuration: one validated settings object read from the environment once per cold start."""

from __future__ import annotations

import os
from functools import cache

from pydantic import ConfigDict, Field, ValidationError

from shared.model import Model


class ConfigurationError(RuntimeError):
    """A required environment variable is missing or malformed; the message names each one."""


class ProviderUrls(Model):
    model_config = ConfigDict(frozen=True)
    authorize: str
    token: str
    revoke: str
    api: str


class Settings(Model):
    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    token_key_id: str = Field(alias="TOKEN_KEY_ID", min_length=1)
    provider_secret_arn: str = Field(alias="PROVIDER_SECRET_ARN", min_length=1)
    state_secret_arn: str = Field(alias="STATE_SECRET_ARN", min_length=1)
    export_queue_url: str = Field(alias="EXPORT_QUEUE_URL", min_length=1)
    connection_check_queue_url: str = Field(alias="CONNECTION_CHECK_QUEUE_URL", min_length=1)
    sales_pull_queue_url: str = Field(alias="SALES_PULL_QUEUE_URL", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    organisation_claim: str = Field(alias="ORGANISATION_CLAIM", min_length=1)
    app_origin: str = Field(alias="APP_ORIGIN", pattern=r"^https?://[^/\s]+$")
    public_base_url: str = Field(alias="PUBLIC_BASE_URL", pattern=r"^https?://\S+[^/]$")
    qbo_authorize_url: str = Field(alias="QBO_AUTHORIZE_URL", pattern=r"^https?://\S+$")
    qbo_token_url: str = Field(alias="QBO_TOKEN_URL", pattern=r"^https?://\S+$")
    qbo_revoke_url: str = Field(alias="QBO_REVOKE_URL", pattern=r"^https?://\S+$")
    qbo_api_url: str = Field(alias="QBO_API_URL", pattern=r"^https?://\S+[^/]$")
    xero_authorize_url: str = Field(alias="XERO_AUTHORIZE_URL", pattern=r"^https?://\S+$")
    xero_token_url: str = Field(alias="XERO_TOKEN_URL", pattern=r"^https?://\S+$")
    xero_revoke_url: str = Field(alias="XERO_REVOKE_URL", pattern=r"^https?://\S+$")
    xero_api_url: str = Field(alias="XERO_API_URL", pattern=r"^https?://\S+[^/]$")

    def provider_urls(self, provider: str) -> ProviderUrls:
        if provider not in ("qbo", "xero"):
            raise ValueError(f"no endpoints configured for provider {provider!r}")
        return ProviderUrls(
            authorize=getattr(self, f"{provider}_authorize_url"),
            token=getattr(self, f"{provider}_token_url"),
            revoke=getattr(self, f"{provider}_revoke_url"),
            api=getattr(self, f"{provider}_api_url"),
        )

    def redirect_uri(self, provider: str) -> str:
        return f"{self.public_base_url}/oauth/{provider}/callback"


def load_settings(environ: dict[str, str] | os._Environ[str]) -> Settings:
    try:
        return Settings.model_validate(dict(environ))
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])} ({e['msg'].lower()})" for e in err.errors()
        )
        raise ConfigurationError(f"missing or malformed configuration: {problems}") from None


@cache
def settings() -> Settings:
    """The process's settings, validated on first use (the first invocation after a cold start)."""
    return load_settings(os.environ)
