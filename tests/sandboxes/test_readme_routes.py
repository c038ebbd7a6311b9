"""The README's section on the sandboxes names routes an outside user relies on (their clients' endpoints and
the admin routes that stand in for a person in QuickBooks or Xero): each is served by the sandbox it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.sandboxes.common import Sandbox
from infra.sandboxes.qbo import QboSandbox
from infra.sandboxes.qbo_demo import DEMO_REALM_ID
from infra.sandboxes.xero import XeroSandbox
from infra.sandboxes.xero_demo import AU_TENANT_ID

README = Path(__file__).resolve().parents[2] / "README.md"
TITLE = "### The sandboxes, for the providers' own clients"
ROUTE = re.compile(r"`(GET|POST|PUT|DELETE) (/[^`\s]*)")
PLACES = {
    "{realm}": DEMO_REALM_ID,
    "{entity}": "invoice",
    "{id}": "1",
    "{tenant}": AU_TENANT_ID,
    "{Collection}": "Invoices",
}


def named_routes() -> dict[str, set[tuple[str, str]]]:
    """(method, path) named for each sandbox: the table's columns, the bullets by their lead, and the rest
    (registering an app) for both."""
    text = README.read_text()
    section = text[text.index(TITLE) : text.index("\n## ", text.index(TITLE))]
    named: dict[str, set[tuple[str, str]]] = {"qbo": set(), "xero": set()}
    # a table row or a bullet (which runs over several lines) is read whole
    for block in re.split(r"\n(?=- |\| |\n)", section):
        lead = block.lstrip("- ").split(":", 1)[0]
        if block.startswith("|") and block.count("|") > 3:
            cells = block.split("|")
            owners = [("qbo", cells[2]), ("xero", cells[3])]
        elif block.startswith("- ") and lead in ("QBO", "Xero"):
            owners = [(lead.lower(), block)]
        else:
            owners = [("qbo", block), ("xero", block)]
        for owner, text_of in owners:
            for method, path in ROUTE.findall(text_of):
                for place, value in PLACES.items():
                    path = path.replace(place, value)
                named[owner].add((method, path))
    return named


NAMED = named_routes()


def served(sandbox: Sandbox, method: str, path: str) -> bool:
    return any(r.method == method and r.pattern.match(path) for r in [*sandbox.routes, *sandbox.admin_routes])


def test_the_section_names_the_routes_users_need() -> None:
    assert ("POST", "/_admin/apps") in NAMED["qbo"] & NAMED["xero"]
    assert ("POST", f"/_admin/companies/{DEMO_REALM_ID}/invoice") in NAMED["qbo"]
    assert ("POST", f"/_admin/organisations/{AU_TENANT_ID}/Invoices/1/edit") in NAMED["xero"]
    assert len(NAMED["qbo"]) >= 15 and len(NAMED["xero"]) >= 15


@pytest.mark.parametrize(
    ("provider", "method", "path"), sorted((p, *route) for p, routes in NAMED.items() for route in routes)
)
def test_each_route_the_readme_names_is_served(provider: str, method: str, path: str) -> None:
    sandbox: Sandbox = QboSandbox(seed=False) if provider == "qbo" else XeroSandbox(seed=False)
    assert served(sandbox, method, path), f"the README names {method} {path} on the {provider} sandbox"
