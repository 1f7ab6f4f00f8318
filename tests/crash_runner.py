"""Run the pipeline on a lake and die (as `kill -9` would) at a named point.

Usage: python tests/crash_runner.py LAKE_DIR NOW POINT [BATCH_BYTES|-] [ENGINE]

POINT is one of `POINTS` (or `none`: a normal run, exit 0); ENGINE is `polars` (the
default) or `spark`. A crash exits with 137
through `os._exit`, so no `finally`, no rollback and no lock release runs.

The module also holds the helpers the crash and concurrency tests share: a
deterministic stream generator and a snapshot of a lake's whole derived state.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lake_snapshot import archive_parts
from music_etl.adapters.faults import CRASH_EXIT_CODE, Faulty
from music_etl.adapters.ledger.base import DONE
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.adapters.storage.local import LocalStorage
from music_etl.engines.registry import make_engine
from music_etl.logic import layout
from music_etl.logic.serving_model import SERVING_KEYS
from music_etl.pipeline.components import Components, open_components
from music_etl.pipeline.progress import Silent
from music_etl.pipeline.run import run_with
from music_etl.settings import Settings, load_settings

# --------------------------------------------------------------------------- crash points


def _die() -> None:
    os._exit(CRASH_EXIT_CODE)


def _faulty_storage(c: Components, **how: Any) -> Components:
    """Storage that crashes; the engine must hold the same wrapper."""
    storage = Faulty(c.storage, crash=True, **how)
    return replace(c, storage=storage, engine=make_engine(c.settings.engine, storage))


def _faulty_serving(c: Components, **how: Any) -> Components:
    return replace(c, serving=Faulty(c.serving, crash=True, **how))


class _CrashWhen:
    """Delegates to `inner`; dies on the first call of `method` whose args satisfy `when`."""

    def __init__(self, inner: Any, method: str, when: Callable[..., bool]) -> None:
        self._inner = inner
        self._method = method
        self._when = when

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self._when(*args, **kwargs):
                _die()
            return attr(*args, **kwargs)

        return wrapped


class _CommitKiller:
    """A SQLite connection that dies at the first COMMIT after a DELETE."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._deleted = False

    def executemany(self, sql: str, rows: Any) -> Any:
        result = self._conn.executemany(sql, rows)
        self._deleted = self._deleted or sql.startswith("DELETE")
        return result

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and self._deleted:
            _die()
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _die_at_serving_commit(c: Components) -> Components:
    """Kill the process inside `replace_days`: DELETEs and INSERTs ran, COMMIT did not.

    Wraps the connection of `SQLiteServingStore` (its private `_conn`).
    """
    c.serving._conn = _CommitKiller(c.serving._conn)  # type: ignore[attr-defined]
    return c


def _die_before_done(c: Components) -> Components:
    """Kill the process when the first file is about to be marked done (results loaded)."""
    ledger = _CrashWhen(c.ledger, "save", lambda record, *_: record.status == DONE)
    return replace(c, ledger=ledger)


STREAMS = layout.VALIDATED_STREAMS
POINTS: dict[str, Callable[[Components], Components]] = {
    # claims taken, nothing written yet
    "after_claim": lambda c: _faulty_storage(c, method="writer", nth=1, prefix=STREAMS),
    # two day files written, the rest not
    "mid_validation_write": lambda c: _faulty_storage(c, method="writer", nth=3, prefix=STREAMS),
    # a replaced file's days that it no longer has are being deleted
    "mid_settle_delete": lambda c: _faulty_storage(c, method="delete", nth=1, prefix=STREAMS),
    # some processed/ day files rewritten, others not
    "mid_processed_write": lambda c: _faulty_storage(
        c, method="writer", nth=2, prefix=layout.PROCESSED
    ),
    # processed/ written, serving store not touched
    "after_processed_write": lambda c: _faulty_serving(c, method="replace_days", nth=1),
    # inside the serving transaction: after its DELETEs, before its COMMIT
    "mid_serving_load": _die_at_serving_commit,
    # one batch loaded, the next batch's load never starts (use BATCH_BYTES=1)
    "second_serving_load": lambda c: _faulty_serving(c, method="replace_days", nth=2),
    # serving loaded, no file marked done yet
    "before_done": _die_before_done,
    # first file marked done, not yet archived (= after_done_before_archive)
    "before_archive": lambda c: _faulty_storage(c, method="move", nth=1, prefix=layout.RAW_STREAMS),
    # first file archived, second marked done but not archived, others still claimed
    "mid_archive": lambda c: _faulty_storage(c, method="move", nth=2, prefix=layout.RAW_STREAMS),
    # Spark only: a write's files are in its temp folder, one moved to its key, the rest not
    "mid_spark_move": lambda c: _faulty_storage(c, method="move", nth=2, prefix="_tmp/spark/"),
}
POINTS["after_done_before_archive"] = POINTS["before_archive"]


def lake_settings(
    lake: str | Path, now: str, batch_bytes: int | None = None, engine: str = "polars"
) -> Settings:
    """Settings for `lake` with a fixed clock and no config file or environment."""
    return load_settings(
        lake=str(lake),
        now=now,
        batch_bytes=batch_bytes,
        engine=engine,
        env={},
        config=Path(lake) / "no-config.toml",
    )


def close(components: Components) -> None:
    """Close the SQLite connections of `components`."""
    for adapter in (components.ledger, components.serving):
        closer = getattr(adapter, "close", None)
        if closer is not None:
            closer()


def main(argv: Sequence[str]) -> int:
    """Run with the fault POINT injected; only `none` returns."""
    lake, now, point = argv[:3]
    batch_bytes = int(argv[3]) if len(argv) > 3 and argv[3] != "-" else None
    engine = argv[4] if len(argv) > 4 else "polars"
    components = open_components(lake_settings(lake, now, batch_bytes, engine))
    if point != "none":
        components = POINTS[point](components)
    run_with(components, Silent())
    close(components)
    if point != "none":
        print(f"crash point {point} was never reached", file=sys.stderr)
        return 3
    return 0


# --------------------------------------------------------------------------- shared helpers

STREAM_HEADER = ("user_id", "track_id", "listen_time")
TRACKS = ("t1", "t2", "t3", "t4")
USERS = tuple(range(1, 21))
#: One row per row-level reason but `duplicate_event` (made by repeating rows).
BAD_ROWS = (
    ("abc", "t1", "2024-06-25 10:00:00"),  # bad_user_id
    ("5", "t9", "2024-06-25 10:00:00"),  # unknown_track
    ("99", "t1", "2024-06-25 10:00:00"),  # unknown_user
    ("5", "", "2024-06-25 10:00:00"),  # null_field
    ("5", "t1", "2024-07-09 10:00:00"),  # future_timestamp
    ("5", "t1", "2024-06-31 10:00:00"),  # bad_timestamp
)


def csv_bytes(rows: Iterable[Sequence[object]]) -> bytes:
    """A stream CSV with the standard header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(STREAM_HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def events(seed: int, rows: int, days: Sequence[str]) -> list[tuple[object, ...]]:
    """`rows` valid listens spread over `days` (ISO dates), same seed same rows."""
    rng = random.Random(seed)
    made = []
    for _ in range(rows):
        day = datetime.fromisoformat(rng.choice(days))
        at = day + timedelta(seconds=rng.randrange(86_400))
        text = at.strftime("%Y-%m-%dT%H:%M:%SZ" if rng.random() < 0.3 else "%Y-%m-%d %H:%M:%S")
        made.append((rng.choice(USERS), rng.choice(TRACKS), text))
    return made


def stream_file(
    seed: int,
    rows: int,
    days: Sequence[str],
    *,
    bad: Sequence[int] = (0, 1, 2, 3, 4, 5),
    repeat: Sequence[tuple[object, ...]] = (),
) -> list[tuple[object, ...]]:
    """Valid rows, the chosen `BAD_ROWS`, three in-file duplicates and `repeat`ed rows."""
    made = events(seed, rows, days)
    made += [BAD_ROWS[i] for i in bad]
    made += made[:3]
    made += list(repeat)
    random.Random(seed + 1).shuffle(made)
    return made


def write_streams(lake: Path, name: str, rows: Iterable[Sequence[object]]) -> str:
    """Write raw/streams/<name>; return its key."""
    key = layout.RAW_STREAMS + name
    LocalStorage(lake).write_bytes(key, csv_bytes(rows))
    return key


def _sorted_rows(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, default=str, sort_keys=True) for row in rows)


def derived_state(lake: Path, *, with_times: bool = False) -> dict[str, Any]:
    """Everything a run derives, in a form that compares equal for equal content.

    Parquet files are compared by their sorted rows; the ledger by what a record says
    about its file (not when or by whom it was written, unless `with_times`).
    """
    import pyarrow.parquet as pq

    storage = LocalStorage(lake)
    settings = lake_settings(lake, "2024-07-01T00:00:00Z")
    files: dict[str, Any] = {}
    for prefix in layout.DERIVED_PREFIXES:
        for info in storage.list(prefix):
            path = storage.path(info.key)
            if info.key.endswith(".parquet"):
                files[info.key] = _sorted_rows(pq.read_table(path).to_pylist())
            else:
                files[info.key] = path.read_bytes().decode()
    serving = SQLiteServingStore(settings.serving_url)
    ledger = SQLiteLedger(settings.ledger_url)
    try:
        tables = {name: serving.scan(name) for name in SERVING_KEYS}
        records = {}
        for r in ledger.records():
            fields = {
                "content_hash": r.content_hash,
                "status": r.status,
                "processed_at": r.processed_at,
                "rows_in": r.rows_in,
                "rows_valid": r.rows_valid,
                "rows_bad": r.rows_bad,
                "bad_by_reason": r.bad_by_reason,
                "days": r.days,
                "error": r.error,
                "retryable": r.retryable,
            }
            if with_times:
                fields |= {"timestamp": r.timestamp, "owner": r.owner}
            records[r.file_key] = fields
    finally:
        serving.close()
        ledger.close()
    state = {
        "files": files,
        **archive_parts(storage),
        "raw_streams": [i.key for i in storage.list(layout.RAW_STREAMS)],
        "serving": tables,
        "ledger": records,
    }
    if with_times:
        state["mtimes"] = {
            i.key: storage.path(i.key).stat().st_mtime_ns
            for prefix in layout.DERIVED_PREFIXES
            for i in storage.list(prefix)
        }
    return state


def temp_files(lake: Path) -> list[str]:
    """Leftover temp files of interrupted writes (invisible to `Storage.list`)."""
    return sorted(p.relative_to(lake).as_posix() for p in lake.rglob(".music-etl-tmp-*"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
