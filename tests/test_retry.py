"""A failed file after its cause is fixed: automatic retry and `music-etl retry`, run as a user."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from conftest import NOW, Lake, default_songs, default_users
from music_etl.adapters.ledger.base import DONE, FAILED, FileRecord
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.cli.app import app
from music_etl.pipeline.notify import failure_notification
from music_etl.pipeline.run import run

MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")
KEY = "raw/streams/a.csv"
#: Ten listens on 30 June 2024, of known tracks.
LISTENS = [(i, "t1", f"2024-06-30T10:00:{i:02d}Z") for i in range(1, 11)]


def cli(lake: Lake, *args: str, now: str = NOW) -> subprocess.CompletedProcess[str]:
    """`music-etl ARGS --lake LAKE` in a subprocess, with the processing clock `now`."""
    env = {**os.environ, "MUSIC_ETL_NOW": now, "COLUMNS": "400"}
    env.pop("MUSIC_ETL_CONFIG", None)
    command = [MUSIC_ETL, args[0], "--lake", str(lake.root), *args[1:]]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def said(result: subprocess.CompletedProcess[str]) -> str:
    """Everything the command printed, on one line."""
    return " ".join((result.stdout + result.stderr).split())


def record(lake: Lake, key: str = KEY) -> FileRecord:
    ledger = SQLiteLedger(lake.settings().ledger_url)
    try:
        found = ledger.get(key)
    finally:
        ledger.close()
    assert found is not None
    return found


def loaded_days(lake: Lake) -> list[str]:
    return sorted(p.name for p in (lake.root / "validated/streams").glob("listen_date=*"))


def test_a_file_failed_on_unknown_users_runs_again_once_users_csv_has_them(lake: Lake) -> None:
    lake.put_streams("a.csv", [(user + 30, track, at) for user, track, at in LISTENS])
    first = cli(lake, "run")
    assert first.returncode == 1, said(first)
    hint = "add the missing users to raw/users/users.csv, then `music-etl run`"
    assert hint in said(first) and f"`music-etl retry {KEY}`" in said(first)
    assert "Nothing new" in said(cli(lake, "run"))  # nothing changed: it stays failed
    status = said(cli(lake, "status"))
    assert f"Next step for {KEY}: {hint}" in status and "│ automatic │" in status
    assert record(lake).judged_against.keys() == {"users"}

    lake.put_dimensions(
        users=[*default_users(), *((u, f"U{u}", 30, "GH", "2024-01-01") for u in range(31, 41))]
    )
    fixed = cli(lake, "run")
    assert fixed.returncode == 0, said(fixed)
    assert "1 file(s) processed, 0 failed" in said(fixed)
    assert record(lake).status == DONE and record(lake).rows_valid == 10
    assert loaded_days(lake) == ["listen_date=2024-06-30"]
    assert (lake.root / "archive/streams/a.csv").is_file()


def test_a_failure_is_retried_only_when_the_file_it_failed_against_changed(lake: Lake) -> None:
    lake.put_streams("a.csv", [(user, "t9", at) for user, _track, at in LISTENS])
    assert cli(lake, "run").returncode == 1
    assert record(lake).judged_against.keys() == {"songs"}
    lake.put_dimensions(users=[*default_users(), (99, "New", 20, "GH", "2024-01-01")])
    assert "Nothing new" in said(cli(lake, "run"))  # users.csv changed, not songs.csv
    lake.put_dimensions(
        songs=[*default_songs(), ("t9", "Artist Z", "Album", "Nine", 1, 180_000, "pop")]
    )
    assert "1 file(s) processed, 0 failed" in said(cli(lake, "run"))
    assert record(lake).status == DONE


def test_a_wrong_clock_is_fixed_then_retry_then_run(lake: Lake) -> None:
    lake.put_streams("a.csv", LISTENS)
    wrong = cli(lake, "run", now="2020-01-01T00:00:00Z")
    assert wrong.returncode == 1, said(wrong)
    assert record(lake).bad_by_reason == {"future_timestamp": 10}
    clock = "fix the processing clock (MUSIC_ETL_NOW or the system clock)"
    hint = f"{clock}, then `music-etl retry {KEY}`"
    assert hint in said(wrong)
    assert "Nothing new" in said(cli(lake, "run"))  # the clock is not watched: retry says so

    retried = cli(lake, "retry", KEY)
    assert retried.returncode == 0, said(retried)
    assert f"Reset {KEY}" in said(retried)
    assert (record(lake).status, record(lake).retryable) == (FAILED, True)
    status = said(cli(lake, "status"))
    assert "the next `music-etl run` processes it again" in status and "│ next run │" in status
    done = cli(lake, "run")
    assert done.returncode == 0, said(done)
    assert "1 file(s) processed, 0 failed" in said(done)
    assert record(lake).status == DONE and record(lake).processed_at.startswith("2024-07-01")
    assert loaded_days(lake) == ["listen_date=2024-06-30"]


def test_retry_with_no_key_resets_every_failed_file_and_nothing_else(lake: Lake) -> None:
    lake.put_streams("a.csv", LISTENS)
    lake.put_streams("b.csv", [(1, "t3", "2024-06-30T11:00:00Z")])
    assert cli(lake, "run").returncode == 0
    lake.put_streams("c.csv", [(user, track, "2024-06-30T10:00:00") for user, track, _ in LISTENS])
    lake.put_streams("d.csv", [(user, track, "2024-06-29T10:00:00Z") for user, track, _ in LISTENS])
    assert cli(lake, "run", now="2020-01-01T00:00:00Z").returncode == 1
    retried = cli(lake, "retry")
    assert retried.returncode == 0, said(retried)
    assert "Reset raw/streams/c.csv" in said(retried) and "Reset raw/streams/d.csv" in said(retried)
    assert "a.csv" not in said(retried) and "b.csv" not in said(retried)
    assert record(lake, "raw/streams/a.csv").status == DONE


def test_retry_on_a_done_file_does_nothing(lake: Lake) -> None:
    lake.put_streams("a.csv", LISTENS)
    assert cli(lake, "run").returncode == 0
    before = record(lake)
    result = cli(lake, "retry", "a.csv")
    assert result.returncode == 0, said(result)
    assert f"Left {KEY} as it is: it is done, not failed." in said(result)
    assert record(lake) == before
    assert "Nothing new" in said(cli(lake, "run"))
    assert "No failed files to retry." in said(cli(lake, "retry"))


def test_retry_with_an_unknown_key_exits_2_naming_it_and_changes_nothing(lake: Lake) -> None:
    lake.put_streams("a.csv", LISTENS)
    assert cli(lake, "run", now="2020-01-01T00:00:00Z").returncode == 1
    result = cli(lake, "retry", KEY, "raw/streams/nope.csv")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Not in the ledger: raw/streams/nope.csv." in said(result)
    assert record(lake).retryable is False


def test_a_file_failed_on_its_own_content_is_not_retried_automatically(lake: Lake) -> None:
    bad_times = [(user, track, "yesterday") for user, track, _ in LISTENS[:5]]
    strangers = [(user + 30, track, at) for user, track, at in LISTENS[5:]]
    lake.put_streams("a.csv", [*bad_times, *strangers])
    first = cli(lake, "run")
    assert first.returncode == 1
    hint = f"correct the file and land the new version as {KEY}"
    assert hint in said(first)
    status = said(cli(lake, "status"))
    assert f"Next step for {KEY}: {hint}" in status and "│ new version │" in status
    assert record(lake).judged_against == {}
    lake.put_dimensions(
        users=[*default_users(), *((u, "U", 30, "GH", "2024-01-01") for u in range(31, 41))]
    )
    assert "Nothing new" in said(cli(lake, "run"))
    assert record(lake).status == FAILED


def test_the_notification_tells_the_way(lake: Lake) -> None:
    lake.put_streams("a.csv", [(user + 30, track, at) for user, track, at in LISTENS])
    settings = lake.settings()
    report = run(settings)
    text = failure_notification(settings, report.failed, total=1).text
    assert "add the missing users to raw/users/users.csv" in text
    assert f"`music-etl retry {KEY}`" in text


def test_a_ledger_from_before_judged_against_opens_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE ProcessedStreams (file_key TEXT PRIMARY KEY, content_hash TEXT NOT NULL,"
            " status TEXT NOT NULL, owner TEXT NOT NULL, lease_until REAL NOT NULL,"
            " timestamp TEXT NOT NULL, processed_at TEXT NOT NULL, rows_in INTEGER NOT NULL,"
            " rows_valid INTEGER NOT NULL, rows_bad INTEGER NOT NULL,"
            " bad_by_reason TEXT NOT NULL, days TEXT NOT NULL, error TEXT NOT NULL,"
            " retryable INTEGER NOT NULL, seq INTEGER NOT NULL)"
        )
        conn.execute(
            "INSERT INTO ProcessedStreams VALUES ('k', 'h', 'failed', 'o', 0, 't', '', 1, 0, 1,"
            " '{}', '[]', 'too_many_bad_rows', 0, 1)"
        )
    ledger = SQLiteLedger(f"sqlite:///{path}")
    try:
        old = ledger.get("k")
        assert old is not None and old.judged_against == {}
        assert ledger.mark_retryable("k")
    finally:
        ledger.close()


def test_retry_has_help_with_an_example() -> None:
    result = CliRunner().invoke(app, ["retry", "--help"])
    assert result.exit_code == 0, result.output
    assert "Example: music-etl retry" in " ".join(result.output.split())
