"""Tokens are stored only as ciphertext that opens for its own organisation, provider and grant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from infra.local.stack import LocalStack
from shared.domain.connections import TokenSet
from shared.store import connections as store
from shared.vault import TokenContext, VaultError, open_tokens, seal_tokens

TOKENS = TokenSet(
    access_token="access-token-value-123",
    refresh_token="refresh-token-value-456",
    access_expires_at=datetime(2026, 11, 23, tzinfo=UTC) + timedelta(hours=1),
)


def _context(organisation: str = "org-a", provider: str = "qbo", grant: str = "g1") -> TokenContext:
    return TokenContext(organisation_id=organisation, provider=provider, grant_id=grant)


def test_sealed_tokens_open_for_their_own_context(aws: LocalStack) -> None:
    assert open_tokens(seal_tokens(TOKENS, _context()), _context()) == TOKENS


@pytest.mark.parametrize(
    "other", [_context(organisation="org-b"), _context(provider="xero"), _context(grant="g2")]
)
def test_ciphertext_copied_elsewhere_does_not_open(aws: LocalStack, other: TokenContext) -> None:
    with pytest.raises(VaultError):
        open_tokens(seal_tokens(TOKENS, _context()), other)


def test_stored_grant_holds_no_plaintext_token(aws: LocalStack) -> None:
    from shared.services.tokens import store_grant

    grant_id = store_grant("org-a", "qbo", TOKENS, datetime(2026, 11, 23, tzinfo=UTC))
    raw = boto3.client("dynamodb").get_item(
        TableName=aws.physical("Table"), Key={"pk": {"S": f"GRANT#{grant_id}"}, "sk": {"S": "GRANT"}}
    )["Item"]
    assert "access-token-value" not in str(raw) and "refresh-token-value" not in str(raw)
    grant = store.get_grant(grant_id)
    assert grant is not None
    for part in (grant.sealed.wrapped_key, grant.sealed.nonce, grant.sealed.ciphertext):  # nor does a repr
        assert str(part) not in repr(grant) and part.hex() not in repr(grant)
    # a row edited to point at another organisation
    stolen = grant.model_copy(update={"organisation_id": "org-b"})
    from shared.services.tokens import stored_tokens

    with pytest.raises(VaultError):  # org-b asks: the row claims org-b, but the ciphertext is org-a's
        stored_tokens(stolen, _context(organisation="org-b", grant=grant_id))


def _copy_grant_under(source: str, copy: str, organisation: str, edits: dict[str, str]) -> None:
    """A table writer copies org-a's grant row whole under a new key and points `organisation` at it."""
    raw = boto3.resource("dynamodb").Table(store.table().name)
    item = raw.get_item(Key={"pk": f"GRANT#{source}", "sk": "GRANT"})["Item"]
    raw.put_item(Item={**item, "pk": f"GRANT#{copy}", **edits})
    store.put_connection(organisation, "qbo", {"status": "connected", "tenant_id": "1", "grant_id": copy})


@pytest.mark.parametrize(
    "edits",
    [
        {},  # copied whole: it still names org-a and org-a's grant
        {"organisation_id": "org-b", "grant_id": "g-copy"},  # edited to name the asker: the context refuses
    ],
)
def test_a_grant_row_copied_under_another_organisations_key_does_not_open(
    aws: LocalStack, edits: dict[str, str]
) -> None:
    from shared.aws import client
    from shared.errors import AuthExpired
    from shared.services import tokens

    grant_id = tokens.store_grant("org-a", "qbo", TOKENS, datetime(2026, 11, 23, tzinfo=UTC))
    _copy_grant_under(grant_id, "g-copy", "org-b", edits)
    decrypted: list[dict[str, str]] = []
    client("kms").meta.events.register(
        "provide-client-params.kms.Decrypt", lambda params, **_: decrypted.append(params["EncryptionContext"])
    )
    connection = store.get_connection("org-b", "qbo")
    assert connection is not None

    with pytest.raises((AuthExpired, VaultError)):
        tokens.fresh_tokens(
            connection_asker := tokens.asking(connection), clock=lambda: TOKENS.access_expires_at
        )

    assert connection_asker.organisation_id == "org-b" and connection_asker.grant_id == "g-copy"
    # nothing was opened with org-a's context on org-b's behalf
    assert all(context["organisation"] == "org-b" for context in decrypted)
    if not edits:
        assert decrypted == []  # refused before any decrypt: the row is not org-b's
    else:
        assert decrypted and decrypted[0]["grant"] == "g-copy"  # opened as the asker: KMS refused it


def test_a_connection_row_naming_another_organisation_still_asks_as_its_key(aws: LocalStack) -> None:
    from shared.services import tokens

    store.put_connection("org-b", "qbo", {"status": "connected", "grant_id": "g1"})
    boto3.resource("dynamodb").Table(store.table().name).update_item(
        Key={"pk": "ORG#org-b", "sk": "CONNECTION#qbo"},
        UpdateExpression="SET organisation_id = :a",
        ExpressionAttributeValues={":a": "org-a"},
    )
    connection = store.get_connection("org-b", "qbo")
    assert connection is not None
    assert tokens.asking(connection).organisation_id == "org-b"
    assert {c.organisation_id for c in store.all_connections()} == {"org-b"}


def test_a_warm_function_opens_each_ciphertext_once(aws: LocalStack) -> None:
    from shared.aws import client

    calls: list[str] = []
    client("kms").meta.events.register("before-call.kms.Decrypt", lambda **_: calls.append("decrypt"))
    sealed = seal_tokens(TOKENS, _context(grant="g-warm"))
    assert open_tokens(sealed, _context(grant="g-warm")) == TOKENS
    assert open_tokens(sealed, _context(grant="g-warm")) == TOKENS
    assert calls == ["decrypt"]
    refreshed = TOKENS.model_copy(update={"access_token": "access-token-value-789"})
    resealed = seal_tokens(refreshed, _context(grant="g-warm"))  # a refresh stores a new ciphertext
    assert open_tokens(resealed, _context(grant="g-warm")) == refreshed
    assert calls == ["decrypt", "decrypt"]
    with pytest.raises(VaultError):  # a refusal is never remembered as tokens
        open_tokens(sealed, _context(grant="g-other"))


def test_tokens_served_from_the_cache_are_still_scrubbed_from_logs(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import deque

    from shared import observability

    sealed = seal_tokens(TOKENS, _context(grant="g-scrub"))
    open_tokens(sealed, _context(grant="g-scrub"))
    monkeypatch.setattr(observability, "_known_secrets", deque(maxlen=256))  # many other tokens came since
    open_tokens(sealed, _context(grant="g-scrub"))  # from the cache, no KMS call
    assert TOKENS.access_token not in observability.redact_text(f"sent {TOKENS.access_token}")
    assert TOKENS.refresh_token not in observability.redact_text(f"sent {TOKENS.refresh_token}")
