"""HTTP conventions of the API handlers: errors mapped to JSON by type, the caller's organisation,
JSON-only request bodies. One place, so every route answers bad input the same way."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from shared.aws import is_outage
from shared.config import settings
from shared.errors import BadRequest, Forbidden, InvalidFields, RateLimited, ServiceError
from shared.observability import logger

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
ACCEPTED_BODY_TYPES = ("application/json",)
UPLOAD_PATHS = frozenset({"/products/import"})  # these also take multipart/form-data


def error_response(status: HTTPStatus, code: str, message: str, **extra: Any) -> Response[Any]:
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body={"error": code, "message": message, **extra},
    )


def service_error_response(err: ServiceError) -> Response[Any]:
    logger.info("request refused", extra={"error": err.code, "reason": err.message})
    response = error_response(err.http_status, err.code, err.message, **err.response_fields())
    if err.http_status == HTTPStatus.SERVICE_UNAVAILABLE:  # a dependency outage (a provider's too)
        response.headers.setdefault("Retry-After", str(OUTAGE_RETRY_AFTER))
    if isinstance(err, RateLimited):  # the provider's own wait, whole seconds (RFC 9110 section 10.2.3)
        response.headers["Retry-After"] = str(max(1, math.ceil(err.retry_after)))
    return response


def caller_organisation(app: APIGatewayHttpResolver) -> str:
    """The organisation id from the verified JWT (never from the path or the body)."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    organisation = claims.get(settings().organisation_claim)
    if not isinstance(organisation, str) or not organisation:
        raise Forbidden("the access token names no organisation")
    return organisation


def request_time(app: APIGatewayHttpResolver) -> datetime:
    """When API Gateway received the request (``requestContext.timeEpoch``, in milliseconds): the one "now"
    of a request, so a test sets it in the event instead of patching the clock."""
    return datetime.fromtimestamp(app.current_event.request_context.time_epoch / 1000, UTC)


def media_type_in_lower_case(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its content type's media type in lower case: media types are case-insensitive (RFC 9110
    section 8.3.1), and Powertools' validation compares them as sent, refusing "Application/JSON"."""
    headers = event.get("headers") or {}
    if sent := headers.get("content-type"):
        media_type, separator, parameters = sent.partition(";")
        headers["content-type"] = media_type.strip().lower() + separator + parameters
    return event


def same_json(text: str) -> str:
    """A JSON body in one spelling, whatever its spacing and key order (a client may serialise its retry
    anew); any other text as it is. A number keeps its digits (read as ``Decimal``, not a float that would
    make ``123456789012.123456`` and ``123456789012.123457`` one request)."""
    try:
        # a number is read as json_body reads it (1E2 as 100) and written as its digits (str: a Decimal is
        # the only value json.loads gives here that json.dumps can't write)
        return json.dumps(
            json.loads(text, parse_float=_figure_read), sort_keys=True, separators=(",", ":"), default=str
        )
    except (ValueError, RecursionError):
        return text


def _figure_read(text: str) -> Decimal:
    """A JSON number with a fraction or exponent, exactly: ``1E2`` as ``100``, as a float read it before (an
    exponent far out of any bound is left as it is, for the bounds to refuse without writing its zeros)."""
    number = Decimal(text)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and 0 < exponent <= 64:
        return Decimal(f"{number:f}")
    return number


def json_body(text: str) -> Any:
    """The request body as JSON, its numbers with a fraction or exponent read as ``Decimal``: a binary float
    would round a figure the bounds allow (``123456789012.123456`` read as ``123456789012.12346``), and the
    record would hold another figure than the one sent. What ``json.loads`` can't read without an error of
    its own (nesting past the recursion limit, an integer of more than 4,300 digits) is refused as invalid
    JSON, not a 500."""
    try:
        return json.loads(text, parse_float=_figure_read)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        problem = "it nests arrays or objects too deeply"
    except ValueError:
        problem = "a number in it has more digits than can be read"
    error = {"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}}
    raise RequestValidationError([{**error, "ctx": {"error": problem}}])


PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")
OUTAGE_RETRY_AFTER = 5  # seconds a client waits before trying again after a dependency outage


def _problem(error: dict[str, Any]) -> str:
    """Pydantic's message without the "Value error, " it puts before a validator's own words."""
    message = str(error.get("msg", "invalid"))
    for prefix in PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def _describe(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
            "problem": _problem(e),
        }
        for e in errors
    ]


def _unsupported_body(app: APIGatewayHttpResolver) -> Response[Any] | None:
    """415 for a body sent as anything but JSON (or, on an upload route, multipart/form-data)."""
    event = app.current_event
    if event.http_method in BODY_METHODS and event.body:
        content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
        upload = event.path in UPLOAD_PATHS and content_type == "multipart/form-data"
        if content_type not in ACCEPTED_BODY_TYPES and not upload:
            return error_response(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                f"send the body as application/json, not {content_type or 'no content type'}",
            )
    return None


def json_bodies_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Routes without a body model (Powertools' validation runs before this middleware on the others, so
    their exception handlers ask ``_unsupported_body`` first)."""
    return _unsupported_body(app) or next_middleware(app)


def _invalid_json(errors: list[dict[str, Any]]) -> Response[Any] | None:
    """The one error shape for a body that is not JSON at all (instead of pydantic's "JSON decode error")."""
    for error in errors:
        if error.get("type") == "json_invalid":
            loc = [p for p in error.get("loc", ()) if p != "body"]
            reason = str((error.get("ctx") or {}).get("error") or "it could not be parsed")
            where = f" (at character {loc[0]})" if loc else ""
            problem = f"{reason[:1].lower()}{reason[1:]}{where}"
            return error_response(
                HTTPStatus.BAD_REQUEST,
                "InvalidRequest",
                f"the body is not valid JSON: {problem}",
                details=[{"field": "body", "problem": f"not valid JSON: {problem}"}],
            )
    return None


# An upload's body holds one file of at most 5 MiB (the import's own limit, which names the size): past this,
# or past this many parts, it is refused before the MIME parser runs, whose time grows with the parts and
# headers it is given (a 10 MB body of 170,000 empty parts took 19 s of CPU).
MAX_UPLOAD_BODY = 7 * 1024 * 1024  # 5 MiB as base64 in JSON, with room for the rest
MAX_UPLOAD_PARTS = 16
NESTED_MULTIPART = re.compile(rb"(?i)content-type:[ \t]*multipart/")
NOT_BASE64 = "not base64: encode the file's bytes as base64 (RFC 4648: A-Z, a-z, 0-9, + and /, = padding)"


def uploaded_file(app: APIGatewayHttpResolver) -> bytes:
    """The file of an upload: multipart/form-data (field ``file``) or JSON ``{"content_base64": ...}``."""
    event = app.current_event
    raw = base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode()
    if len(raw) > MAX_UPLOAD_BODY:
        raise BadRequest(
            f"the upload is {len(raw) / (1024 * 1024):.1f} MiB; a product file may be at most 5 MiB"
        )
    content_type = event.headers.get("content-type") or ""
    if content_type.lower().startswith("multipart/form-data"):
        from email import policy  # on first use: only uploads need the MIME parser
        from email.parser import BytesParser

        head = f"content-type: {content_type}\r\n\r\n".encode()
        boundary = str(BytesParser(policy=policy.HTTP).parsebytes(head).get_param("boundary") or "")
        # a part that is itself multipart would be parsed whole too, past this count: refused
        nested = NESTED_MULTIPART.search(raw) is not None
        if nested or (boundary and raw.count(f"--{boundary}".encode()) > MAX_UPLOAD_PARTS + 1):
            raise BadRequest(
                f"the upload has more than {MAX_UPLOAD_PARTS} parts; send the file alone (field 'file')"
            )

        message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                payload = part.get_payload(decode=True)
                return payload if isinstance(payload, bytes) else b""
        raise _upload_refused("file", "missing: send the product file in the form field named 'file'")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise BadRequest(
            "send the file as multipart/form-data (field 'file') or as JSON "
            '{"filename": ..., "content_base64": ...}'
        )
    encoded = body.get("content_base64")
    if not isinstance(encoded, str):
        raise _upload_refused("content_base64", "missing: give the file's bytes as base64")
    try:
        return base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        raise _upload_refused("content_base64", NOT_BASE64) from None


def _upload_refused(field: str, problem: str) -> InvalidFields:
    return InvalidFields(f"{field}: {problem}", [{"field": field, "problem": problem}])


def dependency_outage(err: BaseException) -> bool:
    """Whether ``err`` is an AWS dependency's outage (``shared.aws.is_outage``): for a handler that answers
    one in its own shape (the OAuth callback's page), as ``unexpected`` does in JSON."""
    return is_outage(err)


def unexpected(err: Exception) -> Response[Any]:
    """503 with Retry-After for a dependency outage (nothing was changed); otherwise a logged 500."""
    if is_outage(err):
        logger.warning("dependency unavailable", extra={"reason": repr(err)[:500]})
        response = error_response(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "a service Partsemble depends on is busy or unavailable right now; nothing was changed, "
            "try again shortly",
        )
        response.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER)
        return response
    logger.exception("unexpected error")
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "InternalError",
        "an unexpected error occurred; it has been logged",
    )


def install_conventions(app: APIGatewayHttpResolver) -> None:
    """Error mapping, 404s and the JSON-only rule for an API resolver."""
    app.use(middlewares=[json_bodies_only])

    app.exception_handler(ServiceError)(service_error_response)

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_content_type(_: RequestUnsupportedContentType) -> Response[Any]:
        return _unsupported_body(app) or error_response(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", "send the body as application/json"
        )

    @app.exception_handler(RequestValidationError)
    def _invalid_request(err: RequestValidationError) -> Response[Any]:
        errors = list(err.errors())
        refused = _unsupported_body(app) or _invalid_json(errors)
        if refused is not None:
            return refused
        details = _describe(errors)
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        return error_response(
            HTTPStatus.BAD_REQUEST, "InvalidRequest", f"invalid request: {summary}", details=details
        )

    @app.exception_handler(UnicodeDecodeError)
    def _not_text(err: UnicodeDecodeError) -> Response[Any]:
        event = app.current_event
        content_type = (event.headers.get("content-type") or "application/json").split(";")[0].strip()
        if event.body and content_type.lower() in ACCEPTED_BODY_TYPES:
            problem = f"not valid JSON: it is not UTF-8 text (byte {err.start})"
            return error_response(
                HTTPStatus.BAD_REQUEST,
                "InvalidRequest",
                f"the body is {problem}",
                details=[{"field": "body", "problem": problem}],
            )
        return unexpected(err)

    @app.not_found
    def _no_route(_: Exception) -> Response[Any]:
        event = app.current_event
        # the resolver's route table (Powertools has no public lookup): a path that exists under other
        # methods is a 405 naming them, as RFC 9110 section 15.5.6 asks
        routes = [*app._static_routes, *app._dynamic_routes]
        allowed = sorted({r.method for r in routes if r.rule.match(event.path)} - {"OPTIONS"})
        if allowed:
            response = error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                f"{event.path} takes {', '.join(allowed)}, not {event.http_method}",
            )
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return error_response(
            HTTPStatus.NOT_FOUND, "NotFound", f"no route for {event.http_method} {event.path}"
        )

    @app.exception_handler(Exception)
    def _unexpected(err: Exception) -> Response[Any]:
        # a body of a type the route does not take is refused as such, whatever reading it raised (Powertools
        # reads multipart/form-data on a JSON route, and raises ValueError when it names no boundary)
        refused = _unsupported_body(app) if isinstance(err, ValueError) else None
        return refused or unexpected(err)
