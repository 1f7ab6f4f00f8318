"""`SparkEngine`: the contract at cluster scale (AWS Glue 5.0, EMR, any Spark 3.5).

It mirrors `PolarsEngine` file for file: the same keys, columns, types and row
counts, so either engine can continue a lake the other started.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import Outcome, Source, StreamBatch
from music_etl.engines.outcomes import (
    LINE,
    ORDER,
    REASON,
    FileRejected,
    outcome,
    rejected,
    too_many_bad,
)
from music_etl.engines.spark.days import day_tables, persisted, write_day_tables
from music_etl.engines.spark.hadoop import filesystem_class
from music_etl.engines.spark.io import SPARK_ERRORS, brief, read_raw, spark_path, union_of_files
from music_etl.engines.spark.output import TMP_PREFIX, TempWriter, write_rows
from music_etl.engines.spark.rules import RuleContext
from music_etl.engines.spark.session import spark_session
from music_etl.engines.spark.validate import (
    bad_rows,
    counts_by_file,
    judge_occurrences,
    judge_rows,
    valid_rows,
)
from music_etl.errors import ConfigError, Retryable
from music_etl.logic import layout
from music_etl.logic.checks import exceeds_threshold
from music_etl.logic.contract import (
    BAD_RECORD_COLUMNS,
    SONGS,
    STREAMS,
    VALID_STREAM_COLUMNS,
    DatasetContract,
)
from music_etl.logic.rules import InReference
from music_etl.logic.serving_model import DayResults

#: Columns of a validated stream file: `listen_date` is its partition folder.
_VALID_FILE_COLUMNS = tuple(c for c in VALID_STREAM_COLUMNS if c != "listen_date")
_REASON_FOLDER = "_reason_folder"
#: Raw CSV bytes per shuffle partition (a partition's shuffled rows are a fraction of them).
_BYTES_PER_SHUFFLE_PARTITION = 256 * 1024 * 1024
#: What `compute_days` needs of a valid stream row.
_DAY_ROW_COLUMNS = ("user_id", "track_id", "listen_time")
#: What Hadoop says when no file system serves a scheme (or its class is not on the classpath).
_NO_FILESYSTEM = ("UnsupportedFileSystemException", "ClassNotFoundException")


@dataclass(frozen=True, kw_only=True)
class Fresh:
    """The valid rows of the last validated batch, cached, until `compute_days` uses them."""

    valid: DataFrame
    """Typed valid rows (`user_id, track_id, listen_time`, line, file order)."""
    sids: frozenset[str]
    """Sources whose valid-row files are exactly `valid`'s rows (the files that loaded)."""


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

    @property
    def spark(self) -> SparkSession:
        """The session, started on first use so that choosing the engine costs nothing."""
        if self._session is None:
            self._session = spark_session(self._aws_endpoint)
        return self._session

    def validate_dimension(
        self, contract: DatasetContract, source: Source, snapshot: str
    ) -> Outcome:
        """Validate `users.csv` or `songs.csv` into the Parquet snapshot at `snapshot`."""
        with self._job(f"validating {source.key}"):
            try:
                raw = union_of_files(
                    [read_raw(self.spark, self.storage.uri(source.key), contract, 0)], 1
                )
            except FileRejected as error:
                return rejected(source, error)
            judged = judge_rows(raw, contract, RuleContext(references={}))
            with persisted(judge_occurrences(judged, contract, seen=None)) as frame:
                counts = counts_by_file(frame)
                self._write_snapshot(contract, frame, snapshot, empty=not _valid_in(counts))
                if _bad_in(counts):
                    self._write_bad(contract, [source], bad_rows(frame, contract))
            return outcome(source, counts.get(0, {}), ())

    def validate_streams(self, batch: StreamBatch) -> list[Outcome]:
        """Validate the batch's files together; write every day file and bad record."""
        self._forget_fresh()
        with self._job(f"validating {len(batch.sources)} stream file(s)"):
            self._size_shuffles(batch.sources)
            outcomes: dict[int, Outcome] = {}
            raws = []
            for order, source in enumerate(batch.sources):
                try:
                    raws.append(read_raw(self.spark, self.storage.uri(source.key), STREAMS, order))
                except FileRejected as error:
                    outcomes[order] = rejected(source, error)
            if raws:
                parallelism = 2 * self.spark.sparkContext.defaultParallelism
                judged = self._validate_rows(batch, union_of_files(raws, parallelism))
                for order, result in judged.items():
                    outcomes.setdefault(order, result)
            return [outcomes[order] for order in range(len(batch.sources))]

    def compute_days(self, days: Sequence[date]) -> DayResults:
        """Recompute and write the output tables of `days` from all their valid rows."""
        fresh, self._fresh = self._fresh, None
        try:
            with self._job(f"computing {len(days)} day(s)"):
                tables = {}
                streams, stored = self._day_rows(days, fresh)
                if streams is not None:
                    songs = self._read_parquet([layout.validated_dimension_key(SONGS.name)])
                    tables = day_tables(streams, songs, cache=stored)
                write_day_tables(self.storage, days, tables)
                return DayResults(days=_iso(days), **{n: t.served() for n, t in tables.items()})
        finally:
            if fresh is not None:
                fresh.valid.unpersist()

    def _day_rows(self, days: Sequence[date], fresh: Fresh | None) -> tuple[DataFrame | None, bool]:
        """The valid rows of `days`: the last batch's from memory, the others' from the lake.

        Returns the rows (None when there are none) and whether any were read from the lake.
        """
        exclude = fresh.sids if fresh is not None else frozenset()
        keys = [k for day in days for k in self._day_files(day, exclude=exclude)]
        if keys and fresh is None:
            # Whole day folders: one listing each, every file of the day is wanted.
            keys = sorted({key.rsplit("/", 1)[0] + "/" for key in keys})
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

    # ------------------------------------------------------------------ streams

    def _validate_rows(self, batch: StreamBatch, raw: DataFrame) -> dict[int, Outcome]:
        """Judge the batch; files over the bad-row threshold drop out one at a time.

        Only the earliest file newly over the threshold drops out per pass: its rows
        must not count as already seen by later files, which are then judged again.
        """
        with persisted(judge_rows(raw, STREAMS, self._stream_context(batch))) as judged:
            seen = self._seen(judged, batch)
            failed: list[int] = []
            rejected_counts: dict[int, dict[str, int]] = {}
            while True:
                kept = judged.where(~F.col(ORDER).isin(failed))
                # Not cached: the repeated keys are (checkpointed); the rest is a cheap
                # broadcast join over the cached `judged`.
                frame = judge_occurrences(kept, STREAMS, seen)
                counts = counts_by_file(frame)
                over = _over_threshold(counts, batch.threshold)
                if not over:
                    return self._write_streams(batch, frame, counts | rejected_counts, failed)
                # Its bad rows as judged in this pass: the ones its outcome counts.
                rows = bad_rows(frame.where(F.col(ORDER) == over[0]), STREAMS)
                self._write_bad(STREAMS, batch.sources, rows, rejected=True)
                failed.append(over[0])
                rejected_counts[over[0]] = counts[over[0]]

    def _write_streams(
        self,
        batch: StreamBatch,
        frame: DataFrame,
        counts: dict[int, dict[str, int]],
        failed: Sequence[int],
    ) -> dict[int, Outcome]:
        loaded = {order: n for order, n in counts.items() if order not in failed}
        days: dict[int, tuple[str, ...]] = {}
        if _valid_in(loaded):
            # Kept in memory (narrow: the typed columns) for `compute_days`; the write fills it.
            valid = valid_rows(frame, STREAMS).persist()
            sids = frozenset(batch.sources[order].sid for order in loaded)
            self._fresh = Fresh(valid=valid, sids=sids)
            days = self._write_valid(batch.sources, valid)
        if _bad_in(loaded):
            self._write_bad(STREAMS, batch.sources, bad_rows(frame, STREAMS))
        outcomes = {}
        for order, source in enumerate(batch.sources):
            outcomes[order] = outcome(source, counts.get(order, {}), days.get(order, ()))
        for order in failed:
            outcomes[order] = too_many_bad(outcomes[order], batch.threshold)
        return outcomes

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
        )
        days: dict[int, list[str]] = {}
        for values in written:
            days.setdefault(int(values[ORDER]), []).append(values["listen_date"])
        return {order: tuple(sorted(d)) for order, d in days.items()}

    def _forget_fresh(self) -> None:
        """Drop the rows a previous batch left in memory (its `compute_days` never ran)."""
        if self._fresh is not None:
            self._fresh.valid.unpersist()
            self._fresh = None

    def _size_shuffles(self, sources: Sequence[Source]) -> None:
        """Shuffle partitions from the batch's raw size; adaptive execution merges small ones."""
        size = sum(
            info.size
            for source in sources
            for info in self.storage.list(source.key)
            if info.key == source.key
        )
        parallelism = self.spark.sparkContext.defaultParallelism
        partitions = max(parallelism, -(-size // _BYTES_PER_SHUFFLE_PARTITION))
        self.spark.conf.set("spark.sql.shuffle.partitions", str(partitions))

    def _stream_context(self, batch: StreamBatch) -> RuleContext:
        references = {
            rule.reference: self._read_parquet([layout.validated_dimension_key(rule.reference)])
            for rule in STREAMS.rules
            if isinstance(rule, InReference)
        }
        return RuleContext(references=references, clock=batch.clock)

    def _seen(self, judged: DataFrame, batch: StreamBatch) -> DataFrame | None:
        """Keys already accepted from files outside the batch on the batch's days."""
        valid = judged.where(F.col(REASON).isNull())
        listen_days = [
            row[0] for row in valid.select(F.to_date("listen_time")).distinct().collect()
        ]
        exclude = {source.sid for source in batch.sources}
        keys = [k for day in sorted(listen_days) for k in self._day_files(day, exclude)]
        if not keys:
            return None
        return self._read_parquet(keys).select("user_id", "track_id", "listen_time")

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
        )

    # ------------------------------------------------------------------ lake access

    def _read_parquet(self, keys: Sequence[str]) -> DataFrame:
        return self.spark.read.parquet(*(spark_path(self.storage.uri(k)) for k in keys))

    def _day_files(self, day: date, exclude: Collection[str]) -> list[str]:
        prefix = layout.validated_day_prefix(day)
        return [
            info.key
            for info in self.storage.list(prefix)
            if info.key.endswith(".parquet") and info.key[len(prefix) : -8] not in exclude
        ]

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


def _valid_in(counts: dict[int, dict[str, int]]) -> bool:
    return any(by_reason.get("", 0) for by_reason in counts.values())


def _bad_in(counts: dict[int, dict[str, int]]) -> bool:
    return any(n for by_reason in counts.values() for reason, n in by_reason.items() if reason)


def _over_threshold(counts: dict[int, dict[str, int]], threshold: float) -> list[int]:
    failed = []
    for order, by_reason in counts.items():
        total = sum(by_reason.values())
        if exceeds_threshold(total, total - by_reason.get("", 0), threshold):
            failed.append(order)
    return sorted(failed)


def _iso(days: Sequence[date]) -> tuple[str, ...]:
    return tuple(sorted(day.isoformat() for day in days))
