"""`music-etl query` on an S3 lake (moto over HTTP): the same views and rows as locally.

DuckDB reads S3 through the httpfs extension of the `duckdb-extension-httpfs` wheel
(the `aws` extra); nothing is downloaded. The lock-down is the local one: exactly the
listed `s3://` objects are readable, nothing else on S3, the disk or the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aws.helpers import NOW, AwsLake, client, generate_sample
from music_etl.adapters.storage.local import LocalStorage
from music_etl.errors import ConfigError
from music_etl.pipeline import query_s3
from music_etl.pipeline.query import query
from music_etl.pipeline.run import run
from music_etl.settings import load_settings

CLI = str(Path(sys.executable).parent / "music-etl")
QUERIES = [
    "SELECT * FROM streams ORDER BY listen_date, source_file, source_line",
    "SELECT * FROM bad_records ORDER BY source_file, source_line",
    "SELECT * FROM daily_genre_kpis ORDER BY date, genre",
    "SELECT * FROM top_songs ORDER BY date, genre, rank",
    "SELECT * FROM top_genres ORDER BY date, rank",
]


def music_etl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, check=False, env={**clean, **env}
    )


def rows(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The standard sample, run in embedded mode."""
    root = tmp_path_factory.mktemp("query-local") / "lake"
    generate_sample(LocalStorage(root))
    run(load_settings(env={}, config=root / "no-config.toml", lake=str(root), now=NOW))
    return str(root)


@pytest.fixture
def s3_run(aws_lake: AwsLake) -> AwsLake:
    """The same sample, run on moto S3 + DynamoDB."""
    generate_sample(aws_lake.storage())
    run(aws_lake.settings())
    return aws_lake


@pytest.mark.aws
def test_query_on_s3_returns_what_the_local_query_returns(s3_run: AwsLake, local_lake: str) -> None:
    for sql in QUERIES:
        on_s3 = rows(music_etl("query", "--format", "json", sql, env=s3_run.env()))
        local = query(local_lake, sql)
        assert on_s3 == [_json_row(local.columns, row) for row in local.rows], sql
        assert on_s3, sql


def _json_row(columns: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as `--format json` prints it."""
    return json.loads(json.dumps(dict(zip(columns, row, strict=True)), default=str))


@pytest.mark.aws
def test_query_on_s3_reads_only_the_lakes_views(s3_run: AwsLake) -> None:
    s3 = client("s3", s3_run.endpoint)
    data = s3.get_object(Bucket=s3_run.bucket, Key=_a_processed_key(s3_run))["Body"].read()
    s3.put_object(Bucket=s3_run.bucket, Key="outside/secret.parquet", Body=data)
    s3.put_object(Bucket=s3_run.bucket, Key="lake/_state/secret.parquet", Body=data)
    for sql in (
        f"SELECT * FROM read_parquet('s3://{s3_run.bucket}/outside/secret.parquet')",
        f"SELECT * FROM read_parquet('s3://{s3_run.bucket}/lake/_state/secret.parquet')",
        f"SELECT * FROM read_parquet('s3://{s3_run.bucket}/lake/processed/*/*/*.parquet')",
        "SELECT * FROM read_csv('/etc/hostname')",
        f"SELECT * FROM read_parquet('{s3_run.endpoint}/{s3_run.bucket}/outside/secret.parquet')",
    ):
        done = music_etl("query", sql, env=s3_run.env())
        assert done.returncode == 2, (sql, done.stdout)
        assert "reads only the lake's views" in done.stderr, sql
        assert "Traceback" not in done.stderr
    for sql in ("SET enable_external_access = true", "LOAD httpfs"):
        done = music_etl("query", sql, env=s3_run.env())
        assert done.returncode == 2, sql
        assert "Traceback" not in done.stderr


def _a_processed_key(lake: AwsLake) -> str:
    listed = client("s3", lake.endpoint).list_objects_v2(
        Bucket=lake.bucket, Prefix="lake/processed/top_genres/"
    )
    return str(listed["Contents"][0]["Key"])


@pytest.mark.aws
def test_query_on_an_s3_prefix_that_is_no_lake_is_a_clean_error(s3_lake: AwsLake) -> None:
    done = music_etl("query", "SELECT * FROM top_genres", env=s3_lake.env())
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert s3_lake.lake in done.stderr


def test_without_the_httpfs_package_query_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(query_s3.importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(ConfigError, match=r"pip install 'music-streaming-etl\[aws\]'"):
        query_s3.httpfs_path()


def test_the_httpfs_extension_is_the_installed_package_for_this_duckdb() -> None:
    import duckdb

    path = query_s3.httpfs_path()
    assert path.is_file()
    assert f"v{duckdb.__version__}" in path.parts
    conn = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    conn.execute(f"LOAD '{path}'")
    [(loaded,)] = conn.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
    ).fetchall()
    assert loaded
