"""End-to-end behaviour of `run` and `rebuild` on small hand-written lakes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from conftest import Lake, default_songs
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.cli.app import app
from music_etl.pipeline.rebuild import rebuild
from music_etl.pipeline.run import run


def kpis(lake: Lake) -> dict[tuple[str, str], tuple[int, int, int]]:
    store = SQLiteServingStore(lake.settings().serving_url)
    return {
        (r["date"], r["genre"]): (
            r["listen_count"],
            r["unique_listeners"],
            r["total_listening_time"],
        )
        for r in store.scan("DailyGenreKPIs")
    }


def processed(lake: Lake, table: str) -> pl.DataFrame:
    files = sorted((lake.root / "processed" / table).glob("*/*.parquet"))
    return pl.read_parquet(files, hive_partitioning=True).sort(pl.all())


def test_kpis_rankings_and_multi_genre_tracks(lake: Lake) -> None:
    lake.put_streams(
        "a.csv",
        [
            (1, "t1", "2024-06-01 10:00:00"),
            (2, "t1", "2024-06-01 11:00:00"),
            (1, "t2", "2024-06-01 12:00:00"),
            (3, "t4", "2024-06-01 13:00:00"),
        ],
    )
    report = run(lake.settings())
    assert [f.status for f in report.files] == ["done"]
    assert kpis(lake) == {
        ("2024-06-01", "pop"): (4, 3, 200_000 * 2 + 300_000 + 150_000),
        ("2024-06-01", "rock"): (1, 1, 300_000),
    }
    songs = processed(lake, "top_songs").filter(pl.col("genre") == "pop").sort("rank")
    assert songs.select("rank", "track_id", "play_count").rows() == [
        (1, "t1", 2),
        (2, "t2", 1),
        (3, "t4", 1),
    ]
    assert songs["track_name"][1] == 'Ave Maria, "Ellens Gesang III"'
    genres = processed(lake, "top_genres").sort("rank")
    assert genres.select("rank", "genre", "listen_count").rows() == [(1, "pop", 4), (2, "rock", 1)]
    avg = processed(lake, "daily_genre_kpis").filter(pl.col("genre") == "pop")["avg_listening_time"]
    assert avg.to_list() == [850_000 / 3]


def test_late_file_recomputes_exactly_the_days_it_touches(lake: Lake) -> None:
    settings = lake.settings(bad_row_threshold=1.0)
    lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00"), (2, "t1", "2024-06-02 10:00:00")])
    run(settings)
    day2 = (
        (lake.root / "processed/daily_genre_kpis/date=2024-06-02/part-0.parquet").stat().st_mtime_ns
    )
    lake.put_streams(
        "late.csv", [(3, "t3", "2024-06-01 09:00:00"), (1, "t1", "2024-06-01 10:00:00")]
    )
    report = run(settings)
    assert report.days == ("2024-06-01",)
    assert report.files[0].bad_by_reason == {"duplicate_event": 1}
    assert kpis(lake)[("2024-06-01", "jazz")] == (1, 1, 100_000)
    assert kpis(lake)[("2024-06-01", "pop")] == (1, 1, 200_000)
    after = (
        (lake.root / "processed/daily_genre_kpis/date=2024-06-02/part-0.parquet").stat().st_mtime_ns
    )
    assert after == day2


def test_second_run_changes_nothing_and_files_are_archived(lake: Lake) -> None:
    lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00")])
    run(lake.settings())
    before = kpis(lake)
    report = run(lake.settings())
    assert report.files == [] and report.days == ()
    assert kpis(lake) == before
    assert (lake.root / "archive/streams/a.csv").is_file()
    assert not (lake.root / "raw/streams/a.csv").exists()


def test_same_key_new_content_replaces_old_rows(lake: Lake) -> None:
    lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00"), (2, "t3", "2024-06-02 10:00:00")])
    run(lake.settings())
    lake.put_streams("a.csv", [(5, "t3", "2024-06-03 10:00:00")])
    report = run(lake.settings())
    assert report.days == ("2024-06-01", "2024-06-02", "2024-06-03")
    assert kpis(lake) == {("2024-06-03", "jazz"): (1, 1, 100_000)}
    assert sorted(p.parent.name for p in (lake.root / "validated/streams").glob("*/*.parquet")) == [
        "listen_date=2024-06-03"
    ]


def test_unchanged_file_dropped_again_is_skipped(lake: Lake) -> None:
    rows = [(1, "t1", "2024-06-01 10:00:00")]
    lake.put_streams("a.csv", rows)
    run(lake.settings())
    lake.put_streams("a.csv", rows)
    report = run(lake.settings())
    assert report.files == []
    assert not (lake.root / "raw/streams/a.csv").exists()


def test_song_catalogue_change_recomputes_every_day(lake: Lake) -> None:
    lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00"), (1, "t3", "2024-06-05 10:00:00")])
    run(lake.settings())
    songs = [(*row[:6], "dance") if row[0] == "t1" else row for row in default_songs()]
    lake.put_dimensions(songs=songs)
    report = run(lake.settings())
    assert report.days == ("2024-06-01", "2024-06-05")
    assert ("2024-06-01", "dance") in kpis(lake)
    assert ("2024-06-01", "pop") not in kpis(lake)


def test_rebuild_recreates_the_same_state(lake: Lake) -> None:
    lake.put_streams(
        "a.csv",
        [
            (1, "t1", "2024-06-01 10:00:00"),
            (2, "t2", "2024-06-02 10:00:00"),
            (2, "t2", "2024-06-02 10:00:00"),
            (99, "t1", "2024-06-01 10:00:00"),
        ],
    )
    settings = lake.settings(bad_row_threshold=1.0)
    run(settings)
    lake.put_streams("b.csv", [(2, "t2", "2024-06-02 10:00:00"), (3, "t4", "2024-06-03 10:00:00")])
    run(settings)
    before = (kpis(lake), processed(lake, "top_songs").rows(), _ledger_view(lake))
    report = rebuild(settings)
    assert [f.status for f in report.files] == ["done", "done"]
    assert (kpis(lake), processed(lake, "top_songs").rows(), _ledger_view(lake)) == before


def _ledger_view(lake: Lake) -> list[tuple[object, ...]]:
    ledger = SQLiteLedger(lake.settings().ledger_url)
    return sorted(
        (r.file_key, r.status, r.rows_in, r.rows_valid, r.rows_bad, r.days)
        for r in ledger.records()
    )


def test_cli_run_exits_1_when_a_file_fails_and_status_shows_it(lake: Lake) -> None:
    lake.put_raw("bad.csv", b"user,track\n1,t1\n")
    lake.put_streams("good.csv", [(1, "t1", "2024-06-01 10:00:00")])
    runner = CliRunner()
    env = {"MUSIC_ETL_NOW": "2024-07-01T00:00:00Z"}
    result = runner.invoke(app, ["run", "--lake", str(lake.root)], env=env)
    assert result.exit_code == 1, result.output
    assert "missing_column" in result.output
    status = runner.invoke(app, ["status", "--lake", str(lake.root)], env={"COLUMNS": "200"})
    assert status.exit_code == 0
    assert "failed" in status.output and "done" in status.output


def test_query_views(lake: Lake, tmp_path: Path) -> None:
    lake.put_streams(
        "a.csv", [(1, "t1", "2024-06-01 10:00:00"), (1, "nope", "2024-06-01 10:00:00")]
    )
    run(lake.settings(bad_row_threshold=1.0))
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "query",
            "--lake",
            str(lake.root),
            "--format",
            "csv",
            "SELECT reason, source_line FROM bad_records",
        ],
    )
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["reason,source_line", "unknown_track,3"]
    empty = tmp_path / "empty"
    assert runner.invoke(app, ["init", "--lake", str(empty)]).exit_code == 0
    out = runner.invoke(
        app,
        ["query", "--lake", str(empty), "--format", "json", "SELECT count(*) AS n FROM streams"],
    )
    assert out.output.strip() == '{"n": 0}'
