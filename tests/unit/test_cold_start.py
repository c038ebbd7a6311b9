"""What a cold start of the API function loads: each route's service, the AWS clients and Powertools' OpenAPI
models wait for the first request that needs them. Every handler imports shared.coldstart first (collection
paused while it imports) and calls its loaded() last (what the imports made frozen, collection back on)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import functions.api.app as api

def kinds():
    return {name: type(module).__name__ for name, module in list(sys.modules.items())}

after_import = kinds()
api.connections.ConnectionView  # what the first call of GET /integrations touches
print(json.dumps({"after_import": after_import, "after_first_use": kinds()}))
"""


def probe() -> dict[str, dict[str, str]]:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_api_import_leaves_services_aws_and_openapi_models_for_first_use() -> None:
    loaded = probe()["after_import"]
    assert "boto3" not in loaded and "httpx" not in loaded
    assert not [name for name in loaded if name.startswith(("shared.store", "shared.providers"))]
    assert "aws_lambda_powertools.event_handler.openapi.models" not in loaded
    assert loaded["shared.services.connections"] == "_LazyModule"  # registered, its code not run yet
    assert loaded["shared.services.sales"] == "_LazyModule"
    assert loaded["shared.services.margins"] == "_LazyModule"
    assert loaded["shared.bodies"] == "_LazyModule"  # the request models, with the domain types they use


def test_a_route_loads_only_its_own_service() -> None:
    loaded = probe()["after_first_use"]
    assert loaded["shared.services.connections"] == "module"
    assert "shared.store.connections" in loaded
    assert loaded["shared.services.sales"] == "_LazyModule"
    assert loaded["shared.services.margins"] == "_LazyModule"
    assert "shared.store.inventory" not in loaded


HANDLERS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))

GC_PROBE = """
import gc, json, sys
import functions.{name}.app
print(json.dumps({{
    "enabled": gc.isenabled(), "frozen": gc.get_freeze_count(), "modules": list(sys.modules),
}}))
"""


def _statements(name: str) -> list[ast.stmt]:
    return ast.parse((ROOT / "functions" / name / "app.py").read_text()).body


@pytest.mark.parametrize("name", HANDLERS)
def test_a_handler_imports_coldstart_first_and_calls_loaded_last(name: str) -> None:
    imports = [
        statement
        for statement in _statements(name)
        if isinstance(statement, ast.Import | ast.ImportFrom)
        and not (isinstance(statement, ast.ImportFrom) and statement.module == "__future__")
    ]
    first = imports[0]
    assert isinstance(first, ast.Import) and [alias.name for alias in first.names] == ["shared.coldstart"]
    assert ast.unparse(_statements(name)[-1]) == "shared.coldstart.loaded()"


@pytest.mark.parametrize("name", HANDLERS)
def test_after_a_handlers_import_collection_runs_and_its_objects_are_frozen(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", GC_PROBE.format(name=name)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(done.stdout)
    assert found["enabled"] and found["frozen"] > 0
    modules = found["modules"]
    # collection was paused before the packages that make most of a cold start's objects were imported
    heavy = [
        m for m in modules if m.split(".")[0] in ("boto3", "botocore", "pydantic", "aws_lambda_powertools")
    ]
    assert heavy and all(modules.index("shared.coldstart") < modules.index(m) for m in heavy)
