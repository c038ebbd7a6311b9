"""Events the app reacts to (notify the person who connected), put on the EventBridge bus."""

from __future__ import annotations

import json
from typing import Any

from shared.aws import client
from shared.config import settings
from shared.observability import logger

SOURCE = "partsemble.accounting"


def emit(detail_type: str, detail: dict[str, Any]) -> None:
    response = client("events").put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, default=str),
                "EventBusName": settings().event_bus_name,
            }
        ]
    )
    if response.get("FailedEntryCount"):
        logger.error(
            "event not delivered", extra={"detail_type": detail_type, "entries": response["Entries"]}
        )
