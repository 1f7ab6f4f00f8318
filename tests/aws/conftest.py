"""A moto server on 127.0.0.1 for the session; a fresh bucket and table prefix per test.

The tests talk to it over HTTP exactly as to AWS, through the endpoint override; fake
credentials come from the environment (the standard boto3 chain).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aws.helpers import NOW, NOWHERE, REGION, SAMPLE, AwsLake, client, generate_sample, lake_state
from music_etl.adapters.ledger import open_ledger
from music_etl.adapters.serving import open_serving
from music_etl.adapters.storage.local import LocalStorage
from music_etl.pipeline.run import run
from music_etl.settings import load_settings


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server running in this process for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region in the environment; nothing from ~/.aws or the shell.

    The values are the same for every test, so the boto3 session is reused.
    """
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    # A client that misses the endpoint override fails here, locally, instead of calling AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/music-etl-tests/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/music-etl-tests/credentials")
    for name in [n for n in os.environ if n.startswith("MUSIC_ETL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def s3_lake(moto_endpoint: str, aws_env: None, tmp_path: Path) -> AwsLake:
    """A new bucket (and a table prefix, tables not created) on the moto server."""
    made = AwsLake(endpoint=moto_endpoint, name=f"t{uuid.uuid4().hex[:10]}", tmp=tmp_path)
    client("s3", moto_endpoint).create_bucket(Bucket=made.bucket)
    return made


@pytest.fixture
def aws_lake(s3_lake: AwsLake) -> AwsLake:
    """A new bucket and table prefix on the moto server, tables created."""
    s3_lake.create_tables()
    return s3_lake


@pytest.fixture(scope="session")
def embedded_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The derived state of one embedded-mode run over the standard sample."""
    root = tmp_path_factory.mktemp("embedded") / "lake"
    storage = LocalStorage(root)
    generate_sample(storage)
    settings = load_settings(env={}, config=root / "no-config.toml", lake=str(root), now=NOW)
    report = run(settings)
    assert len(report.processed) == SAMPLE["files"]
    return lake_state(storage, open_serving(settings.serving_url), open_ledger(settings.ledger_url))
