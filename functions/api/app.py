"""Authenticated application API (Settings -> Integrations, catalog, inventory, exports, margins)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from shared.observability import logger
from shared.web import caller_organisation, install_conventions

app = APIGatewayHttpResolver(enable_validation=True)
app.enable_swagger(path="/docs", title="Partsemble accounting integrations", version="1.0.0")
install_conventions(app)


class Caller(BaseModel):
    organisation_id: str


@app.get("/me")
def me() -> Caller:
    return Caller(organisation_id=caller_organisation(app))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
