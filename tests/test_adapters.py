"""Ledger claims and locks, the serving store's whole-day replace, local storage."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from music_etl.adapters.faults import Faulty, InjectedFault
from music_etl.adapters.ledger.base import CLAIMED, DONE, FAILED, new_owner
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.adapters.storage.local import LocalStorage
from music_etl.errors import ClaimLost, StorageError


@pytest.fixture
def ledger(tmp_path: Path) -> SQLiteLedger:
    return SQLiteLedger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def test_claim_is_exclusive_while_the_owner_lives(ledger: SQLiteLedger) -> None:
    assert ledger.claim("raw/streams/a.csv", "h1", new_owner(), 60)
    assert not ledger.claim("raw/streams/a.csv", "h1", new_owner(), 60)


def test_done_file_is_claimable_only_with_new_content(ledger: SQLiteLedger) -> None:
    owner = new_owner()
    ledger.claim("k", "h1", owner, 60)
    record = ledger.get("k")
    assert record is not None
    ledger.save(replace(record, status=DONE))
    assert not ledger.claim("k", "h1", new_owner(), 60)
    assert ledger.claim("k", "h2", new_owner(), 60)


def test_failed_file_is_retried_only_when_retryable(ledger: SQLiteLedger) -> None:
    owner = new_owner()
    ledger.claim("k", "h1", owner, 60)
    record = ledger.get("k")
    assert record is not None
    ledger.save(replace(record, status=FAILED, error="missing_column"))
    assert not ledger.claim("k", "h1", new_owner(), 60)
    other = new_owner()
    ledger.claim("k2", "h", other, 60)
    second = ledger.get("k2")
    assert second is not None
    ledger.save(replace(second, status=FAILED, retryable=True))
    assert ledger.claim("k2", "h", new_owner(), 60)


def test_expired_lease_or_dead_owner_frees_a_claim(ledger: SQLiteLedger) -> None:
    assert ledger.claim("k", "h", "other-host:1:x", -1)
    assert ledger.claim("k", "h", new_owner(), 60)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    owner_of_dead = new_owner().split(":")[0] + f":{dead}:gone"
    assert ledger.claim("k3", "h", owner_of_dead, 600)
    assert ledger.claim("k3", "h", new_owner(), 60)


def test_save_after_losing_the_claim_is_refused(ledger: SQLiteLedger) -> None:
    first = new_owner()
    ledger.claim("k", "h", "other-host:1:x", -1)
    ledger.claim("k", "h", first, 60)
    record = ledger.get("k")
    assert record is not None and record.status == CLAIMED
    with pytest.raises(ClaimLost):
        ledger.save(replace(record, owner="someone-else"))


def test_lock_is_exclusive_and_reentrant(ledger: SQLiteLedger) -> None:
    one, two = new_owner(), new_owner()
    assert ledger.acquire_lock("lake", one, 60)
    assert ledger.acquire_lock("lake", one, 60)
    assert not ledger.acquire_lock("lake", two, 60)
    ledger.release_lock("lake", one)
    assert ledger.acquire_lock("lake", two, 60)


def test_serving_replace_days_removes_rows_that_vanished(tmp_path: Path) -> None:
    store = SQLiteServingStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    kpi = {
        "listen_count": 1,
        "unique_listeners": 1,
        "total_listening_time": 5,
        "avg_listening_time": 5.0,
    }
    store.replace_days(
        ["2024-01-01", "2024-01-02"],
        {
            "DailyGenreKPIs": [
                {"date": "2024-01-01", "genre": "pop", **kpi},
                {"date": "2024-01-01", "genre": "rock", **kpi},
                {"date": "2024-01-02", "genre": "pop", **kpi},
            ]
        },
    )
    store.replace_days(
        ["2024-01-01"], {"DailyGenreKPIs": [{"date": "2024-01-01", "genre": "jazz", **kpi}]}
    )
    rows = store.scan("DailyGenreKPIs")
    assert [(r["date"], r["genre"]) for r in rows] == [
        ("2024-01-01", "jazz"),
        ("2024-01-02", "pop"),
    ]


def test_serving_load_is_atomic(tmp_path: Path) -> None:
    store = SQLiteServingStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    good = {"date": "2024-01-01", "rank": 1, "genre": "pop", "listen_count": 3}
    store.replace_days(["2024-01-01"], {"TopGenresPerDay": [good]})
    broken = {"date": "2024-01-01", "rank": 1, "genre": None, "listen_count": 3}
    with pytest.raises(Exception, match="NOT NULL"):
        store.replace_days(["2024-01-01"], {"TopGenresPerDay": [broken]})
    assert store.scan("TopGenresPerDay") == [good]


def test_local_storage_is_atomic_and_confined(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write_bytes("a/b.txt", b"one")
    with pytest.raises(RuntimeError), storage.writer("a/b.txt") as path:
        path.write_bytes(b"half")
        raise RuntimeError
    assert storage.read_bytes("a/b.txt") == b"one"
    assert [i.key for i in storage.list("a/")] == ["a/b.txt"]
    with pytest.raises(StorageError):
        storage.path("../escape")


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
