"""The edge matrix: hostile spellings of user ids and timestamps, duplicates, the clock.

Every case runs the whole pipeline on a tiny lake, asserts the exact verdict (the
reason, or validity and the parsed value) and compares the lake's full state with
the independent oracle (`tests/oracle.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import oracle
from conftest import NOW, Lake, default_users
from lake_snapshot import serving_items
from music_etl.pipeline.run import RunReport, run

CLOCK = datetime.fromisoformat(NOW.replace("Z", "+00:00")).replace(tzinfo=None)
INT64_MAX = 9_223_372_036_854_775_807
HEADER = b"user_id,track_id,listen_time\n"
#: Single-row files are 100% bad when their row is: load them anyway to see the bad record.
LOAD_ALL = 1.0
OK_TIME = "2024-06-25 10:00:00"

# --------------------------------------------------------------------------- lake state


@dataclass(frozen=True)
class State:
    """Everything a run leaves in the lake that the contract specifies."""

    valid: list[tuple[Any, ...]]
    bad: list[tuple[Any, ...]]
    daily_genre_kpis: list[dict[str, Any]]
    top_songs: list[dict[str, Any]]
    top_genres: list[dict[str, Any]]


_SORT = {
    "daily_genre_kpis": ("date", "genre"),
    "top_songs": ("date", "genre", "rank"),
    "top_genres": ("date", "rank"),
}


def _raw(value: str | None) -> str | None:
    """A raw field as stored in a bad record: an empty field may be "" or null."""
    return value or None


def lake_state(root: Path) -> State:
    """Read the validated rows, bad records and processed tables of a lake."""
    valid = []
    for path in sorted(root.glob("validated/streams/listen_date=*/*.parquet")):
        for row in pq.read_table(path).to_pylist():
            when = row["listen_time"]
            assert when.utcoffset().total_seconds() == 0, "listen_time is UTC"
            when = when.replace(tzinfo=None)
            assert path.parent.name == f"listen_date={when.date().isoformat()}"
            valid.append(
                (row["user_id"], row["track_id"], when, row["source_file"], row["source_line"])
            )
    bad = []
    for path in sorted(root.glob("bad-records/streams/*/*.parquet")):
        data = pq.read_table(path)
        assert data.column_names == [
            "user_id",
            "track_id",
            "listen_time",
            "reason",
            "source_file",
            "source_line",
        ]
        for row in data.to_pylist():
            assert row["reason"] == path.parent.name
            bad.append(
                (
                    _raw(row["user_id"]),
                    _raw(row["track_id"]),
                    _raw(row["listen_time"]),
                    row["reason"],
                    row["source_file"],
                    row["source_line"],
                )
            )
    tables: dict[str, list[dict[str, Any]]] = {}
    for table, keys in _SORT.items():
        rows = []
        for path in sorted(root.glob(f"processed/{table}/date=*/part-0.parquet")):
            data = pq.read_table(path)
            assert "date" not in data.column_names, "date is the partition, not a column"
            day = path.parent.name.removeprefix("date=")
            rows += [{"date": day, **row} for row in data.to_pylist()]
        tables[table] = sorted(rows, key=lambda r, keys=keys: tuple(r[k] for k in keys))
    return State(
        valid=sorted(valid, key=lambda r: (r[3], r[4])),
        bad=sorted(bad, key=lambda r: (r[4], r[5])),
        **tables,
    )


def oracle_state(expected: oracle.OracleResult) -> State:
    """The state the oracle says the lake must be in."""
    return State(
        valid=sorted(
            (
                (r.user_id, r.track_id, r.listen_time, r.source_file, r.source_line)
                for r in expected.valid
            ),
            key=lambda r: (r[3], r[4]),
        ),
        bad=sorted(
            (
                (
                    _raw(r.user_id),
                    _raw(r.track_id),
                    _raw(r.listen_time),
                    r.reason,
                    r.source_file,
                    r.source_line,
                )
                for r in expected.bad
            ),
            key=lambda r: (r[4], r[5]),
        ),
        daily_genre_kpis=expected.daily_genre_kpis,
        top_songs=expected.top_songs,
        top_genres=expected.top_genres,
    )


def run_oracle_for(
    lake: Lake, streams: list[tuple[str, bytes]], threshold: float = oracle.DEFAULT_THRESHOLD
) -> oracle.OracleResult:
    """The oracle on the lake's raw dimensions and `streams` (key, bytes) in processing order."""
    songs = lake.storage.read_bytes("raw/songs/songs.csv")
    users = lake.storage.read_bytes("raw/users/users.csv")
    return oracle.run_oracle(songs, users, streams, CLOCK, threshold)


def file_summary(report: RunReport) -> list[tuple[Any, ...]]:
    return [
        (f.key, f.status, f.error, f.rows_in, f.rows_valid, f.bad_by_reason) for f in report.files
    ]


def oracle_summary(expected: oracle.OracleResult) -> list[tuple[Any, ...]]:
    return [
        (f.key, f.status, f.error, f.rows_in, f.rows_valid, f.bad_by_reason) for f in expected.files
    ]


def assert_matches_oracle(
    lake: Lake, reports: list[RunReport], expected: oracle.OracleResult
) -> None:
    """Every file's fate, the lake's rows and tables, and the serving store agree."""
    assert [s for r in reports for s in file_summary(r)] == oracle_summary(expected)
    got = lake_state(lake.root)
    want = oracle_state(expected)
    assert got.valid == want.valid
    assert got.bad == want.bad
    assert got.daily_genre_kpis == want.daily_genre_kpis
    assert got.top_songs == want.top_songs
    assert got.top_genres == want.top_genres
    served = serving_items(lake.settings())
    assert served["DailyGenreKPIs"] == want.daily_genre_kpis
    assert served["TopSongsPerGenre"] == oracle.top_songs_items(want.top_songs)
    assert served["TopGenresPerDay"] == want.top_genres


# --------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Case:
    line: str
    """The data row exactly as written after the header."""
    reason: str = ""
    """The expected bad-row reason; empty: the row is valid."""
    user_id: int | None = None
    listen_time: datetime | None = None

    def __str__(self) -> str:
        return repr(self.line)


def valid(line: str, user_id: int, listen_time: str) -> Case:
    return Case(line, user_id=user_id, listen_time=datetime.fromisoformat(listen_time))


def bad(line: str, reason: str) -> Case:
    return Case(line, reason=reason)


TIMESTAMPS = {
    "unpadded": bad("1,t1,2024-6-5 1:2:3", "bad_timestamp"),
    "leading-space": valid("1,t1, 2024-06-25 17:43:13", 1, "2024-06-25 17:43:13"),
    "T-separator": valid("1,t1,2024-06-25T17:43:13", 1, "2024-06-25 17:43:13"),
    "T-and-Z": valid("1,t1,2024-06-25T17:43:13Z", 1, "2024-06-25 17:43:13"),
    "space-and-Z": valid("1,t1,2024-06-25 17:43:13Z", 1, "2024-06-25 17:43:13"),
    "fraction": bad("1,t1,2024-06-25 17:43:13.123", "bad_timestamp"),
    "hour-24": bad("1,t1,2024-06-25 24:00:00", "bad_timestamp"),
    "feb-30": bad("1,t1,2024-02-30 10:00:00", "bad_timestamp"),
    "leap-day": valid("1,t1,2024-02-29 10:00:00", 1, "2024-02-29 10:00:00"),
    "not-leap": bad("1,t1,2023-02-29 10:00:00", "bad_timestamp"),
    "june-31": bad("1,t1,2024-06-31 10:00:00", "bad_timestamp"),
    "month-13": bad("1,t1,2024-13-01 10:00:00", "bad_timestamp"),
    "two-spaces": bad("1,t1,2024-06-25  17:43:13", "bad_timestamp"),
    "year-0": bad("1,t1,0000-01-01 00:00:00", "bad_timestamp"),
    "year-1": valid("1,t1,0001-01-01 00:00:00", 1, "0001-01-01 00:00:00"),
    "second-60": bad("1,t1,2024-06-25 23:59:60", "bad_timestamp"),
    "minute-60": bad("1,t1,2024-06-25 23:60:00", "bad_timestamp"),
    "tabs": valid("1,t1,\t2024-06-25 17:43:13\t", 1, "2024-06-25 17:43:13"),
    "lower-t": bad("1,t1,2024-06-25t17:43:13", "bad_timestamp"),
    "lower-z": bad("1,t1,2024-06-25 17:43:13z", "bad_timestamp"),
    "offset": bad("1,t1,2024-06-25 17:43:13+00:00", "bad_timestamp"),
    "date-only": bad("1,t1,2024-06-25", "bad_timestamp"),
    "arabic-digits": bad("1,t1,\u0662\u0660\u0662\u0664-06-25 17:43:13", "bad_timestamp"),
    "quoted-newline": bad('1,t1,"2024-06-25 17:43:13\n"', "bad_timestamp"),
    "clock+23h": valid("1,t1,2024-07-01 23:00:00", 1, "2024-07-01 23:00:00"),
    "clock+24h": valid("1,t1,2024-07-02 00:00:00", 1, "2024-07-02 00:00:00"),
    "clock+24h+1s": bad("1,t1,2024-07-02 00:00:01", "future_timestamp"),
    "clock+25h": bad("1,t1,2024-07-02 01:00:00", "future_timestamp"),
    "year-9999": bad("1,t1,9999-12-31 23:59:59", "future_timestamp"),
}

USER_IDS = {
    "leading-space": valid(f" 42,t1,{OK_TIME}", 42, OK_TIME),
    "decimal": bad(f"42.0,t1,{OK_TIME}", "bad_user_id"),
    "plus-sign": bad(f"+42,t1,{OK_TIME}", "bad_user_id"),
    "zero-padded": valid(f"0042,t1,{OK_TIME}", 42, OK_TIME),
    "zero-padded-20-digits": valid(f"00000000000000000042,t1,{OK_TIME}", 42, OK_TIME),
    "hex": bad(f"0x2A,t1,{OK_TIME}", "bad_user_id"),
    "negative": bad(f"-1,t1,{OK_TIME}", "bad_user_id"),
    "20-digits": bad(f"99999999999999999999,t1,{OK_TIME}", "bad_user_id"),
    "int64-max": valid(f"9223372036854775807,t1,{OK_TIME}", INT64_MAX, OK_TIME),
    "int64-max+1": bad(f"9223372036854775808,t1,{OK_TIME}", "bad_user_id"),
    "uint64-max+1": bad(f"18446744073709551616,t1,{OK_TIME}", "bad_user_id"),
    "quoted-empty": bad(f'"",t1,{OK_TIME}', "null_field"),
    "empty": bad(f",t1,{OK_TIME}", "null_field"),
    "blank": bad(f" \t ,t1,{OK_TIME}", "null_field"),
    "inner-space": bad(f"4 2,t1,{OK_TIME}", "bad_user_id"),
    "arabic-digits": bad(f"\u0664\u0662,t1,{OK_TIME}", "bad_user_id"),
    "exponent": bad(f"4e1,t1,{OK_TIME}", "bad_user_id"),
    "unknown": bad(f"21,t1,{OK_TIME}", "unknown_user"),
}

OTHER_FIELDS = {
    "padded-track": valid(f"1, t1 ,{OK_TIME}", 1, OK_TIME),
    "unknown-track": bad(f"1,t9,{OK_TIME}", "unknown_track"),
    "track-case": bad(f"1,T1,{OK_TIME}", "unknown_track"),
    "empty-track": bad(f"1,,{OK_TIME}", "null_field"),
    "empty-time": bad("1,t1,", "null_field"),
    "missing-field": bad("1,t1", "null_field"),
    # The first failing rule wins.
    "null-before-bad-id": bad("x,,2024-13-01", "null_field"),
    "bad-id-before-bad-time": bad("x,t9,2024-13-01", "bad_user_id"),
    "bad-time-before-unknown-track": bad("21,t9,2024-13-01", "bad_timestamp"),
    "future-before-unknown": bad("21,t9,2024-07-03 00:00:00", "future_timestamp"),
    "unknown-track-before-unknown-user": bad(f"21,t9,{OK_TIME}", "unknown_track"),
}

CASES = {
    **{f"time:{k}": v for k, v in TIMESTAMPS.items()},
    **{f"user:{k}": v for k, v in USER_IDS.items()},
    **{f"row:{k}": v for k, v in OTHER_FIELDS.items()},
}


def matrix_users() -> list[tuple[object, ...]]:
    return [
        *default_users(),
        (42, "Answer", 42, "Ghana", "2024-01-01"),
        (INT64_MAX, "Max", 1, "", ""),
    ]


@pytest.fixture
def edge_lake(lake: Lake) -> Lake:
    lake.put_dimensions(users=matrix_users())
    return lake


def test_oracle_agrees_with_the_matrix() -> None:
    """The oracle itself gives every case its expected verdict (a check of the checker)."""
    users = {u[0] for u in matrix_users()}
    for name, case in CASES.items():
        rows = oracle.read_csv(HEADER + case.line.encode() + b"\n", oracle.STREAM_COLUMNS)
        assert len(rows) == 1, name
        reason, key = oracle.judge(rows[0][1], CLOCK, {"t1", "t2", "t3", "t4"}, users, set())
        assert reason == case.reason, name
        if not case.reason:
            assert key == (case.user_id, "t1", case.listen_time), name


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_edge_case(edge_lake: Lake, case: Case) -> None:
    data = HEADER + case.line.encode() + b"\n"
    key = edge_lake.put_raw("edge.csv", data)
    report = run(edge_lake.settings(bad_row_threshold=LOAD_ALL))

    (result,) = report.files
    assert (result.status, result.rows_in) == ("done", 1)
    state = lake_state(edge_lake.root)
    if case.reason:
        assert (result.rows_valid, result.bad_by_reason) == (0, {case.reason: 1})
        assert state.valid == []
        (row,) = state.bad
        assert row[3:] == (case.reason, key, 2)
    else:
        assert (result.rows_valid, result.bad_by_reason) == (1, {})
        assert state.bad == []
        assert state.valid == [(case.user_id, "t1", case.listen_time, key, 2)]
        assert result.days == (case.listen_time.date().isoformat(),)
        day = case.listen_time.date()
        assert [r["date"] for r in state.top_genres] == [day.isoformat()]
    assert_matches_oracle(
        edge_lake, [report], run_oracle_for(edge_lake, [(key, data)], threshold=LOAD_ALL)
    )


def test_bad_record_keeps_the_raw_spelling(edge_lake: Lake) -> None:
    data = HEADER + b" +42 ,\tt1 ,2024-06-25 10:00:00\n"
    key = edge_lake.put_raw("raw.csv", data)
    run(edge_lake.settings(bad_row_threshold=LOAD_ALL))
    assert lake_state(edge_lake.root).bad == [
        (" +42 ", "\tt1 ", "2024-06-25 10:00:00", "bad_user_id", key, 2)
    ]


# --------------------------------------------------------------------------- duplicates


def stream_file(*lines: str) -> bytes:
    return HEADER + "".join(line + "\n" for line in lines).encode()


@pytest.mark.parametrize(
    ("lines", "reasons"),
    [
        pytest.param(
            ["1,t1,2024-06-25 10:00:00", "1,t1,2024-06-25 10:00:00"],
            {"duplicate_event": 1},
            id="identical",
        ),
        pytest.param(
            [f"42,t1,{OK_TIME}", f"0042,t1,{OK_TIME}", f" 42 ,t1,{OK_TIME}"],
            {"duplicate_event": 2},
            id="42-vs-0042",
        ),
        pytest.param(
            ["1,t1,2024-06-25 10:00:00", "1,t1,2024-06-25T10:00:00", "1,t1,2024-06-25T10:00:00Z"],
            {"duplicate_event": 2},
            id="T-vs-space-vs-Z",
        ),
        pytest.param(
            ["1,t1,2024-06-25 10:00:00", "1, t1\t,2024-06-25 10:00:00"],
            {"duplicate_event": 1},
            id="padded-track",
        ),
        pytest.param(
            ["1,t1,2024-06-25 10:00:00", "1,t1,2024-06-25 10:00:01"],
            {},
            id="repeat-listen-is-not-a-duplicate",
        ),
        pytest.param(
            ["1,t1,2024-06-25 10:00:00", "2,t1,2024-06-25 10:00:00", "1,t2,2024-06-25 10:00:00"],
            {},
            id="other-user-or-track",
        ),
        pytest.param(
            ["21,t1,2024-06-25 10:00:00", "21,t1,2024-06-25 10:00:00"],
            {"unknown_user": 2},
            id="rejected-rows-are-not-seen",
        ),
    ],
)
def test_duplicates_within_a_file(edge_lake: Lake, lines: list[str], reasons: dict) -> None:
    data = stream_file(*lines)
    key = edge_lake.put_raw("dups.csv", data)
    report = run(edge_lake.settings(bad_row_threshold=LOAD_ALL))
    (result,) = report.files
    assert result.bad_by_reason == reasons
    assert result.rows_valid == len(lines) - sum(reasons.values())
    state = lake_state(edge_lake.root)
    if result.rows_valid:
        assert state.valid[0][3:] == (key, 2), "the first spelling is the one kept"
    if "duplicate_event" in reasons:
        assert [b[5] for b in state.bad] == list(range(3, 3 + reasons["duplicate_event"]))
    assert_matches_oracle(
        edge_lake, [report], run_oracle_for(edge_lake, [(key, data)], threshold=LOAD_ALL)
    )


FIRST = stream_file("42,t1,2024-06-25 10:00:00", "2,t2,2024-06-25 11:00:00")
SECOND = stream_file("0042,t1,2024-06-25T10:00:00Z", "3,t3,2024-06-25 12:00:00")


def test_duplicate_across_files_in_one_run(edge_lake: Lake) -> None:
    first = edge_lake.put_raw("a.csv", FIRST)
    second = edge_lake.put_raw("b.csv", SECOND)
    report = run(edge_lake.settings(bad_row_threshold=LOAD_ALL))
    assert [(f.key, f.rows_valid, f.bad_by_reason) for f in report.files] == [
        (first, 2, {}),
        (second, 1, {"duplicate_event": 1}),
    ]
    assert lake_state(edge_lake.root).bad == [
        ("0042", "t1", "2024-06-25T10:00:00Z", "duplicate_event", second, 2)
    ]
    expected = run_oracle_for(edge_lake, [(first, FIRST), (second, SECOND)], threshold=LOAD_ALL)
    assert_matches_oracle(edge_lake, [report], expected)


def test_duplicate_across_files_in_separate_runs(edge_lake: Lake) -> None:
    first = edge_lake.put_raw("b.csv", FIRST)
    report1 = run(edge_lake.settings(bad_row_threshold=LOAD_ALL))
    # A later run, with a key that sorts before the first file's: order is arrival here.
    second = edge_lake.put_raw("a.csv", SECOND)
    report2 = run(edge_lake.settings(bad_row_threshold=LOAD_ALL))
    assert [(f.key, f.rows_valid, f.bad_by_reason) for f in report2.files] == [
        (second, 1, {"duplicate_event": 1})
    ]
    expected = run_oracle_for(edge_lake, [(first, FIRST), (second, SECOND)], threshold=LOAD_ALL)
    assert_matches_oracle(edge_lake, [report1, report2], expected)
    kpis = {(r["date"], r["genre"]): r["listen_count"] for r in expected.daily_genre_kpis}
    # t1 (pop) once, t2 (rock and pop) once, t3 (jazz) once: the duplicate is not counted.
    assert kpis == {("2024-06-25", "pop"): 2, ("2024-06-25", "rock"): 1, ("2024-06-25", "jazz"): 1}


def test_future_boundary_follows_the_clock(edge_lake: Lake) -> None:
    data = stream_file("1,t1,2024-07-02 00:00:00", "2,t1,2024-07-02 00:00:01")
    key = edge_lake.put_raw("future.csv", data)
    later = "2024-07-01T00:00:01Z"
    report = run(edge_lake.settings(bad_row_threshold=LOAD_ALL, now=later))
    (result,) = report.files
    assert (result.rows_valid, result.bad_by_reason) == (2, {})
    got = lake_state(edge_lake.root).valid
    assert [(r[0], r[2].date()) for r in got] == [(1, date(2024, 7, 2)), (2, date(2024, 7, 2))]
    clock = datetime.fromisoformat(later.replace("Z", "+00:00")).astimezone(UTC)
    songs = edge_lake.storage.read_bytes("raw/songs/songs.csv")
    users = edge_lake.storage.read_bytes("raw/users/users.csv")
    expected = oracle.run_oracle(
        songs, users, [(key, data)], clock.replace(tzinfo=None), threshold=LOAD_ALL
    )
    assert_matches_oracle(edge_lake, [report], expected)
