"""The layer's AWS service models without documentation (infra.layer_models): the same services, operations
and shapes as botocore's own, and the ones a client of shared.aws's session is made from in the layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore
import botocore.loaders
import pytest

from infra.layer_models import FILES, SERVICES, without_documentation, write_models
from shared import AWS_MODELS_FOLDER


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A layer folder holding this machine's botocore, with the models written as the layer's build does."""
    folder = tmp_path_factory.mktemp("layer")
    (folder / "botocore").symlink_to(Path(botocore.__file__).parent, target_is_directory=True)
    write_models(folder)
    return folder


def _documented(value: Any) -> bool:
    if isinstance(value, dict):
        return any(
            (key == "documentation" and isinstance(item, str)) or _documented(item)
            for key, item in value.items()
        )
    return isinstance(value, list) and any(_documented(item) for item in value)


@pytest.mark.parametrize("service", SERVICES)
def test_each_model_is_botocores_own_without_its_documentation(layer: Path, service: str) -> None:
    own = botocore.loaders.Loader()
    trimmed = botocore.loaders.Loader(extra_search_paths=[str(layer / AWS_MODELS_FOLDER)])
    for name in FILES:
        original, path = own.load_data_with_path(
            f"{service}/{own.determine_latest_version(service, name)}/{name}"
        )
        found, found_path = trimmed.load_data_with_path(
            f"{service}/{trimmed.determine_latest_version(service, name)}/{name}"
        )
        assert found_path.startswith(str(layer / AWS_MODELS_FOLDER)), (
            found_path
        )  # the layer's is the one read
        assert found == without_documentation(original) and not _documented(found)
        assert path != found_path


def test_only_documentation_strings_are_left_out() -> None:
    shape = {
        "documentation": "<p>words</p>",
        "members": {"documentation": {"shape": "String", "documentation": "a member named so"}},
        "documentationUrl": "https://docs.aws.amazon.com/",
    }
    assert without_documentation(shape) == {"members": {"documentation": {"shape": "String"}}}
