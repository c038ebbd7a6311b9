"""Public OAuth redirect target: completes a connection (or lets the person choose the Xero
organisation) and answers a small page that reports the result to the opener window."""

from __future__ import annotations

import shared.coldstart  # first: collection pauses while the imports below run

from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import callback_page
from shared.config import settings
from shared.errors import BadRequest, ServiceError
from shared.observability import logger
from shared.services import connections, oauth_state
from shared.services.connections import CallbackOutcome
from shared.web import OUTAGE_RETRY_AFTER, dependency_outage, request_time

app = APIGatewayHttpResolver()


def _browser_binding(provider: str) -> str | None:
    prefix = f"{connections.cookie_name(provider)}="
    return next((c[len(prefix) :] for c in app.current_event.cookies or [] if c.startswith(prefix)), None)


def _binding_cookie(provider: str, value: str, max_age: int) -> Cookie:
    return Cookie(
        connections.cookie_name(provider),
        value,
        path=connections.callback_path(provider),
        http_only=True,
        secure=settings().public_base_url.startswith("https://"),  # a __Secure- cookie is set or cleared so
        max_age=max_age,
        same_site=SameSite.LAX_MODE,
    )


def _page(provider: str, document: str, headers: dict[str, str], status: int = 200) -> Response[str]:
    # The binding cookie has done its job once the flow ends; clear it.
    clear = _binding_cookie(provider, "", 0)
    return Response(status, "text/html; charset=utf-8", document, headers=headers, cookies=[clear])


def _outcome_page(outcome: CallbackOutcome) -> Response[str]:
    origin = settings().app_origin
    if outcome.status == "choose":
        document, headers = callback_page.choose(
            outcome.provider,
            outcome.choice_token or "",
            [(c.tenant_id, c.name) for c in outcome.choices],
            origin,
            action=connections.callback_path(outcome.provider),
        )
        # the choice lives as long as a state from now: so does the cookie it needs, set at the connect's
        # start (the consent may have taken most of its ten minutes)
        renewed = _binding_cookie(
            outcome.provider, _browser_binding(outcome.provider) or "", oauth_state.LIFETIME_SECONDS
        )
        return Response(200, "text/html; charset=utf-8", document, headers=headers, cookies=[renewed])
    document, headers = callback_page.connected(outcome.provider, outcome.company_name or "", origin)
    return _page(outcome.provider, document, headers)


@app.get("/oauth/<provider>/callback")
def callback(provider: str) -> Response[str]:
    params = dict(app.current_event.query_string_parameters or {})
    return _outcome_page(
        connections.complete_callback(provider, params, _browser_binding(provider), request_time(app))
    )


@app.post("/oauth/<provider>/callback")
def choose(provider: str) -> Response[str]:
    try:
        form = dict(parse_qsl(app.current_event.decoded_body or ""))
    except UnicodeDecodeError:
        raise BadRequest("the form sent is not UTF-8 text; choose the organisation again") from None
    return _outcome_page(
        connections.choose_tenant(
            provider, form.get("choice"), form.get("tenant_id"), _browser_binding(provider), request_time(app)
        )
    )


OUTAGE_REASON = (
    "a service Partsemble depends on is busy or unavailable right now, so the connection could not be "
    "completed; try again in a moment"
)


def _failure_page(code: str, reason: str, status: int) -> Response[str]:
    provider = (app.current_event.path_parameters or {}).get("provider", "")
    document, headers = callback_page.failed(provider, code, reason, settings().app_origin)
    if status == HTTPStatus.SERVICE_UNAVAILABLE:  # a dependency's outage (a provider's too): try again soon
        headers = {**headers, "Retry-After": str(OUTAGE_RETRY_AFTER)}
    return _page(provider, document, headers, status)


@app.exception_handler(ServiceError)
def refused(err: ServiceError) -> Response[str]:
    logger.info("connection not completed", extra={"error": err.code, "reason": err.message})
    return _failure_page(err.code, err.message, int(err.http_status))


@app.exception_handler(Exception)
def crashed(err: Exception) -> Response[str]:
    # DynamoDB, KMS or Secrets Manager throttled or down: a new consent no connection holds was ended
    # (connections.complete_callback); the person tries again shortly
    if dependency_outage(err):
        logger.warning("connection not completed: dependency unavailable", extra={"reason": repr(err)[:500]})
        return _failure_page("ServiceUnavailable", OUTAGE_REASON, HTTPStatus.SERVICE_UNAVAILABLE)
    logger.exception("connection failed unexpectedly")
    return _failure_page("InternalError", "something went wrong on our side; it has been logged", 500)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


shared.coldstart.loaded()  # what the imports and this module made is frozen; collection resumes
