"""A supplier's name reaches the provider inside a query (QBO's `DisplayName = '...'`, Xero's
`Name=="..."`) before it is created there: whatever characters the name holds, the query names it and only
it, so the supplier is created once and found again, never refused as a malformed query."""

from __future__ import annotations

import pytest

from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero_demo import AU_TENANT_ID
from tests.conftest import Api, Sandboxes
from tests.integration.connect_flow import connect

NAMES = [
    "Harbour\\",  # a trailing backslash would escape the literal's closing quote
    "Harbour\\Marine",
    "O'Brien\\",
    "Kelly\\'s Parts",  # a backslash before a quote would end the literal and let the rest into the query
    'Shed "North" \\ Co',
]


@pytest.mark.parametrize("provider", ["qbo", "xero"])
def test_a_supplier_named_with_backslashes_and_quotes_is_created_once_and_found_again(
    api: Api, sandboxes: Sandboxes, provider: str
) -> None:
    connect(api, sandboxes, provider, choose=[AU_TENANT_ID] if provider == "xero" else None)
    for name in NAMES:
        first = api.call("POST", f"/integrations/{provider}/suppliers", json_body={"name": name})
        assert first.status == 200, (name, first.body)
        assert first.json()["supplier"]["name"] == name
        assert first.json()["linked_existing"] is False
        again = api.call("POST", f"/integrations/{provider}/suppliers", json_body={"name": name})
        assert again.status == 200, (name, again.body)
        assert again.json()["linked_existing"] is True, name
        assert again.json()["supplier"]["supplier_id"] == first.json()["supplier"]["supplier_id"]
    if provider == "qbo":
        names = [r["DisplayName"] for r in sandboxes.qbo.list_records(DEMO_REALM_ID, "Vendor")]
    else:
        names = [r["Name"] for r in sandboxes.xero.list_records(AU_TENANT_ID, "Contacts")]
    assert sorted(n for n in names if n in NAMES) == sorted(NAMES)
