"""The base of the service's pydantic models: each model's validator is built on first use, not at import.

A cold start imports every model its handler might need but validates only a few of them, so deferring the
schema build (pydantic's ``defer_build``) keeps the others from costing import time."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
