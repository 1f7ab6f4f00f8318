"""The real lab data end to end, checked row for row against the independent oracle."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import oracle
from conftest import NOW, SHARED_DATA, Lake
from lake_snapshot import serving_items
from music_etl.pipeline.query import query
from music_etl.pipeline.run import RunReport, run

STREAM_FILES = ("streams1.csv", "streams2.csv", "streams3.csv")
ROWS_PER_FILE = 11_346
CLOCK = datetime.fromisoformat(NOW.replace("Z", "+00:00")).replace(tzinfo=None)

#: Columns of each processed table's Parquet file (`date` is the partition folder only).
FILE_COLUMNS = {
    "daily_genre_kpis": [
        "genre",
        "listen_count",
        "unique_listeners",
        "total_listening_time",
        "avg_listening_time",
    ],
    "top_songs": ["genre", "rank", "track_id", "track_name", "artists", "play_count"],
    "top_genres": ["rank", "genre", "listen_count"],
}
COLUMNS_VALID = ["user_id", "track_id", "listen_time", "source_file", "source_line"]
SORT_KEYS = {
    "daily_genre_kpis": ("date", "genre"),
    "top_songs": ("date", "genre", "rank"),
    "top_genres": ("date", "rank"),
}

pytestmark = pytest.mark.skipif(
    not all((SHARED_DATA / name).is_file() for name in ("users.csv", "songs.csv", *STREAM_FILES)),
    reason=f"the real lab data set is not available at {SHARED_DATA}",
)


@dataclass(frozen=True)
class RealRun:
    lake: Lake
    report: RunReport
    expected: oracle.OracleResult


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> RealRun:
    lake = Lake(tmp_path_factory.mktemp("real") / "lake")
    songs = (SHARED_DATA / "songs.csv").read_bytes()
    users = (SHARED_DATA / "users.csv").read_bytes()
    lake.storage.write_bytes("raw/songs/songs.csv", songs)
    lake.storage.write_bytes("raw/users/users.csv", users)
    streams = []
    for name in STREAM_FILES:
        data = (SHARED_DATA / name).read_bytes()
        streams.append((lake.put_raw(name, data), data))
    report = run(lake.settings())
    return RealRun(
        lake=lake, report=report, expected=oracle.run_oracle(songs, users, streams, CLOCK)
    )


def processed(root: Path, table: str) -> list[dict[str, Any]]:
    """Every row of a processed table, with `date` taken from its partition folder."""
    rows = []
    for path in sorted((root / "processed" / table).glob("date=*/part-0.parquet")):
        data = pq.read_table(path)
        assert data.column_names == FILE_COLUMNS[table], path
        day = path.parent.name.removeprefix("date=")
        rows += [{"date": day, **row} for row in data.to_pylist()]
    return sorted(rows, key=lambda r: tuple(r[k] for k in SORT_KEYS[table]))


def test_every_row_of_the_three_files_is_read_and_loaded(real: RealRun) -> None:
    files = real.report.files
    assert [f.key for f in files] == [f"raw/streams/{name}" for name in STREAM_FILES]
    assert [(f.status, f.rows_in, f.rows_valid, f.rows_bad) for f in files] == [
        ("done", ROWS_PER_FILE, ROWS_PER_FILE, 0)
    ] * 3
    assert sum(f.rows_in for f in files) == 34_038
    assert [(f.rows_in, f.rows_valid) for f in files] == [
        (f.rows_in, f.rows_valid) for f in real.expected.files
    ]
    assert real.report.days == ("2024-06-25",) == tuple(real.expected.days)
    counted = query(real.lake.root.as_posix(), "SELECT count(*) FROM streams").rows
    assert counted == [(34_038,)]
    assert query(real.lake.root.as_posix(), "SELECT count(*) FROM bad_records").rows == [(0,)]


def test_validated_rows_equal_the_oracle(real: RealRun) -> None:
    day_dir = real.lake.root / "validated" / "streams" / "listen_date=2024-06-25"
    got = []
    for path in sorted(day_dir.glob("*.parquet")):
        data = pq.read_table(path)
        assert data.column_names == COLUMNS_VALID
        assert str(data.schema.field("listen_time").type) == "timestamp[us, tz=UTC]"
        micros = data.column("listen_time").cast("int64").to_pylist()
        got += zip(
            data.column("user_id").to_pylist(),
            data.column("track_id").to_pylist(),
            micros,
            data.column("source_file").to_pylist(),
            data.column("source_line").to_pylist(),
            strict=True,
        )
    epoch = datetime(1970, 1, 1)
    expected = [
        (
            row.user_id,
            row.track_id,
            (row.listen_time - epoch) // timedelta(microseconds=1),
            row.source_file,
            row.source_line,
        )
        for row in real.expected.valid
    ]
    assert sorted(got, key=lambda r: (r[3], r[4])) == expected


@pytest.mark.parametrize("table", ["daily_genre_kpis", "top_songs", "top_genres"])
def test_processed_table_equals_the_oracle(real: RealRun, table: str) -> None:
    expected = getattr(real.expected, table)
    got = processed(real.lake.root, table)
    assert len(got) == len(expected)
    assert got == expected


def test_serving_store_equals_the_oracle(real: RealRun) -> None:
    served = serving_items(real.lake.settings())
    assert served["DailyGenreKPIs"] == real.expected.daily_genre_kpis
    assert served["TopSongsPerGenre"] == oracle.top_songs_items(real.expected.top_songs)
    assert served["TopGenresPerDay"] == real.expected.top_genres


def test_the_repeat_listen_counts_twice(real: RealRun) -> None:
    pairs = Counter((row.user_id, row.track_id) for row in real.expected.valid)
    repeats = [pair for pair, n in pairs.items() if n > 1]
    assert len(repeats) == 1, "the data set has exactly one (user, track) pair streamed twice"
    (user_id, track_id) = repeats[0]
    times = {r.listen_time for r in real.expected.valid if (r.user_id, r.track_id) == repeats[0]}
    assert len(times) == 2  # two different times: a repeat listen, not a duplicate event
    got = query(
        real.lake.root.as_posix(),
        "SELECT count(DISTINCT listen_time) FROM streams "
        f"WHERE user_id = {user_id} AND track_id = '{track_id}'",
    ).rows
    assert got == [(2,)]
    assert not any(f.bad_by_reason.get("duplicate_event") for f in real.report.files)
    # Both listens reach the KPIs: every valid listen counts once per genre of its track.
    genres_per_track = Counter(track for track, _genre in real.expected.songs)
    listens = sum(genres_per_track[row.track_id] for row in real.expected.valid)
    got_listens = query(
        real.lake.root.as_posix(), "SELECT sum(listen_count) FROM daily_genre_kpis"
    ).rows
    assert got_listens == [(listens,)]


def test_no_column_shift_invents_genres(real: RealRun) -> None:
    genres = {str(row["genre"]) for row in processed(real.lake.root, "daily_genre_kpis")}
    catalogue = {song.genre for song in real.expected.songs.values()}
    assert len(catalogue) == 114
    assert genres <= catalogue
    assert not [g for g in genres if re.fullmatch(r"[-+0-9.eE]+", g)], "numeric genres"
    assert all(re.fullmatch(r"[a-z][a-z0-9&' -]*", g) for g in genres), sorted(genres)


def test_song_snapshot_keeps_rfc4180_titles_intact(real: RealRun) -> None:
    snapshot = pq.read_table(real.lake.root / "validated" / "songs" / "songs.parquet").to_pylist()
    got = {
        (r["track_id"], r["track_genre"]): (r["track_name"], r["artists"], r["duration_ms"])
        for r in snapshot
    }
    expected = {
        key: (song.track_name, song.artists, song.duration_ms)
        for key, song in real.expected.songs.items()
    }
    assert len(snapshot) == len(got) == len(expected) == 32_675
    assert got == expected
    quoted = [name for name, _a, _d in got.values() if name and '"' in name and "," in name]
    assert quoted, "the catalogue has titles with commas and doubled quotes"
    dims = real.report.dimensions.refreshed
    assert dims["songs"].rows_in == 32_738
    assert dims["songs"].bad_by_reason == {"duplicate_song": 32_738 - 32_675}
    assert dims["users"].rows_valid == 50_000
