"""Every failure is one line on stderr and an exit code a scheduler can act on."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from conftest import Lake
from music_etl.adapters.ledger import open_ledger
from music_etl.adapters.ledger.base import new_owner
from music_etl.adapters.sqlite_common import sqlite_error
from music_etl.cli import render
from music_etl.errors import (
    EXIT_CONFIG,
    EXIT_INTERNAL,
    EXIT_REJECTED,
    EXIT_RETRY,
    ConfigError,
    CorruptState,
    DiskFull,
    LockHeld,
    StorageError,
    exit_code_for,
    from_os_error,
)

MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")
NOW = "2024-07-01T00:00:00Z"
ROW = (1, "t1", "2024-06-01 10:00:00")


def cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """`music-etl args…` as a user runs it, with `env` added to the environment."""
    full = {**os.environ, "MUSIC_ETL_NOW": NOW, **env}
    return subprocess.run(
        [MUSIC_ETL, *args], env=full, capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The only line on stderr (and never a traceback)."""
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    return lines[0]


# --------------------------------------------------------------------------- the mapping


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConfigError("x"), EXIT_CONFIG),
        (StorageError("x"), EXIT_CONFIG),
        (LockHeld("x"), EXIT_RETRY),
        (DiskFull("x"), EXIT_RETRY),
        (OSError(errno.ENOSPC, "No space left on device"), EXIT_RETRY),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), EXIT_RETRY),
        (OSError(errno.EROFS, "Read-only file system"), EXIT_CONFIG),
        (PermissionError(errno.EACCES, "Permission denied"), EXIT_CONFIG),
        (KeyError("a bug"), EXIT_INTERNAL),
    ],
)
def test_exit_code_for(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


def test_os_errors_become_ours_by_errno() -> None:
    full = from_os_error(OSError(errno.ENOSPC, "No space left on device", "/l/x"), "Writing x")
    assert isinstance(full, DiskFull)
    assert str(full) == "Writing x: No space left on device (/l/x); free space, then run again."
    assert isinstance(from_os_error(OSError(errno.EROFS, "Read-only file system")), StorageError)


def test_sqlite_errors_become_ours() -> None:
    assert isinstance(sqlite_error(sqlite3.OperationalError("database is locked")), LockHeld)
    assert isinstance(sqlite_error(sqlite3.DatabaseError("file is not a database")), CorruptState)
    assert isinstance(sqlite_error(sqlite3.OperationalError("database or disk is full")), DiskFull)
    assert sqlite_error(sqlite3.OperationalError('near "SELEC": syntax error')) is None


def test_guard_injected_disk_full_is_retryable(capsys: pytest.CaptureFixture[str]) -> None:
    def write() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/lake/validated/x.parquet")

    with pytest.raises(typer.Exit) as info:
        render.guard(write)
    assert info.value.exit_code == EXIT_RETRY
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "error: Accessing the lake: No space left on device (/lake/validated/x.parquet); "
        "free space, then run again."
    )


def test_guard_internal_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MUSIC_ETL_DEBUG", raising=False)
    with pytest.raises(typer.Exit) as info:
        render.guard(lambda: {}["missing"])
    assert info.value.exit_code == EXIT_INTERNAL
    assert capsys.readouterr().err.splitlines() == [
        "internal error: KeyError: 'missing' (set MUSIC_ETL_DEBUG=1 for the traceback)"
    ]
    monkeypatch.setenv("MUSIC_ETL_DEBUG", "1")
    with pytest.raises(typer.Exit):
        render.guard(lambda: {}["missing"])
    assert "Traceback" in capsys.readouterr().err


# --------------------------------------------------------------------------- settings


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--engine", "pandas"], {}, "Unknown engine 'pandas'"),
        ([], {"MUSIC_ETL_BATCH_BYTES": "abc"}, "batch_bytes must be a number"),
        ([], {"MUSIC_ETL_NOW": "9999-12-31T23:59:59"}, "too close to the end of the calendar"),
        (["--config", "missing.toml"], {}, "--config missing.toml: no such file"),
        ([], {"MUSIC_ETL_CONFIG": "missing.toml"}, "MUSIC_ETL_CONFIG missing.toml: no such file"),
        (["--lake", "s3:/bucket"], {}, "s3://bucket/prefix (lower-case, two slashes)"),
        (["--lake", "s3://"], {}, "names no bucket"),
        (["--lake", ""], {}, "The lake path is empty"),
        (["--lake", "/etc/passwd"], {}, "is a file, not a folder"),
    ],
)
def test_configuration_errors_exit_2_in_one_line(
    lake: Lake, args: list[str], env: dict[str, str], expected: str
) -> None:
    lake.put_streams("a.csv", [ROW])
    for command in ("run", "watch", "rebuild"):
        done = cli(command, "--lake", str(lake.root), *args, **env)
        assert done.returncode == EXIT_CONFIG, (command, done.stderr)
        assert expected in one_line(done)
    assert (lake.root / "raw/streams/a.csv").exists()


@pytest.mark.slow
def test_unknown_environment_variable_is_a_warning(lake: Lake) -> None:
    lake.put_streams("a.csv", [ROW])
    done = cli("run", "--lake", str(lake.root), MUSIC_ETL_LAKEE="typo")
    assert done.returncode == 0, done.stderr
    assert one_line(done).startswith(
        "warning: ignoring unknown environment variable MUSIC_ETL_LAKEE"
    )
    assert (lake.root / "archive/streams/a.csv").exists()


# --------------------------------------------------------------------------- the ledger


@pytest.mark.slow
def test_corrupt_ledger_says_move_it_aside(lake: Lake) -> None:
    lake.put_streams("a.csv", [ROW])
    assert cli("init", "--lake", str(lake.root)).returncode == 0
    ledger = lake.root / "_state/ledger.sqlite"
    ledger.write_bytes(os.urandom(8192))
    for name in ("ledger.sqlite-wal", "ledger.sqlite-shm"):
        (lake.root / "_state" / name).unlink(missing_ok=True)
    for command in ("run", "status"):
        done = cli(command, "--lake", str(lake.root))
        assert done.returncode == EXIT_CONFIG
        line = one_line(done)
        assert f"{ledger} is corrupt" in line
        assert "move it aside" in line
        assert "music-etl rebuild" in line


@pytest.fixture
def sqlite_held(lake: Lake) -> Iterator[None]:
    """Another process holds an exclusive SQLite lock on the lake's ledger."""
    open_ledger(lake.settings().ledger_url)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
            "c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(120)",
            str(lake.root / "_state/ledger.sqlite"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    try:
        yield
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


@pytest.mark.slow
@pytest.mark.usefixtures("sqlite_held")
def test_locked_ledger_is_retryable_after_lock_wait_seconds(lake: Lake) -> None:
    lake.put_streams("a.csv", [ROW])
    started = time.monotonic()
    done = cli("run", "--lake", str(lake.root), timeout=30, MUSIC_ETL_LOCK_WAIT_SECONDS="1")
    assert time.monotonic() - started < 20  # not SQLite's former fixed 60 s
    assert done.returncode == EXIT_RETRY
    assert "ledger.sqlite is locked by another process" in one_line(done)
    assert (lake.root / "raw/streams/a.csv").exists()


@pytest.mark.usefixtures("sqlite_held")
def test_sqlite_ledger_busy_timeout_follows_the_setting(lake: Lake) -> None:
    ledger = open_ledger(lake.settings().ledger_url, busy_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(LockHeld, match="locked by another process"):
        ledger.claim("raw/streams/a.csv", "h", new_owner(), 60)
    waited = time.monotonic() - started
    assert 0.4 < waited < 5


# --------------------------------------------------------------------------- the lake's disk


def in_mount_namespace(script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` with `sh` in a private mount namespace (mounts vanish with it)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed: cannot mount a read-only or tiny file system")
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount in a private namespace here: {probe.stderr.strip()}")
    env = {**os.environ, "MUSIC_ETL_NOW": NOW}
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_read_only_lake_is_a_one_line_storage_error(lake: Lake, tmp_path: Path) -> None:
    """A read-only bind mount: root ignores permission bits, not a read-only mount."""
    lake.put_streams("a.csv", [ROW])
    assert cli("init", "--lake", str(lake.root)).returncode == 0
    view = tmp_path / "ro"
    view.mkdir()
    done = in_mount_namespace(
        f"mount --bind {lake.root} {view} && mount -o remount,bind,ro {view} && "
        f"exec {MUSIC_ETL} run --lake {view}"
    )
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "the lake must be writable" in one_line(done)
    assert (lake.root / "raw/streams/a.csv").exists()


@pytest.mark.slow
def test_disk_full_is_retryable(lake: Lake, tmp_path: Path) -> None:
    """The lake on a 2 MB tmpfs filled to the last block."""
    lake.put_streams("a.csv", [ROW])
    disk = tmp_path / "disk"
    disk.mkdir()
    done = in_mount_namespace(
        f"mount -t tmpfs -o size=2m tmpfs {disk} && cp -r {lake.root} {disk}/lake && "
        f"(dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null; true) && "
        f"exec {MUSIC_ETL} run --lake {disk}/lake"
    )
    assert done.returncode == EXIT_RETRY, done.stderr
    assert "No space left on device" in one_line(done)
    assert "free space, then run again" in done.stderr


# --------------------------------------------------------------------------- watch


def wait_for(predicate: object, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_watch_keeps_going_on_retryable_errors_and_stops_on_sigterm(
    lake: Lake, tmp_path: Path
) -> None:
    lake.put_streams("a.csv", [ROW])
    assert cli("init", "--lake", str(lake.root)).returncode == 0
    ledger = open_ledger(lake.settings().ledger_url)
    holder = new_owner()
    assert ledger.acquire_lock("lake", holder, 900)
    log = tmp_path / "watch.err"
    env = {**os.environ, "MUSIC_ETL_NOW": NOW, "MUSIC_ETL_LOCK_WAIT_SECONDS": "0.2"}
    args = [MUSIC_ETL, "watch", "--lake", str(lake.root), "--interval", "0.2"]
    with log.open("w") as err:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        assert wait_for(lambda: log.read_text().count("retrying in") >= 2), log.read_text()
        assert proc.poll() is None  # still watching
        assert not (lake.root / "archive/streams/a.csv").exists()
        ledger.release_lock("lake", holder)
        assert wait_for((lake.root / "archive/streams/a.csv").exists)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    lines = log.read_text().splitlines()
    assert lines, "no retry logged"
    assert all(line.startswith("warning: Another run holds the lock") for line in lines), lines
    assert "Traceback" not in log.read_text()
    assert ledger.acquire_lock("lake", new_owner(), 900)  # the watcher released its lock


@pytest.mark.slow
def test_watch_stops_on_a_configuration_error(tmp_path: Path) -> None:
    done = cli("watch", "--lake", str(tmp_path), "--interval", "0.2", timeout=30)
    assert done.returncode == EXIT_CONFIG
    assert "is not a music-etl lake" in one_line(done)


@pytest.mark.slow
def test_run_exit_codes_table(lake: Lake) -> None:
    lake.put_raw("no_time.csv", b"user_id,track_id\n1,t1\n")
    assert cli("run", "--lake", str(lake.root)).returncode == EXIT_REJECTED
    assert cli("run", "--lake", str(lake.root)).returncode == 0
