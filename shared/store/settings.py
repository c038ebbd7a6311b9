"""Export settings, one row per organisation and provider (``SETTINGS#EXPORT#<provider>``)."""

from __future__ import annotations

from pydantic import Field

from shared.aws import table
from shared.domain.catalog import ExportMode, Role
from shared.model import Model
from shared.store.keys import export_settings_sk, org_pk


class ExportSettings(Model):
    """The chosen mode and the account id of each role that has one."""

    mode: ExportMode = "journals"
    accounts: dict[Role, str] = Field(default_factory=dict)
    updated_at: str | None = None

    @property
    def quantity_mode(self) -> bool:
        """QBO inventory mode: quantities posted, QuickBooks values them and books its own COGS."""
        return self.mode == "inventory_adjustments"

    def account(self, role: Role) -> str | None:
        return self.accounts.get(role)


def _key(organisation_id: str, provider: str) -> dict[str, str]:
    return {"pk": org_pk(organisation_id), "sk": export_settings_sk(provider)}


def get_export_settings(organisation_id: str, provider: str) -> ExportSettings | None:
    item = table().get_item(Key=_key(organisation_id, provider), ConsistentRead=True).get("Item")
    return None if item is None else ExportSettings.model_validate(item)


def put_export_settings(organisation_id: str, provider: str, settings: ExportSettings) -> None:
    table().put_item(Item={**_key(organisation_id, provider), **settings.model_dump(exclude_none=True)})
