"""Cached boto3 clients, created on first use so tests can start moto before any client exists."""

from __future__ import annotations

from functools import cache
from typing import Any

from shared.config import settings


@cache
def _session() -> Any:
    import boto3  # imported on first use, not at module import (tests start moto first)

    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    from botocore.config import Config

    return _session().client(service, config=Config(retries={"mode": "standard", "max_attempts": 4}))


@cache
def table() -> Any:
    """The service's single DynamoDB table (resource API)."""
    return _session().resource("dynamodb").Table(settings().table_name)


def clear_cached_clients() -> None:
    """Forget clients and settings (tests switch between moto instances and environments)."""
    _session.cache_clear()
    client.cache_clear()
    table.cache_clear()
    settings.cache_clear()
