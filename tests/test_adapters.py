"""SQLite-specific adapter behaviour and the failure-injection fake.

Behaviour every backend shares (claims, locks, whole-day replace, storage) is tested once,
over every backend, in `tests/conformance/`.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from music_etl.adapters.faults import Faulty, InjectedFault
from music_etl.adapters.ledger.base import FileStatus, RunRecord, RunStatus, new_owner
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.adapters.storage.local import LocalStorage

RUN = RunRecord(
    run_id="r1",
    started="2024-07-01T00:00:00+00:00",
    finished="2024-07-01T00:00:05+00:00",
    files=1,
    rows_in=3,
    rows_valid=2,
    rows_bad=1,
    days=1,
    status=RunStatus.FAILED,
)


def test_serving_load_is_atomic(tmp_path: Path) -> None:
    store = SQLiteServingStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    good = {"date": "2024-01-01", "rank": 1, "genre": "pop", "listen_count": 3}
    store.replace_days(["2024-01-01"], {"TopGenresPerDay": [good]})
    broken = {"date": "2024-01-01", "rank": 1, "genre": None, "listen_count": 3}
    with pytest.raises(Exception, match="NOT NULL"):
        store.replace_days(["2024-01-01"], {"TopGenresPerDay": [broken]})
    assert store.scan("TopGenresPerDay") == [good]


def test_faulty_fails_on_the_nth_matching_call(tmp_path: Path) -> None:
    storage = Faulty(LocalStorage(tmp_path), method="write_bytes", nth=2, prefix="x/")
    storage.write_bytes("x/1", b"")
    storage.write_bytes("y/1", b"")
    with pytest.raises(InjectedFault):
        storage.write_bytes("x/2", b"")
    storage.write_bytes("x/3", b"")


def _open_stores(root: str) -> None:
    SQLiteLedger(f"sqlite:///{root}/ledger.sqlite")
    SQLiteServingStore(f"sqlite:///{root}/serving.sqlite")


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    for attempt in range(4):
        root = tmp_path / str(attempt)
        processes = [context.Process(target=_open_stores, args=(str(root),)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [p.exitcode for p in processes] == [0, 0, 0, 0]


def test_statuses_are_stored_as_before_and_an_old_ledger_reads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = SQLiteLedger(f"sqlite:///{path}")
    ledger.claim("raw/streams/new.csv", "h", new_owner(), 60)
    ledger.add_run(RUN)
    with closing(sqlite3.connect(path)) as conn, conn:
        # What a ledger written before the enums holds: plain text, as the old code wrote it.
        conn.execute(
            "INSERT INTO ProcessedStreams (file_key, content_hash, status, owner, lease_until,"
            " timestamp, processed_at, rows_in, rows_valid, rows_bad, bad_by_reason, days,"
            " error, retryable, seq) VALUES ('raw/streams/old.csv', 'h0', 'done', 'o', 0,"
            " '2024-01-01T00:00:00Z', '', 3, 3, 0, '{}', '[\"2024-01-01\"]', '', 0, 0)"
        )
        stored = dict(conn.execute("SELECT file_key, status FROM ProcessedStreams").fetchall())
        runs = conn.execute("SELECT status, typeof(status) FROM Runs").fetchall()
    assert stored == {"raw/streams/new.csv": "claimed", "raw/streams/old.csv": "done"}
    assert runs == [("failed", "text")]
    old = ledger.get("raw/streams/old.csv")
    assert old is not None
    assert old.status is FileStatus.DONE
    assert old.days == ("2024-01-01",)
    assert [r.status for r in ledger.runs(5)] == [RunStatus.FAILED]
    ledger.close()
