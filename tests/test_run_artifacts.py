"""Run artifacts, structured logs and output options, as a user or a scheduler sees them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Lake
from music_etl.adapters.ledger import open_ledger

MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")
FAULTY_CLI = str(Path(__file__).parent / "faulty_cli.py")
NOW = "2024-07-01T00:00:00Z"
LONG_NAME = "a-stream-file-with-a-name-much-longer-than-eighty-columns-" + "x" * 40 + ".csv"
ROWS = [(1, "t1", "2024-06-01 10:00:00"), (2, "t2", "2024-06-02 11:00:00"), (1, "zz", "bad")]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    return {**env, "MUSIC_ETL_NOW": NOW, "MUSIC_ETL_SETTLE_SECONDS": "0", **extra}


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MUSIC_ETL, *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _faulty(how: list[str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, FAULTY_CLI, *how, "--", *args]
    return subprocess.run(
        command, env=_env(**env), capture_output=True, text=True, timeout=120, check=False
    )


def _artifacts(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((root / "_state/runs").glob("*.json"))]


def _ledger(root: Path) -> dict[str, dict[str, Any]]:
    result = _cli("status", "--lake", str(root), "--format", "json")
    assert result.returncode == 0, result.stderr
    return {r["file_key"]: r for r in json.loads(result.stdout)["files"]}


def _assert_files_match_ledger(doc: dict[str, Any], root: Path) -> None:
    ledger = _ledger(root)
    for f in doc["files"]:
        record = ledger[f["key"]]
        assert f["status"] == record["status"]
        assert f["content_hash"] == record["content_hash"]
        assert f["reason"] == record["error"]
        for field in ("rows_in", "rows_valid", "rows_bad", "bad_by_reason"):
            assert f[field] == record[field], (f["key"], field)


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One lake, one `--log-format json run --json` over a good, a long-named and a broken file."""
    made = Lake(tmp_path_factory.mktemp("artifacts") / "lake")
    made.put_dimensions()
    made.put_streams("good.csv", ROWS)
    made.put_streams(LONG_NAME, [(2, "t1", "2024-06-01 12:00:00")])
    made.put_raw("broken.csv", b"user_id,listen_time\n1,2024-06-01 10:00:00\n")
    args = ("--log-format", "json", "run", "--lake", str(made.root), "--json")
    result = _cli(*args, MUSIC_ETL_BAD_ROW_THRESHOLD="0.5")
    return {"root": made.root, "result": result}


def test_run_json_prints_the_artifact_it_wrote(logged_run: dict[str, Any]) -> None:
    result, root = logged_run["result"], logged_run["root"]
    assert result.returncode == 1, result.stderr  # broken.csv was rejected
    (written,) = _artifacts(root)
    assert json.loads(result.stdout) == written
    assert written["status"] == "rejected"
    assert written["schema_version"] == 1
    assert written["package_version"]
    files = {f["key"]: f for f in written["files"]}
    assert files["raw/streams/broken.csv"]["reason"] == "missing_column"
    good = files["raw/streams/good.csv"]
    assert (good["rows_in"], good["rows_valid"], good["bad_by_reason"]) == (
        3,
        2,
        {"bad_timestamp": 1},
    )
    assert good["days"] == ["2024-06-01", "2024-06-02"]
    assert [d["day"] for d in written["days"]] == ["2024-06-01", "2024-06-02"]
    name = next(p.name for p in (root / "_state/runs").iterdir())
    assert name == f"{written['started'][:19].replace('-', '').replace(':', '')}Z-" + (
        f"{written['run_id']}.json"
    )
    _assert_files_match_ledger(written, root)


def test_json_log_lines_carry_the_run_id_and_come_in_order(logged_run: dict[str, Any]) -> None:
    result, root = logged_run["result"], logged_run["root"]
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    run_id = _artifacts(root)[0]["run_id"]
    assert all(line["run_id"] == run_id and line["ts"] and line["level"] for line in lines)
    events = [line["event"] for line in lines]
    assert events[0] == "run_started"
    assert events[-1] == "run_finished"
    good = [
        line["event"]
        for line in lines
        if line.get("key") == "raw/streams/good.csv" or line["event"] == "day_loaded"
    ]
    assert good.index("file_claimed") < good.index("file_validated") < good.index("day_loaded")
    assert good.index("day_loaded") < good.index("file_archived")
    validated = next(
        line
        for line in lines
        if line["event"] == "file_validated" and line["key"] == "raw/streams/good.csv"
    )
    assert validated["rows_valid"] == 2
    rejected = [line for line in lines if line["event"] == "file_rejected"]
    assert rejected[0]["level"] == "warning"
    assert rejected[0]["reason"] == "missing_column"


def test_log_format_from_the_environment_and_status_json(logged_run: dict[str, Any]) -> None:
    root = logged_run["root"]
    result = _cli("run", "--lake", str(root), MUSIC_ETL_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line)["event"] for line in result.stderr.splitlines()]
    assert events == ["run_started", "run_finished"]
    status = json.loads(_cli("status", "--lake", str(root), "--format", "json").stdout)
    assert len(status["artifacts"]) == 2
    assert len(status["runs"]) == 2


def test_piped_run_table_keeps_long_names_whole(lake: Lake) -> None:
    lake.put_streams(LONG_NAME, ROWS[:1])
    result = _cli("run", "--lake", str(lake.root))
    assert result.returncode == 0, result.stderr
    assert f"raw/streams/{LONG_NAME}" in result.stdout


def test_quiet_prints_only_the_result_line_and_version(lake: Lake) -> None:
    lake.put_streams("a.csv", ROWS[:1])
    result = _cli("-q", "run", "--lake", str(lake.root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        "1 file(s) processed, 0 failed; 1 rows in, 1 valid (1 loaded), 0 bad; 1 day(s) recomputed."
    ]
    version = _cli("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("music-etl 0.")


def test_a_failure_mid_run_writes_a_failed_artifact(lake: Lake) -> None:
    lake.put_streams("a.csv", ROWS[:1])
    lake.put_streams("b.csv", ROWS[1:2])
    how = ["serving", "replace_days", "2", "0", ""]
    result = _faulty(how, "run", "--lake", str(lake.root), MUSIC_ETL_BATCH_BYTES="1")
    assert result.returncode == 3, result.stderr  # InjectedFault is retryable
    (doc,) = _artifacts(lake.root)
    assert doc["status"] == "failed"
    assert "injected failure in replace_days" in doc["error"]
    assert [f["key"] for f in doc["files"]] == ["raw/streams/a.csv"]
    _assert_files_match_ledger(doc, lake.root)


def test_a_run_turned_away_at_the_lock_leaves_no_artifact(lake: Lake) -> None:
    """A scheduler retrying every minute while a long run holds the lock fills nothing."""
    lake.put_streams("a.csv", ROWS[:1])
    assert open_ledger(lake.settings().ledger_url).acquire_lock("lake", "elsewhere", 900)
    for _ in range(2):
        args = ("--log-format", "json", "run", "--lake", str(lake.root))
        result = _cli(*args, MUSIC_ETL_LOCK_WAIT_SECONDS="0")
        assert result.returncode == 3, result.stderr  # retry later
        events = [json.loads(line) for line in result.stderr.splitlines()]
        finished = next(e for e in events if e["event"] == "run_finished")
        assert (finished["status"], finished["level"], finished["artifact"]) == (
            "failed",
            "error",
            "",
        )
        assert finished["error"].startswith("LockHeld: Another run holds the lock")
    assert not (lake.root / "_state/runs").exists() or _artifacts(lake.root) == []
    assert (lake.root / "raw/streams/a.csv").exists()


def test_an_artifact_write_error_never_fails_the_run(lake: Lake) -> None:
    lake.put_streams("a.csv", ROWS[:1])
    how = ["storage", "write_bytes", "1", "0", "_state/runs/"]
    result = _faulty(how, "run", "--lake", str(lake.root))
    assert result.returncode == 0, result.stderr
    assert "artifact" in result.stderr
    assert "not written" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (lake.root / "archive/streams/a.csv").exists()


def test_ctrl_c_during_run_exits_130_and_says_what_was_left(lake: Lake) -> None:
    lake.put_streams("a.csv", ROWS[:1])
    command = [sys.executable, FAULTY_CLI, "serving", "replace_days", "1", "60", "", "--"]
    proc = subprocess.Popen(
        [*command, "--log-format", "json", "run", "--lake", str(lake.root)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if json.loads(line)["event"] == "day_recomputed":
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 130, rest
    last = json.loads(rest.strip().splitlines()[-1])
    assert last["event"] == "interrupted"
    assert "lease" in last["message"]
    assert "next run" in last["message"]
    (doc,) = _artifacts(lake.root)
    assert doc["status"] == "failed"
    assert doc["error"] == "interrupted (Ctrl-C)"


def test_watch_reports_a_rejected_users_csv(lake: Lake) -> None:
    assert _cli("-q", "run", "--lake", str(lake.root)).returncode == 0  # a catalogue in force
    lake.storage.write_bytes("raw/users/users.csv", b"user_name\nada\n")
    command = [MUSIC_ETL, "watch", "--lake", str(lake.root), "--interval", "0.2"]
    proc = subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    seen = ""
    while "rejected:" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert "rejected: raw/users/users.csv" in seen
