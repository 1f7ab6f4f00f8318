"""What starts a run: the DAG's new-file check and the stack's S3 event rule.

The check (`orchestration.airflow.pending_files`) runs in-process, with no Airflow, on
a local lake and on moto. The rule is deployed from `infra/music-etl.yaml` into moto
over HTTP. A real PUT on the stack's bucket makes moto's S3 emit its EventBridge event,
which the deployed rule matches and delivers; moto delivers to SQS, logs and buses but
not to Step Functions, so an SQS tap on the rule receives the event and the test starts
the execution with it. Also checked: the bucket's EventBridge setting in the template
(moto's CloudFormation does not apply it), the rule's pattern against other keys, and
its target (the state machine, the trigger role, the whole event as input). Not
covered: EventBridge itself calling `StartExecution`.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from aws.conftest import aws_lake, s3_lake
from aws.helpers import AwsLake, client, generate_sample
from conftest import Lake
from deploy.test_infra import moto_template, template
from deploy.test_orchestration import write
from music_etl.logic import layout
from music_etl.orchestration import airflow as steps
from music_etl.orchestration.config import load_job_config
from music_etl.pipeline.run import run

NOW = {"MUSIC_ETL_NOW": "2024-07-01T00:00:00Z"}
__all__ = ["aws_lake", "s3_lake"]  # the moto lake fixtures of tests/aws

# --------------------------------------------------------------------------- the DAG's check


def test_a_changed_dimension_file_is_new_to_the_dag(lake: Lake, tmp_path: Path) -> None:
    config = load_job_config(write(tmp_path, settings={"lake": str(lake.root)}))
    settings = config.run_settings(env=NOW)
    assert steps.pending_files(settings) == [layout.RAW_USERS, layout.RAW_SONGS]
    run(settings)  # the first snapshots
    assert not steps.has_new_files(config)
    songs = lake.root / layout.RAW_SONGS
    songs.write_bytes(songs.read_bytes().replace(b"\n", b"\r\n", 1))  # new bytes, same rows
    assert steps.pending_files(settings) == [layout.RAW_SONGS]
    assert steps.has_new_files(config)
    run(settings)
    assert not steps.has_new_files(config)
    users = lake.root / layout.RAW_USERS
    users.write_bytes(users.read_bytes().replace(b"\n", b"\r\n", 1))
    lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00")])
    assert steps.pending_files(settings) == [layout.RAW_USERS, "raw/streams/a.csv"]


@pytest.mark.aws
def test_a_changed_dimension_file_is_new_on_s3(aws_lake: AwsLake) -> None:
    storage = aws_lake.storage()
    generate_sample(storage)
    settings = aws_lake.settings()
    run(settings)
    assert steps.pending_files(settings) == []
    users = storage.read_bytes(layout.RAW_USERS)
    storage.write_bytes(layout.RAW_USERS, users + users.splitlines(keepends=True)[-1])
    assert steps.pending_files(settings) == [layout.RAW_USERS]
    run(settings)
    assert steps.pending_files(settings) == []


# --------------------------------------------------------------------------- the S3 event rule


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    """An S3 "Object Created" event as EventBridge delivers it (the shape moto emits too)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2024-07-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1, "etag": "9dd4e461268c8034f5c8564e155c67a6"},
            "reason": "PutObject",
        },
    }


@pytest.fixture
def stack(moto_endpoint: str, aws_env: None) -> dict[str, str]:
    """The template with `Trigger=s3-event`, created on moto."""
    env = f"e{uuid.uuid4().hex[:6]}"
    cloudformation = client("cloudformation", moto_endpoint)
    cloudformation.create_stack(
        StackName=f"music-etl-{env}",
        TemplateBody=moto_template(env),
        Parameters=[
            {"ParameterKey": "Environment", "ParameterValue": env},
            {"ParameterKey": "ArtifactsBucket", "ParameterValue": "artifacts-bucket"},
            {"ParameterKey": "LakeBucketName", "ParameterValue": f"lake-{env}"},
            {"ParameterKey": "Trigger", "ParameterValue": "s3-event"},
        ],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    [made] = cloudformation.describe_stacks(StackName=f"music-etl-{env}")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in made["Outputs"]}
    return outputs | {
        "bucket": f"lake-{env}",
        "rule": f"music-etl-{env}-new-stream-file",
        "env": env,
    }


def test_the_lake_bucket_sends_its_events_to_eventbridge() -> None:
    bucket = template()["Resources"]["LakeBucket"]["Properties"]
    assert bucket["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


@pytest.mark.aws
@pytest.mark.filterwarnings("ignore:Tried to parse AWS.*not supported by moto:UserWarning")
def test_the_rule_matches_stream_files_and_targets_the_flow(
    moto_endpoint: str, stack: dict[str, str]
) -> None:
    events = client("events", moto_endpoint)
    pattern = events.describe_rule(Name=stack["rule"])["EventPattern"]

    def matches(bucket: str, key: str) -> bool:
        # moto's TestEventPattern answers nothing; its rules match with this, in-process.
        from moto.events.models import EventPattern

        return EventPattern.load(pattern).matches_event(s3_event(bucket, key))

    assert matches(stack["bucket"], "lake/raw/streams/2024/a.csv")
    assert not matches(stack["bucket"], "lake/raw/users/users.csv")
    assert not matches(stack["bucket"], "lake/archive/streams/a.csv")
    assert not matches(stack["bucket"], "other/raw/streams/a.csv")
    assert not matches("another-bucket", "lake/raw/streams/a.csv")

    targets = events.list_targets_by_rule(Rule=stack["rule"])["Targets"]
    [flow] = targets
    assert flow["Arn"] == stack["StateMachineArn"]
    assert flow["RoleArn"].endswith(f":role/music-etl-{stack['env']}-trigger")
    assert "Input" not in flow and "InputTransformer" not in flow  # the whole event


@pytest.mark.aws
@pytest.mark.filterwarnings("ignore:Tried to parse AWS.*not supported by moto:UserWarning")
def test_s3_emits_the_event_the_rule_sends_to_the_flow(
    moto_endpoint: str, stack: dict[str, str]
) -> None:
    """A real PUT on moto: S3 emits, the deployed rule matches and delivers to its targets.

    moto delivers a rule's events to SQS but not to Step Functions (and stops at the first
    target it cannot serve), so an SQS queue is put first on the rule as a tap; the event
    it receives is the one EventBridge hands the state machine, whole (no input
    transformer), and starting the execution with it is EventBridge's last hop.
    """
    s3, sqs, events = (client(name, moto_endpoint) for name in ("s3", "sqs", "events"))
    # moto's CloudFormation leaves out the bucket's EventBridge setting the template has.
    s3.put_bucket_notification_configuration(
        Bucket=stack["bucket"], NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    tap = sqs.create_queue(QueueName=f"tap-{stack['env']}")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap, AttributeNames=["QueueArn"])
    [flow] = events.list_targets_by_rule(Rule=stack["rule"])["Targets"]
    events.remove_targets(Rule=stack["rule"], Ids=[flow["Id"]])
    tap_target = {"Id": "tap", "Arn": tap_arn["Attributes"]["QueueArn"]}
    events.put_targets(Rule=stack["rule"], Targets=[tap_target, flow])

    for key in ("lake/raw/users/users.csv", "lake/archive/streams/a.csv", "lake/raw/streams/a.csv"):
        s3.put_object(Bucket=stack["bucket"], Key=key, Body=b"user_id,track_id,listen_time\n")
    answer = sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    [message] = answer.get("Messages", [])  # only the stream file's event matched
    event = json.loads(message["Body"])
    assert event["source"] == "aws.s3" and event["detail-type"] == "Object Created"
    assert event["detail"]["object"]["key"] == "lake/raw/streams/a.csv"

    sfn = client("stepfunctions", moto_endpoint)
    sfn.start_execution(stateMachineArn=flow["Arn"], input=message["Body"])
    [execution] = sfn.list_executions(stateMachineArn=stack["StateMachineArn"])["executions"]
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"])["detail"]["object"]["key"] == "lake/raw/streams/a.csv"
