"""``Idempotency-Key`` on API writes: the same key with the same body gets the first answer again (nothing
is recorded twice); the same key with another body is refused (422); a key whose first request is still
running is a 409. Server errors free the key, so a retry can succeed; every other answer is kept a day. A
request killed by the API function's timeout frees nothing: its claim lapses once that timeout (and a
margin) has passed, and a retry with the same body takes the key over. A record the first one committed is
not made twice: one without an id of its own takes it from the request (``request_token``) and is answered
again; one whose body names its id is refused as already recorded (409)."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from http import HTTPStatus
from typing import NamedTuple

from shared.errors import Conflict, InvalidFields, ServiceError
from shared.model import Model
from shared.store import idempotency as store

KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, as the IETF draft's examples use
API_TIMEOUT_SECONDS = 30  # template.yaml: Globals.Function.Timeout, which ApiFunction keeps
RUNNING_SECONDS = API_TIMEOUT_SECONDS + 15  # past this, a request still `running` was killed by the timeout


class KeyReused(ServiceError):
    """The key came with another request body."""

    http_status = HTTPStatus.UNPROCESSABLE_ENTITY


class Replay(Model):
    status: int
    body: str
    content_type: str


class Attempt(NamedTuple):
    """An attempt at an ``Idempotency-Key`` request: its ``request_token`` and when it was received."""

    token: str
    at: datetime

    @property
    def expires_at(self) -> int:
        """When what the attempt leaves for the next attempts is of no more use (its key is kept as long)."""
        return int(self.at.timestamp()) + store.TTL_SECONDS


def request_token(organisation_id: str, scope: str, key: str, body: bytes) -> str:
    """What names this request (its organisation, route, key and body) whichever attempt runs it: a record
    it creates takes its id from it, so an attempt that runs again once the first one's claim lapsed (it
    committed, then crashed or could not store its answer) finds that record instead of making another."""
    return hashlib.sha256(
        b"\n".join((organisation_id.encode(), scope.encode(), key.encode(), body))
    ).hexdigest()


def begin(organisation_id: str, scope: str, key: str, body: bytes, now: datetime) -> Replay | None:
    """None: this request holds the key and should run; a Replay: answer it instead."""
    if not KEY.match(key):
        problem = "use 1 to 255 printable ASCII characters"
        raise InvalidFields(f"Idempotency-Key: {problem}", [{"field": "Idempotency-Key", "problem": problem}])
    fingerprint = hashlib.sha256(body).hexdigest()
    found = store.claim(organisation_id, scope, key, fingerprint, int(now.timestamp()), RUNNING_SECONDS)
    if found is None:
        return None
    if found.fingerprint != fingerprint:
        raise KeyReused("Idempotency-Key was already used with another request body; use a new key")
    if found.state != "done" or found.answer_status is None:
        raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
    return Replay(
        status=found.answer_status, body=found.answer_body or "", content_type=found.answer_type or ""
    )


def finish(organisation_id: str, scope: str, key: str, status: int, body: str, content_type: str) -> None:
    if status >= 500:
        store.release(organisation_id, scope, key)
    else:
        store.answer(organisation_id, scope, key, status, body, content_type)
