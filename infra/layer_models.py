"""The layer's AWS service models without their documentation: `make build-SharedLayer` runs this on the
installed botocore (``python -m infra.layer_models <layer folder>``).

A client's creation is mostly botocore parsing its service's model, and most of a model is documentation
that no call reads (DynamoDB's: 556 KB of JSON, 120 KB without it; KMS's 547 KB, 72 KB). The same models,
from the same botocore, with every documentation string left out, go into ``shared.AWS_MODELS_FOLDER``
beside ``shared/``, and ``shared.aws`` puts that folder first on its session's model path. Only the standard
library and ``shared/__init__`` are imported: the layer's packages are built for arm64."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

from shared import AWS_MODELS_FOLDER

SERVICES = ("dynamodb", "events", "kms", "secretsmanager", "sqs")  # every client("...") in shared/
FILES = ("service-2", "endpoint-rule-set-1")  # what creating a client reads of its service
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


def write_models(layer: Path) -> None:
    """For each service, its latest API version's models from ``layer``'s botocore, without documentation,
    into ``layer/AWS_MODELS_FOLDER/<service>/<version>/``, as botocore's own data folder lays them out."""
    for service in SERVICES:
        versions = sorted((layer / "botocore" / "data" / service).iterdir())
        latest = next(v for v in reversed(versions) if any(v.glob(f"{FILES[0]}.json*")))
        target = layer / AWS_MODELS_FOLDER / service / latest.name
        target.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            model = _read(latest, name)
            if model is not None:
                text = json.dumps(without_documentation(model), separators=(",", ":"), sort_keys=True)
                (target / f"{name}.json").write_text(text)


if __name__ == "__main__":
    write_models(Path(sys.argv[1]))
