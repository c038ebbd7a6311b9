"""The provider client speaks TLS only to servers whose certificate a trusted authority signed: a server
with a certificate of its own making is refused before any request reaches it, however the client was
made (its CA bundle is loaded at the first https request, not when the client is made)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.errors import ProviderUnavailable
from shared.providers import http


class Server(ThreadingHTTPServer):
    requests: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that signs itself (no authority vouches for it), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(loopback, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def serving(tls: ssl.SSLContext | None) -> Iterator[tuple[str, Server]]:
    server = Server(("127.0.0.1", 0), Handler)
    server.requests = []
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[tuple[str, Server]]:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(*certificate)
    yield from serving(tls)


@pytest.fixture
def http_server() -> Iterator[tuple[str, Server]]:
    yield from serving(None)


def test_a_server_no_authority_vouches_for_is_refused_before_any_request_reaches_it(
    https_server: tuple[str, Server], certificate: tuple[Path, Path]
) -> None:
    url, server = https_server
    with http.new_client() as client, pytest.raises(ProviderUnavailable):
        http.send(client, "qbo", "GET", f"{url}/v3/company/1/query")
    assert server.requests == []
    # the same server answers a client that trusts its certificate: the refusal was the certificate's
    with httpx.Client(verify=ssl.create_default_context(cafile=str(certificate[0]))) as trusting:
        assert trusting.get(f"{url}/v3/company/1/query").json() == {"ok": True}
    assert server.requests == ["/v3/company/1/query"]


def test_after_a_plain_http_call_tls_is_still_verified(
    http_server: tuple[str, Server], https_server: tuple[str, Server]
) -> None:
    """One client to the local sandboxes (http) and a provider (https): the http transport's context is
    never what an https request uses."""
    (plain_url, plain), (tls_url, tls) = http_server, https_server
    with http.new_client() as client:
        assert http.send(client, "qbo", "GET", f"{plain_url}/ping").json() == {"ok": True}
        with pytest.raises(ProviderUnavailable):
            http.send(client, "qbo", "GET", f"{tls_url}/ping")
    assert plain.requests == ["/ping"]
    assert tls.requests == []
