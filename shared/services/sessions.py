"""A provider session for a connection: its tenant, its access token (refreshed through the vault when
the provider refuses it) and the rate budget all Lambdas share."""

from __future__ import annotations

from shared.domain.connections import IN_USE, PROVIDER_LABELS, ProviderName
from shared.errors import AuthExpired, Conflict
from shared.providers import provider_name
from shared.providers.base import Session
from shared.services import tokens
from shared.store import connections as connection_store
from shared.store.connections import Connection
from shared.store.rate_budget import DynamoRateBudget


def connected(organisation_id: str, name: str) -> tuple[ProviderName, Connection]:
    """The organisation's working connection to the provider the path names."""
    wanted = provider_name(name)
    connection = connection_store.get_connection(organisation_id, wanted)
    if connection is None or connection.status not in IN_USE:
        raise Conflict(f"this organisation is not connected to {PROVIDER_LABELS[wanted]}; connect it first")
    if connection.status == "expired":
        raise AuthExpired(
            wanted, f"{PROVIDER_LABELS[wanted]} no longer accepts this connection; reconnect it"
        )
    return wanted, connection


def in_use(organisation_id: str) -> Connection | None:
    """The organisation's accounting connection (at most one is connected or expired at a time), from one
    read of its connections."""
    usable = [c for c in connection_store.list_connections(organisation_id) if c.status in IN_USE]
    return min(usable, key=lambda c: c.status != "connected", default=None)


def session_for(connection: Connection, *, retry_after_limit: float | None = None) -> Session:
    """Every provider call of every path (exports, catalog, sales) goes through a session: a 403 on any
    of them marks the connection expired at once (``tokens.connection_refused``). ``retry_after_limit``:
    the longest 429 wait taken in place (``Session``)."""
    if connection.switching_from:  # the products may still name the company before's items
        raise AuthExpired(
            connection.provider,
            f"the switch to {connection.tenant_name or connection.tenant_id} did not finish; connect it "
            "again to finish it",
        )
    asker = tokens.asking(connection)
    grant_id = asker.grant_id
    return Session(
        tenant_id=tokens.tenant_of(connection).tenant_id,
        token=tokens.TokenSource(asker),
        budget=DynamoRateBudget(),
        refused=lambda reason: tokens.connection_refused(grant_id, reason=reason, now=tokens.utc_now()),
        retry_after_limit=retry_after_limit,
    )
