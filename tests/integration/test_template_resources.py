"""The local AWS is built from template.yaml, with the properties the template promises."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.server import ThreadedMotoServer

from infra.local.stack import LocalStack, aws_client, create_from_template
from infra.local.testbed import PARAMETERS, environment
from shared.config import ConfigurationError, load_settings
from shared.services import exports


def test_table_is_on_demand_with_ttl_point_in_time_recovery_and_kms(aws: LocalStack) -> None:
    dynamodb = boto3.client("dynamodb")
    table = dynamodb.describe_table(TableName=aws.physical("Table"))["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2"}
    ttl = dynamodb.describe_time_to_live(TableName=aws.physical("Table"))["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    backups = dynamodb.describe_continuous_backups(TableName=aws.physical("Table"))[
        "ContinuousBackupsDescription"
    ]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_export_queue_redrives_to_its_dead_letter_queue_and_outlives_the_function(aws: LocalStack) -> None:
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=aws.physical("ExportQueue"), AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == aws.physical("ExportDeadLetterQueue", "Arn")
    assert 1 < int(redrive["maxReceiveCount"]) <= 10
    assert int(attributes["VisibilityTimeout"]) > aws.functions["ExportFunction"].timeout
    # a claim left unsettled past the visibility timeout lost its worker: the outbox sweep queues it anew
    assert int(attributes["VisibilityTimeout"]) == exports.ORPHANED_AFTER.total_seconds()
    assert attributes["KmsMasterKeyId"] == aws.physical("TokenKey")
    # one export an invocation: a batch of slow plans would time out together, again and again, until the
    # queue dead-letters the records never reached
    [jobs] = [
        source for source in aws.functions["ExportFunction"].sqs if source.queue_logical_id == "ExportQueue"
    ]
    assert (jobs.batch_size, jobs.report_batch_item_failures) == (1, True)


def test_token_key_rotates_and_secrets_are_encrypted_with_it(aws: LocalStack) -> None:
    assert boto3.client("kms").get_key_rotation_status(KeyId=aws.physical("TokenKey"))["KeyRotationEnabled"]
    secret = boto3.client("secretsmanager").describe_secret(SecretId=aws.physical("StateSigningSecret"))
    assert secret["KmsKeyId"] == aws.physical("TokenKey")


def test_every_function_is_wired_as_the_template_says(aws: LocalStack) -> None:
    functions = aws.functions
    assert {f.module for f in functions.values()} == {
        "functions.api.app",
        "functions.oauth_callback.app",
        "functions.token_refresh.app",
        "functions.export.app",
        "functions.sales_pull.app",
    }
    assert [s.report_batch_item_failures for s in functions["ExportFunction"].sqs] == [True]
    assert functions["TokenRefreshFunction"].schedules and functions["SalesPullFunction"].schedules
    public = {(r.method, r.path) for f in functions.values() for r in f.routes if not r.authorized}
    assert public == {
        ("GET", "/oauth/{provider}/callback"),
        ("POST", "/oauth/{provider}/callback"),
        ("GET", "/docs"),
    }


def test_missing_or_malformed_configuration_is_named(aws: LocalStack) -> None:
    import os

    broken = {k: v for k, v in os.environ.items() if k != "TABLE_NAME"} | {"APP_ORIGIN": "not a url"}
    with pytest.raises(ConfigurationError) as raised:
        load_settings(broken)
    assert "TABLE_NAME" in str(raised.value) and "APP_ORIGIN" in str(raised.value)


def test_an_idempotency_key_s_running_claim_outlives_the_api_function(aws: LocalStack) -> None:
    """A request holds its key while it runs; the claim lapses only once the API function's timeout (the
    longest any request can run) and a margin have passed."""
    from shared.services import idempotency

    assert aws.functions["ApiFunction"].timeout == idempotency.API_TIMEOUT_SECONDS
    assert idempotency.RUNNING_SECONDS > idempotency.API_TIMEOUT_SECONDS


def test_a_stack_made_against_a_moto_server_after_one_in_process_reaches_that_server(aws: LocalStack) -> None:
    """Stacks share their process's clients only where they are made alike: a stack made against moto's
    server (the cold-start benchmark's, ``make run``'s) after one made in process gets that server's."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with environment({"AWS_ENDPOINT_URL": f"http://{host}:{port}"}):
            stack = create_from_template(PARAMETERS, stack_name="on-the-server")
            queues = aws_client("sqs").list_queues()["QueueUrls"]
            assert aws_client("sqs").meta.endpoint_url == f"http://{host}:{port}"
        assert any(f"{port}" in url and "on-the-server" in url for url in queues), queues
        assert stack.physical("Table") == "on-the-server-Table"
    finally:
        server.stop()
    assert aws_client("sqs").meta.endpoint_url != f"http://{host}:{port}"  # the in-process stack's again
