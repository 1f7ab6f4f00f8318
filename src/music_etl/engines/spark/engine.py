"""`SparkEngine`: the contract at cluster scale (AWS Glue 5.0, EMR, any Spark 3.5).

It runs the procedure of `engines.procedure` and supplies its primitives as Spark
frames, so it writes what `PolarsEngine` writes file for file: the same keys, columns,
types and row counts, and either engine can continue a lake the other started.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

from music_etl.adapters.storage.base import Storage
from music_etl.engines import procedure
from music_etl.engines.base import Outcome, Source, StreamBatch
from music_etl.engines.outcomes import LINE, ORDER, REASON
from music_etl.engines.procedure import day_files
from music_etl.engines.spark.days import DayTable, day_tables, write_day_tables
from music_etl.engines.spark.hadoop import filesystem_class
from music_etl.engines.spark.io import SPARK_ERRORS, brief, read_raw, spark_path, union_of_files
from music_etl.engines.spark.output import TMP_PREFIX, TempWriter, write_rows
from music_etl.engines.spark.rules import RuleContext, apply_first_occurrence
from music_etl.engines.spark.session import spark_session
from music_etl.engines.spark.validate import bad_rows, counts_by_file, judge_rows, valid_rows
from music_etl.errors import ConfigError, Retryable
from music_etl.logic import layout
from music_etl.logic.contract import (
    BAD_RECORD_COLUMNS,
    SONGS,
    STREAMS,
    VALID_STREAM_COLUMNS,
    DatasetContract,
)
from music_etl.logic.rules import FirstOccurrence
from music_etl.logic.serving_model import DayResults

#: A chunk of days' valid rows, the songs they join and whether any rows came from the lake
#: (then the plays are cached: read twice otherwise); None when the days have no rows.
DayRows = tuple[DataFrame, DataFrame, bool] | None
#: Columns of a validated stream file: `listen_date` is its partition folder.
_VALID_FILE_COLUMNS = tuple(c for c in VALID_STREAM_COLUMNS if c != "listen_date")
_REASON_FOLDER = "_reason_folder"
#: Raw CSV bytes per task of a stream batch. A task's sorts (the first-occurrence
#: aggregation, grouping the rows it writes by day) hold its rows in the heap, so the
#: batch is spread by size as well as over the cores: AQE's advisory partition size.
_BYTES_PER_TASK = 64 * 1024 * 1024
#: What `compute_days` needs of a valid stream row.
_DAY_ROW_COLUMNS = ("user_id", "track_id", "listen_time")
#: What Hadoop says when no file system serves a scheme (or its class is not on the classpath).
_NO_FILESYSTEM = ("UnsupportedFileSystemException", "ClassNotFoundException")


@dataclass(frozen=True, kw_only=True)
class Fresh:
    """The valid rows of the last validated batch, until `compute_days` uses them."""

    valid: DataFrame
    """Typed valid rows (`user_id, track_id, listen_time`, line, file order)."""
    sids: frozenset[str]
    """Sources whose valid-row files are exactly `valid`'s rows (the files that loaded)."""
    cache: DataFrame
    """The batch's cached judged rows `valid` is computed from, unpersisted with it."""


class SparkJobFailed(Retryable):
    """A Spark job failed (an executor lost, a read error); the run can be retried."""


class SparkEngine:
    """Runs the contract on Spark, reading and writing the lake through `storage`."""

    name = "spark"

    def __init__(
        self, storage: Storage, spark: SparkSession | None = None, *, aws_endpoint: str = ""
    ) -> None:
        self.storage = storage
        self._session = spark
        self._aws_endpoint = aws_endpoint
        self._lake_reachable = False
        self._fresh: Fresh | None = None
        """The last batch's valid rows, until `compute_days` takes them."""
        self._computing: Fresh | None = None
        """What `compute_days` took from `_fresh` while it runs."""
        self._batch_cache: DataFrame | None = None
        """The frame `kept` cached for the open validation, if any."""
        self._batch_tasks = 1
        """How many tasks the open stream batch is spread over (`_size_tasks`)."""

    @property
    def spark(self) -> SparkSession:
        """The session, started on first use so that choosing the engine costs nothing."""
        if self._session is None:
            self._session = spark_session(self._aws_endpoint)
        return self._session

    # ------------------------------------------------------------------ the engine

    def validate_dimension(
        self, contract: DatasetContract, source: Source, snapshot: str
    ) -> Outcome:
        """Validate `users.csv` or `songs.csv` into the Parquet snapshot at `snapshot`."""
        with self._job(f"validating {source.key}"):
            return procedure.validate_dimension(self, contract, source, snapshot)

    def validate_streams(self, batch: StreamBatch) -> list[Outcome]:
        """Validate the batch's files together; write every day file and bad record."""
        self._forget_fresh()
        with self._job(f"validating {len(batch.sources)} stream file(s)"):
            self._size_tasks(batch.sources)
            return procedure.validate_streams(self, batch)

    def compute_days(self, days: Sequence[date]) -> DayResults:
        """Recompute and write the output tables of `days` from all their valid rows.

        The last batch's valid rows come from memory (`Fresh`); only other sources' day
        files are read from the lake.
        """
        self._computing, self._fresh = self._fresh, None
        try:
            with self._job(f"computing {len(days)} day(s)"):
                return procedure.compute_days(self, days)
        finally:
            if self._computing is not None:
                self._computing.cache.unpersist()
            self._computing = None

    # ------------------------------------------------------------------ stream primitives

    def read_raw(self, source: Source, contract: DatasetContract, order: int) -> DataFrame:
        """The raw CSV's columns as strings (`FileRejected` when unusable)."""
        return read_raw(self.spark, self.storage.uri(source.key), contract, order)

    def judge_rows(
        self, raws: list[DataFrame], contract: DatasetContract, clock: datetime | None
    ) -> DataFrame:
        """The files' rows together, judged by the row rules; empties `raws`.

        A dimension file stays in one partition; a batch of stream files is spread
        over the batch's tasks (`_size_tasks`), at most one per file.
        """
        partitions = self._batch_tasks if contract is STREAMS else 1
        raw = union_of_files(raws, partitions)
        raws.clear()
        context = RuleContext(references=self._references(contract), clock=clock)
        return judge_rows(raw, contract, context)

    @contextmanager
    def kept(self, frame: DataFrame) -> Iterator[DataFrame]:
        """`frame` cached for the block, where it feeds several jobs; only the outermost.

        A frame kept inside the block is the cached one after the first-occurrence rules:
        filters and a broadcast join of a small checkpointed frame, cheaper to recompute
        per use than to cache a second copy of the batch. When the block's valid rows stay
        for `compute_days` (`write_valid`), so does the cache: `compute_days` drops it.
        """
        if self._batch_cache is not None:
            yield frame
            return
        cached = self._batch_cache = frame.persist()
        try:
            yield cached
        finally:
            self._batch_cache = None
            if self._fresh is None or self._fresh.cache is not cached:
                cached.unpersist()

    def seen_elsewhere(self, judged: DataFrame, exclude: Collection[str]) -> DataFrame | None:
        """Keys already accepted from files outside the batch on the batch's days."""
        valid = judged.where(F.col(REASON).isNull())
        listen_days = [
            row[0] for row in valid.select(F.to_date("listen_time")).distinct().collect()
        ]
        keys = [i.key for day in sorted(listen_days) for i in day_files(self.storage, day, exclude)]
        if not keys:
            return None
        return self._read_parquet(keys).select("user_id", "track_id", "listen_time")

    def without_files(self, frame: DataFrame, orders: Sequence[int]) -> DataFrame:
        """`frame` without the rows of the files at `orders`."""
        return frame.where(~F.col(ORDER).isin(list(orders))) if orders else frame

    def first_occurrence(
        self, frame: DataFrame, rule: FirstOccurrence, seen: DataFrame | None
    ) -> DataFrame:
        """Later repeats of `rule.key`, and keys `seen` holds, fail `rule`."""
        return apply_first_occurrence(frame, rule, seen)

    def counts_by_file(self, frame: DataFrame) -> dict[int, dict[str, int]]:
        """Rows per reason of each file order (one small job)."""
        return counts_by_file(frame)

    def write_bad(
        self,
        contract: DatasetContract,
        sources: Sequence[Source],
        frame: DataFrame,
        *,
        rejected: bool,
    ) -> None:
        """One file per (source, reason); rejected sources (over the threshold) apart."""
        self._write_bad(contract, sources, bad_rows(frame, contract), rejected=rejected)

    def write_valid(
        self,
        sources: Sequence[Source],
        frames: list[DataFrame],
        seen: DataFrame | None,
        failed: Collection[int],
    ) -> dict[int, tuple[str, ...]]:
        """One file per (source, listen date), rows in line order.

        The valid rows are computed from the batch's cache (`kept`), which stays until
        `compute_days` has used them.
        """
        valid = valid_rows(frames.pop(), STREAMS)
        days = self._write_valid(sources, valid)
        assert self._batch_cache is not None, "write_valid runs inside the batch's kept block"
        self._fresh = Fresh(
            valid=valid,
            sids=frozenset(sources[order].sid for order in days),
            cache=self._batch_cache,
        )
        return days

    def write_snapshot(
        self, contract: DatasetContract, frame: DataFrame, key: str, *, empty: bool
    ) -> None:
        """The dimension's valid rows in file order; with no valid row, an empty file."""
        self._write_snapshot(contract, frame, key, empty=empty)

    # ------------------------------------------------------------------ day primitives

    def day_inputs(self, days: Sequence[date]) -> Iterator[tuple[Sequence[date], DayRows]]:
        """All `days` at once: the cluster sizes the work, not the driver."""
        streams, stored = self._day_rows(days, self._computing)
        if streams is None:
            yield days, None
            return
        songs = self._read_parquet([layout.validated_dimension_key(SONGS.name)])
        yield days, (streams, songs, stored)

    def day_tables(self, rows: DayRows) -> dict[str, DayTable]:
        """KPIs and rankings of the days' rows, collected to the driver."""
        if rows is None:
            return {}
        streams, songs, stored = rows
        return day_tables(streams, songs, cache=stored)

    def _day_rows(self, days: Sequence[date], fresh: Fresh | None) -> tuple[DataFrame | None, bool]:
        """The valid rows of `days`: the last batch's from memory, the others' from the lake.

        Returns the rows (None when there are none) and whether any were read from the lake.
        """
        exclude = fresh.sids if fresh is not None else frozenset()
        stored = {day: day_files(self.storage, day, exclude) for day in days}
        keys = [info.key for files in stored.values() for info in files]
        if keys and fresh is None:
            # Whole day folders: one listing each, every file of the day is wanted.
            keys = [layout.validated_day_prefix(day) for day, files in stored.items() if files]
        parts = []
        if keys:
            parts.append(self._read_parquet(keys).select(*_DAY_ROW_COLUMNS))
        if fresh is not None:
            # Dates as ISO text: PySpark's date literals break before year 1000 (`%Y`).
            wanted = [F.to_date(F.lit(day.isoformat())) for day in days]
            in_days = F.to_date("listen_time").isin(wanted)
            parts.append(fresh.valid.where(in_days).select(*_DAY_ROW_COLUMNS))
        if not parts:
            return None, False
        return reduce(DataFrame.union, parts), bool(keys)

    def write_tables(self, days: Sequence[date], tables: Mapping[str, DayTable]) -> None:
        """One file per (table, day), written from the driver."""
        write_day_tables(self.storage, days, dict(tables))

    def served(self, table: DayTable) -> list[dict[str, Any]]:
        """Rows with the date as `YYYY-MM-DD`."""
        return table.served()

    # ------------------------------------------------------------------ streams

    def _forget_fresh(self) -> None:
        """Drop the rows a previous batch left in memory (its `compute_days` never ran)."""
        if self._fresh is not None:
            self._fresh.cache.unpersist()
            self._fresh = None

    def _size_tasks(self, sources: Sequence[Source]) -> None:
        """Spread the batch over twice the cores, and over one task per 64 MB of raw CSV.

        The number serves both the read (files are merged into that many partitions,
        whole) and the shuffles; adaptive execution merges small shuffle partitions.
        """
        size = sum(
            info.size
            for source in sources
            for info in self.storage.list(source.key)
            if info.key == source.key
        )
        parallelism = self.spark.sparkContext.defaultParallelism
        self._batch_tasks = max(2 * parallelism, -(-size // _BYTES_PER_TASK))
        self.spark.conf.set("spark.sql.shuffle.partitions", str(self._batch_tasks))

    def _write_valid(
        self, sources: Sequence[Source], valid: DataFrame
    ) -> dict[int, tuple[str, ...]]:
        files = valid.select(
            "user_id",
            "track_id",
            "listen_time",
            _source_file(sources),
            F.col(LINE).alias("source_line"),
            ORDER,
            F.to_date("listen_time").alias("listen_date"),
        )
        written = self._writer.write(
            files,
            partition_by=(ORDER, "listen_date"),
            order_by=("source_line",),
            columns=_VALID_FILE_COLUMNS,
            key_of=lambda v: layout.validated_stream_key(
                date.fromisoformat(v["listen_date"]), sources[int(v[ORDER])].sid
            ),
            grouped=True,
        )
        days: dict[int, list[str]] = {}
        for values in written:
            days.setdefault(int(values[ORDER]), []).append(values["listen_date"])
        return {order: tuple(sorted(d)) for order, d in days.items()}

    def _references(self, contract: DatasetContract) -> dict[str, DataFrame]:
        """The valid rows each `InReference` rule looks its column up in."""
        return {
            rule.reference: self._read_parquet([layout.validated_dimension_key(rule.reference)])
            for rule in procedure.reference_rules(contract)
        }

    # ------------------------------------------------------------------ writing

    @property
    def _writer(self) -> TempWriter:
        return TempWriter(self.spark, self.storage)

    def _write_snapshot(
        self, contract: DatasetContract, frame: DataFrame, key: str, *, empty: bool
    ) -> None:
        """The dimension's valid rows in file order; with no valid row, an empty file."""
        valid = valid_rows(frame, contract)
        columns = [c for c in valid.columns if c not in {LINE, ORDER}]
        if empty:
            write_rows(self.storage, key, [], valid.select(*columns).schema)
            return
        self._writer.write(
            valid,
            partition_by=(),
            order_by=(LINE,),
            columns=columns,
            key_of=lambda _values: key,
        )

    def _write_bad(
        self,
        contract: DatasetContract,
        sources: Sequence[Source],
        bad: DataFrame,
        *,
        rejected: bool = False,
    ) -> None:
        """One file per (source, reason); rejected sources (over the threshold) apart."""
        key = layout.rejected_bad_records_key if rejected else layout.bad_records_key
        files = bad.select(
            *contract.columns,
            REASON,
            _source_file(sources),
            F.col(LINE).alias("source_line"),
            ORDER,
            F.col(REASON).alias(_REASON_FOLDER),
        )
        self._writer.write(
            files,
            partition_by=(ORDER, _REASON_FOLDER),
            order_by=("source_line",),
            columns=(*contract.columns, *BAD_RECORD_COLUMNS),
            key_of=lambda v: key(contract.name, v[_REASON_FOLDER], sources[int(v[ORDER])].sid),
            grouped=True,
        )

    # ------------------------------------------------------------------ lake access

    def _read_parquet(self, keys: Sequence[str]) -> DataFrame:
        return self.spark.read.parquet(*(spark_path(self.storage.uri(k)) for k in keys))

    @contextmanager
    def _job(self, what: str) -> Iterator[None]:
        """Clear what an interrupted run left in the temp folder; make Spark errors ours.

        Engines run under the lake lock, so no other writer uses the temp folder now.
        """
        self._require_filesystem()
        try:
            self._writer.remove(TMP_PREFIX)
            yield
        except SPARK_ERRORS as exc:
            raise SparkJobFailed(f"Spark failed while {what}: {brief(exc)}") from exc

    def _require_filesystem(self) -> None:
        """Refuse (`ConfigError`) a lake Spark has no file system for, e.g. S3 without S3A.

        Retrying would not help, so this is not a `SparkJobFailed`.
        """
        if self._lake_reachable:
            return
        uri = self.storage.uri(TMP_PREFIX)
        try:
            filesystem_class(self.spark, uri)
        except SPARK_ERRORS as exc:
            if not any(name in str(exc) for name in _NO_FILESYSTEM):
                raise SparkJobFailed(f"Spark cannot open {uri}: {brief(exc)}") from exc
            raise ConfigError(
                f"Spark has no file system for {uri} ({_hadoop_error(exc)}). Off Glue and EMR, "
                "Spark reads s3:// through Hadoop's S3A: put hadoop-aws (of Spark's Hadoop "
                "version) and its aws-java-sdk-bundle on spark.jars (docs/spark-engine.md#s3)."
            ) from exc
        self._lake_reachable = True


def _source_file(sources: Sequence[Source]) -> Column:
    """Each row's landing-zone key, looked up by its file's position in the batch."""
    pairs = [part for i, s in enumerate(sources) for part in (F.lit(i), F.lit(s.original_key))]
    return F.create_map(*pairs)[F.col(ORDER)].alias("source_file")


def _hadoop_error(exc: BaseException) -> str:
    """The Java exception line of a Py4J error (`brief` is only Py4J's own first line)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    found = [line for line in lines if any(name in line for name in _NO_FILESYSTEM)]
    return (found or [brief(exc)])[0].removeprefix(":").strip()[:300]
