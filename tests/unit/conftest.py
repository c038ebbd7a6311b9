"""Unit tests are pure: a test that opens a socket fails at once instead of reaching the network."""

from __future__ import annotations

import socket
from typing import Any, NoReturn

import pytest


class SocketRefused(RuntimeError):
    pass


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise SocketRefused("unit tests open no sockets; use tests/integration for anything that talks")


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "socket", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "socketpair", _refuse)
