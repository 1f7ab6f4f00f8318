"""stepfunctions/etl_flow.json: two real ASL linters, its shape, and runs on moto's Step Functions.

moto executes state machines when its `execute_state_machine` option is on. Two moto
bugs stand in the way of `.sync`: its Glue `.sync` integration calls `interrupt_all` on a
callback endpoint that only waitForTaskToken integrations create ("'NoneType' object has
no attribute 'interrupt_all'", a States.Runtime error), and the GetJobRun answer a `.sync`
step returns carries datetimes. So the runs here use `glue:startJobRun` (request-response):
every state, transition, Retry and Catch is exercised; only the wait for the job run is not.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aws.helpers import client
from deploy.airflow_venv import in_ci
from deploy.conftest import REPO

FLOW = REPO / "stepfunctions" / "etl_flow.json"
TOOLS = REPO / "tools"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
ROLE = "arn:aws:iam::123456789012:role/flow"


def definition() -> dict[str, Any]:
    return dict(json.loads(FLOW.read_text()))


def render(text: str, names: dict[str, str]) -> str:
    """What CloudFormation's DefinitionSubstitutions do to the definition."""
    return PLACEHOLDER.sub(lambda match: names[match.group(1)], text)


# --------------------------------------------------------------------------- linters


def linters() -> Path:
    """tools/node_modules/.bin, installed from tools/package-lock.json when missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if in_ci():
            pytest.fail("CI needs node and npm for the ASL linters (apt-get install nodejs npm).")
        pytest.skip("node/npm not installed: the ASL linters (tools/package.json) cannot run.")
    bin_dir = TOOLS / "node_modules" / ".bin"
    if not (bin_dir / "statelint").exists() or not (bin_dir / "asl-validator").exists():
        npm = ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(TOOLS)]
        subprocess.run(npm, check=True, capture_output=True, timeout=300)
    return bin_dir


def lint(path: Path) -> list[subprocess.CompletedProcess[str]]:
    bin_dir = linters()
    commands = [
        [str(bin_dir / "statelint"), str(path)],
        [str(bin_dir / "asl-validator"), "--json-path", str(path)],
    ]
    return [subprocess.run(c, capture_output=True, text=True, check=False) for c in commands]


def test_flow_passes_both_asl_linters() -> None:
    for done in lint(FLOW):
        assert done.returncode == 0, done.stdout + done.stderr


def test_linters_reject_a_broken_flow(tmp_path: Path) -> None:
    broken = definition()
    broken["States"]["Transform"]["Next"] = "Nowhere"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    for done in lint(path):
        assert done.returncode != 0
        assert "Nowhere" in done.stdout + done.stderr


# --------------------------------------------------------------------------- shape


def test_validate_transform_load_in_order() -> None:
    flow = definition()
    states = flow["States"]
    path, name = [], flow["StartAt"]
    while "Next" in states[name]:
        path.append(name)
        name = states[name]["Next"]
    # No crawler step: the catalog tables use partition projection (logic/catalog.py).
    assert [*path, name] == ["Validate", "Transform", "Load", "Done"]
    for step in ("Validate", "Transform", "Load"):
        assert states[step]["Resource"] == "arn:aws:states:::glue:startJobRun.sync"


def test_every_step_retries_with_backoff_and_catches_to_sns() -> None:
    states = definition()["States"]
    for name in ("Validate", "Transform", "Load"):
        assert all(r["BackoffRate"] >= 2 for r in states[name]["Retry"]), name
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyFailure"}
        ]
    assert states["NotifyFailure"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states["NotifyFailure"]["Next"] == "Failed"
    assert states["Failed"]["Type"] == "Fail"


# --------------------------------------------------------------------------- moto


@pytest.fixture
def executing(moto_endpoint: str, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto runs state machines while the test lasts; its tasks call back into this server."""
    monkeypatch.setenv("MOTO_PORT", moto_endpoint.rsplit(":", 1)[1])
    set_moto_config(moto_endpoint, execute=True)
    yield moto_endpoint
    set_moto_config(moto_endpoint, execute=False)


def set_moto_config(endpoint: str, *, execute: bool) -> None:
    body = json.dumps({"stepfunctions": {"execute_state_machine": execute}}).encode()
    url = f"{endpoint}/moto-api/config"
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - local moto
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


@pytest.fixture
def deployed(executing: str) -> dict[str, str]:
    """Glue jobs, an SNS topic with an SQS inbox: what the stack would create."""
    name = f"sf{uuid.uuid4().hex[:8]}"
    glue, sns, sqs = (client(s, executing) for s in ("glue", "sns", "sqs"))
    names = {
        "ValidationJobName": f"{name}-validation",
        "TransformJobName": f"{name}-transform",
        "LoadJobName": f"{name}-load",
    }
    command = {"Name": "glueetl", "ScriptLocation": "s3://artifacts/job.py"}
    for key in ("ValidationJobName", "TransformJobName", "LoadJobName"):
        glue.create_job(Name=names[key], Role=ROLE, Command=command)
    topic = sns.create_topic(Name=f"{name}-failures")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    return names | {"FailureTopicArn": topic, "name": name, "queue": queue}


def execute(endpoint: str, names: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create the flow (request-response Glue steps, 1 s retry intervals) and run it once."""
    flow = json.loads(render(FLOW.read_text(), names).replace("startJobRun.sync", "startJobRun"))
    for state in _all_states(flow):
        for retry in state.get("Retry", []):
            retry["IntervalSeconds"] = 1  # the same retries, in seconds instead of minutes
    sfn = client("stepfunctions", endpoint)
    machine = sfn.create_state_machine(
        name=names["name"], definition=json.dumps(flow), roleArn=ROLE
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="exec-1", input="{}")[
        "executionArn"
    ]
    deadline = time.monotonic() + 60
    while (found := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish in 60 s"
        time.sleep(0.2)
    return found, sfn.get_execution_history(executionArn=execution)["events"]


def _all_states(flow: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in flow["States"].values():
        yield state
        for branch in state.get("Branches", []):
            yield from _all_states(branch)


def entered(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]


@pytest.mark.aws
def test_flow_runs_every_step_on_moto(deployed: dict[str, str], executing: str) -> None:
    result, events = execute(executing, deployed)
    assert result["status"] == "SUCCEEDED", result
    steps = entered(events)
    assert steps == ["Validate", "Transform", "Load", "Done"]
    glue = client("glue", executing)
    for key in ("ValidationJobName", "TransformJobName", "LoadJobName"):
        (job_run,) = glue.get_job_runs(JobName=deployed[key])["JobRuns"]
        # The execution's name joins the three stages' run artifacts (flow_id).
        assert job_run["Arguments"]["--FLOW_ID"] == result["executionArn"].rsplit(":", 1)[1]
    output = json.loads(result["output"])
    assert set(output) == {"validation", "transform", "load"}


@pytest.mark.aws
def test_a_failed_step_is_retried_then_published_to_sns(
    deployed: dict[str, str], executing: str
) -> None:
    missing = deployed | {"TransformJobName": "no-such-job"}
    result, events = execute(executing, missing)
    assert result["status"] == "FAILED"
    assert result["error"] == "MusicEtlFlowFailed"
    failures = [e for e in events if e["type"] == "TaskFailed"]
    assert len(failures) == 3  # the first try and two retries with backoff
    assert failures[0]["taskFailedEventDetails"]["error"] == "Glue.EntityNotFoundException"
    assert entered(events)[-2:] == ["NotifyFailure", "Failed"]
    answer = client("sqs", executing).receive_message(QueueUrl=deployed["queue"])
    [message] = [json.loads(m["Body"]) for m in answer["Messages"]]
    assert message["Subject"] == "music-etl: the Step Functions flow failed"
    assert "Glue.EntityNotFoundException" in message["Message"]
