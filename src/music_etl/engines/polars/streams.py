"""Validating a batch of stream files on Polars and writing it per (source, day)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import Source
from music_etl.engines.outcomes import LINE, ORDER, REASON
from music_etl.engines.polars.earlier import KEY_COLUMNS, EarlierRows
from music_etl.engines.polars.io import write_all
from music_etl.engines.polars.rules import present_in
from music_etl.engines.polars.validate import valid_rows, without_raw
from music_etl.logic import layout
from music_etl.logic.contract import STREAMS, DatasetContract
from music_etl.logic.rules import FirstOccurrence


@dataclass(frozen=True, kw_only=True)
class Written:
    """A validated batch: the valid rows now in the lake, kept for `compute_days`."""

    valid: dict[date, list[pl.DataFrame]]
    """`user_id, track_id, listen_time` of every row written, by listen date."""
    sids: frozenset[str]
    """Sources whose valid-row files are exactly `valid` (files that loaded)."""
    earlier: EarlierRows | None
    """Rows of every other source, when exactly `sids` were excluded from it."""


def write_bad(
    storage: Storage,
    contract: DatasetContract,
    sources: Sequence[Source],
    bad: pl.DataFrame,
    *,
    rejected: bool = False,
) -> None:
    """One file per (source, reason) with the raw values, reason and line.

    `rejected` sources (over the bad-row threshold) get their own keys, apart from
    the bad records of an earlier, loaded version of the same key.
    """
    key_of = layout.rejected_bad_records_key if rejected else layout.bad_records_key
    parts = []
    for (order, reason), part in bad.partition_by(ORDER, REASON, as_dict=True).items():
        source = sources[order]
        rows = part.select(
            *contract.columns,
            REASON,
            pl.lit(source.original_key).alias("source_file"),
            pl.col(LINE).alias("source_line"),
        )
        parts.append((key_of(contract.name, str(reason), source.sid), rows))
    write_all(storage, parts)


def elsewhere(frame: pl.DataFrame, rule: FirstOccurrence, earlier: EarlierRows) -> pl.DataFrame:
    """(`ORDER`, `LINE`) of the valid rows whose key other files put on the same days."""
    valid = frame.lazy().filter(pl.col(REASON).is_null())
    listen_days = valid.select(pl.col("listen_time").dt.date().unique()).collect().to_series()
    key = list(rule.key)
    hits = [
        present_in(valid.filter(pl.col("listen_time").dt.date().is_in(days)), rows, key)
        .select(ORDER, LINE)
        .collect()
        for days, rows in earlier.chunks(listen_days)
        if not rows.is_empty()
    ]
    return pl.concat(hits) if hits else pl.DataFrame(schema={ORDER: pl.Int32, LINE: pl.Int64})


def valid_by_day(
    storage: Storage, sources: Sequence[Source], frame: list[pl.DataFrame]
) -> dict[date, list[tuple[int, pl.DataFrame]]]:
    """Write the valid rows of the judged frame in `frame` (which it empties) per (source, day).

    The raw values go first, then each file's rows once split by day, so peak memory
    stays near the judged batch. Returns the key columns written, by day, then file order.
    """
    loaded = without_raw(frame.pop())
    valid = valid_rows(loaded, STREAMS)
    del loaded
    files = _by_file(valid.with_columns(pl.col("listen_time").dt.date().alias("listen_date")))
    del valid
    return _write_valid(storage, sources, files)


def _write_valid(
    storage: Storage, sources: Sequence[Source], files: list[tuple[int, pl.DataFrame]]
) -> dict[date, list[tuple[int, pl.DataFrame]]]:
    """One file per (source, listen date); rows keep their file and line order.

    Empties `files` (valid rows per file order) as it goes, so each file's rows are
    freed once split by day. Returns the key columns of the rows written, by listen
    date, then file order.
    """
    by_day: dict[date, list[tuple[int, pl.DataFrame]]] = {}
    files.reverse()
    while files:
        order, rows = files.pop()
        source = sources[order]
        parts = []
        for (day,), part in sorted(rows.partition_by("listen_date", as_dict=True).items()):
            written = part.select(
                *KEY_COLUMNS,
                pl.lit(source.original_key).alias("source_file"),
                pl.col(LINE).alias("source_line"),
            )
            parts.append((layout.validated_stream_key(day, source.sid), written))
            by_day.setdefault(day, []).append((order, written.select(KEY_COLUMNS)))
        write_all(storage, parts)
    return dict(sorted(by_day.items()))


def days_by_file(by_day: dict[date, list[tuple[int, pl.DataFrame]]]) -> dict[int, tuple[str, ...]]:
    """The listen dates each file order put rows on, in order."""
    days: dict[int, list[str]] = {}
    for day, parts in by_day.items():
        for order, _ in parts:
            days.setdefault(order, []).append(day.isoformat())
    return {order: tuple(sorted(names)) for order, names in days.items()}


def _by_file(rows: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
    """Zero-copy slices of `rows` per file order (rows are grouped by file already).

    The files were read separately, so no chunk of `rows` spans two files: a slice
    keeps only its own file's memory alive.
    """
    sizes = rows.group_by(ORDER, maintain_order=True).len()
    slices, offset = [], 0
    for order, size in sizes.iter_rows():
        slices.append((order, rows.slice(offset, size)))
        offset += size
    return slices
