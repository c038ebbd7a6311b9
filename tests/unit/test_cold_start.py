"""What a cold start of the API function loads: each route's service, the AWS clients and Powertools' OpenAPI
models wait for the first request that needs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
