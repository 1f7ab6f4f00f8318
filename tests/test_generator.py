"""The sample generator: shapes, determinism, and bad rows counted exactly.

The bad-row check below re-implements the streams contract in plain Python (csv and re),
independently of the generator and of any engine, and must find what the report claims.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from music_etl.adapters.storage.local import LocalStorage
from music_etl.logic.contract import STREAMS
from music_etl.sample import GenerateReport, generate
from music_etl.sample.generator import GENRES, PLANTED

SONGS_HEADER = (
    "id,track_id,artists,album_name,track_name,popularity,duration_ms,explicit,danceability,"
    "energy,key,loudness,mode,speechiness,acousticness,instrumentalness,liveness,valence,tempo,"
    "time_signature,track_genre"
)
SMALL: dict[str, Any] = {
    "streams": 6_000,
    "files": 3,
    "days": 3,
    "seed": 11,
    "bad_share": 0.1,
    "songs": 2_000,
    "users": 300,
}
END = dt.date(2024, 6, 30)
INT64_MAX = 2**63 - 1
DIGITS = re.compile(r"[0-9]+")
STAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})Z?")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStorage, GenerateReport]:
    storage = LocalStorage(tmp_path_factory.mktemp("lake"))
    return storage, generate(storage, **SMALL)


def _text(storage: LocalStorage, key: str) -> str:
    return storage.read_bytes(key).decode("utf-8")


def _rows(storage: LocalStorage, key: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_text(storage, key), newline="")))


def _parse_time(text: str) -> dt.datetime | None:
    match = STAMP.fullmatch(text)
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def _reason(row: dict[str, str], refs: dict[str, Any], seen: set[tuple[Any, ...]]) -> str:
    """The contract's first failing rule for one row, or `valid`."""
    user, track, stamp = (row[c].strip(" \t") for c in ("user_id", "track_id", "listen_time"))
    when = _parse_time(stamp)
    checks = (
        ("null_field", lambda: not (user and track and stamp)),
        ("bad_user_id", lambda: not DIGITS.fullmatch(user) or int(user) > INT64_MAX),
        ("bad_timestamp", lambda: when is None),
        ("future_timestamp", lambda: when is not None and when > refs["clock"]),
        ("unknown_track", lambda: track not in refs["tracks"]),
        ("unknown_user", lambda: int(user) not in refs["users"]),
        ("duplicate_event", lambda: (int(user), track, when) in seen),
    )
    for reason, fails in checks:
        if fails():
            return reason
    seen.add((int(user), track, when))
    return "valid"


def _classify(storage: LocalStorage, report: GenerateReport) -> dict[str, Counter[str]]:
    """Reasons per stream file, files in key order, as a validation run must find them."""
    refs = {
        "users": {int(r["user_id"]) for r in _rows(storage, "raw/users/users.csv")},
        "tracks": {r["track_id"] for r in _rows(storage, "raw/songs/songs.csv")},
        "clock": dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=24),
    }
    seen: set[tuple[Any, ...]] = set()
    keys = sorted(info.key for info in storage.list("raw/streams/"))
    assert keys == list(report.stream_keys)
    return {key: Counter(_reason(row, refs, seen) for row in _rows(storage, key)) for key in keys}


def _expected(report: GenerateReport) -> dict[str, Counter[str]]:
    return {
        key: Counter({"valid": report.rows_per_file[key] - sum(bad.values()), **bad})
        for key, bad in report.bad_rows_per_file.items()
    }


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.csv")}


def test_planted_reasons_are_the_contract_reasons() -> None:
    assert STREAMS.reasons == PLANTED


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    args = {**SMALL, "streams": 2_000, "songs": 300}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate(LocalStorage(tmp_path / name), **{**args, "seed": seed})
    first, again, other = (_files(tmp_path / name) for name in "abc")
    assert first == again
    assert len(first) == 2 + SMALL["files"]
    assert first["raw/streams/streams_0001.csv"] != other["raw/streams/streams_0001.csv"]


def test_headers(lake: tuple[LocalStorage, GenerateReport]) -> None:
    storage, report = lake
    assert _text(storage, "raw/songs/songs.csv").split("\n", 1)[0] == SONGS_HEADER
    users_header = _text(storage, "raw/users/users.csv").split("\n", 1)[0]
    assert users_header == "user_id,user_name,user_age,user_country,created_at"
    for key in report.stream_keys:
        assert _text(storage, key).split("\n", 1)[0] == "user_id,track_id,listen_time"
    assert report.stream_keys == tuple(f"raw/streams/streams_{i:04d}.csv" for i in (1, 2, 3))


def test_the_114_spotify_genres(lake: tuple[LocalStorage, GenerateReport]) -> None:
    storage, _ = lake
    assert len(GENRES) == len(set(GENRES)) == 114
    assert {"acoustic", "j-idol", "r-n-b", "world-music", "pop-film"} <= set(GENRES)
    assert {r["track_genre"] for r in _rows(storage, "raw/songs/songs.csv")} == set(GENRES)


def test_about_15_percent_of_tracks_have_two_genres(
    lake: tuple[LocalStorage, GenerateReport],
) -> None:
    storage, report = lake
    genres: dict[str, set[str]] = {}
    facts: dict[str, set[tuple[str, ...]]] = {}
    for r in _rows(storage, "raw/songs/songs.csv"):
        genres.setdefault(r["track_id"], set()).add(r["track_genre"])
        facts.setdefault(r["track_id"], set()).add(
            (r["track_name"], r["artists"], r["duration_ms"])
        )
    multi = sum(len(g) > 1 for g in genres.values())
    assert len(genres) == report.tracks == SMALL["songs"]
    assert multi == report.multi_genre_tracks
    assert 0.13 <= multi / len(genres) <= 0.17
    assert all(len(f) == 1 for f in facts.values())
    assert all(len(track_id) == 22 and track_id.isalnum() for track_id in genres)


def test_quoted_titles_survive_csv_parsing(lake: tuple[LocalStorage, GenerateReport]) -> None:
    storage, report = lake
    text = _text(storage, "raw/songs/songs.csv")
    assert re.search(r'"[^"\n]*, ""[^"\n]*"""', text)  # like "Ave Maria, ""Ellens Gesang III"""
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert len(rows) == report.song_rows
    assert all(len(r) == 21 and r[-1] in GENRES for r in rows)
    assert all(90_000 <= int(r[6]) <= 420_000 and r[7] in {"True", "False"} for r in rows)
    titles = [r[4] for r in rows]
    assert any('"' in t and "," in t for t in titles)
    assert any(";" in r[2] for r in rows)
    assert any("," in r[2] for r in rows)


def test_exact_duplicate_song_lines(lake: tuple[LocalStorage, GenerateReport]) -> None:
    storage, report = lake
    lines = Counter(_text(storage, "raw/songs/songs.csv").splitlines())
    pairs = Counter(
        (r["track_id"], r["track_genre"]) for r in _rows(storage, "raw/songs/songs.csv")
    )
    assert report.duplicate_song_rows >= 1
    assert sum(n - 1 for n in lines.values()) == report.duplicate_song_rows
    assert sum(n - 1 for n in pairs.values()) == report.duplicate_song_rows


def test_row_totals(lake: tuple[LocalStorage, GenerateReport]) -> None:
    storage, report = lake
    counts = {key: len(_rows(storage, key)) for key in report.stream_keys}
    assert counts == report.rows_per_file
    assert sum(counts.values()) == report.stream_rows == SMALL["streams"]
    assert max(counts.values()) - min(counts.values()) <= 1
    assert len(_rows(storage, "raw/users/users.csv")) == report.users == SMALL["users"]
    assert sum(report.bad_rows.values()) == round(SMALL["bad_share"] * SMALL["streams"])
    assert list(report.bad_rows) == list(STREAMS.reasons)


def test_planted_bad_rows_match_an_independent_check(
    lake: tuple[LocalStorage, GenerateReport],
) -> None:
    storage, report = lake
    assert _classify(storage, report) == _expected(report)
    assert min(report.bad_rows.values()) >= 80


def test_random_repeats_of_a_valid_event_are_redrawn(tmp_path: Path) -> None:
    """Two users, two songs, one day: random events would collide without the redraw."""
    storage = LocalStorage(tmp_path)
    args = {**SMALL, "streams": 4_000, "days": 1, "songs": 2, "users": 2, "bad_share": 0.02}
    report = generate(storage, **args)
    assert _classify(storage, report) == _expected(report)


def test_valid_rows_use_every_accepted_spelling(lake: tuple[LocalStorage, GenerateReport]) -> None:
    storage, report = lake
    rows = [row for key in report.stream_keys for row in _rows(storage, key)]
    times = [r["listen_time"] for r in rows]
    assert any("T" in t for t in times)
    assert any(t.endswith("Z") for t in times)
    assert any(t.startswith(("\t", " ")) for t in times)
    assert any(re.fullmatch(r"[ \t]*0[0-9]+[ \t]*", r["user_id"]) for r in rows)
    assert report.unusual_spellings > 0.005 * report.valid_rows


def test_valid_listen_times_fill_the_window(lake: tuple[LocalStorage, GenerateReport]) -> None:
    storage, report = lake
    dates: Counter[dt.date] = Counter()
    for key in report.stream_keys:
        for row in _rows(storage, key):
            when = _parse_time(row["listen_time"].strip(" \t"))
            if when is not None and when.year < 2100:
                dates[when.date()] += 1
    first = END - dt.timedelta(days=SMALL["days"] - 1)
    assert set(dates) == {first + dt.timedelta(days=d) for d in range(SMALL["days"])}


@pytest.mark.parametrize(
    "change",
    [{"files": 7, "streams": 5}, {"bad_share": 0.6}, {"days": 0}, {"users": 0}],
)
def test_rejects_impossible_sizes(tmp_path: Path, change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        generate(LocalStorage(tmp_path), **{**SMALL, **change})


def test_append_adds_stream_files_for_the_same_catalogue(tmp_path: Path) -> None:
    from music_etl.pipeline.run import run
    from music_etl.settings import load_settings

    storage = LocalStorage(tmp_path)
    generate(storage, streams=2_000, files=1, days=3, seed=5, songs=500, users=200)
    songs = storage.read_bytes("raw/songs/songs.csv")
    settings = load_settings(lake=str(tmp_path), now="2024-07-01T00:00:00Z", env={})
    run(settings)
    later = generate(
        storage, streams=1_000, files=1, days=3, seed=5, songs=500, users=200, append=1
    )
    assert later.keys == ("raw/streams/streams_k01_0001.csv",)
    assert storage.read_bytes("raw/songs/songs.csv") == songs
    outcome = run(settings).files[0]
    assert outcome.status == "done"
    for reason, planted in later.bad_rows.items():
        found = outcome.bad_by_reason.get(reason, 0)
        # A random valid event may repeat one of the first file's: only duplicates can exceed.
        assert found == planted if reason != "duplicate_event" else found >= planted
    with pytest.raises(ValueError, match="append"):
        generate(storage, streams=10, files=1, days=1, seed=5, append=-1)
