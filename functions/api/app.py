"""Authenticated application API (Settings -> Integrations, catalog, inventory, exports, margins)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from shared.observability import logger
from shared.services import connections
from shared.services.connections import ConnectionView
from shared.web import caller_organisation, install_conventions

app = APIGatewayHttpResolver(enable_validation=True)
app.enable_swagger(path="/docs", title="Partsemble accounting integrations", version="1.0.0")
install_conventions(app)


class Caller(BaseModel):
    organisation_id: str


class ConnectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    switch_company: bool = False


class ConnectResponse(BaseModel):
    authorize_url: str


@app.get("/me")
def me() -> Caller:
    return Caller(organisation_id=caller_organisation(app))


@app.get("/integrations")
def integrations() -> list[ConnectionView]:
    return connections.status(caller_organisation(app))


@app.post("/integrations/<provider>/connect")
def connect(provider: str, request: ConnectRequest | None = None) -> Response[ConnectResponse]:
    start = connections.start_connect(caller_organisation(app), provider,
                                      switch_company=bool(request and request.switch_company), now=datetime.now(UTC))
    cookie = Cookie(start.cookie_name, start.cookie_value, path=start.cookie_path, http_only=True,
                    secure=app.current_event.headers.get("x-forwarded-proto", "https") == "https",
                    max_age=start.max_age, same_site=SameSite.LAX_MODE)
    return Response(200, content_types.APPLICATION_JSON, ConnectResponse(authorize_url=start.authorize_url),
                    cookies=[cookie])


@app.post("/integrations/<provider>/disconnect")
def disconnect(provider: str) -> ConnectionView:
    return connections.disconnect(caller_organisation(app), provider, datetime.now(UTC))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
