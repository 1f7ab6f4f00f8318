"""Everything a run leaves behind, in a form two engines' lakes can be compared by.

Every Parquet file of the derived prefixes (validated rows and dimension snapshots,
bad records, processed tables) by key, with its schema and its rows sorted; the
ledger's file records without owners and times; the serving store; and where the
raw files are now (landing zone or archive).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.logic import layout
from music_etl.logic.serving_model import SERVING_KEYS
from music_etl.pipeline.run import RunReport
from music_etl.settings import Settings

DERIVED = ("validated", "bad-records", "processed")


@dataclass(frozen=True)
class ParquetFile:
    schema: list[tuple[str, str, str, int]]
    """Parquet columns: name, physical type, logical type, definition level (optional)."""
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Snapshot:
    """What one step of a scenario produced."""

    report: list[tuple[Any, ...]]
    files: dict[str, ParquetFile] = field(repr=False)
    ledger: list[tuple[Any, ...]]
    serving: dict[str, list[dict[str, Any]]]
    raw: list[str]


def _sort_key(row: dict[str, Any]) -> str:
    return json.dumps(row, default=repr, sort_keys=True)


def read_parquet(path: Path) -> ParquetFile:
    parquet = pq.ParquetFile(path)
    schema = [
        (c.name, c.physical_type, str(c.logical_type), c.max_definition_level)
        for c in parquet.schema
    ]
    rows = parquet.read().to_pylist()
    return ParquetFile(schema=schema, rows=sorted(rows, key=_sort_key))


def parquet_files(root: Path) -> dict[str, ParquetFile]:
    found = {}
    for prefix in DERIVED:
        for path in sorted((root / prefix).rglob("*.parquet")):
            found[path.relative_to(root).as_posix()] = read_parquet(path)
    return found


def ledger_rows(settings: Settings) -> list[tuple[Any, ...]]:
    ledger = SQLiteLedger(settings.ledger_url)
    try:
        return sorted(
            (
                r.file_key,
                r.content_hash,
                r.status,
                r.processed_at,
                r.rows_in,
                r.rows_valid,
                r.rows_bad,
                r.bad_by_reason,
                r.days,
                r.error,
                r.retryable,
            )
            for r in ledger.records()
        )
    finally:
        ledger.close()


def serving_items(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    store = SQLiteServingStore(settings.serving_url)
    try:
        return {table: store.scan(table) for table in SERVING_KEYS}
    finally:
        store.close()


def report_rows(report: RunReport) -> list[tuple[Any, ...]]:
    return [
        (f.key, f.status, f.error, f.rows_in, f.rows_valid, f.bad_by_reason, f.days)
        for f in report.files
    ] + [("days", report.days)]


def snapshot(root: Path, settings: Settings, report: RunReport) -> Snapshot:
    raw = sorted(
        p.relative_to(root).as_posix()
        for prefix in ("raw/streams", "archive/streams")
        for p in (root / prefix).rglob("*")
        if p.is_file()
    )
    return Snapshot(
        report=report_rows(report),
        files=parquet_files(root),
        ledger=ledger_rows(settings),
        serving=serving_items(settings),
        raw=raw,
    )


def assert_same(got: Snapshot, want: Snapshot) -> None:
    """Equal in every part, with a message that names the first file that differs."""
    assert got.report == want.report
    assert sorted(got.files) == sorted(want.files), "the same Parquet keys"
    for key, expected in want.files.items():
        actual = got.files[key]
        assert actual.schema == expected.schema, key
        assert actual.rows == expected.rows, key
    assert got.ledger == want.ledger
    assert got.serving == want.serving
    assert got.raw == want.raw


def state_diff(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Readable differences between two states of named parts (empty when equal).

    A part that is a dict is compared key by key, so the message names the key.
    """
    diffs = []
    for part in sorted(expected.keys() | actual.keys()):
        got, want = actual.get(part), expected.get(part)
        if got == want:
            continue
        if isinstance(got, dict) and isinstance(want, dict):
            for key in sorted(got.keys() | want.keys()):
                if key not in got:
                    diffs.append(f"{part}: missing {key}")
                elif key not in want:
                    diffs.append(f"{part}: unexpected {key}")
                elif got[key] != want[key]:
                    diffs.append(
                        f"{part}: {key} differs: {_short(got[key])} != {_short(want[key])}"
                    )
        else:
            diffs.append(f"{part}: {_short(got)} != {_short(want)}")
    return diffs


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > 4:
        return f"[{len(value)} items]"
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "…"


def archive_parts(storage: Any) -> dict[str, dict[str, str]]:
    """The archive as state parts: latest versions, and the history `rebuild` replays."""
    return {
        "archive": {
            i.key: storage.content_hash(i.key) for i in storage.list(layout.ARCHIVE_STREAMS)
        },
        "history": {
            i.key: storage.content_hash(i.key)
            for prefix in (layout.ARCHIVE_VERSIONS, layout.ARCHIVE_MANIFEST)
            for i in storage.list(prefix)
        },
    }
