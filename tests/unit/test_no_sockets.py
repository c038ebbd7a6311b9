"""The unit tests' conftest switches sockets off."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from tests.unit.conftest import SocketRefused


def test_a_unit_test_cannot_open_a_socket() -> None:
    with pytest.raises(SocketRefused):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(SocketRefused):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises((SocketRefused, urllib.error.URLError)):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)
