"""The Glue load job as the seed asks for it, on moto over HTTP.

Tables created when missing (keys, on-demand, encryption, point-in-time recovery, safe to
race); partitioned and non-partitioned `processed/` input; items DynamoDB cannot store
skipped, counted, logged and their day flagged. The job runs as Glue runs it:
`glue_jobs/load/load_dynamo.py` in a subprocess, its JSON line read back.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from aws.helpers import NOW, AwsLake, FaultHook, client, generate_sample, json_response, new_client
from music_etl.adapters.aws.batch import Backoff
from music_etl.adapters.aws.session import DynamoDBTarget
from music_etl.adapters.aws.tables import ALL_TABLES, SERVING_TABLES, create_tables
from music_etl.adapters.serving import open_serving
from music_etl.adapters.serving.dynamodb import DynamoDBServingStore
from music_etl.adapters.storage.local import LocalStorage
from music_etl.integrations.glue import LOADABLE_DAYS
from music_etl.logic import layout
from music_etl.logic.contract import OUTPUT_TABLES
from music_etl.logic.serving_model import SERVING_KEYS
from music_etl.pipeline.lake import mark_lake
from music_etl.pipeline.run import run
from music_etl.settings import load_settings

pytestmark = pytest.mark.aws

ROOT = Path(__file__).resolve().parents[2]
LOAD_SCRIPT = ROOT / "glue_jobs" / "load" / "load_dynamo.py"
TABLE_NAMES = [spec.name for spec in ALL_TABLES]
#: Where a plain reader finds the per-day load flags (docs/aws.md).
MARKER_PARTITION = "__load__"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One embedded run over the standard sample: its processed files and serving items."""
    root = tmp_path_factory.mktemp("embedded-load") / "lake"
    storage = LocalStorage(root)
    generate_sample(storage)
    settings = load_settings(env={}, config=root / "no-config.toml", lake=str(root), now=NOW)
    report = run(settings)
    serving = open_serving(settings.serving_url)
    files = {i.key: storage.read_bytes(i.key) for i in storage.list(layout.PROCESSED)}
    return {
        "days": list(report.days),
        "files": files,
        "serving": {name: serving.scan(name) for name in SERVING_KEYS},
    }


def lake_with(s3_lake: AwsLake, files: dict[str, bytes], days: list[str]) -> None:
    """An S3 lake holding `files` and `days` listed for the load job."""
    storage = s3_lake.storage()
    mark_lake(storage)
    for key, data in files.items():
        storage.write_bytes(key, data)
    if days:
        storage.write_bytes(LOADABLE_DAYS, json.dumps({"days": days}).encode())


def flat_files(embedded: dict[str, Any], *, parts: int = 2) -> dict[str, bytes]:
    """The processed tables as other tools write them: `parts` files per table, a date column."""
    files = {}
    for table in OUTPUT_TABLES:
        rows = []
        for key, data in sorted(embedded["files"].items()):
            if key.startswith(f"{layout.PROCESSED}{table}/date="):
                day = key.split("date=")[1].split("/")[0]
                rows += [{**r, "date": day} for r in pq.read_table(io.BytesIO(data)).to_pylist()]
        for n in range(parts):
            files[f"{layout.PROCESSED}{table}/part-{n:05d}.snappy.parquet"] = parquet(
                rows[n::parts]
            )
    return files


def parquet(rows: list[dict[str, Any]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def run_load(s3_lake: AwsLake, *args: str) -> dict[str, Any]:
    """`glue_jobs/load/load_dynamo.py` in a subprocess, as a Glue Python shell job runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    argv = [sys.executable, str(LOAD_SCRIPT), "--JOB_NAME", "music-etl-load"]
    argv += ["--LAKE_ROOT", s3_lake.lake, "--AWS_ENDPOINT", s3_lake.endpoint, "--NOW", NOW]
    argv += ["--SERVING", s3_lake.dynamodb, "--LEDGER", s3_lake.dynamodb, "--ENGINE", "polars"]
    argv += args
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    result["stderr"] = done.stderr
    return result


def serving_state(s3_lake: AwsLake) -> dict[str, list[dict[str, Any]]]:
    store = s3_lake.serving()
    return {name: store.scan(name) for name in SERVING_KEYS}


def describe(s3_lake: AwsLake, table: str) -> dict[str, Any]:
    dynamodb = client("dynamodb", s3_lake.endpoint)
    name = f"{s3_lake.name}-{table}"
    found = dynamodb.describe_table(TableName=name)["Table"]
    backups = dynamodb.describe_continuous_backups(TableName=name)
    found["pitr"] = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
        "PointInTimeRecoveryStatus"
    ]
    return dict(found)


def assert_defined_as_infra(s3_lake: AwsLake, table: str) -> None:
    found = describe(s3_lake, table)
    assert found["TableStatus"] == "ACTIVE"
    assert found["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert found["SSEDescription"]["Status"] == "ENABLED"
    assert found["pitr"] == "ENABLED"


# --------------------------------------------------------------------------- tables


def test_the_load_creates_missing_tables_and_loads_the_partitioned_layout(
    s3_lake: AwsLake, embedded: dict[str, Any]
) -> None:
    lake_with(s3_lake, embedded["files"], embedded["days"])
    result = run_load(s3_lake)
    assert result["days"] == embedded["days"]
    assert result["skipped_items"] == 0
    assert result["flagged_days"] == {}
    for table in TABLE_NAMES:
        assert_defined_as_infra(s3_lake, table)
    assert serving_state(s3_lake) == embedded["serving"]
    assert run_load(s3_lake)["days"] == []


def test_racing_creators_both_succeed(s3_lake: AwsLake) -> None:
    """A creator that saw no table meets `ResourceInUseException`: it waits, it does not fail."""
    target = DynamoDBTarget(endpoint=s3_lake.endpoint, prefix=f"{s3_lake.name}-")
    assert create_tables(target, SERVING_TABLES) == [target.table(s.name) for s in SERVING_TABLES]
    late = new_client("dynamodb", s3_lake.endpoint)
    late.meta.events.register(
        "before-send.dynamodb.DescribeTable", _not_found_once(len(SERVING_TABLES))
    )
    assert create_tables(target, SERVING_TABLES, client=late) == []
    for spec in SERVING_TABLES:
        assert_defined_as_infra(s3_lake, spec.name)


def _not_found_once(times: int) -> Any:
    """The first `times` DescribeTable calls answer as if the table did not exist yet."""
    left = [times]

    def hook(request: Any, **_: Any) -> Any:
        if left[0] <= 0:
            return None
        left[0] -= 1
        payload = {
            "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            "message": "Requested resource not found",
        }
        return json_response(request.url, payload, 400)

    return hook


def test_table_definitions_match_infra() -> None:
    from cfnlint.decode import decode_str

    parsed, errors = decode_str((ROOT / "infra" / "music-etl.yaml").read_text())
    assert not errors, errors
    template = json.loads(json.dumps(parsed, default=str))["Resources"]
    for spec in ALL_TABLES:
        props = template[f"{spec.name}Table"]["Properties"]
        ours = spec.definition("")
        assert props["BillingMode"] == ours["BillingMode"]
        assert props["KeySchema"] == ours["KeySchema"]
        assert props["AttributeDefinitions"] == ours["AttributeDefinitions"]
        assert props["SSESpecification"] == {"SSEEnabled": ours["SSESpecification"]["Enabled"]}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_music_etl_run_on_an_empty_dynamodb_creates_the_tables(s3_lake: AwsLake) -> None:
    generate_sample(s3_lake.storage())
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}}
    env |= {**s3_lake.env(), "MUSIC_ETL_SETTLE_SECONDS": "0"}
    cli = Path(sys.executable).parent / "music-etl"
    done = subprocess.run(
        [str(cli), "run"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "aws init" not in done.stdout + done.stderr
    for table in TABLE_NAMES:
        assert_defined_as_infra(s3_lake, table)
    assert s3_lake.serving().scan("TopGenresPerDay")


# --------------------------------------------------------------------------- non-partitioned


def test_non_partitioned_files_load_every_day_they_hold(
    aws_lake: AwsLake, embedded: dict[str, Any]
) -> None:
    s3_lake = aws_lake
    files = flat_files(embedded)
    lake_with(s3_lake, files, [])
    first = run_load(s3_lake)
    assert first["days"] == embedded["days"]
    assert serving_state(s3_lake) == embedded["serving"]
    assert run_load(s3_lake)["days"] == [], "unchanged files are not loaded again"
    # Another tool rewrites one file with the last day only: that day is replaced whole.
    day = embedded["days"][-1]
    key = f"{layout.PROCESSED}top_genres/part-00000.snappy.parquet"
    rows = [r for r in pq.read_table(io.BytesIO(files[key])).to_pylist() if r["date"] == day]
    s3_lake.storage().write_bytes(key, parquet(rows[:1]))
    again = run_load(s3_lake)
    assert set(again["days"]) <= set(embedded["days"])
    assert day in again["days"]
    other = f"{layout.PROCESSED}top_genres/part-00001.snappy.parquet"
    kept = [r for r in pq.read_table(io.BytesIO(files[other])).to_pylist() if r["date"] == day]
    loaded = [r for r in s3_lake.serving().scan("TopGenresPerDay") if r["date"] == day]
    assert len(loaded) == len(rows[:1]) + len(kept)


# --------------------------------------------------------------------------- bad items


def bad_rows(day: str) -> dict[str, list[dict[str, Any]]]:
    """Rows DynamoDB cannot store, one per kind, for `day`."""
    kpi = {
        "date": day,
        "genre": "",
        "listen_count": 1,
        "unique_listeners": 1,
        "total_listening_time": 1,
        "avg_listening_time": 1.0,
    }
    nan = {**kpi, "genre": "zz-nan", "avg_listening_time": float("nan")}
    song = {"date": day, "genre": "zz-huge", "track_id": "t", "artists": "a", "play_count": 1}
    huge = {**song, "rank": 1, "track_name": "x" * 500_000}
    return {"daily_genre_kpis": [kpi, nan], "top_songs": [huge]}


def with_bad_rows(embedded: dict[str, Any], day: str) -> dict[str, bytes]:
    """The processed files (partitioned), the day's partitions holding bad rows too."""
    files = dict(embedded["files"])
    for table, extra in bad_rows(day).items():
        key = layout.processed_key(table, date.fromisoformat(day))
        rows = pq.read_table(io.BytesIO(files[key])).to_pylist()
        files[key] = parquet(rows + [{k: v for k, v in r.items() if k != "date"} for r in extra])
    return files


def test_bad_items_are_skipped_logged_counted_and_their_day_flagged(
    aws_lake: AwsLake, embedded: dict[str, Any]
) -> None:
    day = embedded["days"][0]
    lake_with(aws_lake, with_bad_rows(embedded, day), embedded["days"])
    result = run_load(aws_lake)
    assert result["days"] == embedded["days"]
    assert result["skipped_items"] == 3
    assert result["flagged_days"] == {day: 3}
    reasons = sorted(s["reason"] for s in result["skipped"])
    assert "empty string in key attribute 'genre'" in reasons
    assert "not a finite number in attribute 'avg_listening_time'" in reasons
    assert any("over DynamoDB's 400 KB limit" in r for r in reasons)
    assert "Skipped an item" in result["stderr"]
    assert "zz-nan" in result["stderr"]
    # The rest of every day is loaded.
    assert serving_state(aws_lake) == embedded["serving"]
    # The flag is a plain item: GetItem finds it, a Query on the day does not.
    dynamodb = client("dynamodb", aws_lake.endpoint)
    name = f"{aws_lake.name}-DailyGenreKPIs"
    marker = dynamodb.get_item(
        TableName=name, Key={"date": {"S": MARKER_PARTITION}, "genre": {"S": day}}
    )["Item"]
    assert marker["skipped"] == {"N": "3"}
    on_day = dynamodb.query(
        TableName=name,
        KeyConditionExpression="#d = :d",
        ExpressionAttributeNames={"#d": "date"},
        ExpressionAttributeValues={":d": {"S": day}},
    )["Items"]
    assert len(on_day) == len(
        [r for r in embedded["serving"]["DailyGenreKPIs"] if r["date"] == day]
    )
    # The day recomputed from clean input: loaded whole, the flag goes.
    lake_with(aws_lake, embedded["files"], [day])
    fixed = run_load(aws_lake)
    assert fixed["skipped_items"] == 0
    assert fixed["flagged_days"] == {}


def test_the_load_artifact_and_json_log_count_skipped_items_per_day(
    aws_lake: AwsLake, embedded: dict[str, Any]
) -> None:
    day = embedded["days"][0]
    lake_with(aws_lake, with_bad_rows(embedded, day), embedded["days"])
    result = run_load(aws_lake, "--LOG_FORMAT", "json", "--FLOW_ID", "exec-1")
    doc = json.loads(aws_lake.storage().read_bytes(result["artifact"]))
    assert (doc["command"], doc["status"], doc["flow_id"]) == ("glue-load", "ok", "exec-1")
    assert doc["run_id"] == result["run_id"]
    assert [d["day"] for d in doc["days"]] == result["days"] == embedded["days"]
    assert {d["day"]: d["skipped_items"] for d in doc["days"] if d["skipped_items"]} == {day: 3}
    assert all(d["loaded"] and not d["recomputed"] for d in doc["days"])
    events = [json.loads(line) for line in result["stderr"].splitlines()]
    assert {e["run_id"] for e in events} == {doc["run_id"]}
    loaded = {e["day"]: e["skipped_items"] for e in events if e["event"] == "day_loaded"}
    assert loaded == {d["day"]: d["skipped_items"] for d in doc["days"]}
    assert [e["event"] for e in events][:: len(events) - 1] == ["run_started", "run_finished"]
    assert events[-1]["skipped_items"] == 3
    skipped_logs = [e for e in events if e["event"] == "log" and "Skipped an item" in e["message"]]
    assert len(skipped_logs) == 3
    assert all(e["level"] == "warning" for e in skipped_logs)


def test_what_dynamodb_refuses_is_skipped_and_throttling_is_retried(aws_lake: AwsLake) -> None:
    """A key of the wrong type passes our checks; DynamoDB refuses it. Throttles are retried."""
    raw = new_client("dynamodb", aws_lake.endpoint, max_attempts=8)
    hook = FaultHook(every=4, throttle_every=2, seed=3).install(raw)
    store = DynamoDBServingStore(
        aws_lake.dynamodb, client=raw, backoff=Backoff(sleep=lambda _: None)
    )
    day = "2024-06-01"
    genres = [{"date": day, "rank": n, "genre": f"g{n}", "listen_count": 10 - n} for n in (1, 2)]
    wrong = {"date": day, "rank": "three", "genre": "g3", "listen_count": 1}
    store.replace_days([day], {"TopGenresPerDay": [*genres, wrong]})
    assert [(s.table, s.key["rank"]) for s in store.last_skipped] == [("TopGenresPerDay", "three")]
    assert "DynamoDB refused it" in store.last_skipped[0].reason
    assert store.scan("TopGenresPerDay") == genres
    assert store.flagged_days() == {day: 1}
    assert hook.injected, "faults were injected"


# --------------------------------------------------------------------------- aws init


def test_aws_init_makes_tables_and_bucket_as_infra_does(s3_lake: AwsLake) -> None:
    bucket = f"{s3_lake.name}-init"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    env |= {**s3_lake.env(), "MUSIC_ETL_LAKE": f"s3://{bucket}/lake"}
    cli = Path(sys.executable).parent / "music-etl"
    done = subprocess.run(
        [str(cli), "aws", "init", "--create-bucket"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for table in TABLE_NAMES:
        assert_defined_as_infra(s3_lake, table)
    s3 = client("s3", s3_lake.endpoint)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


# --------------------------------------------------------------------------- run and status


def test_run_and_status_say_which_days_are_partial(aws_lake: AwsLake) -> None:
    """Songs of one genre with 410 KB names: that genre's top-songs item is over 400 KB."""
    storage = aws_lake.storage()
    generate_sample(storage)
    songs = pa.csv.read_csv(io.BytesIO(storage.read_bytes(layout.RAW_SONGS))).to_pylist()
    genre = songs[0]["track_genre"]
    for song in songs:
        if song["track_genre"] == genre:
            song["track_name"] = "n" * 410_000
    sink = io.BytesIO()
    pa.csv.write_csv(pa.Table.from_pylist(songs), sink)
    storage.write_bytes(layout.RAW_SONGS, sink.getvalue())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    env |= {**aws_lake.env(), "MUSIC_ETL_SETTLE_SECONDS": "0", "COLUMNS": "200"}
    cli = str(Path(sys.executable).parent / "music-etl")
    done = subprocess.run(
        [cli, "run"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = " ".join((done.stdout + done.stderr).split())
    assert "partial days:" in out
    flagged = aws_lake.serving().flagged_days()
    assert flagged, "the genre is played, so some day is flagged"
    assert all(n == 1 for n in flagged.values())
    assert f"{sum(flagged.values())} item(s) the serving store could not write" in out
    assert "over DynamoDB's 400 KB limit" in out, "the log names the reason"
    status = subprocess.run(
        [cli, "status"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert status.returncode == 0, status.stderr
    said = " ".join((status.stdout + status.stderr).split())
    assert all(f"{day} (1)" in said for day in flagged)
