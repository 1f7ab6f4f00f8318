"""`PolarsEngine`: the embedded default, chosen by measurement (docs/engine-choice.md).

It runs the procedure of `engines.procedure` and supplies its primitives as Polars
frames: `StreamPrimitives[pl.DataFrame, EarlierRows]` and `DayPrimitives`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any

import polars as pl

from music_etl.adapters.storage.base import Storage
from music_etl.engines import procedure
from music_etl.engines.base import Outcome, Source, StreamBatch
from music_etl.engines.outcomes import LINE, ORDER, OUTPUTS
from music_etl.engines.polars import transform
from music_etl.engines.polars.earlier import EarlierRows
from music_etl.engines.polars.io import (
    local_paths,
    read_parquet,
    read_raw,
    write_all,
    write_parquet,
)
from music_etl.engines.polars.rules import RuleContext, apply_first_occurrence
from music_etl.engines.polars.streams import (
    Written,
    days_by_file,
    elsewhere,
    valid_by_day,
    write_bad,
)
from music_etl.engines.polars.validate import (
    bad_rows,
    counts_by_file,
    drop_files,
    judge_rows,
    valid_rows,
)
from music_etl.logic import layout
from music_etl.logic.contract import SONGS, DatasetContract
from music_etl.logic.rules import FirstOccurrence
from music_etl.logic.serving_model import DayResults


@dataclass(frozen=True, kw_only=True)
class DayRows:
    """A chunk of days' valid rows (grouped by date) and the songs they join."""

    streams: pl.LazyFrame
    songs: pl.DataFrame


class PolarsEngine:
    """Runs the contract with Polars on this machine, reading and writing through `storage`.

    The valid rows of the last validated batch stay in memory until the next
    `compute_days`, which uses them instead of reading back the files it just wrote.
    """

    name = "polars"

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._fresh: Written | None = None

    # ------------------------------------------------------------------ the engine

    def validate_dimension(
        self, contract: DatasetContract, source: Source, snapshot: str
    ) -> Outcome:
        """Validate `users.csv` or `songs.csv` into the Parquet snapshot at `snapshot`."""
        return procedure.validate_dimension(self, contract, source, snapshot)

    def validate_streams(self, batch: StreamBatch) -> list[Outcome]:
        """Validate the batch's files together; write every day file and bad record."""
        self._fresh = None
        return procedure.validate_streams(self, batch)

    def compute_days(self, days: Sequence[date]) -> DayResults:
        """Recompute the output tables of `days` from all their valid rows, chunk by chunk."""
        return procedure.compute_days(self, days)

    # ------------------------------------------------------------------ stream primitives

    def read_raw(self, source: Source, contract: DatasetContract, order: int) -> pl.DataFrame:
        """The raw CSV's columns as strings (`FileRejected` when unusable)."""
        with local_paths(self.storage, [source.key]) as (path,):
            return read_raw(path, contract, order)

    def judge_rows(
        self, raws: list[pl.DataFrame], contract: DatasetContract, clock: datetime | None
    ) -> pl.DataFrame:
        """The files' rows together, judged by the row rules; empties `raws`."""
        raw = raws[0] if len(raws) == 1 else pl.concat(raws, how="diagonal")
        raws.clear()
        return judge_rows(
            raw, contract, RuleContext(references=self._references(contract), clock=clock)
        )

    def kept(self, frame: pl.DataFrame) -> AbstractContextManager[pl.DataFrame]:
        """`frame` itself: Polars frames are in memory already."""
        return _Passing(frame)

    def seen_elsewhere(self, judged: pl.DataFrame, exclude: Collection[str]) -> EarlierRows:
        """The other sources' rows, read day chunk by day chunk as first needed."""
        return EarlierRows(self.storage, exclude=exclude)

    def without_files(self, frame: pl.DataFrame, orders: Sequence[int]) -> pl.DataFrame:
        """`frame` without the rows of the files at `orders`."""
        return drop_files(frame, orders)

    def first_occurrence(
        self, frame: pl.DataFrame, rule: FirstOccurrence, seen: EarlierRows | None
    ) -> pl.DataFrame:
        """Later repeats of `rule.key`, and keys `seen` holds, fail `rule`."""
        hits = elsewhere(frame, rule, seen) if seen is not None else None
        return apply_first_occurrence(frame, rule, hits)

    def counts_by_file(self, frame: pl.DataFrame) -> dict[int, dict[str, int]]:
        """Rows per reason of each file order."""
        return counts_by_file(frame)

    def write_bad(
        self,
        contract: DatasetContract,
        sources: Sequence[Source],
        frame: pl.DataFrame,
        *,
        rejected: bool,
    ) -> None:
        """One Parquet file per (source, reason), written in parallel."""
        write_bad(self.storage, contract, sources, bad_rows(frame, contract), rejected=rejected)

    def write_valid(
        self,
        sources: Sequence[Source],
        frames: list[pl.DataFrame],
        seen: EarlierRows,
        failed: Collection[int],
    ) -> dict[int, tuple[str, ...]]:
        """One Parquet file per (source, day); the rows stay in memory for `compute_days`."""
        by_day = valid_by_day(self.storage, sources, frames)
        sids = frozenset(s.sid for o, s in enumerate(sources) if o not in failed)
        self._fresh = Written(
            valid={day: [part for _, part in parts] for day, parts in by_day.items()},
            sids=sids,
            earlier=seen if sids == seen.exclude else None,
        )
        return days_by_file(by_day)

    def write_snapshot(
        self, contract: DatasetContract, frame: pl.DataFrame, key: str, *, empty: bool
    ) -> None:
        """The dimension's valid rows as one Parquet file."""
        write_parquet(self.storage, key, valid_rows(frame, contract).drop(LINE, ORDER))

    def _references(self, contract: DatasetContract) -> dict[str, pl.DataFrame]:
        """The distinct keys each `InReference` rule looks up."""
        return {
            rule.reference: read_parquet(
                self.storage, [layout.validated_dimension_key(rule.reference)], [rule.column]
            ).unique()
            for rule in procedure.reference_rules(contract)
        }

    # ------------------------------------------------------------------ day primitives

    def day_inputs(self, days: Sequence[date]) -> Iterator[tuple[Sequence[date], DayRows]]:
        """Chunks of days: rows other batches wrote (read or cached) and this batch's."""
        fresh, self._fresh = self._fresh, None
        earlier = fresh.earlier if fresh else None
        if earlier is None:
            earlier = EarlierRows(self.storage, fresh.sids if fresh else ())
        songs = read_parquet(self.storage, [layout.validated_dimension_key(SONGS.name)])
        for chunk_days, others in earlier.chunks(days):
            # Rows grouped by date: the aggregations run twice as fast as on file order.
            parts = [others]
            if fresh is not None:
                parts += [part for day in chunk_days for part in fresh.valid.get(day, ())]
            yield chunk_days, DayRows(streams=pl.concat(parts).lazy(), songs=songs)

    def day_tables(self, rows: DayRows) -> dict[str, pl.DataFrame]:
        """KPIs and rankings of the chunk's rows."""
        return transform.tables(rows.streams, rows.songs)

    def write_tables(self, days: Sequence[date], tables: Mapping[str, pl.DataFrame]) -> None:
        """One file per (table, day); a day without rows loses its old file."""
        parts = []
        for name in OUTPUTS:
            table = tables.get(name)
            split = {} if table is None else table.partition_by("date", as_dict=True)
            for day in days:
                part = split.get((day,))
                key = layout.processed_key(name, day)
                if part is None or part.is_empty():
                    self.storage.delete(key)
                else:
                    parts.append((key, part.drop("date")))
        write_all(self.storage, parts)

    def served(self, table: pl.DataFrame) -> list[dict[str, Any]]:
        """Rows with the date as `YYYY-MM-DD`."""
        return table.with_columns(pl.col("date").dt.to_string("%Y-%m-%d")).to_dicts()


class _Passing(AbstractContextManager[pl.DataFrame]):
    """Hands a frame over on entry and keeps no reference to it."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame: pl.DataFrame | None = frame

    def __enter__(self) -> pl.DataFrame:
        frame, self._frame = self._frame, None
        assert frame is not None, "a frame is handed over once"
        return frame

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None
