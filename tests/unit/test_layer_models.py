"""The layer's botocore data (infra.layer_models): the service models without documentation (the same
services, operations and shapes as botocore's own), endpoints.json with only those services, and a session
of shared.aws that reads that folder alone and resolves the same endpoints as stock botocore."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore
import botocore.config
import botocore.loaders
import botocore.session
import pytest

from infra.layer_models import FILES, SERVICES, SHARED_DATA, endpoints_of, without_documentation, write_models
from shared import AWS_MODELS_FOLDER
from shared.aws import botocore_session


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


# a call of each service that takes no resource of the account, and DynamoDB's that may go to an endpoint
# of the account (account-based endpoints)
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "dynamodb": ("get_item", {"TableName": "t", "Key": {"pk": {"S": "a"}}}),
    "events": ("list_rules", {}),
    "kms": ("list_keys", {}),
    "secretsmanager": ("list_secrets", {}),
    "sqs": ("list_queues", {}),
}
REGIONS = ("eu-west-2", "us-east-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1")


class Sent(Exception):
    """A request was about to be sent: its URL, and nothing sent."""


def _url(session: Any, service: str, region: str, endpoint_url: str | None = None, **options: Any) -> str:
    config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 1}, **options)
    client = session.create_client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        aws_account_id="123456789012",
        config=config,
    )

    def stop(request: Any, **_: Any) -> None:
        raise Sent(request.url)

    client.meta.events.register("before-send", stop)
    operation, parameters = CALLS[service]
    with pytest.raises(Sent) as sent:
        getattr(client, operation)(**parameters)
    url: str = sent.value.args[0]
    return url


@pytest.mark.parametrize("service", SERVICES)
def test_a_session_of_the_layers_data_calls_the_endpoints_stock_botocore_calls(
    layer: Path, service: str
) -> None:
    trimmed, stock = botocore_session(layer / AWS_MODELS_FOLDER), botocore.session.get_session()
    for region in REGIONS:
        expected = _url(stock, service, region)
        assert _url(trimmed, service, region) == expected
        assert expected.startswith(f"https://{service}.{region}.amazonaws.com") or service == "dynamodb"
    assert _url(trimmed, service, "us-east-1", use_fips_endpoint=True) == _url(
        stock, service, "us-east-1", use_fips_endpoint=True
    )
    assert _url(trimmed, "dynamodb", "eu-west-2") == "https://123456789012.ddb.eu-west-2.amazonaws.com/"
    moto = "http://127.0.0.1:5000"  # moto's server, as the local stack and the tests give it
    assert _url(trimmed, service, "us-east-1", moto).startswith(f"{moto}/")


def test_the_layers_session_reads_only_the_layers_data(layer: Path) -> None:
    data = layer / AWS_MODELS_FOLDER
    loader = botocore_session(data).get_component("data_loader")
    assert loader.search_paths == [str(data)]
    for name in SHARED_DATA:
        assert loader.load_data_with_path(name)[1].startswith(str(data))
    assert sorted(loader.list_available_services("service-2")) == sorted(SERVICES)
    # where the layer's data is not (tests, a developer's machine), botocore's own
    stock = botocore_session(layer / "nowhere").get_component("data_loader")
    assert botocore.loaders.Loader.BUILTIN_DATA_PATH in stock.search_paths


def test_endpoints_keep_only_the_services_called_and_are_smaller(layer: Path) -> None:
    own = botocore.loaders.Loader().load_data("endpoints")
    written = layer / AWS_MODELS_FOLDER / "endpoints.json"
    trimmed = json.loads(written.read_text())
    assert trimmed == endpoints_of(own)
    for mine, theirs in zip(trimmed["partitions"], own["partitions"], strict=True):
        assert set(mine["services"]) == set(SERVICES) & set(theirs["services"])
        assert {k: v for k, v in mine.items() if k != "services"} == {
            k: v for k, v in theirs.items() if k != "services"
        }
    assert (
        written.stat().st_size * 10
        < (Path(botocore.__file__).parent / "data" / "endpoints.json").stat().st_size
    )


def test_the_layer_holds_every_service_the_functions_make_a_client_for() -> None:
    # the layer's session reads its own data alone: a client of a service left out of SERVICES would fail
    # only in Lambda, so every client("...") in shared/ must name one of them
    source = Path(__file__).resolve().parents[2] / "shared"
    named = {
        name
        for path in source.rglob("*.py")
        for name in re.findall(r"""\bclient\(\s*["']([a-z0-9-]+)["']""", path.read_text())
    }
    assert named, "no client(...) found: the pattern no longer matches how shared/ makes its clients"
    assert named <= set(SERVICES), sorted(named - set(SERVICES))
