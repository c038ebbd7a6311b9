"""The deployment's own secrets from Secrets Manager: each provider's OAuth client and the key that
signs OAuth states. Read once per cold start; remembered by the log redaction."""

from __future__ import annotations

import json
from functools import cache

from shared.aws import client
from shared.config import settings
from shared.domain.connections import ClientCredentials, ProviderName
from shared.errors import ProviderNotConfigured
from shared.observability import remember_secret


@cache
def _provider_secret() -> dict[str, dict[str, str]]:
    value: dict[str, dict[str, str]] = json.loads(
        client("secretsmanager").get_secret_value(SecretId=settings().provider_secret_arn)["SecretString"]
    )
    for entry in value.values():
        if isinstance(entry, dict):
            remember_secret(entry.get("client_secret"))
    return value


def client_credentials(provider: ProviderName) -> ClientCredentials:
    entry = _provider_secret().get(provider) or {}
    if not entry.get("client_id") or not entry.get("client_secret"):
        raise ProviderNotConfigured(
            f"{provider} is not configured for this deployment (no OAuth client id "
            "and secret in the provider secret)"
        )
    return ClientCredentials(client_id=entry["client_id"], client_secret=entry["client_secret"])


@cache
def state_signing_key() -> bytes:
    value: str = client("secretsmanager").get_secret_value(SecretId=settings().state_secret_arn)[
        "SecretString"
    ]
    remember_secret(value)
    return value.encode()


def clear() -> None:
    _provider_secret.cache_clear()
    state_signing_key.cache_clear()
