"""`PolarsEngine`: the embedded default, chosen by measurement (docs/engine-choice.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import polars as pl

from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import Outcome, Source, StreamBatch
from music_etl.engines.outcomes import (
    LINE,
    ORDER,
    OUTPUTS,
    FileRejected,
    outcome,
    rejected,
)
from music_etl.engines.polars import transform
from music_etl.engines.polars.earlier import EarlierRows
from music_etl.engines.polars.io import (
    local_paths,
    read_parquet,
    read_raw,
    write_all,
    write_parquet,
)
from music_etl.engines.polars.rules import RuleContext
from music_etl.engines.polars.streams import (
    Written,
    validate_batch,
    write_bad,
)
from music_etl.engines.polars.validate import (
    bad_rows,
    counts_by_file,
    judge_occurrences,
    judge_rows,
    valid_rows,
)
from music_etl.logic import layout
from music_etl.logic.contract import SONGS, STREAMS, DatasetContract
from music_etl.logic.serving_model import DayResults


class PolarsEngine:
    """Runs the contract with Polars on this machine, reading and writing through `storage`.

    The valid rows of the last validated batch stay in memory until the next
    `compute_days`, which uses them instead of reading back the files it just wrote.
    """

    name = "polars"

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._fresh: Written | None = None

    def validate_dimension(
        self, contract: DatasetContract, source: Source, snapshot: str
    ) -> Outcome:
        """Validate `users.csv` or `songs.csv` into the Parquet snapshot at `snapshot`."""
        try:
            with local_paths(self.storage, [source.key]) as (path,):
                raw = read_raw(path, contract, 0)
        except FileRejected as error:
            return rejected(source, error)
        judged = judge_rows(raw, contract, RuleContext(references={}))
        frame = judge_occurrences(judged, None)
        valid = valid_rows(frame, contract).drop(LINE, ORDER)
        write_parquet(self.storage, snapshot, valid)
        write_bad(self.storage, contract, [source], bad_rows(frame, contract))
        return outcome(source, counts_by_file(frame).get(0, {}), ())

    def validate_streams(self, batch: StreamBatch) -> list[Outcome]:
        """Validate the batch's files together; write every day file and bad record."""
        self._fresh = None
        outcomes: dict[int, Outcome] = {}
        raws = []
        for order, source in enumerate(batch.sources):
            try:
                with local_paths(self.storage, [source.key]) as (path,):
                    raws.append(read_raw(path, STREAMS, order))
            except FileRejected as error:
                outcomes[order] = rejected(source, error)
        if raws:
            self._fresh = validate_batch(self.storage, batch, raws)
            for order, outcome in self._fresh.outcomes.items():
                outcomes.setdefault(order, outcome)
        return [outcomes[order] for order in range(len(batch.sources))]

    def compute_days(self, days: Sequence[date]) -> DayResults:
        """Recompute the output tables of `days` from all their valid rows, chunk by chunk."""
        fresh, self._fresh = self._fresh, None
        earlier = fresh.earlier if fresh else None
        if earlier is None:
            earlier = EarlierRows(self.storage, fresh.sids if fresh else ())
        songs = read_parquet(self.storage, [_songs_key()])
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in OUTPUTS}
        for chunk_days, others in earlier.chunks(days):
            # Rows grouped by date: the aggregations run twice as fast as on file order.
            parts = [others]
            if fresh is not None:
                parts += [part for day in chunk_days for part in fresh.valid.get(day, ())]
            outputs = transform.tables(pl.concat(parts).lazy(), songs)
            self._write_outputs(chunk_days, outputs)
            for name, table in outputs.items():
                rows[name] += _rows(table)
        return DayResults(days=_iso(days), **rows)

    def _write_outputs(self, days: Sequence[date], outputs: dict[str, pl.DataFrame]) -> None:
        """One file per (table, day); a day without rows loses its old file."""
        parts = []
        for name in OUTPUTS:
            table = outputs.get(name)
            split = {} if table is None else table.partition_by("date", as_dict=True)
            for day in days:
                part = split.get((day,))
                key = layout.processed_key(name, day)
                if part is None or part.is_empty():
                    self.storage.delete(key)
                else:
                    parts.append((key, part.drop("date")))
        write_all(self.storage, parts)


def _songs_key() -> str:
    return layout.validated_dimension_key(SONGS.name)


def _iso(days: Sequence[date]) -> tuple[str, ...]:
    return tuple(sorted(day.isoformat() for day in days))


def _rows(table: pl.DataFrame) -> list[dict[str, Any]]:
    return table.with_columns(pl.col("date").dt.to_string("%Y-%m-%d")).to_dicts()
