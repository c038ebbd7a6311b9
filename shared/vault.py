"""Token encryption: KMS envelope encryption (a data key from GenerateDataKey, AES-GCM from
`cryptography`). The KMS encryption context and the AES-GCM associated data both name the
organisation, provider, grant and purpose, so a ciphertext copied to another row does not open."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import ConfigDict, Field

from shared.aws import client
from shared.config import settings
from shared.domain.connections import TokenSet
from shared.errors import ServiceError
from shared.model import Model
from shared.observability import remember_secret


class VaultError(ServiceError):
    """A ciphertext that does not open for this context (tampered, or copied from another row)."""


class TokenContext(Model):
    model_config = ConfigDict(frozen=True)
    organisation_id: str
    provider: str
    grant_id: str
    purpose: str = "oauth-tokens"

    def as_kms_context(self) -> dict[str, str]:
        return {
            "organisation": self.organisation_id,
            "provider": self.provider,
            "grant": self.grant_id,
            "purpose": self.purpose,
        }

    def associated_data(self) -> bytes:
        return "|".join(self.as_kms_context().values()).encode()


class Sealed(Model):
    """Sealed tokens; none of the three shows in a repr."""

    model_config = ConfigDict(frozen=True)
    wrapped_key: bytes = Field(repr=False)
    nonce: bytes = Field(repr=False)
    ciphertext: bytes = Field(repr=False)


class DataKey(Model):
    """A KMS data key for one grant's context: its plaintext (sealing needs no KMS call once it is here) and
    the same key wrapped by KMS (stored beside the ciphertext)."""

    model_config = ConfigDict(frozen=True)
    plaintext: bytes = Field(repr=False)
    wrapped: bytes = Field(repr=False)


def data_key(context: TokenContext) -> DataKey:
    key = client("kms").generate_data_key(
        KeyId=settings().token_key_id, KeySpec="AES_256", EncryptionContext=context.as_kms_context()
    )
    return DataKey(plaintext=key["Plaintext"], wrapped=key["CiphertextBlob"])


def seal(plaintext: bytes, context: TokenContext, key: DataKey | None = None) -> Sealed:
    """Seals under ``key`` (one ``data_key`` gave for this same context), or under a new data key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # on first use, not at every cold start

    key = key or data_key(context)
    nonce = os.urandom(12)  # random per seal: a data key may seal more than once (a refresh's retries)
    ciphertext = AESGCM(key.plaintext).encrypt(nonce, plaintext, context.associated_data())
    return Sealed(wrapped_key=key.wrapped, nonce=nonce, ciphertext=ciphertext)


def open_sealed(sealed: Sealed, context: TokenContext) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kms = client("kms")
    try:
        data_key = kms.decrypt(
            CiphertextBlob=sealed.wrapped_key,
            EncryptionContext=context.as_kms_context(),
            KeyId=settings().token_key_id,
        )["Plaintext"]
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, context.associated_data())
    except (kms.exceptions.InvalidCiphertextException, InvalidTag):
        raise VaultError("stored tokens do not open for this organisation and provider") from None


def seal_tokens(tokens: TokenSet, context: TokenContext, key: DataKey | None = None) -> Sealed:
    return seal(tokens.model_dump_json().encode(), context, key)


def open_tokens(sealed: Sealed, context: TokenContext) -> TokenSet:
    tokens = _opened(sealed, context)
    remember_secret(tokens.access_token)  # on every open: the scrub list is bounded and may have dropped them
    remember_secret(tokens.refresh_token)
    return tokens


@lru_cache(maxsize=64)  # well inside the scrub list's 256 values, two per token set
def _opened(sealed: Sealed, context: TokenContext) -> TokenSet:
    """The tokens a stored ciphertext holds. A warm function opens each ciphertext once: the same ciphertext
    under the same context always opens to the same tokens (AES-GCM authenticates both), so later reads skip
    the KMS call; a refresh stores a new ciphertext, which is opened afresh."""
    return TokenSet.model_validate_json(open_sealed(sealed, context))
