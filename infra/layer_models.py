"""The layer's botocore data, trimmed to the services the functions call: `make build-SharedLayer` runs this
on the installed botocore (``python -m infra.layer_models <layer folder>``).

A client's creation is mostly botocore parsing its service's model, and most of a model is documentation
that no call reads (DynamoDB's: 556 KB of JSON, 120 KB without it; KMS's 547 KB, 72 KB). The same models,
from the same botocore, with every documentation string left out, go into ``shared.AWS_MODELS_FOLDER``
beside ``shared/``, with the data a session reads besides (``SHARED_DATA``): endpoints.json with only these
services' endpoints (botocore's is 1.2 MB, parsed by a session's first client), the partitions, the
defaults. ``shared.aws`` makes its session read that folder alone (not botocore's, with its 400-odd
services). Only the standard library and ``shared/__init__`` are imported: the layer's packages are built
for arm64."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

from shared import AWS_MODELS_FOLDER

SERVICES = ("dynamodb", "events", "kms", "secretsmanager", "sqs")  # every client("...") in shared/
FILES = ("service-2", "endpoint-rule-set-1")  # what creating a client reads of its service
EXTRAS = ("service-2.sdk-extras",)  # merged into a service's model where botocore has them (Secrets Manager)
# what a session and its clients read besides the services' models: the endpoints (trimmed by endpoints_of),
# the partitions the endpoint rule sets name, the defaults modes, and the legacy retry rules
SHARED_DATA = ("endpoints", "partitions", "sdk-default-configuration", "_retry")
DOCUMENTATION = frozenset({"documentation", "documentationUrl"})


def without_documentation(value: Any) -> Any:
    """``value`` with every documentation string left out (a member that is named so is a dict: kept)."""
    if isinstance(value, dict):
        return {
            key: without_documentation(item)
            for key, item in value.items()
            if not (key in DOCUMENTATION and isinstance(item, str))
        }
    if isinstance(value, list):
        return [without_documentation(item) for item in value]
    return value


def _read(folder: Path, name: str) -> Any | None:
    plain, packed = folder / f"{name}.json", folder / f"{name}.json.gz"
    if plain.is_file():
        return json.loads(plain.read_bytes())
    if packed.is_file():
        return json.loads(gzip.decompress(packed.read_bytes()))
    return None


def endpoints_of(endpoints: dict[str, Any], services: tuple[str, ...] = SERVICES) -> dict[str, Any]:
    """botocore's endpoints.json with only ``services``' endpoints in each partition (its regions, defaults
    and DNS suffixes kept whole)."""
    return {
        **endpoints,
        "partitions": [
            {
                **partition,
                "services": {
                    name: spec for name, spec in partition.get("services", {}).items() if name in services
                },
            }
            for partition in endpoints["partitions"]
        ],
    }


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True))


def write_models(layer: Path) -> None:
    """For each service, its latest API version's models from ``layer``'s botocore, without documentation,
    into ``layer/AWS_MODELS_FOLDER/<service>/<version>/``, as botocore's own data folder lays them out; and
    beside them the session's shared data (``SHARED_DATA``), endpoints.json trimmed to these services."""
    data = layer / "botocore" / "data"
    for service in SERVICES:
        versions = sorted((data / service).iterdir())
        latest = next(v for v in reversed(versions) if any(v.glob(f"{FILES[0]}.json*")))
        target = layer / AWS_MODELS_FOLDER / service / latest.name
        target.mkdir(parents=True, exist_ok=True)
        for name in FILES + EXTRAS:
            model = _read(latest, name)
            if model is not None:
                _write(target / f"{name}.json", without_documentation(model))
            elif name in FILES:
                raise SystemExit(f"botocore has no {name} for {service}/{latest.name}")
    for name in SHARED_DATA:
        found = _read(data, name)
        if found is None:
            raise SystemExit(f"botocore has no {name}.json")
        trimmed = endpoints_of(found) if name == "endpoints" else found
        _write(layer / AWS_MODELS_FOLDER / f"{name}.json", trimmed)


if __name__ == "__main__":
    write_models(Path(sys.argv[1]))
