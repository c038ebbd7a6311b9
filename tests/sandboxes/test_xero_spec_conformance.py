"""Real Xero sandbox responses checked against the copied Xero OpenAPI spec (v16.1.0)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30ReadValidator

from infra.sandboxes.xero import XeroSandbox
from infra.sandboxes.xero_demo import (
    AU_TENANT_ID,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_REDIRECT_URI,
    DEMO_USERNAME,
    NZ_TENANT_ID,
)

SPECS = Path(__file__).resolve().parents[2] / "infra" / "sandboxes" / "specs"
API = "/api.xro/2.0"
MS_DATE = re.compile(r"/Date\(-?\d+([+-]\d{4})?\)/")
ENVELOPE = {"Id", "Status", "ProviderName", "DateTimeUTC"}


def load(name: str) -> dict[str, Any]:
    with (SPECS / name).open("rb") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=yaml.CSafeLoader)
    return spec


@pytest.fixture(scope="session")
def accounting_spec() -> dict[str, Any]:
    return load("xero_accounting.yaml")


@pytest.fixture(scope="session")
def identity_spec() -> dict[str, Any]:
    return load("xero-identity.yaml")


def check(
    spec: dict[str, Any],
    schema_name: str,
    instance: Any,
    *,
    extra: frozenset[str] = frozenset(),
    strict: bool = True,
    formats: bool = True,
) -> None:
    """Validates against ``#/components/schemas/<name>``; ``strict`` also refuses undeclared fields."""
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    checker = OAS30ReadValidator.FORMAT_CHECKER if formats else None
    validator = OAS30ReadValidator(root, format_checker=checker)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, errors
    if strict:
        schema = spec["components"]["schemas"][schema_name]
        undeclared = [
            f for f in _undeclared(spec, schema, instance, schema_name) if f.split(" ")[0] not in extra
        ]
        assert not undeclared, undeclared


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _undeclared(spec: dict[str, Any], schema: dict[str, Any], instance: Any, where: str) -> Iterator[str]:
    schema = _resolve(spec, schema)
    if isinstance(instance, list) and "items" in schema:
        for n, item in enumerate(instance):
            yield from _undeclared(spec, schema["items"], item, f"{where}[{n}]")
    elif isinstance(instance, dict) and "properties" in schema:
        for key, value in instance.items():
            prop = schema["properties"].get(key)
            if prop is None:
                if key not in ENVELOPE:
                    yield f"{where}.{key} is not in the spec"
                continue
            if prop.get("x-is-msdate") and not MS_DATE.fullmatch(str(value)):
                yield f"{where}.{key} is not an MS date: {value}"
            yield from _undeclared(spec, prop, value, f"{where}.{key}")


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    sandbox = XeroSandbox(seed=True)
    with httpx.Client(transport=sandbox.transport(), base_url="http://xero.sandbox") as client:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": DEMO_CLIENT_ID,
                "redirect_uri": DEMO_REDIRECT_URI,
                "scope": "offline_access openid accounting.settings accounting.invoices "
                "accounting.manualjournals accounting.contacts accounting.reports.trialbalance.read "
                "accounting.reports.balancesheet.read accounting.reports.profitandloss.read "
                "accounting.journals.read",
                "state": "s",
            }
        )
        action = f"/identity/connect/authorize?{query}"
        picker = client.post(
            action, data={"step": "login", "username": DEMO_USERNAME, "password": DEMO_PASSWORD}
        )
        match = re.search(r'name="session" value="([^"]+)"', picker.text)
        assert match, picker.text
        session_id = match.group(1)
        form = urlencode(
            [
                ("step", "consent"),
                ("session", session_id),
                ("action", "allow"),
                ("tenant_id", AU_TENANT_ID),
                ("tenant_id", NZ_TENANT_ID),
            ]
        )
        done = client.post(
            action, content=form, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
        tokens = client.post(
            "/connect/token",
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT_URI},
        ).json()
        client.headers.update(
            {"authorization": f"Bearer {tokens['access_token']}", "accept": "application/json"}
        )
        yield client, tokens


def get(session: tuple[httpx.Client, dict[str, str]], path: str, **params: Any) -> Any:
    client, _ = session
    response = client.get(f"{API}/{path}", params=params, headers={"xero-tenant-id": AU_TENANT_ID})
    assert response.status_code == 200, response.text
    return response.json()


def test_identity_token_and_connections(identity_spec: dict[str, Any], session: Any) -> None:
    client, tokens = session
    # Xero's token response carries ``scope`` although the identity spec's AccessToken omits it
    check(identity_spec, "AccessToken", tokens, extra=frozenset({"AccessToken.scope"}))
    connections = client.get("/connections").json()
    assert len(connections) == 2
    for row in connections:
        # Xero writes these without a zone, like the spec's own example "2019-12-07T18:46:19.5165400",
        # which a strict RFC 3339 date-time check refuses; the shape is checked here instead
        check(identity_spec, "Connection", row, formats=False)
        for name in ("createdDateUtc", "updatedDateUtc"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", row[name])


@pytest.mark.parametrize(
    ("path", "params", "schema"),
    [
        ("Organisation", {}, "Organisations"),
        ("Accounts", {}, "Accounts"),
        ("Items", {}, "Items"),
        ("Contacts", {"page": 1, "includeArchived": "true"}, "Contacts"),
        ("Invoices", {"page": 1}, "Invoices"),
        ("Invoices", {}, "Invoices"),
        ("CreditNotes", {"page": 1}, "CreditNotes"),
    ],
)
def test_reads_match_the_spec(
    accounting_spec: dict[str, Any], session: Any, path: str, params: dict[str, Any], schema: str
) -> None:
    body = get(session, path, **params)
    assert body[schema], f"{path} returned nothing to check"
    check(accounting_spec, schema, body)


def test_manual_journal_create_and_read_match_the_spec(accounting_spec: dict[str, Any], session: Any) -> None:
    client, _ = session
    journal = {
        "Narration": "Spec check",
        "Date": "2026-10-31",
        "Status": "POSTED",
        "Url": "https://app.example/1",
        "JournalLines": [
            {"AccountCode": "310", "LineAmount": 12.5, "Description": "COGS"},
            {"AccountCode": "630", "LineAmount": -12.5, "Description": "Inventory", "Tracking": []},
        ],
    }
    created = client.put(
        f"{API}/ManualJournals", json={"ManualJournals": [journal]}, headers={"xero-tenant-id": AU_TENANT_ID}
    )
    assert created.status_code == 200
    check(accounting_spec, "ManualJournals", created.json())
    journal_id = created.json()["ManualJournals"][0]["ManualJournalID"]
    check(accounting_spec, "ManualJournals", get(session, f"ManualJournals/{journal_id}"))
    check(accounting_spec, "ManualJournals", get(session, "ManualJournals", page=1))
    odd = {
        **journal,
        "JournalLines": [{"AccountCode": "476", "LineAmount": 1}, {"AccountCode": "630", "LineAmount": 2}],
    }
    mixed = client.put(
        f"{API}/ManualJournals",
        params={"summarizeErrors": "false"},
        json={"ManualJournals": [journal, odd]},
        headers={"xero-tenant-id": AU_TENANT_ID},
    )
    assert [j["StatusAttributeString"] for j in mixed.json()["ManualJournals"]] == ["OK", "ERROR"]
    check(accounting_spec, "ManualJournals", mixed.json())


def test_validation_exception_matches_the_error_schema(accounting_spec: dict[str, Any], session: Any) -> None:
    client, _ = session
    response = client.put(
        f"{API}/Contacts",
        json={"Contacts": [{"Name": "Harbour Fabrication"}]},
        headers={"xero-tenant-id": AU_TENANT_ID},
    )
    assert response.status_code == 400
    check(accounting_spec, "Error", response.json(), strict=False)  # Elements echo the submitted object
    element = response.json()["Elements"][0]
    check(accounting_spec, "Contact", element)


def test_trial_balance_matches_the_spec(accounting_spec: dict[str, Any], session: Any) -> None:
    client, _ = session
    journal = {
        "Narration": "Trial balance spec check",
        "Date": "2026-10-30",
        "Status": "POSTED",
        "JournalLines": [
            {"AccountCode": "310", "LineAmount": 9.5},
            {"AccountCode": "630", "LineAmount": -9.5},
        ],
    }
    created = client.put(
        f"{API}/ManualJournals", json={"ManualJournals": [journal]}, headers={"xero-tenant-id": AU_TENANT_ID}
    )
    assert created.status_code == 200, created.text
    body = get(session, "Reports/TrialBalance", date="2026-10-31")
    check(accounting_spec, "ReportWithRows", body)
    rows = body["Reports"][0]["Rows"]
    assert {r["RowType"] for r in rows} == {"Header", "Section"}
    assert any(row["RowType"] == "Row" for section in rows[1:] for row in section["Rows"])


def test_journals_and_the_statements_match_the_spec(accounting_spec: dict[str, Any], session: Any) -> None:
    """GET /Journals (the seeded sales, bills and credit notes among them), a single journal, and the
    Balance Sheet and Profit and Loss reports, each against the spec's schema."""
    journals = get(session, "Journals")
    check(accounting_spec, "Journals", journals)
    kinds = {j["SourceType"] for j in journals["Journals"]}
    assert {"ACCREC", "ACCPAY", "ACCRECCREDIT"} <= kinds
    one = get(session, f"Journals/{journals['Journals'][0]['JournalID']}")
    check(accounting_spec, "Journals", one)
    for report, params in (
        ("BalanceSheet", {"date": "2026-10-31", "periods": "2", "timeframe": "MONTH"}),
        ("ProfitAndLoss", {"fromDate": "2026-07-01", "toDate": "2026-10-31"}),
    ):
        body = get(session, f"Reports/{report}", **params)
        check(accounting_spec, "ReportWithRows", body)
        assert body["Reports"][0]["ReportType"] == report
