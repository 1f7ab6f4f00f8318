"""SQLite-specific adapter behaviour and the failure-injection fake.

Behaviour every backend shares (claims, locks, whole-day replace, storage) is tested once,
over every backend, in `tests/conformance/`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from music_etl.adapters.faults import Faulty, InjectedFault
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.adapters.storage.local import LocalStorage


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
