"""The hourly sales pass: it only enumerates the connections and queues one message each (the pull itself is
``shared.services.sales``, run by the workers), so the schedule's cold start loads neither the pull nor the
books (about 40 ms of imports, bench_cold_imports)."""

from __future__ import annotations

from collections.abc import Iterator

from shared.config import settings
from shared.contracts import ConnectionJob
from shared.services import fanout
from shared.store import connections as connection_store


def enqueue_due() -> fanout.FanOutReport:
    """One message per connected connection (read from the sharded index); its worker pulls its sales when
    tracking is on, then does its books' hour (business days closed, the daily check). An expired connection
    stored before the tenant index gets no message but still uses its company (a disconnect elsewhere must
    see it): it is listed under the company here, once."""

    def due() -> Iterator[ConnectionJob]:
        fields = ("status", "tenant_id", "tenant_indexed")
        for connection in connection_store.iter_connections(fields=fields):
            if connection.status == "expired":
                connection_store.index_tenant(connection)
            if connection.status == "connected":
                yield ConnectionJob(organisation_id=connection.organisation_id, provider=connection.provider)

    return fanout.send_all(settings().sales_pull_queue_url, due())
