"""The per-tenant rate budget every Lambda shares, in DynamoDB (keys: ``keys``): call windows a conditional
``ADD`` admits calls to below the cap, in-flight slots leased by conditional writes (a lease that outlived its
holder can be taken over), and the calls left today once the provider reports them running low. Windows and
leases expire through the table's TTL."""

from __future__ import annotations

import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable

from shared.aws import table
from shared.store.dynamo import conditional
from shared.store.keys import RATE_DAY_SK, rate_pk, rate_slot_sk, rate_window_sk

SLOT_LEASE_SECONDS = 60  # longer than a call may take (20 s read timeout, 5 s connect)
SLOT_BUSY_WAIT = 0.25
DAILY_WATCH = 200  # from this few calls left today, every Lambda learns the count from the table
DAILY_HOLD_SECONDS = 3600.0  # how long a low daily count holds calls back before one probe may go


class DynamoRateBudget:
    """Satisfies ``shared.providers.limits.RateBudget``; one per session, holding the slots it took."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.owner = str(uuid.uuid4())
        self._held: dict[str, list[str]] = defaultdict(list)
        self._daily: dict[str, tuple[int, float] | None] = {}

    def acquire(
        self, key: str, *, window_seconds: int, window_cap: int, concurrent: int, daily_reserve: int
    ) -> float:
        now = self.clock()
        daily = self._daily_remaining(key) if daily_reserve else None
        if daily is not None and daily[0] <= daily_reserve and now - daily[1] < DAILY_HOLD_SECONDS:
            return DAILY_HOLD_SECONDS - (now - daily[1])
        slot = self._take_slot(key, concurrent, now)
        if slot is None:
            return SLOT_BUSY_WAIT
        window = int(now // window_seconds)
        if not self._count_call(key, window, window_cap, expires_at=int((window + 2) * window_seconds)):
            self._free_slot(key, slot)
            return (window + 1) * window_seconds - now
        self._held[key].append(slot)
        return 0.0

    def release(self, key: str) -> None:
        if self._held[key]:
            self._free_slot(key, self._held[key].pop())

    def note_daily_remaining(self, key: str, remaining: int) -> None:
        previous = self._daily_remaining(key)
        now = self.clock()
        self._daily[key] = (remaining, now)
        if remaining <= DAILY_WATCH or (previous is not None and previous[0] <= DAILY_WATCH):
            table().put_item(
                Item={
                    "pk": rate_pk(key),
                    "sk": RATE_DAY_SK,
                    "remaining": remaining,
                    "noted_at": int(now),
                    "expires_at": int(now + 86_400),
                }
            )

    # ---- rows ----------------------------------------------------------------------------------------
    def _daily_remaining(self, key: str) -> tuple[int, float] | None:
        if key not in self._daily:
            item = table().get_item(Key={"pk": rate_pk(key), "sk": RATE_DAY_SK}).get("Item")
            self._daily[key] = (int(item["remaining"]), float(item["noted_at"])) if item else None
        return self._daily[key]

    def _take_slot(self, key: str, concurrent: int, now: float) -> str | None:
        start = random.randrange(concurrent)
        slots = [rate_slot_sk((start + offset) % concurrent) for offset in range(concurrent)]
        return next((slot for slot in slots if self._lease(key, slot, int(now))), None)

    def _lease(self, key: str, slot: str, now: int) -> bool:
        leased = conditional(
            lambda: table().update_item(
                Key={"pk": rate_pk(key), "sk": slot},
                UpdateExpression="SET holder = :h, lease_until = :until, expires_at = :ttl",
                ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now",
                ExpressionAttributeValues={
                    ":h": self.owner,
                    ":until": now + SLOT_LEASE_SECONDS,
                    ":ttl": now + 2 * SLOT_LEASE_SECONDS,
                    ":now": now,
                },
            )
        )
        return leased is not None

    def _free_slot(self, key: str, slot: str) -> None:
        conditional(
            lambda: table().delete_item(
                Key={"pk": rate_pk(key), "sk": slot},
                ConditionExpression="holder = :h",
                ExpressionAttributeValues={":h": self.owner},
            )
        )

    def _count_call(self, key: str, window: int, cap: int, *, expires_at: int) -> bool:
        counted = conditional(
            lambda: table().update_item(
                Key={"pk": rate_pk(key), "sk": rate_window_sk(window)},
                UpdateExpression="ADD calls :one SET expires_at = :ttl",
                ConditionExpression="attribute_not_exists(calls) OR calls < :cap",
                ExpressionAttributeValues={":one": 1, ":cap": cap, ":ttl": expires_at},
            )
        )
        return counted is not None
