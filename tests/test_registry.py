"""One URL-scheme table opens ledgers and serving stores, and names every scheme when it cannot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Lake
from music_etl.adapters import registry
from music_etl.adapters.ledger import open_ledger
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.adapters.registry import Backend, Options
from music_etl.adapters.serving import open_serving
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.errors import ConfigError

CLI = str(Path(sys.executable).parent / "music-etl")


def test_each_scheme_opens_both_roles(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    store = open_serving(f"sqlite:///{tmp_path / 'serving.sqlite'}")
    assert isinstance(ledger, SQLiteLedger)
    assert isinstance(store, SQLiteServingStore)
    ledger.close()
    store.close()
    assert [b.scheme for b in registry.BACKENDS] == ["sqlite:///", "dynamodb://"]


def test_a_backend_added_to_the_table_serves_both_roles_and_is_named_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite = registry.BACKENDS[0]
    made: list[tuple[str, Options]] = []

    def ledger(url: str, options: Options) -> SQLiteLedger:
        made.append((url, options))
        return SQLiteLedger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")

    memory = Backend(scheme="mem://", example="mem://name", ledger=ledger, serving=sqlite.serving)
    monkeypatch.setattr(registry, "BACKENDS", (*registry.BACKENDS, memory))
    opened = open_ledger("mem://x", endpoint="http://e", busy_seconds=2.0)
    opened.close()
    assert made == [("mem://x", Options(endpoint="http://e", busy_seconds=2.0))]
    with pytest.raises(ConfigError, match=r"use sqlite:///path or dynamodb://\?region=… or mem://"):
        open_serving("redis://host")


def test_an_unknown_scheme_is_a_usage_error_naming_every_scheme(lake: Lake) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    env = {**clean, "MUSIC_ETL_LEDGER": "postgres://db/ledger", "MUSIC_ETL_SETTLE_SECONDS": "0"}
    done = subprocess.run(
        [CLI, "run", "--lake", str(lake.root)], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 2, done.stderr
    assert "Unsupported ledger 'postgres://db/ledger'" in done.stderr + done.stdout
    assert "sqlite:///path or dynamodb://?region=…" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
