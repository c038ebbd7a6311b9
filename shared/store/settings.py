"""Export settings, one row per organisation and provider (``SETTINGS#EXPORT#<provider>``).

The row also holds ``planned_mode``: the mode the first export was planned in, taken by a conditional write
before that plan, and from then on the only mode a save accepts. The check and the write are one condition
in DynamoDB, so a save switching the mode and an export planning in the old one can never both succeed."""

from __future__ import annotations

from shared.aws import table
from shared.domain.catalog import ExportMode, ExportSettings
from shared.store.dynamo import conditional, set_clause
from shared.store.keys import export_settings_sk, org_pk

UNLOCKED_OR = "attribute_not_exists(planned_mode) OR planned_mode = :mode"


def _key(organisation_id: str, provider: str) -> dict[str, str]:
    return {"pk": org_pk(organisation_id), "sk": export_settings_sk(provider)}


def get_export_settings(organisation_id: str, provider: str) -> ExportSettings | None:
    item = table().get_item(Key=_key(organisation_id, provider), ConsistentRead=True).get("Item")
    if item is None:
        return None
    return ExportSettings.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")})


def put_export_settings(organisation_id: str, provider: str, settings: ExportSettings) -> bool:
    """Saves the mode and accounts, unless an export was already planned in another mode (False)."""
    fields = settings.model_dump(mode="python", exclude={"planned_mode"})
    assignments, names, values = set_clause(fields)
    written = conditional(
        lambda: table().update_item(
            Key=_key(organisation_id, provider),
            UpdateExpression=f"SET {assignments}",
            ConditionExpression=UNLOCKED_OR,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={**values, ":mode": settings.mode},
        )
    )
    return written is not None


def unlock_mode(organisation_id: str, provider: str) -> None:
    """Another company is connected: its first export fixes its own mode (the mode planned so far is the
    company before's)."""
    conditional(
        lambda: table().update_item(
            Key=_key(organisation_id, provider),
            UpdateExpression="REMOVE planned_mode",
            ConditionExpression="attribute_exists(pk)",
        )
    )


def lock_mode(organisation_id: str, provider: str, mode: ExportMode) -> bool:
    """Fixes ``mode`` before an export is planned in it: False when the saved mode is another by now."""
    written = conditional(
        lambda: table().update_item(
            Key=_key(organisation_id, provider),
            UpdateExpression="SET planned_mode = :mode",
            ConditionExpression=f"#m = :mode AND ({UNLOCKED_OR})",
            ExpressionAttributeNames={"#m": "mode"},
            ExpressionAttributeValues={":mode": mode},
        )
    )
    return written is not None
