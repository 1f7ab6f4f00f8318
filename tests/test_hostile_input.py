"""Hostile files: empty, truncated, re-shaped, mis-encoded, binary, huge, ragged.

For every case the run never raises, every row read is either valid or bad
(`rows_in == rows_valid + rows_bad`), every row of a loaded file is in the lake,
and a rejected file stays in the landing zone with a failed ledger record.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import SONG_HEADER, Lake, csv_bytes, default_songs
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.logic import layout
from music_etl.pipeline.run import RunReport, run
from test_edge_matrix import (
    HEADER,
    assert_matches_oracle,
    lake_state,
    run_oracle_for,
    stream_file,
)

LOAD_ALL = 1.0
GOOD_LINES = [f"{u},t{1 + u % 4},2024-06-25 {u:02d}:00:00" for u in range(1, 20)]
GOOD = stream_file(*GOOD_LINES)


def files_of(root: Path, prefix: str, key: str, suffix: str = ".parquet") -> list[Path]:
    """Parquet files under `prefix` named by the source id of `key` (and `suffix`)."""
    sid = layout.source_id(key)
    return sorted(root.glob(f"{prefix}/**/{sid}{suffix}"))


def check_no_loss(lake: Lake, report: RunReport) -> None:
    """Each row is accounted for; loaded files are in the lake, rejected ones kept raw."""
    ledger = SQLiteLedger(lake.settings().ledger_url)
    try:
        for result in report.files:
            assert result.rows_in == result.rows_valid + result.rows_bad, result
            record = ledger.get(result.key)
            assert record is not None
            assert (record.status, record.error) == (result.status, result.error)
            archived = layout.archive_key(result.key)
            valid_files = files_of(lake.root, "validated/streams", result.key)
            bad_files = files_of(lake.root, "bad-records/streams", result.key)
            if result.status == "done":
                assert not result.error
                assert lake.storage.exists(archived) and not lake.storage.exists(result.key)
                assert sum(pq.read_metadata(p).num_rows for p in valid_files) == result.rows_valid
                assert sum(pq.read_metadata(p).num_rows for p in bad_files) == result.rows_bad
            else:
                assert result.status == "failed" and result.error, result
                assert lake.storage.exists(result.key) and not lake.storage.exists(archived)
                assert valid_files == [] and bad_files == [], "a rejected file loads nothing"
                rejected = files_of(
                    lake.root, "bad-records/streams", result.key, layout.REJECTED_SUFFIX
                )
                assert sum(pq.read_metadata(p).num_rows for p in rejected) == result.rows_bad
    finally:
        ledger.close()


def run_files(
    lake: Lake, files: list[tuple[str, bytes]], threshold: float = 0.05
) -> tuple[RunReport, list[tuple[str, bytes]]]:
    """Land `files`, run once; returns the report and the (key, bytes) in processing order."""
    landed = sorted((lake.put_raw(name, data), data) for name, data in files)
    report = run(lake.settings(bad_row_threshold=threshold))
    check_no_loss(lake, report)
    return report, landed


# --------------------------------------------------------------------------- file shapes


def test_empty_file_is_rejected_and_the_run_goes_on(lake: Lake) -> None:
    report, landed = run_files(lake, [("a-empty.csv", b""), ("b-good.csv", GOOD)])
    assert [(f.status, f.error, f.rows_in) for f in report.files] == [
        ("failed", "missing_column", 0),
        ("done", "", len(GOOD_LINES)),
    ]
    assert report.failed == [report.files[0]]
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(HEADER, id="lf"),
        pytest.param(HEADER[:-1], id="no-final-newline"),
        pytest.param(HEADER.replace(b"\n", b"\r\n"), id="crlf"),
    ],
)
def test_header_only_file_is_done_with_no_rows(lake: Lake, data: bytes) -> None:
    report, landed = run_files(lake, [("header.csv", data)])
    assert [(f.status, f.error, f.rows_in, f.days) for f in report.files] == [("done", "", 0, ())]
    assert report.days == ()
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed))


def test_header_only_file_does_not_block_other_files(lake: Lake) -> None:
    report, landed = run_files(lake, [("a-good.csv", GOOD), ("b-header.csv", HEADER)])
    assert [(f.status, f.rows_in) for f in report.files] == [("done", len(GOOD_LINES)), ("done", 0)]
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed))


def test_missing_column_fails_the_file_only(lake: Lake) -> None:
    missing = b"user_id,track_id\n1,t1\n2,t2\n"
    report, landed = run_files(lake, [("a-missing.csv", missing), ("b-good.csv", GOOD)])
    failed, good = report.files
    assert (failed.key, failed.status, failed.error) == (
        "raw/streams/a-missing.csv",
        "failed",
        "missing_column",
    )
    assert "listen_time" in failed.message
    assert report.failed == [failed]
    assert good.status == "done" and good.rows_valid == len(GOOD_LINES)
    ledger = SQLiteLedger(lake.settings().ledger_url)
    record = ledger.get(failed.key)
    ledger.close()
    assert record is not None and (record.status, record.error) == ("failed", "missing_column")
    assert {r[3] for r in lake_state(lake.root).valid} == {good.key}
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed))


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"listen_time,extra,track_id,user_id,more", id="reordered-extra"),
        pytest.param(b" User_ID \t,TRACK_ID,\tListen_Time ", id="padded-upper-case"),
        pytest.param(b'"user_id","track_id","listen_time"', id="quoted"),
        pytest.param(b"\xef\xbb\xbfuser_id,track_id,listen_time", id="utf8-bom"),
    ],
)
def test_header_spellings(lake: Lake, header: bytes) -> None:
    names = [h.decode("utf-8-sig").strip(' \t"').lower() for h in header.split(b",")]
    rows = [
        {"user_id": "1", "track_id": "t1", "listen_time": "2024-06-25 10:00:00"},
        {"user_id": "2", "track_id": "t3", "listen_time": "2024-06-25T11:00:00Z"},
        {"user_id": "x", "track_id": "t3", "listen_time": "2024-06-25 11:00:00"},
    ]
    body = b"".join(
        ",".join(row.get(name, "junk") for name in names).encode() + b"\n" for row in rows
    )
    report, landed = run_files(lake, [("shaped.csv", header + b"\n" + body)], threshold=LOAD_ALL)
    (result,) = report.files
    assert (result.status, result.rows_valid, result.bad_by_reason) == (
        "done",
        2,
        {"bad_user_id": 1},
    )
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed, threshold=LOAD_ALL))


def test_crlf_line_endings(lake: Lake) -> None:
    data = (
        b"user_id,track_id,listen_time\r\n"
        b"1,t1,2024-06-25 10:00:00\r\n"
        b"2,t2,2024-06-25T10:00:00Z\r\n"
        b"3,t3,not a time\r\n"
    )
    report, landed = run_files(lake, [("crlf.csv", data)], threshold=LOAD_ALL)
    (result,) = report.files
    assert (result.rows_valid, result.bad_by_reason) == (2, {"bad_timestamp": 1})
    state = lake_state(lake.root)
    assert [r[1] for r in state.valid] == ["t1", "t2"]
    assert [r[:3] for r in state.bad] == [("3", "t3", "not a time")], "no stray carriage return"
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed, threshold=LOAD_ALL))


def test_rfc4180_song_titles(tmp_path: Path) -> None:
    songs = [
        *default_songs(),
        ("t5", 'Artist "F", Jr.', "Album", 'Line one\nline two, "quoted"', 1, 120_000, "pop"),
        ("t6", "Artist G", "Album", 'He said ""hi""', 1, 90_000, "jazz"),
    ]
    lake = Lake(tmp_path / "lake")
    lake.put_dimensions(songs=songs)
    data = stream_file(
        "1,t2,2024-06-25 10:00:00",
        "2,t2,2024-06-25 10:05:00",
        "3,t5,2024-06-25 10:10:00",
        "4,t6,2024-06-25 10:20:00",
    )
    report, landed = run_files(lake, [("titles.csv", data)])
    assert report.files[0].rows_valid == 4
    state = lake_state(lake.root)
    titles = {(r["track_id"], r["genre"]): (r["track_name"], r["artists"]) for r in state.top_songs}
    assert titles == {
        ("t2", "pop"): ('Ave Maria, "Ellens Gesang III"', "Artist B;Artist C"),
        ("t2", "rock"): ('Ave Maria, "Ellens Gesang III"', "Artist B;Artist C"),
        ("t5", "pop"): ('Line one\nline two, "quoted"', 'Artist "F", Jr.'),
        ("t6", "jazz"): ('He said ""hi""', "Artist G"),
    }
    assert {r["genre"] for r in state.daily_genre_kpis} == {"pop", "rock", "jazz"}
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed))


def test_non_utf8_bytes_make_bad_rows_not_a_crash(lake: Lake) -> None:
    data = HEADER + (
        b"1,t1,2024-06-25 10:00:00\n"
        b"2,t\xff1,2024-06-25 10:00:00\n"
        b"3\xe9,t1,2024-06-25 10:00:00\n"
        b"4,t1,2024-06-25 10:00:0\xc3\n"
        b"\xfe\xff,\x80\x81,\xc0\xaf\n"
        b"5,t1,2024-06-25 10:00:00\n"
    )
    report, landed = run_files(lake, [("latin1.csv", data)], threshold=LOAD_ALL)
    (result,) = report.files
    assert (result.rows_in, result.rows_valid) == (6, 2)
    assert result.bad_by_reason == {"bad_timestamp": 1, "bad_user_id": 2, "unknown_track": 1}
    bad = lake_state(lake.root).bad
    assert bad[0][:4] == ("2", "t\ufffd1", "2024-06-25 10:00:00", "unknown_track")
    assert all("\ufffd" in "".join(filter(None, row[:3])) for row in bad)
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed, threshold=LOAD_ALL))


def test_non_utf8_song_title(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.put_dimensions()
    songs = csv_bytes(SONG_HEADER, default_songs()).replace(b"Song Three", b"Caf\xe9 Three")
    lake.storage.write_bytes(layout.RAW_SONGS, songs)
    report, landed = run_files(lake, [("jazz.csv", stream_file("1,t3,2024-06-25 10:00:00"))])
    assert report.files[0].rows_valid == 1
    (top,) = lake_state(lake.root).top_songs
    assert top["track_name"] == "Caf\ufffd Three"
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed))


JUNK = {
    "random-bytes": random.Random(7).randbytes(64 * 1024),
    "all-byte-values": bytes(range(256)) * 64,
    "header-then-junk": HEADER + random.Random(11).randbytes(32 * 1024).replace(b'"', b"'"),
    "png-like": b"\x89PNG\r\n\x1a\n" + b"\x00" * 4096,
}


@pytest.mark.parametrize("junk", [pytest.param(data, id=name) for name, data in JUNK.items()])
def test_binary_junk_is_rejected_or_all_bad(lake: Lake, junk: bytes) -> None:
    report, _landed = run_files(lake, [("junk.csv", junk), ("z-good.csv", GOOD)])
    result, good = report.files
    assert result.rows_valid == 0
    assert result.status == "failed" or result.rows_bad == result.rows_in
    assert good.status == "done" and good.rows_valid == len(GOOD_LINES)


def test_very_long_field(lake: Lake) -> None:
    huge = "x" * 1_000_000
    data = stream_file(
        f"1,{huge},2024-06-25 10:00:00",
        f"2,t1,2024-06-25 10:00:00{huge}",
        "3,t1,2024-06-25 10:00:00",
    )
    report, landed = run_files(lake, [("long.csv", data)], threshold=LOAD_ALL)
    (result,) = report.files
    assert (result.rows_in, result.rows_valid) == (3, 1)
    assert result.bad_by_reason == {"bad_timestamp": 1, "unknown_track": 1}
    state = lake_state(lake.root)
    assert [len(row[1]) for row in state.bad if row[3] == "unknown_track"] == [1_000_000]
    assert state.valid[0][4] == 4, "line numbers survive the long lines"
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed, threshold=LOAD_ALL))


def test_ragged_rows(lake: Lake) -> None:
    data = HEADER + (
        b"1,t1\n2\n3,t1,2024-06-25 10:00:00,surplus,fields\n4,t2,2024-06-25 11:00:00\n"
    )
    report, landed = run_files(lake, [("ragged.csv", data)], threshold=LOAD_ALL)
    (result,) = report.files
    assert (result.rows_in, result.rows_valid, result.bad_by_reason) == (4, 2, {"null_field": 2})
    assert [row[5] for row in lake_state(lake.root).bad] == [2, 3]
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed, threshold=LOAD_ALL))


def test_blank_lines_are_counted_rows(lake: Lake) -> None:
    data = HEADER + b"1,t1,2024-06-25 10:00:00\n\n \t \n2,t2,2024-06-25 11:00:00\n"
    report, landed = run_files(lake, [("blank.csv", data)], threshold=LOAD_ALL)
    (result,) = report.files
    assert result.rows_in == result.rows_valid + result.rows_bad
    assert result.rows_valid == 2
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed, threshold=LOAD_ALL))


def test_stray_quote_inside_a_field_loses_nothing(lake: Lake) -> None:
    data = stream_file('1,t"1,2024-06-25 10:00:00', *GOOD_LINES)
    report, _landed = run_files(lake, [("quote.csv", data)])
    (result,) = report.files
    assert result.status == "failed" or result.rows_in == len(GOOD_LINES) + 1


# --------------------------------------------------------------------------- bad-row threshold


def with_bad_rows(bad: int, total: int = 100) -> bytes:
    """`total` rows, the first `bad` of them with an unknown track, the rest valid."""
    lines = [
        f"{1 + i % 20},{'t9' if i < bad else 't1'},2024-06-25 {i // 60:02d}:{i % 60:02d}:00"
        for i in range(total)
    ]
    return stream_file(*lines)


def test_too_many_bad_rows_fails_the_whole_file(lake: Lake) -> None:
    report, landed = run_files(lake, [("a-bad.csv", with_bad_rows(6)), ("b-good.csv", GOOD)])
    failed, good = report.files
    assert (failed.status, failed.error) == ("failed", "too_many_bad_rows")
    assert (failed.rows_in, failed.rows_valid, failed.bad_by_reason) == (
        100,
        94,
        {"unknown_track": 6},
    )
    assert report.failed == [failed] and good.status == "done"
    assert {r[3] for r in lake_state(lake.root).valid} == {good.key}
    kpis = {r["genre"]: r["listen_count"] for r in lake_state(lake.root).daily_genre_kpis}
    assert sum(kpis.values()) == _plays_of_good()
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed))


def _plays_of_good() -> int:
    """Listens of GOOD counted once per genre (t2 is rock and pop)."""
    return sum(2 if line.split(",")[1] == "t2" else 1 for line in GOOD_LINES)


def test_threshold_setting_lets_the_file_load(lake: Lake) -> None:
    report, landed = run_files(lake, [("bad.csv", with_bad_rows(6))], threshold=0.5)
    (result,) = report.files
    assert (result.status, result.rows_valid, result.bad_by_reason) == (
        "done",
        94,
        {"unknown_track": 6},
    )
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed, threshold=0.5))


def test_threshold_is_a_strict_bound(lake: Lake) -> None:
    report, landed = run_files(lake, [("edge.csv", with_bad_rows(5))])
    (result,) = report.files
    assert (result.status, result.rows_valid) == ("done", 95)
    assert_matches_oracle(lake, [report], run_oracle_for(lake, landed))


def test_rows_of_a_rejected_file_are_not_seen_by_later_files(lake: Lake) -> None:
    """A file that fails whole accepted nothing: a later file's same events are not duplicates.

    Processed one per run, the second file loads all its rows; processed in one run
    it must load them too (the result may not depend on how files were batched).
    """
    first = stream_file(*GOOD_LINES[:10], *(f"{u},t9,2024-06-25 12:00:00" for u in range(1, 11)))
    second = stream_file(*GOOD_LINES[:10])
    report, landed = run_files(lake, [("a.csv", first), ("b.csv", second)])
    expected = run_oracle_for(lake, landed)
    assert [(f.status, f.error) for f in expected.files] == [
        ("failed", "too_many_bad_rows"),
        ("done", ""),
    ]
    assert [(f.status, f.error, f.rows_valid) for f in report.files] == [
        ("failed", "too_many_bad_rows", 10),
        ("done", "", 10),
    ]
    assert_matches_oracle(lake, [report], expected)
