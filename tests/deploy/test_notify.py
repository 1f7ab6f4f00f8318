"""Failure notifications: an SNS topic on moto (read back through SQS) and a local webhook."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from aws.helpers import REGION, client
from conftest import Lake
from deploy.webhook_server import webhook_server
from music_etl.adapters.ledger import open_ledger
from music_etl.adapters.ledger.base import new_owner
from music_etl.adapters.notify import Notification, open_notifier
from music_etl.adapters.notify.sns import SNSNotifier
from music_etl.adapters.notify.webhook import WebhookNotifier
from music_etl.errors import ConfigError, LockHeld, ServiceError, ServiceUnavailable
from music_etl.pipeline.batch import FileResult
from music_etl.pipeline.notify import (
    MAX_LISTED,
    error_notification,
    failure_notification,
    notify_failures,
)
from music_etl.pipeline.run import run
from music_etl.settings import load_settings

NOTE = Notification(subject="music-etl: 1 of 2 files failed", text="- raw/streams/a.csv: x")
GOOD = [(1, "t1", "2024-06-01 10:00:00"), (2, "t3", "2024-06-01 11:00:00")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subject(lake: Lake) -> str:
    """The subject of a run with 2 of 3 files failed, as sent (at most 100 characters)."""
    return Notification(
        subject=f"music-etl: 2 of 3 files failed in {lake.root}", text=""
    ).short_subject


def bad_lake(lake: Lake) -> None:
    """One good file, one without a `listen_time` column, one mostly bad rows."""
    lake.put_streams("good.csv", GOOD)
    lake.put_raw("no_time.csv", b"user_id,track_id\n1,t1\n")
    lake.put_streams("noisy.csv", [(2, "t1", "2024-06-01 12:00:00"), ("x", "t1", "bad")])


# --------------------------------------------------------------------------- registry


def test_open_notifier_by_url() -> None:
    assert open_notifier("") is None
    assert isinstance(open_notifier("https://hooks.example.com/x"), WebhookNotifier)
    with pytest.raises(ConfigError, match="Unsupported notifier"):
        open_notifier("ftp://example.com")
    with pytest.raises(ConfigError, match="SNS topic ARN"):
        open_notifier("sns://not-an-arn")


def test_notifier_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="notifier 'slack'"):
        load_settings(env={}, config=Path("/nonexistent.toml"), notifier="slack")
    env = {"MUSIC_ETL_NOTIFIER": "https://hooks.example.com/x"}
    assert load_settings(env=env, config=Path("/nonexistent.toml")).notifier.startswith("https")


def test_subject_fits_sns() -> None:
    long = Notification(subject="x" * 300 + "\nsecond line", text="")
    assert len(long.short_subject) == 100
    assert "\n" not in long.short_subject


def test_message_names_each_file_reason_and_counts(lake: Lake) -> None:
    settings = lake.settings()
    failed = [
        FileResult(
            key=f"raw/streams/f{i}.csv",
            status="failed",
            rows_in=10,
            rows_valid=2,
            bad_by_reason={"bad_timestamp": 8},
            error="too_many_bad_rows",
            message="80.0% of rows are bad, above the threshold of 5.0%",
        )
        for i in range(MAX_LISTED + 3)
    ]
    note = failure_notification(settings, failed, total=30, run_id="r1")
    assert note.subject == f"music-etl: {MAX_LISTED + 3} of 30 files failed in {settings.lake}"
    first = note.text.splitlines()[0]
    assert first == (
        "- raw/streams/f0.csv: too_many_bad_rows (80.0% of rows are bad, above the threshold "
        "of 5.0%); 10 rows in, 2 valid, 8 bad [bad_timestamp 8]"
    )
    assert note.text.splitlines()[-1] == "… and 3 more (see `music-etl status`)."
    assert note.details["failed_count"] == MAX_LISTED + 3
    assert note.details["bad_row_threshold"] == 0.05


# --------------------------------------------------------------------------- webhook


def test_webhook_posts_slack_json() -> None:
    with webhook_server() as hook:
        WebhookNotifier(hook.url).send(NOTE)
    assert hook.received == [{"text": "*music-etl: 1 of 2 files failed*\n- raw/streams/a.csv: x"}]


@pytest.mark.parametrize(("status", "error"), [(500, ServiceUnavailable), (404, ServiceError)])
def test_webhook_errors_are_ours(status: int, error: type[Exception]) -> None:
    with webhook_server(status) as hook, pytest.raises(error, match=f"HTTP {status}") as info:
        WebhookNotifier(hook.url).send(NOTE)
    assert "secret" not in str(info.value)  # the webhook's path is a credential


def test_unreachable_webhook_is_retryable() -> None:
    with pytest.raises(ServiceUnavailable, match="cannot reach"):
        WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook", timeout=2).send(NOTE)


def test_run_notifies_failed_files_through_the_webhook(lake: Lake) -> None:
    bad_lake(lake)
    with webhook_server() as hook:
        report = run(lake.settings(notifier=hook.url))
    assert sorted(f.key for f in report.failed) == [
        "raw/streams/no_time.csv",
        "raw/streams/noisy.csv",
    ]
    [message] = hook.received
    text = message["text"]
    assert text.startswith(f"*{subject(lake)}*\n")
    assert "- raw/streams/no_time.csv: missing_column" in text
    assert "- raw/streams/noisy.csv: too_many_bad_rows (50.0% of rows are bad" in text
    assert "2 rows in, 1 valid, 1 bad" in text
    assert "good.csv" not in text


def test_run_without_failures_sends_nothing(lake: Lake) -> None:
    lake.put_streams("good.csv", GOOD)
    with webhook_server() as hook:
        report = run(lake.settings(notifier=hook.url))
    assert len(report.processed) == 1
    assert hook.received == []


def test_a_broken_notifier_never_fails_the_run(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    bad_lake(lake)
    dead = f"http://127.0.0.1:{free_port()}/hook"
    with caplog.at_level(logging.WARNING, logger="music_etl.pipeline.notify"):
        report = run(lake.settings(notifier=dead))
    assert len(report.failed) == 2
    assert len(report.processed) == 1
    assert "Could not notify http://127.0.0.1" in caplog.text
    assert notify_failures(lake.settings(notifier="sns://arn:aws:sns:x:1:t"), report.files) is False


# --------------------------------------------------------------------------- SNS


@pytest.fixture
def topic_queue(moto_endpoint: str, aws_env: None) -> tuple[str, str]:
    """An SNS topic with an SQS queue subscribed (raw delivery off: the SNS envelope)."""
    sns, sqs = client("sns", moto_endpoint), client("sqs", moto_endpoint)
    topic = sns.create_topic(Name=f"failures-{free_port()}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"inbox-{free_port()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
    return topic, queue


def received(moto_endpoint: str, queue: str) -> list[dict[str, str]]:
    answer = client("sqs", moto_endpoint).receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


@pytest.mark.aws
def test_sns_notifier_publishes(moto_endpoint: str, topic_queue: tuple[str, str]) -> None:
    topic, queue = topic_queue
    SNSNotifier(topic, endpoint=moto_endpoint).send(
        Notification(subject=NOTE.subject, text=NOTE.text, details={"failed_count": 1})
    )
    [envelope] = received(moto_endpoint, queue)
    assert envelope["Subject"] == NOTE.subject
    assert envelope["Message"].startswith(NOTE.text + "\n\n")
    assert json.loads(envelope["Message"].split("\n\n", 1)[1]) == {"failed_count": 1}
    assert topic.split(":")[3] == REGION


@pytest.mark.aws
def test_run_notifies_failed_files_on_sns(
    lake: Lake, moto_endpoint: str, topic_queue: tuple[str, str]
) -> None:
    topic, queue = topic_queue
    bad_lake(lake)
    run(lake.settings(notifier=f"sns://{topic}", aws_endpoint=moto_endpoint))
    [envelope] = received(moto_endpoint, queue)
    assert envelope["Subject"] == subject(lake)
    details = json.loads(envelope["Message"].split("\n\n", 1)[1])
    assert [f["file"] for f in details["failed"]] == [
        "raw/streams/no_time.csv",
        "raw/streams/noisy.csv",
    ]
    assert details["failed"][1]["bad_by_reason"] == {"bad_user_id": 1}


@pytest.mark.aws
def test_missing_topic_is_logged_not_raised(
    lake: Lake, moto_endpoint: str, aws_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    bad_lake(lake)
    missing = f"sns://arn:aws:sns:{REGION}:123456789012:nope"
    with caplog.at_level(logging.WARNING, logger="music_etl.pipeline.notify"):
        report = run(lake.settings(notifier=missing, aws_endpoint=moto_endpoint))
    assert len(report.failed) == 2
    assert "Could not notify sns://arn:aws:sns" in caplog.text


# --------------------------------------------------------------------------- run-level failures


def test_an_error_that_stops_the_run_reaches_the_webhook(lake: Lake) -> None:
    lake.put_streams("good.csv", GOOD)
    settings = lake.settings(lock_wait_seconds=0)
    ledger = open_ledger(settings.ledger_url)
    assert ledger.acquire_lock("lake", new_owner(), 900)  # a long `rebuild` elsewhere
    with webhook_server() as hook, pytest.raises(LockHeld):
        run(lake.settings(notifier=hook.url, lock_wait_seconds=0))
    [message] = hook.received
    lines = message["text"].splitlines()
    assert lines[0].startswith("*music-etl: run failed in ")  # the subject is cut at 100
    assert lines[1].startswith("LockHeld: Another run holds the lock on")
    assert lines[2].startswith("Retry later")
    assert (lake.root / "raw/streams/good.csv").exists()


def test_error_notification_details(lake: Lake) -> None:
    note = error_notification(lake.settings(), ConfigError("bad"), command="watch")
    assert note.subject == f"music-etl: watch failed in {lake.root}"
    assert note.details == {
        "lake": str(lake.root),
        "command": "watch",
        "error": "ConfigError",
        "message": "bad",
        "retryable": False,
        "exit_code": 2,
    }


# --------------------------------------------------------------------------- escaping, secrets


def test_webhook_escapes_slack_control_sequences() -> None:
    note = Notification(subject="<!channel> alert", text="see <https://evil.example|here> & <>")
    with webhook_server() as hook:
        WebhookNotifier(hook.url).send(note)
    [message] = hook.received
    assert message["text"] == (
        "*&lt;!channel&gt; alert*\nsee &lt;https://evil.example|here&gt; &amp; &lt;&gt;"
    )


def test_file_names_cannot_ping_the_channel(lake: Lake) -> None:
    lake.put_raw("<!channel> & <!here>.csv", b"user_id,track_id\n1,t1\n")
    with webhook_server() as hook:
        report = run(lake.settings(notifier=hook.url))
    assert len(report.failed) == 1
    [message] = hook.received
    assert "<!" not in message["text"]
    assert (
        "- raw/streams/&lt;!channel&gt; &amp; &lt;!here&gt;.csv: missing_column" in message["text"]
    )


def test_no_webhook_secret_in_descriptions_messages_or_logs(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    url = f"http://user:hunter2@127.0.0.1:{port}/services/T000/B000/secret?token=abc"
    notifier = WebhookNotifier(url, timeout=2)
    assert notifier.describe() == f"http://127.0.0.1:{port}/…"
    with pytest.raises(ServiceUnavailable) as info:
        notifier.send(NOTE)
    bad_lake(lake)
    with caplog.at_level(logging.WARNING, logger="music_etl.pipeline.notify"):
        run(lake.settings(notifier=url))
    assert "Could not notify" in caplog.text
    with pytest.raises(ConfigError) as config:
        load_settings(env={}, config=Path("/nonexistent.toml"), notifier=url.replace("http", "htp"))
    with pytest.raises(ConfigError) as scheme:
        WebhookNotifier(url.replace("http://", "http:/"))
    for text in (str(info.value), caplog.text, str(config.value), str(scheme.value)):
        for secret in ("hunter2", "user:", "secret", "token", "T000"):
            assert secret not in text, text
