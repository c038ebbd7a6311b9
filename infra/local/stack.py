"""Creates the template's AWS resources in moto (in-process or server) and describes its functions.

Only resource types the service uses are created; serverless resources (functions, API, layer) become
``FunctionSpec``s that the local gateway, scheduler and poller call in-process, because moto's own
Lambda invoke needs Docker.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import boto3

import infra.local.moto_fidelity  # noqa: F401  (imported for its effect: moto weighs items as DynamoDB does)
from infra.local.template import TEMPLATE, Resolver, load_template

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
Handler = Callable[[dict[str, Any], Any], Any]
Clients = Callable[[str], Any]  # a boto3 client by service name


@dataclass(frozen=True)
class HttpRoute:
    method: str  # "ANY" or an HTTP method
    path: str  # API Gateway path template, e.g. /oauth/{provider}/callback or /{proxy+}
    authorized: bool


@dataclass(frozen=True)
class SqsSource:
    queue_logical_id: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass
class FunctionSpec:
    logical_id: str
    module: str  # functions.<name>.app
    handler_name: str
    timeout: int
    routes: list[HttpRoute] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)
    sqs: list[SqsSource] = field(default_factory=list)

    def handler(self) -> Handler:
        handler: Handler = getattr(importlib.import_module(self.module), self.handler_name)
        return handler


@dataclass
class LocalStack:
    template: dict[str, Any]
    resolver: Resolver
    functions: dict[str, FunctionSpec]
    environment: dict[str, str]

    def physical(self, logical_id: str, attribute: str = "Ref") -> str:
        return self.resolver.attributes[logical_id][attribute]

    def cors(self) -> dict[str, Any]:
        api = next(r for r in self.template["Resources"].values() if r["Type"] == "AWS::Serverless::HttpApi")
        cors: dict[str, Any] = self.resolver.resolve(api["Properties"].get("CorsConfiguration", {}))
        return cors


def _parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise ValueError(f"template parameter {name} has no default: pass it in the overrides")
    return values


def _create_key(
    resolver: Resolver, logical: str, props: dict[str, Any], stack_name: str, aws: Clients
) -> None:
    kms = aws("kms")
    key = kms.create_key(
        Description=props.get("Description", logical), Policy=json.dumps(props["KeyPolicy"])
    )["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    resolver.attributes[logical] = {"Ref": key["KeyId"], "Arn": key["Arn"], "KeyId": key["KeyId"]}


def _create_queue(
    resolver: Resolver, logical: str, props: dict[str, Any], stack_name: str, aws: Clients
) -> None:
    sqs = aws("sqs")
    attributes = {
        k: str(v)
        for k, v in props.items()
        if k
        in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "KmsMasterKeyId",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
        )
    }
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    name = f"{stack_name}-{logical}"
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    resolver.attributes[logical] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}


def _create_table(
    resolver: Resolver, logical: str, props: dict[str, Any], stack_name: str, aws: Clients
) -> None:
    dynamodb = aws("dynamodb")
    name = f"{stack_name}-{logical}"
    kwargs: dict[str, Any] = {
        key: props[key]
        for key in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
        if key in props
    }
    sse = props.get("SSESpecification")
    if sse:
        kwargs["SSESpecification"] = {
            "Enabled": sse["SSEEnabled"],
            "SSEType": sse.get("SSEType", "KMS"),
            **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
        }
    arn = dynamodb.create_table(TableName=name, **kwargs)["TableDescription"]["TableArn"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
        )
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    resolver.attributes[logical] = {"Ref": name, "Arn": arn}


def _create_secret(
    resolver: Resolver, logical: str, props: dict[str, Any], stack_name: str, aws: Clients
) -> None:
    secrets = aws("secretsmanager")
    value = props.get("SecretString")
    if value is None:  # GenerateSecretString: a random value, as CloudFormation makes at deploy
        generate = props.get("GenerateSecretString", {})
        value = secrets.get_random_password(
            PasswordLength=int(generate.get("PasswordLength", 32)),
            ExcludePunctuation=bool(generate.get("ExcludePunctuation", False)),
        )["RandomPassword"]
    created = secrets.create_secret(
        Name=f"{stack_name}-{logical}", KmsKeyId=props.get("KmsKeyId", ""), SecretString=value
    )
    resolver.attributes[logical] = {"Ref": created["ARN"], "Arn": created["ARN"]}


_CREATORS = {
    "AWS::KMS::Key": _create_key,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::SQS::Queue": _create_queue,
    "AWS::DynamoDB::Table": _create_table,
}
_ORDER = list(_CREATORS)


def _creation_order(resources: dict[str, Any]) -> list[str]:
    """Keys first, then secrets, queues (dead-letter targets before their sources), tables."""

    def rank(logical: str) -> tuple[int, int]:
        resource = resources[logical]
        redrives = "RedrivePolicy" in resource.get("Properties", {})
        return _ORDER.index(resource["Type"]), int(redrives)

    return sorted((name for name, r in resources.items() if r["Type"] in _CREATORS), key=rank)


def _function_specs(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    globals_ = template.get("Globals", {}).get("Function", {})
    default_auth = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::HttpApi":
            default_auth = resource["Properties"].get("Auth", {})
    specs = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        folder = props["CodeUri"].strip("/").replace("/", ".")
        module_file, handler_name = props.get("Handler", globals_.get("Handler")).rsplit(".", 1)
        spec = FunctionSpec(
            logical,
            f"{folder}.{module_file}",
            handler_name,
            int(props.get("Timeout", globals_.get("Timeout", 3))),
        )
        for event in props.get("Events", {}).values():
            kind, event_props = event["Type"], event.get("Properties", {})
            if kind == "HttpApi":
                authorizer = event_props.get("Auth", {}).get(
                    "Authorizer", default_auth.get("DefaultAuthorizer")
                )
                spec.routes.append(
                    HttpRoute(
                        event_props["Method"].upper(),
                        event_props["Path"],
                        authorized=authorizer not in (None, "NONE"),
                    )
                )
            elif kind == "Schedule":
                spec.schedules.append(event_props["Schedule"])
            elif kind == "SQS":
                queue_logical = event_props["Queue"]["Fn::GetAtt"][0]
                spec.sqs.append(
                    SqsSource(
                        queue_logical,
                        int(event_props.get("BatchSize", 10)),
                        "ReportBatchItemFailures" in event_props.get("FunctionResponseTypes", []),
                    )
                )
        specs[logical] = spec
    return specs


def _function_environment(template: dict[str, Any], resolver: Resolver) -> dict[str, str]:
    """The union of the functions' environment variables (they run in one process locally)."""
    env: dict[str, str] = {}
    sources = [template.get("Globals", {}).get("Function", {})] + [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    ]
    for source in sources:
        variables = resolver.resolve(source.get("Environment", {}).get("Variables", {}))
        for name, value in variables.items():
            if env.get(name, value) != value:
                raise ValueError(f"functions disagree on {name}; the local stack runs them in one process")
            env[name] = str(value)
    return env


_CLIENT_ENV = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@cache
def _client(service: str, where: tuple[str | None, ...]) -> Any:
    return boto3.client(service)


def aws_client(service: str) -> Any:
    """One client a service for every stack a process makes in one place (each costs botocore a model's
    set-up): the stacks differ only in what moto holds, which a client does not. A client keeps the endpoint,
    region and keys it was made with, so another of those gets a client of its own."""
    where = tuple(os.environ.get(name) for name in _CLIENT_ENV)
    return _client(service, where)


def create_from_template(
    parameters: dict[str, str], *, path: Path = TEMPLATE, stack_name: str = "partsemble-local"
) -> LocalStack:
    """Creates every supported resource of the template in the AWS that boto3 currently points at."""
    template = load_template(path)
    resolver = Resolver(
        _parameters(template, parameters),
        {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        },
    )
    resources = template["Resources"]
    for logical in _creation_order(resources):
        props = resolver.resolve(resources[logical].get("Properties", {}))
        _CREATORS[resources[logical]["Type"]](resolver, logical, props, stack_name, aws_client)
    return LocalStack(
        template, resolver, _function_specs(template), _function_environment(template, resolver)
    )
