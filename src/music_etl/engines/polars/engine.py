"""`PolarsEngine`: the embedded default, chosen by measurement (docs/engine-choice.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import polars as pl

from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import Outcome, Source, StreamBatch
from music_etl.engines.polars import transform
from music_etl.engines.polars.io import (
    LINE,
    ORDER,
    FileRejected,
    local_paths,
    read_raw,
    write_parquet,
)
from music_etl.engines.polars.rules import REASON, RuleContext
from music_etl.engines.polars.validate import (
    Judged,
    bad_rows,
    counts_by_file,
    drop_files,
    judge_occurrences,
    judge_rows,
    valid_rows,
)
from music_etl.logic import layout
from music_etl.logic.checks import exceeds_threshold
from music_etl.logic.contract import (
    SONGS,
    STREAMS,
    TOO_MANY_BAD_ROWS,
    USERS,
    DatasetContract,
)
from music_etl.logic.serving_model import DayResults

_OUTPUTS = ("daily_genre_kpis", "top_songs", "top_genres")


class PolarsEngine:
    """Runs the contract with Polars on this machine, reading and writing through `storage`."""

    name = "polars"

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def validate_dimension(self, contract: DatasetContract, source: Source) -> Outcome:
        """Validate `users.csv` or `songs.csv` into its Parquet snapshot."""
        try:
            with local_paths(self.storage, [source.key]) as (path,):
                raw = read_raw(path, contract, 0)
        except FileRejected as rejected:
            return _rejected(source, rejected)
        judged = judge_rows(raw, contract, RuleContext(references={}))
        frame = judge_occurrences(judged, seen=None)
        valid = valid_rows(frame, contract).drop(LINE, ORDER)
        write_parquet(self.storage, layout.validated_dimension_key(contract.name), valid)
        self._write_bad(contract, [source], bad_rows(frame, contract))
        return _outcome(source, counts_by_file(frame).get(0, {}), ())

    def validate_streams(self, batch: StreamBatch) -> list[Outcome]:
        """Validate the batch's files together; write every day file and bad record."""
        outcomes: dict[int, Outcome] = {}
        raws = []
        for order, source in enumerate(batch.sources):
            try:
                with local_paths(self.storage, [source.key]) as (path,):
                    raws.append(read_raw(path, STREAMS, order))
            except FileRejected as rejected:
                outcomes[order] = _rejected(source, rejected)
        if raws:
            judged = self._validate_rows(batch, pl.concat(raws, how="diagonal"))
            for order, outcome in judged.items():
                outcomes.setdefault(order, outcome)
        return [outcomes[order] for order in range(len(batch.sources))]

    def compute_days(self, days: Sequence[date]) -> DayResults:
        """Recompute the output tables of `days` from all their valid rows."""
        keys = [k for day in days for k in self._day_files(day, exclude=())]
        if not keys:
            self._write_outputs(days, {})
            return DayResults(days=_iso(days))
        with local_paths(self.storage, [*keys, _songs_key()]) as paths:
            streams = pl.scan_parquet(paths[:-1])
            joined = transform.plays(streams, pl.scan_parquet(paths[-1]))
            kpis = transform.kpis(joined)
            tables = pl.collect_all([kpis, transform.top_songs(joined), transform.top_genres(kpis)])
        outputs = dict(zip(_OUTPUTS, tables, strict=True))
        self._write_outputs(days, outputs)
        return DayResults(days=_iso(days), **{n: _rows(t) for n, t in outputs.items()})

    def _validate_rows(self, batch: StreamBatch, raw: pl.DataFrame) -> dict[int, Outcome]:
        """Judge the batch; files over the bad-row threshold drop out one at a time.

        Only the earliest file newly over the threshold drops out per pass: its rows
        must not count as already seen by later files, which are then judged again.
        """
        judged = judge_rows(raw, STREAMS, self._stream_context(batch))
        failed: list[int] = []
        rejected: list[pl.DataFrame] = []
        while True:
            kept = drop_files(judged, failed)
            frame = judge_occurrences(kept, self._seen(kept, batch))
            over = self._over_threshold(frame, batch)
            if not over:
                break
            failed.append(over[0])
            rejected.append(frame.filter(pl.col(ORDER) == over[0]))
        frame = pl.concat([frame, *rejected], how="diagonal_relaxed")
        return self._write_streams(batch, frame, failed)

    def _write_streams(
        self, batch: StreamBatch, frame: pl.DataFrame, failed: Sequence[int]
    ) -> dict[int, Outcome]:
        valid = valid_rows(frame, STREAMS).filter(~pl.col(ORDER).is_in(list(failed)))
        valid = valid.with_columns(pl.col("listen_time").dt.date().alias("listen_date"))
        days = self._write_valid(batch.sources, valid)
        loaded = frame.filter(~pl.col(ORDER).is_in(list(failed)))
        self._write_bad(STREAMS, batch.sources, bad_rows(loaded, STREAMS))
        counts = counts_by_file(frame)
        outcomes = {}
        for order, source in enumerate(batch.sources):
            outcomes[order] = _outcome(source, counts.get(order, {}), days.get(order, ()))
        for order in failed:
            outcomes[order] = _too_many_bad(outcomes[order], batch.threshold)
        return outcomes

    def _write_valid(
        self, sources: Sequence[Source], valid: pl.DataFrame
    ) -> dict[int, tuple[str, ...]]:
        days: dict[int, list[str]] = {}
        parts = valid.partition_by(ORDER, "listen_date", as_dict=True, maintain_order=False)
        for (order, day), part in sorted(parts.items()):
            source = sources[order]
            rows = part.select(
                "user_id",
                "track_id",
                "listen_time",
                pl.lit(source.original_key).alias("source_file"),
                pl.col(LINE).alias("source_line"),
            )
            write_parquet(self.storage, layout.validated_stream_key(day, source.sid), rows)
            days.setdefault(order, []).append(day.isoformat())
        return {order: tuple(d) for order, d in days.items()}

    def _write_bad(
        self, contract: DatasetContract, sources: Sequence[Source], bad: pl.DataFrame
    ) -> None:
        for (order, reason), part in bad.partition_by(ORDER, REASON, as_dict=True).items():
            source = sources[order]
            rows = part.select(
                *contract.columns,
                REASON,
                pl.lit(source.original_key).alias("source_file"),
                pl.col(LINE).alias("source_line"),
            )
            key = layout.bad_records_key(contract.name, str(reason), source.sid)
            write_parquet(self.storage, key, rows)

    def _over_threshold(self, frame: pl.DataFrame, batch: StreamBatch) -> list[int]:
        failed = []
        for order, counts in counts_by_file(frame).items():
            total = sum(counts.values())
            if exceeds_threshold(total, total - counts.get("", 0), batch.threshold):
                failed.append(order)
        return sorted(failed)

    def _stream_context(self, batch: StreamBatch) -> RuleContext:
        references = {}
        for contract in (SONGS, USERS):
            key = layout.validated_dimension_key(contract.name)
            column = "track_id" if contract is SONGS else "user_id"
            with local_paths(self.storage, [key]) as (path,):
                references[contract.name] = pl.read_parquet(path, columns=[column]).unique()
        return RuleContext(references=references, clock=batch.clock)

    def _seen(self, judged: Judged, batch: StreamBatch) -> pl.LazyFrame | None:
        """Keys already accepted from files outside the batch on the batch's days."""
        listen_days = judged.valid_so_far().get_column("listen_time").dt.date().unique()
        exclude = {source.sid for source in batch.sources}
        keys = [k for day in listen_days for k in self._day_files(day, exclude)]
        if not keys:
            return None
        paths = [self.storage.uri(k) for k in keys]
        return pl.scan_parquet(paths).select("user_id", "track_id", "listen_time")

    def _day_files(self, day: date, exclude: Sequence[str] | set[str]) -> list[str]:
        prefix = layout.validated_day_prefix(day)
        return [
            info.key
            for info in self.storage.list(prefix)
            if info.key.endswith(".parquet") and info.key[len(prefix) : -8] not in exclude
        ]

    def _write_outputs(self, days: Sequence[date], outputs: dict[str, pl.DataFrame]) -> None:
        for name in _OUTPUTS:
            table = outputs.get(name)
            for day in days:
                key = layout.processed_key(name, day)
                part = None if table is None else table.filter(pl.col("date") == day)
                if part is None or part.is_empty():
                    self.storage.delete(key)
                else:
                    write_parquet(self.storage, key, part.drop("date"))


def _songs_key() -> str:
    return layout.validated_dimension_key(SONGS.name)


def _iso(days: Sequence[date]) -> tuple[str, ...]:
    return tuple(sorted(day.isoformat() for day in days))


def _rows(table: pl.DataFrame) -> list[dict[str, Any]]:
    return table.with_columns(pl.col("date").dt.to_string("%Y-%m-%d")).to_dicts()


def _outcome(source: Source, counts: dict[str, int], days: tuple[str, ...]) -> Outcome:
    bad = {reason: n for reason, n in sorted(counts.items()) if reason}
    return Outcome(
        original_key=source.original_key,
        rows_in=sum(counts.values()),
        rows_valid=counts.get("", 0),
        bad_by_reason=bad,
        days=days,
    )


def _rejected(source: Source, rejected: FileRejected) -> Outcome:
    return Outcome(
        original_key=source.original_key, file_error=rejected.reason, message=rejected.message
    )


def _too_many_bad(outcome: Outcome, threshold: float) -> Outcome:
    share = outcome.rows_bad / outcome.rows_in
    return Outcome(
        original_key=outcome.original_key,
        rows_in=outcome.rows_in,
        rows_valid=outcome.rows_valid,
        bad_by_reason=outcome.bad_by_reason,
        days=(),
        file_error=TOO_MANY_BAD_ROWS,
        message=f"{share:.1%} of rows are bad, above the threshold of {threshold:.1%}",
    )
