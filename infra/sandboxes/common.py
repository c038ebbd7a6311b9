"""What both provider sandboxes share: clock, routing, OAuth apps, faults, call counts, rate windows.

A sandbox is one object with ``handle(httpx.Request) -> httpx.Response``. Tests reach it in-process
through ``httpx.MockTransport(sandbox.handle)``; the local stack serves the same object on a loopback
port (``serve``). Faults that make a client time out or lose a response are raised as the httpx
exceptions a real network would produce, and turned into a held or closed socket by the server.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx

FAULT_KINDS = ("429", "500", "503", "timeout", "drop", "lost_response", "blocked", "401_empty")
# what an edge network in front of a provider answers a request it blocks: HTML, no OAuth error code
BLOCKED_PAGE = (
    "<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1>"
    "<p>You don't have permission to access this resource.</p><p>Reference #18.5e2f1002</p></body></html>"
)
DEFAULT_START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Clock:
    """The sandbox's notion of now; tests move it instead of sleeping. A ``real_time`` clock (the local run's)
    also moves with the wall clock, so rate windows and token lifetimes pass as they do at the providers; it
    only moves further when told to."""

    def __init__(self, start: datetime = DEFAULT_START, *, real_time: bool = False) -> None:
        self._now = start
        self._since = time.monotonic() if real_time else None
        self._lock = threading.Lock()

    def _elapsed(self) -> timedelta:
        return timedelta(seconds=time.monotonic() - self._since) if self._since is not None else timedelta()

    def now(self) -> datetime:
        with self._lock:
            return self._now + self._elapsed()

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now + self._elapsed()

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when
            if self._since is not None:
                self._since = time.monotonic()


class SandboxTimeout(Exception):
    """Raised by a handler to make the caller wait and give up (a timeout seen from the client)."""


class DropConnection(Exception):
    """Raised by a handler to close the connection without any response."""


@dataclass
class Fault:
    kind: str
    method: str
    path_prefix: str
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and path.startswith(self.path_prefix)


@dataclass
class OAuthApp:
    client_id: str
    client_secret: str
    redirect_uris: list[str]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., httpx.Response]


def lex(pattern: re.Pattern[str], text: str, error: Callable[[int], Exception]) -> list[tuple[str, str]]:
    """A query language's tokens: (the name of the group ``pattern`` matched, its text) until only white
    space is left; ``error(position)`` is raised where nothing matches."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text) and not text[pos:].isspace():
        m = pattern.match(text, pos)
        if m is None or m.end() == pos:
            raise error(pos)
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body, default=str).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )


def html_response(status: int, body: str) -> httpx.Response:
    return httpx.Response(status, content=body.encode(), headers={"content-type": "text/html; charset=utf-8"})


def redirect(location: str) -> httpx.Response:
    return httpx.Response(302, headers={"location": location})


def form_body(request: httpx.Request) -> dict[str, str]:
    """A urlencoded body as a flat dict (last value wins, as form parsers do)."""
    parsed = parse_qs(request.content.decode(), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def json_body(request: httpx.Request) -> Any:
    return json.loads(request.content or b"null")


def basic_credentials(request: httpx.Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def bearer_token(request: httpx.Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(24)}"


class FixedWindow:
    """Counts calls per key in fixed windows of the sandbox clock (how both providers count)."""

    def __init__(self, limit: int, seconds: int) -> None:
        self.limit = limit
        self.seconds = seconds
        self._counts: dict[tuple[str, int], int] = defaultdict(int)

    def window(self, now: datetime) -> int:
        return int(now.timestamp()) // self.seconds

    def hit(self, key: str, now: datetime) -> bool:
        """Counts one call; False when the key is over its limit in this window."""
        bucket = (key, self.window(now))
        self._counts[bucket] += 1
        return self._counts[bucket] <= self.limit

    def remaining(self, key: str, now: datetime) -> int:
        return max(0, self.limit - self._counts[(key, self.window(now))])

    def retry_after(self, now: datetime) -> int:
        return self.seconds - int(now.timestamp()) % self.seconds


class InFlight:
    """Calls under way per key, for the providers' concurrency limits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def enter(self, key: str) -> Iterator[bool]:
        with self._lock:
            self._counts[key] += 1
            allowed = self._counts[key] <= self.limit
        try:
            yield allowed
        finally:
            with self._lock:
                self._counts[key] -= 1


@dataclass
class Sandbox:
    """Base of both sandboxes. Subclasses register routes in ``__post_init__`` via ``route``."""

    name: str = "sandbox"
    clock: Clock = field(default_factory=Clock)
    base_url: str = "http://sandbox.local"

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.routes: list[Route] = []
        self.admin_routes: list[Route] = []
        self.faults: list[Fault] = []
        self.calls: Counter[str] = Counter()
        self.afterwards: list[tuple[str, str, Callable[[httpx.Request, httpx.Response], None]]] = []
        self.apps: dict[str, OAuthApp] = {}
        self._register_common_admin()

    # ---- routing -------------------------------------------------------------------------------
    def route(
        self, method: str, pattern: str
    ) -> Callable[[Callable[..., httpx.Response]], Callable[..., httpx.Response]]:
        """Registers ``handler(request, **path_groups)`` for METHOD and a regex over the path."""

        def register(handler: Callable[..., httpx.Response]) -> Callable[..., httpx.Response]:
            target = self.admin_routes if pattern.startswith("/_admin") else self.routes
            target.append(Route(method, re.compile(f"^{pattern}$", re.IGNORECASE), handler))
            return handler

        return register

    def _dispatch(self, routes: list[Route], request: httpx.Request) -> httpx.Response:
        path = request.url.path
        allowed = False
        for r in routes:
            m = r.pattern.match(path)
            if m:
                allowed = True
                if r.method == request.method:
                    return r.handler(request, **m.groupdict())
        if allowed:
            return self.error_response(405, f"{request.method} not allowed on {path}")
        return self.error_response(404, f"no such resource: {path}")

    def error_response(self, status: int, message: str) -> httpx.Response:
        """The provider's generic error body; subclasses speak their provider's shape."""
        return json_response(status, {"error": message})

    def fault_response(self, kind: str, request: httpx.Request) -> httpx.Response:
        """429/500/503 as the provider sends them; subclasses override for exact shapes."""
        return self.error_response(int(kind), f"injected {kind}")

    # ---- entry point ---------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/_admin"):
            with self.lock:
                return self._dispatch(self.admin_routes, request)
        with self.lock:
            self.calls[f"{request.method} {request.url.path}"] += 1
            fault = self._take_fault(request.method, request.url.path)
        if fault in ("429", "500", "503"):
            return self.fault_response(fault, request)
        if fault == "blocked":  # a CDN's or firewall's own page in front of the provider, not the provider
            return httpx.Response(
                403, text=BLOCKED_PAGE, headers={"content-type": "text/html; charset=utf-8"}
            )
        if fault == "401_empty":  # a proxy's bare refusal: no body at all
            return httpx.Response(401)
        if fault == "timeout":
            raise httpx.ReadTimeout("sandbox: injected timeout", request=request)
        if fault == "drop":
            raise httpx.RemoteProtocolError("sandbox: injected dropped connection", request=request)
        try:
            response = self.serve_request(request)
        except SandboxTimeout:
            raise httpx.ReadTimeout("sandbox: request timed out", request=request) from None
        except DropConnection:
            raise httpx.RemoteProtocolError("sandbox: connection dropped", request=request) from None
        if fault == "lost_response":  # committed, but the caller never hears back
            raise httpx.ReadTimeout("sandbox: injected lost response", request=request)
        for method, prefix, action in list(self.afterwards):
            if method in ("*", request.method) and request.url.path.startswith(prefix):
                action(request, response)  # e.g. someone edits a document between two page reads
        return response

    def after(
        self, method: str, path_prefix: str, action: Callable[[httpx.Request, httpx.Response], None]
    ) -> None:
        """Runs ``action(request, response)`` once each matching request has been answered, before the
        caller reads the answer: what a person does in the provider while a caller pages (``reset`` forgets
        it). Both sandboxes order pages by last-updated time on every read, as the providers do, so an
        edit made here moves the document to the end of the next page read."""
        with self.lock:
            self.afterwards.append((method.upper(), path_prefix, action))

    def serve_request(self, request: httpx.Request) -> httpx.Response:
        """Dispatch a non-admin request; subclasses may wrap it (rate limits, auth)."""
        with self.lock:
            return self._dispatch(self.routes, request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # ---- faults, calls, apps ---------------------------------------------------------------------
    def inject(self, kind: str, *, method: str = "*", path_prefix: str = "/", count: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        with self.lock:
            self.faults.append(Fault(kind, method.upper(), path_prefix, count))

    def _take_fault(self, method: str, path: str) -> str | None:
        for fault in self.faults:
            if fault.remaining > 0 and fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault.kind
        return None

    def call_count(self, method: str | None = None, path_prefix: str = "/") -> int:
        with self.lock:
            return sum(
                n
                for key, n in self.calls.items()
                if (method is None or key.split(" ", 1)[0] == method)
                and key.split(" ", 1)[1].startswith(path_prefix)
            )

    def register_app(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> OAuthApp:
        with self.lock:
            app = OAuthApp(client_id, client_secret, list(redirect_uris))
            self.apps[client_id] = app
            return app

    def authenticate_client(self, request: httpx.Request) -> OAuthApp | None:
        """Client auth on token/revoke endpoints: HTTP Basic, or client_id/secret in the form."""
        creds = basic_credentials(request)
        if creds is None:
            form = form_body(request) if b"=" in request.content else {}
            creds = (form.get("client_id", ""), form.get("client_secret", ""))
        app = self.apps.get(creds[0])
        if app is None or not secrets.compare_digest(app.client_secret.encode(), creds[1].encode()):
            return None
        return app

    def reset(self) -> None:
        """Forget all data, faults and counts; subclasses extend and re-seed what they must."""
        with self.lock:
            self.faults.clear()
            self.calls.clear()
            self.afterwards.clear()

    def _register_common_admin(self) -> None:
        @self.route("POST", "/_admin/apps")
        def _apps(request: httpx.Request) -> httpx.Response:
            body = json_body(request) or {}
            try:
                app = self.register_app(body["client_id"], body["client_secret"], body["redirect_uris"])
            except (KeyError, TypeError) as err:
                return json_response(400, {"error": f"missing field {err}"})
            return json_response(201, {"client_id": app.client_id, "redirect_uris": app.redirect_uris})

        @self.route("POST", "/_admin/clock")
        def _clock(request: httpx.Request) -> httpx.Response:
            body = json_body(request) or {}
            if "set" in body:
                self.clock.set(datetime.fromisoformat(body["set"]))
            else:
                self.clock.advance(float(body.get("advance_seconds", 0)))
            return json_response(200, {"now": self.clock.now().isoformat()})

        @self.route("POST", "/_admin/faults")
        def _faults(request: httpx.Request) -> httpx.Response:
            body = json_body(request) or {}
            try:
                self.inject(
                    str(body["kind"]),
                    method=body.get("method", "*"),
                    path_prefix=body.get("path_prefix", "/"),
                    count=int(body.get("count", 1)),
                )
            except (KeyError, ValueError) as err:
                return json_response(400, {"error": str(err)})
            return json_response(201, {"pending": [f.__dict__ for f in self.faults]})

        @self.route("GET", "/_admin/calls")
        def _calls(request: httpx.Request) -> httpx.Response:
            return json_response(200, {"calls": dict(self.calls), "total": sum(self.calls.values())})

        @self.route("POST", "/_admin/reset")
        def _reset(request: httpx.Request) -> httpx.Response:
            self.reset()
            return json_response(200, {"reset": True})


# ---- serving on a loopback port ----------------------------------------------------------------

HELD_TIMEOUT_SECONDS = 35.0  # how long a "timeout" fault holds a real socket before closing it


def _make_handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            host = self.headers.get("host") or "127.0.0.1"
            request = httpx.Request(
                self.command, f"http://{host}{self.path}", headers=list(self.headers.items()), content=body
            )
            try:
                response = sandbox.handle(request)
            except httpx.TimeoutException:
                time.sleep(HELD_TIMEOUT_SECONDS)
                self.close_connection = True
                return
            except httpx.TransportError:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            content = response.read()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet: callers read /_admin/calls
            return

    return Handler


def serve(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serves the sandbox on a loopback port in a daemon thread; ``server.shutdown()`` stops it."""
    server = ThreadingHTTPServer((host, port), _make_handler(sandbox))
    server.daemon_threads = True
    sandbox.base_url = f"http://{host}:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name=f"{sandbox.name}-sandbox", daemon=True).start()
    return server
