"""`layout` parses the keys it builds: build → parse gives back what went in."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import NOW, Lake, default_songs
from music_etl.logic import layout
from music_etl.logic.contract import OUTPUT_TABLES, STREAMS

CLI = str(Path(sys.executable).parent / "music-etl")
DAYS = st.dates(min_value=date(1970, 1, 1), max_value=date(9999, 12, 31))
#: Raw landing keys of any spelling; their source ids are what the lake holds.
RAW_KEYS = st.text(min_size=1, max_size=60).map(lambda name: f"{layout.RAW_STREAMS}{name}.csv")
SIDS = RAW_KEYS.map(layout.source_id)
NAMES = st.from_regex(r"[a-z][a-z_]{0,20}", fullmatch=True)


@given(day=DAYS, sid=SIDS)
def test_validated_stream_key_round_trips(day: date, sid: str) -> None:
    key = layout.validated_stream_key(day, sid)
    assert layout.parse_validated_stream_key(key) == (day, sid)
    assert layout.listen_date_of(key) == day


@given(dataset=NAMES, reason=NAMES, sid=SIDS, rejected=st.booleans())
def test_bad_records_key_round_trips(dataset: str, reason: str, sid: str, rejected: bool) -> None:
    build = layout.rejected_bad_records_key if rejected else layout.bad_records_key
    found = layout.parse_bad_records_key(build(dataset, reason, sid))
    assert found == layout.BadRecordsKey(dataset=dataset, reason=reason, sid=sid, rejected=rejected)


@given(table=st.sampled_from(sorted(OUTPUT_TABLES)), day=DAYS)
def test_processed_key_round_trips(table: str, day: date) -> None:
    assert layout.parse_processed_key(layout.processed_key(table, day)) == (table, day)


@pytest.mark.parametrize(
    "key",
    [
        "validated/streams/listen_date=2024-02-30/a-1.parquet",
        "validated/streams/listen_date=2024-06-01/",
        "validated/streams/listen_date=2024-06-01/.tmp-a-1.parquet.part",
        "validated/streams/date=2024-06-01/a-1.parquet",
        "validated/streams/listen_date=2024-06-01/x/a-1.parquet",
        "validated/songs/songs.parquet",
        "raw/streams/listen_date=2024-06-01/a.parquet",
    ],
)
def test_other_keys_are_not_validated_stream_keys(key: str) -> None:
    assert layout.parse_validated_stream_key(key) is None


def test_other_keys_parse_to_none() -> None:
    assert layout.listen_date_of("validated/streams/_SUCCESS") is None
    assert layout.listen_date_of("validated/streams/listen_date=2024-6-1/a.parquet") is None
    assert layout.parse_bad_records_key(f"bad-records/{STREAMS.name}/r/a.csv") is None
    assert layout.parse_bad_records_key(f"bad-records/{STREAMS.name}/a.parquet") is None
    assert layout.parse_processed_key("processed/top_songs/part-0.parquet") is None
    assert layout.parse_processed_key("processed/top_songs/date=2024-13-01/part-0.parquet") is None


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    env = {**clean, "MUSIC_ETL_NOW": NOW, "MUSIC_ETL_SETTLE_SECONDS": "0"}
    return subprocess.run([CLI, *args], capture_output=True, text=True, check=False, env=env)


@pytest.mark.slow
def test_a_stray_file_under_validated_streams_is_not_a_day(lake: Lake) -> None:
    """A changed songs.csv recomputes every day with valid rows, and only those."""
    lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00"), (2, "t3", "2024-06-02 11:00:00")])
    assert cli("run", "--lake", str(lake.root)).returncode == 0
    lake.storage.write_bytes(f"{layout.VALIDATED_STREAMS}_SUCCESS", b"")
    lake.put_dimensions(songs=[*default_songs(), ("t5", "E", "A", "Five", 1, 1000, "pop")])
    done = cli("run", "--lake", str(lake.root))
    assert done.returncode == 0, done.stderr
    processed = sorted(i.key for i in lake.storage.list("processed/top_genres/"))
    assert processed == [
        "processed/top_genres/date=2024-06-01/part-0.parquet",
        "processed/top_genres/date=2024-06-02/part-0.parquet",
    ]
