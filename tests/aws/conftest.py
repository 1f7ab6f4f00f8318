"""A fresh bucket and table prefix per test on the session's moto server (`moto_fixtures`)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from aws.helpers import NOW, SAMPLE, AwsLake, client, generate_sample, lake_state
from moto_fixtures import aws_env, moto_endpoint
from music_etl.adapters.ledger import open_ledger
from music_etl.adapters.serving import open_serving
from music_etl.adapters.storage.local import LocalStorage
from music_etl.pipeline.run import run
from music_etl.settings import load_settings

__all__ = ["aws_env", "moto_endpoint"]  # shared with tests/deploy (tests/moto_fixtures.py)


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
