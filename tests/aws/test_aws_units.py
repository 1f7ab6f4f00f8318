"""The AWS adapters' pure parts: URLs, number encoding, error mapping, backoff, lazy imports."""

from __future__ import annotations

import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from music_etl.adapters.aws.batch import Backoff
from music_etl.adapters.aws.codec import decode, encode
from music_etl.adapters.aws.errors import (
    from_boto3_error,
    from_botocore_error,
    from_client_error,
)
from music_etl.adapters.aws.session import DynamoDBTarget, parse_dynamodb_url, parse_s3_url
from music_etl.errors import (
    ConfigError,
    Retryable,
    ServiceError,
    ServiceUnavailable,
    StorageError,
    Terminal,
)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "create_processedstreams_table.py"


def test_dynamodb_urls() -> None:
    assert parse_dynamodb_url("dynamodb://") == DynamoDBTarget()
    target = parse_dynamodb_url("dynamodb://?region=eu-west-1&prefix=dev-", endpoint="http://x")
    assert target == DynamoDBTarget(region="eu-west-1", endpoint="http://x", prefix="dev-")
    assert target.table("ProcessedStreams") == "dev-ProcessedStreams"
    assert parse_dynamodb_url("dynamodb://?endpoint=http://y", endpoint="http://x").endpoint == (
        "http://y"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("dynamodb://eu-west-1", "put the region in the query"),
        ("dynamodb://?regoin=eu-west-1", "Unknown parameter"),
        ("dynamodb://?prefix=dev/", "letters, digits"),
        ("sqlite:///x", "Expected dynamodb://"),
    ],
)
def test_bad_dynamodb_urls_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_dynamodb_url(url)


def test_s3_urls() -> None:
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    for bad in ("s3:///prefix", "s3://bucket/a/../b", "s3://bucket/x?y=1"):
        with pytest.raises(ConfigError):
            parse_s3_url(bad)


def test_numbers_travel_as_decimals_and_come_back_plain() -> None:
    values = {
        "date": "2024-06-01",
        "avg": 233_333.33333333334,
        "whole": 200_000.0,
        "count": 7,
        "songs": [{"rank": 1, "play_count": 3, "name": 'a "b", c'}],
        "days": ("2024-06-01",),
        "flag": True,
        "empty": "",
    }
    item = encode(values)
    assert item["avg"] == {"N": "233333.33333333334"}
    assert item["days"] == {"L": [{"S": "2024-06-01"}]}
    back = decode(item, floats={"avg", "whole"})
    assert back == {**values, "days": ["2024-06-01"]}
    assert isinstance(back["whole"], float)
    assert isinstance(back["count"], int)
    assert isinstance(back["songs"][0]["rank"], int)
    assert decode({"n": {"N": "2.5"}}) == {"n": 2.5}
    with pytest.raises(ServiceError, match="nan"):
        encode({"x": float("nan")})
    assert encode({"d": Decimal("1.10")}) == {"d": {"N": "1.10"}}


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "msg"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


@pytest.mark.parametrize(
    ("code", "status", "kind", "message"),
    [
        ("SlowDown", 503, ServiceUnavailable, "try again later"),
        ("ProvisionedThroughputExceededException", 400, ServiceUnavailable, "try again later"),
        ("Anything", 502, ServiceUnavailable, "try again later"),
        ("NoSuchBucket", 404, ConfigError, "bucket does not exist"),
        ("ResourceNotFoundException", 400, ConfigError, "music-etl aws init"),
        ("AccessDenied", 403, ConfigError, "AWS_PROFILE"),
        ("ValidationException", 400, StorageError, "ValidationException: msg"),
    ],
)
def test_client_errors_are_translated(
    code: str, status: int, kind: type[Exception], message: str
) -> None:
    error = from_client_error(client_error(code, status), "Doing X", StorageError)
    assert isinstance(error, kind)
    assert str(error).startswith("Doing X: ")
    assert message in str(error)


def test_client_side_errors_are_translated() -> None:
    unreachable = from_botocore_error(EndpointConnectionError(endpoint_url="http://x"), "Doing X")
    assert isinstance(unreachable, ServiceUnavailable) and isinstance(unreachable, Retryable)
    no_credentials = from_botocore_error(NoCredentialsError(), "Doing X")
    assert isinstance(no_credentials, ConfigError) and isinstance(no_credentials, Terminal)
    assert "AWS_PROFILE" in str(no_credentials)


def test_failed_managed_transfers_are_translated_by_their_cause() -> None:
    from boto3.exceptions import RetriesExceededError, S3UploadFailedError

    try:
        try:
            raise client_error("SlowDown", 503)
        except ClientError as exc:
            raise S3UploadFailedError(f"Failed to upload: {exc}") from None
    except S3UploadFailedError as wrapped:
        assert isinstance(from_boto3_error(wrapped, "Writing", StorageError), ServiceUnavailable)
    exhausted = from_boto3_error(RetriesExceededError(None), "Reading", StorageError)
    assert isinstance(exhausted, ServiceUnavailable)


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    waits: list[float] = []
    backoff = Backoff(base=0.1, cap=1.0, sleep=waits.append, rng=random.Random(7))
    for attempt in range(8):
        backoff.wait(attempt)
    assert all(0 <= w <= min(1.0, 0.1 * 2**i) for i, w in enumerate(waits))
    assert len(set(waits)) == len(waits)


def test_the_embedded_mode_never_imports_boto3() -> None:
    code = (
        "import sys, music_etl.cli.app, music_etl.pipeline.run;"
        "from music_etl.adapters.storage import open_storage;"
        "from music_etl.adapters.ledger import open_ledger;"
        "open_storage('/tmp/x'); open_ledger('sqlite:///:memory:');"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_table_script_has_help() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    )
    assert "--prefix" in result.stdout


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("", {}),
        (
            "http://127.0.0.1:5000",
            {
                "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:5000",
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
            },
        ),
        (
            "https://minio.internal:9000",
            {
                "spark.hadoop.fs.s3a.endpoint": "https://minio.internal:9000",
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": "true",
            },
        ),
    ],
)
def test_the_endpoint_override_points_spark_s3a_there(
    endpoint: str, expected: dict[str, str]
) -> None:
    session = pytest.importorskip("music_etl.engines.spark.session")
    assert session.s3a_endpoint_conf(endpoint) == expected
    # A session the engine starts itself reads s3:// through S3A (EMRFS on Glue is untouched).
    assert session.LOCAL_S3 == {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}
