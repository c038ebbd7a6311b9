"""Key layout of the single table. Every item has pk/sk; gsi1 lists items across organisations."""

from __future__ import annotations

import zlib


def org_pk(organisation_id: str) -> str:
    return f"ORG#{organisation_id}"


def connection_sk(provider: str) -> str:
    return f"CONNECTION#{provider}"


def grant_pk(grant_id: str) -> str:
    return f"GRANT#{grant_id}"


GRANT_SK = "GRANT"
CONNECTIONS_INDEX_PK = "CONNECTIONS"  # gsi1: every connection, as rows written before the index was sharded
CONNECTION_SHARDS = 16  # gsi1: connections spread over CONNECTIONS#0..15, so no one partition takes them all


def connections_shard_pk(organisation_id: str) -> str:
    """The gsi1 partition of an organisation's connections: a stable hash of the organisation (CRC-32, the
    same in every process, unlike ``hash``)."""
    return f"{CONNECTIONS_INDEX_PK}#{zlib.crc32(organisation_id.encode()) % CONNECTION_SHARDS}"


def connection_index_pks() -> list[str]:
    """Every partition the scheduled passes read: the shards, then the unsharded one of older rows (a row
    moves to its shard on its next write)."""
    return [f"{CONNECTIONS_INDEX_PK}#{n}" for n in range(CONNECTION_SHARDS)] + [CONNECTIONS_INDEX_PK]


OUTBOX_INDEX_PK = "OUTBOX"  # gsi1: exports not yet handed to the queue (the outbox), oldest first
