"""A loopback HTTP gateway that behaves like the template's HTTP API: it matches the template's routes,
checks bearer JWTs as the JWT authorizer does, answers CORS, builds API Gateway v2 (payload 2.0)
events and calls the handlers in-process."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra.local.context import LocalLambdaContext
from infra.local.devauth import DevIdentityProvider, InvalidToken
from infra.local.stack import ACCOUNT_ID, FunctionSpec, HttpRoute, LocalStack
from shared.observability import logger

TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")
STATIC_ROOT = Path(__file__).resolve().parents[2] / "web"
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _CompiledRoute:
    route: HttpRoute
    function: FunctionSpec
    pattern: re.Pattern[str]
    specificity: tuple[int, int]


def _utf8(body: bytes) -> bool:
    """Whether the body is text; other bytes reach the function base64-encoded, whatever their type says."""
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _compile(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(f"^{regex}$")


class Gateway:
    def __init__(self, stack: LocalStack, identity: DevIdentityProvider) -> None:
        self.stack = stack
        self.identity = identity
        # the requests' time (requestContext.timeEpoch); tests move it to present a request at another time
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.cors = stack.cors()
        routes = []
        for function in stack.functions.values():
            for route in function.routes:
                greedy = "+}" in route.path
                literal = len([s for s in route.path.split("/") if s and not s.startswith("{")])
                routes.append(_CompiledRoute(route, function, _compile(route.path), (int(greedy), -literal)))
        self.routes = sorted(routes, key=lambda r: r.specificity)
        self.invocations: dict[str, int] = {}
        self._lock = threading.Lock()
        # One invocation at a time per function, as in one Lambda container: a handler's module state (the
        # resolver's current event, modules loading on first use) is never shared by two requests at once.
        self._running = {logical_id: threading.Lock() for logical_id in stack.functions}

    # ---- the HTTP API's behaviour ------------------------------------------------------------------
    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        source_ip: str = "127.0.0.1",
    ) -> GatewayResponse:
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        url = urlsplit(target)
        path = url.path or "/"
        if method == "OPTIONS" and "access-control-request-method" in headers:
            return self._preflight(headers)
        static = self._static(method, path)
        if static is not None:
            return static
        match = self._match(method, path)
        if match is None:
            return self._with_cors(headers, _json(404, {"message": "Not Found"}))
        compiled, params = match
        claims: dict[str, Any] | None = None
        if compiled.route.authorized:
            try:
                claims = self.identity.verify(headers.get("authorization"))
            except InvalidToken:
                return self._with_cors(
                    headers, _json(401, {"message": "Unauthorized"}, {"www-authenticate": "Bearer"})
                )
        event = self._event(method, path, url.query, headers, body, compiled, params, claims, source_ip)
        response = self._invoke(compiled.function, event)
        return self._with_cors(headers, response)

    def _match(self, method: str, path: str) -> tuple[_CompiledRoute, dict[str, str]] | None:
        for compiled in self.routes:
            if compiled.route.method not in ("ANY", method):
                continue
            m = compiled.pattern.match(path)
            if m:
                return compiled, m.groupdict()
        return None

    def _event(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        compiled: _CompiledRoute,
        params: dict[str, str],
        claims: dict[str, Any] | None,
        source_ip: str,
    ) -> dict[str, Any]:
        now = self.clock()
        route_key = f"{compiled.route.method} {compiled.route.path}"
        content_type = headers.get("content-type", "")
        is_text = not body or (content_type.startswith(TEXT_TYPES) and _utf8(body))
        query_params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            query_params[key] = f"{query_params[key]},{value}" if key in query_params else value
        cookies = [c.strip() for c in headers.get("cookie", "").split(";") if c.strip()]
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": {k: v for k, v in headers.items() if k != "cookie"},
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": "local",
                "domainName": headers.get("host", "127.0.0.1"),
                "domainPrefix": "local",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route_key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": not is_text,
            "body": (body.decode() if is_text else base64.b64encode(body).decode()) if body else None,
        }
        if cookies:
            event["cookies"] = cookies
        if query_params:
            event["queryStringParameters"] = query_params
        if params:
            event["pathParameters"] = params
        if claims is not None:  # API Gateway passes JWT claims as strings
            event["requestContext"]["authorizer"] = {
                "jwt": {
                    "claims": {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()},
                    "scopes": None,
                }
            }
        return event

    def _invoke(self, function: FunctionSpec, event: dict[str, Any]) -> GatewayResponse:
        with self._lock:
            self.invocations[function.logical_id] = self.invocations.get(function.logical_id, 0) + 1
        context = LocalLambdaContext(function.logical_id, function.timeout)
        try:
            with self._running[function.logical_id]:
                result = function.handler()(event, context)
        except Exception:  # what API Gateway answers when the function itself fails
            logger.exception("function failed", extra={"function": function.logical_id})
            return _json(500, {"message": "Internal Server Error"})
        if not isinstance(result, dict) or "statusCode" not in result:
            return _json(200, result)
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ",".join(values)
        return GatewayResponse(int(result["statusCode"]), headers, body, list(result.get("cookies") or []))

    # ---- CORS and static files -----------------------------------------------------------------------
    def _origin_allowed(self, origin: str | None) -> bool:
        return bool(origin) and origin in self.cors.get("AllowOrigins", [])

    def _preflight(self, headers: dict[str, str]) -> GatewayResponse:
        origin = headers.get("origin")
        if not self._origin_allowed(origin):
            return GatewayResponse(204, {}, b"")
        return GatewayResponse(
            204,
            {
                "access-control-allow-origin": str(origin),
                "access-control-allow-methods": ",".join(self.cors.get("AllowMethods", [])),
                "access-control-allow-headers": ",".join(self.cors.get("AllowHeaders", [])),
                "access-control-allow-credentials": str(self.cors.get("AllowCredentials", False)).lower(),
                "access-control-max-age": str(self.cors.get("MaxAge", 0)),
            },
            b"",
        )

    def _with_cors(self, headers: dict[str, str], response: GatewayResponse) -> GatewayResponse:
        origin = headers.get("origin")
        if self._origin_allowed(origin):
            response.headers["access-control-allow-origin"] = str(origin)
            if exposed := self.cors.get("ExposeHeaders"):
                response.headers["access-control-expose-headers"] = ",".join(exposed)
            if self.cors.get("AllowCredentials"):
                response.headers["access-control-allow-credentials"] = "true"
        return response

    def _static(self, method: str, path: str) -> GatewayResponse | None:
        """The Settings -> Integrations page, served like the static assets it deploys as."""
        if method != "GET" or not (path == "/" or path.startswith("/app/")):
            return None
        relative = "index.html" if path == "/" else path.removeprefix("/app/")
        file = (STATIC_ROOT / relative).resolve()
        if STATIC_ROOT not in file.parents or not file.is_file():
            return None
        return GatewayResponse(
            200,
            {
                "content-type": STATIC_TYPES.get(file.suffix, "application/octet-stream"),
                "cache-control": "no-store",
            },
            file.read_bytes(),
        )


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> GatewayResponse:
    return GatewayResponse(
        status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()
    )


LOCAL_PREFIX = "/_local/"  # the local-only helpers' paths; nothing of the API's is under it


def _unknown_helper(asked: str, helpers: dict[str, Any]) -> GatewayResponse:
    message = f"no local helper {asked}; there are: {', '.join(sorted(helpers))}"
    return _json(404, {"error": "NotFound", "message": message})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    gateway: Gateway
    local_routes: dict[str, Any]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        key = f"{self.command} {urlsplit(self.path).path}"
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            lowered = name.lower()
            headers[lowered] = f"{headers[lowered]},{value}" if lowered in headers else value
        if key in self.server.local_routes:
            response = self.server.local_routes[key](body)
        elif urlsplit(self.path).path.startswith(LOCAL_PREFIX):  # a mistyped helper: not the JWT's 401
            response = _unknown_helper(key, self.server.local_routes)
        else:
            response = self.server.gateway.request(
                self.command, self.path, headers, body, self.client_address[0]
            )
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        for cookie in response.cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


def bind(host: str = "127.0.0.1", port: int = 3000) -> _Server:
    """Binds the gateway's socket (port 0: any free port) so its URL is known before the stack exists."""
    return _Server((host, port), _Handler)


def start(server: _Server, gateway: Gateway, local_routes: dict[str, Any] | None = None) -> None:
    """Serves ``gateway`` in a daemon thread. ``local_routes`` maps ``"METHOD /path"`` to
    ``callable(body: bytes) -> GatewayResponse`` for local-only helpers such as minting tokens."""
    server.gateway = gateway
    server.local_routes = local_routes or {}
    threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
