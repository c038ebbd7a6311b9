"""Fires the template's Schedule events at their functions, in the shape EventBridge sends."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from infra.local.context import LocalLambdaContext
from infra.local.stack import ACCOUNT_ID, REGION, FunctionSpec, LocalStack
from shared.observability import logger

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str) -> int:
    match = re.fullmatch(r"rate\((\d+)\s+(minutes?|hours?|days?)\)", expression.strip())
    if not match:
        raise ValueError(f"the local scheduler understands rate(...) expressions only, not {expression!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def scheduled_event(function: FunctionSpec, when: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{function.logical_id}-schedule"],
        "detail": {},
    }


class Scheduler:
    def __init__(self, stack: LocalStack) -> None:
        self.functions = {name: spec for name, spec in stack.functions.items() if spec.schedules}
        self._stop = threading.Event()

    def fire(self, logical_id: str, when: datetime | None = None) -> Any:
        """Runs one scheduled invocation now and returns what the function returned."""
        function = self.functions[logical_id]
        event = scheduled_event(function, when or datetime.now(UTC))
        return function.handler()(event, LocalLambdaContext(logical_id, function.timeout))

    def start(self) -> None:
        for name, function in self.functions.items():
            for expression in function.schedules:
                threading.Thread(
                    target=self._loop,
                    args=(name, rate_seconds(expression)),
                    name=f"schedule-{name}",
                    daemon=True,
                ).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self, name: str, every: int) -> None:
        while not self._stop.wait(every):
            try:
                self.fire(name)
            except Exception:  # a failed run is logged; the next tick runs again, as EventBridge would
                logger.exception("scheduled invocation failed", extra={"function": name})
