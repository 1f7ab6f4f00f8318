"""What the Glue load job reads: the output tables in `processed/`, in either layout.

- **partitioned** (what our transform writes): `processed/<table>/date=D/part-0.parquet`,
  one file per day; the day comes from the folder.
- **non-partitioned** (what other tools write): Parquet files directly in
  `processed/<table>/`, each holding any number of days in a `date` column.

The load replaces the days the transform handed on (`loadable_days.json`) and every day
of a non-partitioned file that is new or changed since the last load (or gone: its days
are reloaded without it). Loaded files are remembered by fingerprint in
`_state/glue/loaded_files.json`. For a day and table that has a `date=D/` partition, the
partition is the day's data; otherwise the non-partitioned files' rows of that day are.

Example:
    >>> flat = FlatInputs.read(storage)  # doctest: +SKIP
    >>> flat.changed_days()  # doctest: +SKIP
    {'2024-06-01', '2024-06-02'}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from music_etl.adapters.storage.base import Storage
from music_etl.logic import layout
from music_etl.logic.contract import OUTPUT_TABLES
from music_etl.logic.serving_model import DayResults

LOADED_FILES = "_state/glue/loaded_files.json"
"""Non-partitioned files already loaded: key -> fingerprint and days."""


@dataclass(frozen=True, kw_only=True)
class FlatInputs:
    """The non-partitioned Parquet files of every output table, read once."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Table -> every row of its non-partitioned files, `date` as `YYYY-MM-DD`."""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Key -> {"fingerprint": …, "days": […]} of every file found."""
    loaded: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The same, as recorded by the last load."""
    undated: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    """Key -> (table, row) of the rows without a date: loaded (and skipped, flagged) when
    their file is new or changed, so they are never dropped silently."""

    @classmethod
    def read(cls, storage: Storage) -> FlatInputs:
        """Read every non-partitioned file and what the last load recorded."""
        rows: dict[str, list[dict[str, Any]]] = {}
        files: dict[str, dict[str, Any]] = {}
        undated: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for table in OUTPUT_TABLES:
            rows[table] = []
            for key in flat_keys(storage, table):
                found = _read_rows(storage, key)
                rows[table] += [row for row in found if row["date"]]
                undated[key] = [(table, row) for row in found if not row["date"]]
                days = sorted({row["date"] for row in found if row["date"]})
                files[key] = {"fingerprint": storage.fingerprint(key), "days": days}
        known = storage.exists(LOADED_FILES)
        loaded = json.loads(storage.read_bytes(LOADED_FILES)) if known else {}
        return cls(rows=rows, files=files, loaded=loaded, undated=undated)

    def changed(self) -> list[str]:
        """The files new or changed since the last load."""
        return [
            key
            for key, now in self.files.items()
            if self.loaded.get(key, {}).get("fingerprint") != now["fingerprint"]
        ]

    def changed_days(self) -> set[str]:
        """Days of files new or changed since the last load, and of files gone since."""
        days: set[str] = set()
        for key in self.changed():
            days |= set(self.files[key]["days"]) | set(self.loaded.get(key, {}).get("days", []))
        for key, before in self.loaded.items():
            if key not in self.files:
                days |= set(before["days"])
        return days

    def record(self, storage: Storage) -> None:
        """Remember the files as loaded (after the serving store took their days)."""
        if self.files or self.loaded:
            storage.write_bytes(LOADED_FILES, json.dumps(self.files, sort_keys=True).encode())


def flat_keys(storage: Storage, table: str) -> list[str]:
    """The Parquet files directly in `processed/<table>/` (not in a `date=` folder)."""
    prefix = f"{layout.PROCESSED}{table}/"
    keys = (info.key for info in storage.list(prefix))
    return sorted(k for k in keys if "/" not in k[len(prefix) :] and k.endswith(".parquet"))


def read_day_results(storage: Storage, days: Iterable[str], flat: FlatInputs) -> DayResults:
    """The output tables of `days`: each day's partition where it exists, else the flat rows."""
    wanted = sorted(set(days))
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in OUTPUT_TABLES:
        rows: list[dict[str, Any]] = []
        for day in wanted:
            key = layout.processed_key(table, date.fromisoformat(day))
            if storage.exists(key):
                rows += [{**row, "date": day} for row in _parquet_rows(storage, key)]
            else:
                rows += [row for row in flat.rows.get(table, []) if row["date"] == day]
        tables[table] = rows
    for key in flat.changed():
        for table, row in flat.undated.get(key, []):
            tables[table].append(row)
    return DayResults(days=tuple(wanted), **tables)


def _read_rows(storage: Storage, key: str) -> list[dict[str, Any]]:
    """A non-partitioned file's rows with `date` as `YYYY-MM-DD` ('' when missing)."""
    return [{**row, "date": _iso_day(row.get("date"))} for row in _parquet_rows(storage, key)]


def _parquet_rows(storage: Storage, key: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    with storage.local_copy(key) as path:
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def _iso_day(value: Any) -> str:
    """`YYYY-MM-DD` for a date, a timestamp or a string; '' for a missing value."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)
