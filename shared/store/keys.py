"""Key layout of the single table. Every item has pk/sk; gsi1 lists items across organisations."""

from __future__ import annotations


def org_pk(organisation_id: str) -> str:
    return f"ORG#{organisation_id}"


def connection_sk(provider: str) -> str:
    return f"CONNECTION#{provider}"


def grant_pk(grant_id: str) -> str:
    return f"GRANT#{grant_id}"


GRANT_SK = "GRANT"
CONNECTIONS_INDEX_PK = "CONNECTIONS"  # gsi1: every connection, for the scheduled jobs
OUTBOX_INDEX_PK = "OUTBOX"  # gsi1: exports not yet handed to the queue (the outbox), oldest first
