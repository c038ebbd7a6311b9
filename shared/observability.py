"""The one Logger and Metrics of the service, with redaction so no secret reaches a log line.

Every log record passes through ``redact`` before it is serialised: values under sensitive keys are
replaced, bearer/basic credentials and token-looking query parameters are scrubbed from strings, and
any secret the process has handled (``remember_secret``) is scrubbed wherever it appears.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

REDACTED = "[REDACTED]"
_SENSITIVE_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "client_secret",
        "secret",
        "password",
        "authorization",
        "cookie",
        "set-cookie",
        "code",
        "code_verifier",
        "plaintext",
        "data_key",
    }
)
_SENSITIVE_SUFFIXES = ("_token", "_secret", "_password")
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (
        re.compile(
            r"(?i)\b(access_token|refresh_token|id_token|client_secret|code_verifier|code|token)="
            r"[^&\s\"']+"
        ),
        r"\1=" + REDACTED,
    ),
    (
        re.compile(r"(?i)\"(access_token|refresh_token|id_token|client_secret|token)\"\s*:\s*\"[^\"]*\""),
        r'"\1": "' + REDACTED + '"',
    ),
)
_known_secrets: deque[str] = deque(maxlen=256)


def remember_secret(value: str | None) -> None:
    """Marks a value the process handles (a token, a client secret) so it is scrubbed everywhere."""
    if value and len(value) >= 8 and value not in _known_secrets:
        _known_secrets.append(value)


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SENSITIVE_KEYS or lowered.endswith(_SENSITIVE_SUFFIXES)


def redact_text(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """A copy of ``value`` with secrets removed (dicts, lists and strings, recursively)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _is_sensitive(k) and v else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # anything else is written as its str() (the serializer's default): an exception object in Powertools'
    # stack_trace ("value"), say, whose text may hold a token
    return redact_text(str(value))


class RedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: Any) -> str:
        return super().serialize(redact(log))


logger = Logger(logger_formatter=RedactingFormatter())
metrics = Metrics()
