"""Export settings, one row per organisation and provider (``SETTINGS#EXPORT#<provider>``)."""

from __future__ import annotations

from shared.aws import table
from shared.domain.catalog import ExportSettings
from shared.store.keys import export_settings_sk, org_pk


def _key(organisation_id: str, provider: str) -> dict[str, str]:
    return {"pk": org_pk(organisation_id), "sk": export_settings_sk(provider)}


def get_export_settings(organisation_id: str, provider: str) -> ExportSettings | None:
    item = table().get_item(Key=_key(organisation_id, provider), ConsistentRead=True).get("Item")
    if item is None:
        return None
    return ExportSettings.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")})


def put_export_settings(organisation_id: str, provider: str, settings: ExportSettings) -> None:
    table().put_item(Item={**_key(organisation_id, provider), **settings.model_dump(mode="python")})
