"""infra/music-etl.yaml: cfn-lint clean, consistent with the package, and created on moto.

moto's CloudFormation creates the bucket, tables, roles, topic, state machine and rule;
it silently skips the Glue resources (their names resolve to None there) and ignores
bucket versioning, lifecycle and PITR settings, so those are checked in the template.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from aws.helpers import REGION, client
from deploy.conftest import REPO
from music_etl.adapters.aws.tables import ALL_TABLES

TEMPLATE = REPO / "infra" / "music-etl.yaml"
FLOW = REPO / "stepfunctions" / "etl_flow.json"
CONFIG = REPO / "configs" / "job_configs.json"
TABLES = {
    "ProcessedStreams": "ProcessedStreamsTable",
    "DailyGenreKPIs": "DailyGenreKPIsTable",
    "TopSongsPerGenre": "TopSongsPerGenreTable",
    "TopGenresPerDay": "TopGenresPerDayTable",
}


def template() -> dict[str, Any]:
    from cfnlint.decode import decode_str

    parsed, errors = decode_str(TEMPLATE.read_text())
    assert not errors, errors
    return json.loads(json.dumps(parsed, default=str))


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template()["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_is_clean() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    done = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_bucket_is_versioned_encrypted_private_with_an_archive_lifecycle() -> None:
    bucket = template()["Resources"]["LakeBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    archive = bucket["LifecycleConfiguration"]["Rules"][0]
    assert archive["Prefix"] == {"Fn::Sub": "${LakePrefix}/archive/"}
    assert archive["Transitions"][0]["StorageClass"] == "GLACIER_IR"


def test_tables_match_the_package() -> None:
    found = resources("AWS::DynamoDB::Table")
    assert set(found) == set(TABLES.values())
    for spec in ALL_TABLES:
        table = found[TABLES[spec.name]]["Properties"]
        expected = spec.definition("")
        assert table["KeySchema"] == expected["KeySchema"]
        assert table["AttributeDefinitions"] == expected["AttributeDefinitions"]
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["TableName"] == {"Fn::Sub": "${NamePrefix}-${Environment}-" + spec.name}


def test_no_wildcard_actions_and_data_resources_are_named() -> None:
    for name, role in resources("AWS::IAM::Role").items():
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                for action in actions if isinstance(actions, list) else [actions]:
                    assert "*" not in action, (name, action)
                    data = action.split(":")[0] in ("s3", "dynamodb", "sns", "glue", "states")
                    assert not (data and statement["Resource"] == "*"), (name, action)


def test_flow_placeholders_are_the_stacks_substitutions() -> None:
    machine = template()["Resources"]["EtlStateMachine"]["Properties"]
    placeholders = set(re.findall(r"\$\{(\w+)\}", FLOW.read_text()))
    assert placeholders == set(machine["DefinitionSubstitutions"])
    assert machine["DefinitionS3Location"]["Key"] == {
        "Fn::Sub": "${ArtifactsPrefix}stepfunctions/etl_flow.json"
    }


def test_job_configs_name_the_stacks_glue_jobs_and_scripts() -> None:
    config = json.loads(CONFIG.read_text())
    jobs = resources("AWS::Glue::Job")
    defaults = {"NamePrefix": "music-etl", "Environment": "dev"}
    names = {
        _sub(job["Properties"]["Name"]["Fn::Sub"], defaults): job["Properties"]
        for job in jobs.values()
    }
    for job in config["glue"]["jobs"]:
        assert job["job_name"] in names, job["job_name"]
        location = names[job["job_name"]]["Command"]["ScriptLocation"]["Fn::Sub"]
        assert location.endswith(job["script"])
        assert (REPO / job["script"]).is_file(), job["script"]
    # Partition projection replaces the crawlers (tests/deploy/test_catalog.py).
    assert not resources("AWS::Glue::Crawler")
    assert "crawlers" not in config["glue"]


def _sub(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


# --------------------------------------------------------------------------- moto


def moto_template(environment: str) -> str:
    """The template as moto can take it: the flow inlined, as the artifact upload would give.

    moto reads neither `DefinitionS3Location` nor `DefinitionSubstitutions`, so the
    definition goes in as `DefinitionString` with the same substitutions (`Fn::Sub`).
    """
    parsed = template()
    machine = parsed["Resources"]["EtlStateMachine"]["Properties"]
    substitutions = machine.pop("DefinitionSubstitutions")
    machine.pop("DefinitionS3Location")
    machine["DefinitionString"] = {"Fn::Sub": [FLOW.read_text(), substitutions]}
    parsed["Parameters"]["Environment"]["AllowedValues"].append(environment)
    return json.dumps(parsed)


@pytest.mark.aws
@pytest.mark.filterwarnings("ignore:Tried to parse AWS.*not supported by moto:UserWarning")
def test_stack_creates_on_moto(moto_endpoint: str, aws_env: None) -> None:
    env = f"t{uuid.uuid4().hex[:6]}"
    prefix = f"music-etl-{env}-"
    cloudformation = client("cloudformation", moto_endpoint)
    cloudformation.create_stack(
        StackName=f"music-etl-{env}",
        TemplateBody=moto_template(env),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[
            {"ParameterKey": "Environment", "ParameterValue": env},
            {"ParameterKey": "ArtifactsBucket", "ParameterValue": "artifacts"},
            {"ParameterKey": "Trigger", "ParameterValue": "s3-event"},
        ],
    )
    [stack] = cloudformation.describe_stacks(StackName=f"music-etl-{env}")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    bucket = f"{prefix}lake-123456789012"
    assert outputs["Lake"] == f"s3://{bucket}/lake"
    assert outputs["Stores"] == f"dynamodb://?region={REGION}&prefix={prefix}"
    topic = f"arn:aws:sns:{REGION}:123456789012:{prefix}failures"
    assert outputs["Notifier"] == f"sns://{topic}"

    client("s3", moto_endpoint).head_bucket(Bucket=bucket)
    dynamodb = client("dynamodb", moto_endpoint)
    for spec in ALL_TABLES:
        table = dynamodb.describe_table(TableName=prefix + spec.name)["Table"]
        assert table["KeySchema"] == spec.definition(prefix)["KeySchema"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    roles = {r["RoleName"] for r in client("iam", moto_endpoint).list_roles()["Roles"]}
    assert {f"{prefix}{r}" for r in ("glue-jobs", "flow", "trigger")} <= roles
    client("sns", moto_endpoint).get_topic_attributes(TopicArn=topic)

    sfn = client("stepfunctions", moto_endpoint)
    machine = sfn.describe_state_machine(stateMachineArn=outputs["StateMachineArn"])
    flow = json.loads(machine["definition"])
    assert flow["States"]["NotifyFailure"]["Parameters"]["TopicArn"] == topic
    rule = client("events", moto_endpoint).describe_rule(Name=f"{prefix}new-stream-file")
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["object"]["key"] == [{"prefix": "lake/raw/streams/"}]
