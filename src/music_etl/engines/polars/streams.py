"""Validating a batch of stream files on Polars and writing it per (source, day)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import Outcome, Source, StreamBatch
from music_etl.engines.outcomes import LINE, ORDER, REASON, outcome, too_many_bad
from music_etl.engines.polars.earlier import KEY_COLUMNS, EarlierRows
from music_etl.engines.polars.io import read_parquet, write_all
from music_etl.engines.polars.rules import RuleContext, present_in
from music_etl.engines.polars.validate import (
    Judged,
    bad_rows,
    counts_by_file,
    drop_files,
    judge_occurrences,
    judge_rows,
    valid_rows,
    without_raw,
)
from music_etl.logic import layout
from music_etl.logic.checks import exceeds_threshold
from music_etl.logic.contract import SONGS, STREAMS, USERS, DatasetContract
from music_etl.logic.rules import FirstOccurrence


@dataclass(frozen=True, kw_only=True)
class Written:
    """A validated batch: one outcome per file order and the valid rows now in the lake."""

    outcomes: dict[int, Outcome]
    valid: dict[date, list[pl.DataFrame]]
    """`user_id, track_id, listen_time` of every row written, by listen date."""
    sids: frozenset[str]
    """Sources whose valid-row files are exactly `valid` (files that loaded)."""
    earlier: EarlierRows | None
    """Rows of every other source, when exactly `sids` were excluded from it."""


def validate_batch(storage: Storage, batch: StreamBatch, raws: list[pl.DataFrame]) -> Written:
    """Judge the batch's rows, write valid rows per (source, day) and bad rows per reason.

    Empties `raws` (the files' raw rows), so their memory goes as soon as it can.
    """
    raw = pl.concat(raws, how="diagonal")
    raws.clear()
    judged = judge_rows(raw, STREAMS, stream_context(storage, batch))
    del raw  # the judged frame keeps the raw values it needs for bad records
    earlier = EarlierRows(storage, exclude={source.sid for source in batch.sources})
    frame, failed = _judge_with_threshold(judged, batch, earlier)
    del judged
    counts = counts_by_file(frame)
    # Bad records first (rejected files' too): then the raw values, kept for them alone, can go.
    write_bad(storage, STREAMS, batch.sources, bad_rows(frame, STREAMS), rejected=failed)
    loaded = without_raw(frame.filter(~pl.col(ORDER).is_in(failed)) if failed else frame)
    del frame
    valid = valid_rows(loaded, STREAMS)
    del loaded
    files = _by_file(valid.with_columns(pl.col("listen_time").dt.date().alias("listen_date")))
    del valid
    by_day = _write_valid(storage, batch.sources, files)
    days = _days_by_file(by_day)
    outcomes = {
        order: outcome(source, counts.get(order, {}), days.get(order, ()))
        for order, source in enumerate(batch.sources)
    }
    for order in failed:
        outcomes[order] = too_many_bad(outcomes[order], batch.threshold)
    sids = frozenset(s.sid for o, s in enumerate(batch.sources) if o not in failed)
    return Written(
        outcomes=outcomes,
        valid={day: [part for _, part in parts] for day, parts in by_day.items()},
        sids=sids,
        earlier=earlier if sids == earlier.exclude else None,
    )


def stream_context(storage: Storage, batch: StreamBatch) -> RuleContext:
    """The valid song and user keys, and the batch's clock."""
    references = {}
    for contract, column in ((SONGS, "track_id"), (USERS, "user_id")):
        key = layout.validated_dimension_key(contract.name)
        references[contract.name] = read_parquet(storage, [key], [column]).unique()
    return RuleContext(references=references, clock=batch.clock)


def write_bad(
    storage: Storage,
    contract: DatasetContract,
    sources: Sequence[Source],
    bad: pl.DataFrame,
    rejected: Collection[int] = (),
) -> None:
    """One file per (source, reason) with the raw values, reason and line.

    Sources whose order is in `rejected` (over the bad-row threshold) get their own
    keys, apart from the bad records of an earlier, loaded version of the same key.
    """
    parts = []
    for (order, reason), part in bad.partition_by(ORDER, REASON, as_dict=True).items():
        source = sources[order]
        key_of = layout.rejected_bad_records_key if order in rejected else layout.bad_records_key
        rows = part.select(
            *contract.columns,
            REASON,
            pl.lit(source.original_key).alias("source_file"),
            pl.col(LINE).alias("source_line"),
        )
        parts.append((key_of(contract.name, str(reason), source.sid), rows))
    write_all(storage, parts)


def _judge_with_threshold(
    judged: Judged, batch: StreamBatch, earlier: EarlierRows
) -> tuple[pl.DataFrame, list[int]]:
    """First-occurrence rules, with files over the bad-row threshold dropping out.

    Only the earliest file newly over the threshold drops out per pass: its rows
    must not count as already seen by later files, which are then judged again.
    """
    failed: list[int] = []
    rejected: list[pl.DataFrame] = []
    while True:
        kept = drop_files(judged, failed)
        frame = _judge_against_lake(kept, earlier)
        over = _over_threshold(frame, batch.threshold)
        if not over:
            return (
                pl.concat([frame, *rejected], how="diagonal_relaxed") if rejected else frame
            ), failed
        failed.append(over[0])
        rejected.append(frame.filter(pl.col(ORDER) == over[0]))


def _judge_against_lake(judged: Judged, earlier: EarlierRows) -> pl.DataFrame:
    """Duplicates within the batch and against rows other files put on the same days."""
    valid = judged.frame.lazy().filter(pl.col(REASON).is_null())
    listen_days = valid.select(pl.col("listen_time").dt.date().unique()).collect().to_series()

    def elsewhere(rule: FirstOccurrence) -> pl.DataFrame:
        key = list(rule.key)
        hits = [
            present_in(valid.filter(pl.col("listen_time").dt.date().is_in(days)), rows, key)
            .select(ORDER, LINE)
            .collect()
            for days, rows in earlier.chunks(listen_days)
            if not rows.is_empty()
        ]
        return pl.concat(hits) if hits else pl.DataFrame(schema={ORDER: pl.Int32, LINE: pl.Int64})

    return judge_occurrences(judged, elsewhere)


def _over_threshold(frame: pl.DataFrame, threshold: float) -> list[int]:
    failed = []
    for order, counts in counts_by_file(frame).items():
        total = sum(counts.values())
        if exceeds_threshold(total, total - counts.get("", 0), threshold):
            failed.append(order)
    return sorted(failed)


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


def _days_by_file(by_day: dict[date, list[tuple[int, pl.DataFrame]]]) -> dict[int, tuple[str, ...]]:
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
