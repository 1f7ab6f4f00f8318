"""The batch procedure, once for every engine: an engine supplies primitives only.

Validating files and computing days is the same sequence of steps on any engine:
read each raw file → judge the row rules → first-occurrence rules (within the batch,
then against what other files put in the lake) → drop files over the bad-row
threshold → write bad records and valid rows → outcomes. This module drives that
sequence; an engine implements `StreamPrimitives` and `DayPrimitives`, which translate
one step each into its own frames (Polars, Spark), the way a query compiler's
backends translate operations rather than re-implement queries. See
docs/architecture.md#engines.

Example:
    >>> from music_etl.engines import procedure
    >>> outcomes = procedure.validate_streams(engine, batch)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any, Protocol, TypeVar, assert_never

from music_etl.adapters.storage.base import ObjectInfo, Storage
from music_etl.engines.base import Outcome, Source, StreamBatch
from music_etl.engines.outcomes import OUTPUTS, FileRejected, outcome, rejected, too_many_bad
from music_etl.logic import layout
from music_etl.logic.checks import exceeds_threshold
from music_etl.logic.contract import STREAMS, DatasetContract
from music_etl.logic.rules import (
    FirstOccurrence,
    InReference,
    NotAfterClock,
    NotNull,
    ParseInt64,
    ParseTimestamp,
    Rule,
)
from music_etl.logic.serving_model import DayResults

#: Per file order: rows per reason, `""` counting the valid rows.
Counts = dict[int, dict[str, int]]

FrameT = TypeVar("FrameT")
SeenT = TypeVar("SeenT")
InputT = TypeVar("InputT")
TableT = TypeVar("TableT")


class StreamPrimitives(Protocol[FrameT, SeenT]):
    """What an engine does for validation; `FrameT` is its frame of rows.

    A frame of judged rows has the working columns of `engines.outcomes` (`LINE`,
    `ORDER`, the raw values under `RAW_PREFIX`, `REASON`: null while valid) and the
    contract's columns parsed to their kinds.
    """

    def read_raw(self, source: Source, contract: DatasetContract, order: int) -> FrameT:
        """The contract's columns of `source` as untouched strings, with `LINE` and `ORDER`.

        Raises:
            FileRejected: The file is unreadable or lacks a required column.
        """
        ...

    def judge_rows(
        self, raws: list[FrameT], contract: DatasetContract, clock: datetime | None
    ) -> FrameT:
        """The files' rows together, every row rule applied in order (`REASON`).

        Empties `raws`, so their memory can go as soon as the engine is done with them.
        """
        ...

    def kept(self, frame: FrameT) -> AbstractContextManager[FrameT]:
        """`frame` held for the block, where it feeds several steps (Spark caches it).

        Holds no reference the caller has not: deleting its own lets the memory go.
        """
        ...

    def seen_elsewhere(self, judged: FrameT, exclude: Collection[str]) -> SeenT:
        """The rows every source but `exclude` put on the days the valid `judged` rows are on."""
        ...

    def without_files(self, frame: FrameT, orders: Sequence[int]) -> FrameT:
        """`frame` without the rows of the files at `orders`."""
        ...

    def first_occurrence(self, frame: FrameT, rule: FirstOccurrence, seen: SeenT | None) -> FrameT:
        """Valid rows whose `rule.key` an earlier valid row or `seen` holds fail `rule`.

        Earlier means in file order (`ORDER`), then line order (`LINE`).
        """
        ...

    def counts_by_file(self, frame: FrameT) -> Counts:
        """Per file order: rows per reason, `""` counting the valid rows."""
        ...

    def write_bad(
        self,
        contract: DatasetContract,
        sources: Sequence[Source],
        frame: FrameT,
        *,
        rejected: bool,
    ) -> None:
        """One bad-records file per (source, reason); `rejected`: the rejected files' keys."""
        ...

    def write_valid(
        self,
        sources: Sequence[Source],
        frames: list[FrameT],
        seen: SeenT,
        failed: Collection[int],
    ) -> dict[int, tuple[str, ...]]:
        """One file per (source, listen date) of the valid rows; the days of each file order.

        Takes the frame out of `frames`, so its memory goes as the valid rows are split.
        `failed`: the orders of the files rejected whole, whose rows the frame lacks.
        """
        ...

    def write_snapshot(
        self, contract: DatasetContract, frame: FrameT, key: str, *, empty: bool
    ) -> None:
        """A dimension's valid rows in file order at `key`; `empty`: a file with no row."""
        ...


class DayPrimitives(Protocol[InputT, TableT]):
    """What an engine does to recompute days; `TableT` is its form of an output table."""

    def day_inputs(self, days: Sequence[date]) -> Iterable[tuple[Sequence[date], InputT]]:
        """The valid rows of `days` (and what they join), in chunks that fit the engine."""
        ...

    def day_tables(self, rows: InputT) -> Mapping[str, TableT]:
        """The output tables (`engines.outcomes.OUTPUTS`) of a chunk's rows."""
        ...

    def write_tables(self, days: Sequence[date], tables: Mapping[str, TableT]) -> None:
        """One file per (table, day) of `days`; a day without rows loses its old file."""
        ...

    def served(self, table: TableT) -> list[dict[str, Any]]:
        """A table's rows as the serving store takes them (`date` as `YYYY-MM-DD`)."""
        ...


def validate_dimension(
    engine: StreamPrimitives[FrameT, Any],
    contract: DatasetContract,
    source: Source,
    snapshot: str,
) -> Outcome:
    """Write a dimension's valid rows to `snapshot` and its bad records; its outcome."""
    try:
        raw = engine.read_raw(source, contract, 0)
    except FileRejected as error:
        return rejected(source, error)
    judged = engine.judge_rows([raw], contract, None)
    del raw
    with engine.kept(_occurrences(engine, judged, contract, None)) as frame:
        counts = engine.counts_by_file(frame)
        engine.write_snapshot(contract, frame, snapshot, empty=not _valid_in(counts))
        if _bad_in(counts):
            engine.write_bad(contract, [source], frame, rejected=False)
    return outcome(source, counts.get(0, {}), ())


def validate_streams(engine: StreamPrimitives[Any, Any], batch: StreamBatch) -> list[Outcome]:
    """Validate the batch's files together; write every day file and bad record."""
    outcomes: dict[int, Outcome] = {}
    raws = []
    for order, source in enumerate(batch.sources):
        try:
            raws.append(engine.read_raw(source, STREAMS, order))
        except FileRejected as error:
            outcomes[order] = rejected(source, error)
    if raws:
        for order, result in _validate_rows(engine, batch, raws).items():
            outcomes.setdefault(order, result)
    return [outcomes[order] for order in range(len(batch.sources))]


def _validate_rows(
    engine: StreamPrimitives[FrameT, SeenT], batch: StreamBatch, raws: list[FrameT]
) -> dict[int, Outcome]:
    """Judge the batch, drop the files over the threshold, write the rest; outcomes by order.

    Only the earliest file newly over the threshold drops out per pass: its rows
    must not count as already seen by later files, which are then judged again.
    """
    with engine.kept(engine.judge_rows(raws, STREAMS, batch.clock)) as judged:
        seen = engine.seen_elsewhere(judged, {source.sid for source in batch.sources})
        failed: list[int] = []
        rejected_counts: Counts = {}
        while True:
            kept = engine.without_files(judged, failed)
            with engine.kept(_occurrences(engine, kept, STREAMS, seen)) as frame:
                del kept
                counts = engine.counts_by_file(frame)
                over = over_threshold(counts, batch.threshold)
                if not over:
                    # Only the list holds the rows now: the writes can free them as they go.
                    frames = [frame]
                    del judged, frame
                    days = _write_streams(
                        engine, frames, batch.sources, counts=counts, seen=seen, failed=failed
                    )
                    return _outcomes(batch, counts | rejected_counts, days, failed)
                # Its bad rows as judged in this pass: the ones its outcome counts.
                alone = engine.without_files(frame, [o for o in counts if o != over[0]])
                engine.write_bad(STREAMS, batch.sources, alone, rejected=True)
                del alone
            failed.append(over[0])
            rejected_counts[over[0]] = counts[over[0]]


def _write_streams(
    engine: StreamPrimitives[FrameT, SeenT],
    frames: list[FrameT],
    sources: Sequence[Source],
    *,
    counts: Counts,
    seen: SeenT,
    failed: Collection[int],
) -> dict[int, tuple[str, ...]]:
    """Bad records first (then the raw values can go), then the valid rows; days by order."""
    if _bad_in(counts):
        engine.write_bad(STREAMS, sources, frames[0], rejected=False)
    if not _valid_in(counts):
        frames.clear()
    return engine.write_valid(sources, frames, seen, failed) if frames else {}


def _occurrences(
    engine: StreamPrimitives[FrameT, SeenT],
    frame: FrameT,
    contract: DatasetContract,
    seen: SeenT | None,
) -> FrameT:
    """`frame` after the contract's first-occurrence rules, in order."""
    for rule in occurrence_rules(contract):
        frame = engine.first_occurrence(frame, rule, seen if rule.across_files else None)
    return frame


def _outcomes(
    batch: StreamBatch,
    counts: Counts,
    days: Mapping[int, tuple[str, ...]],
    failed: Collection[int],
) -> dict[int, Outcome]:
    outcomes = {
        order: outcome(source, counts.get(order, {}), days.get(order, ()))
        for order, source in enumerate(batch.sources)
    }
    for order in failed:
        outcomes[order] = too_many_bad(outcomes[order], batch.threshold)
    return outcomes


def compute_days(engine: DayPrimitives[InputT, TableT], days: Sequence[date]) -> DayResults:
    """Recompute and write the output tables of `days`, chunk by chunk; their rows."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in OUTPUTS}
    for chunk_days, inputs in engine.day_inputs(days):
        tables = engine.day_tables(inputs)
        engine.write_tables(chunk_days, tables)
        for name, table in tables.items():
            rows[name] += engine.served(table)
    return DayResults(days=iso_days(days), **rows)


def over_threshold(counts: Counts, threshold: float) -> list[int]:
    """The file orders whose share of bad rows is above `threshold`, in order."""
    failed = []
    for order, by_reason in counts.items():
        total = sum(by_reason.values())
        if exceeds_threshold(total, total - by_reason.get("", 0), threshold):
            failed.append(order)
    return sorted(failed)


def row_rules(contract: DatasetContract) -> list[Rule]:
    """The rules judged row by row, in order."""
    return [rule for rule in contract.rules if not is_occurrence_rule(rule)]


def occurrence_rules(contract: DatasetContract) -> list[FirstOccurrence]:
    """The rules that need to see other rows, in order."""
    return [rule for rule in contract.rules if isinstance(rule, FirstOccurrence)]


def is_occurrence_rule(rule: Rule) -> bool:
    """Whether `rule` needs other rows (`first_occurrence`) rather than the row alone."""
    match rule:
        case FirstOccurrence():
            return True
        case NotNull() | ParseInt64() | ParseTimestamp() | NotAfterClock() | InReference():
            return False
        case _:
            assert_never(rule)


def reference_rules(contract: DatasetContract) -> list[InReference]:
    """The rules that look a column up in another dataset's valid rows."""
    return [rule for rule in contract.rules if isinstance(rule, InReference)]


def day_files(storage: Storage, day: date, exclude: Collection[str] = ()) -> list[ObjectInfo]:
    """The valid-row files of `day`, but those of the `exclude` source ids."""
    files = []
    for info in storage.list(layout.validated_day_prefix(day)):
        parsed = layout.parse_validated_stream_key(info.key)
        if parsed is not None and parsed[0] == day and parsed[1] not in exclude:
            files.append(info)
    return files


def iso_days(days: Iterable[date]) -> tuple[str, ...]:
    """`days` as sorted `YYYY-MM-DD` names."""
    return tuple(sorted(day.isoformat() for day in days))


def _valid_in(counts: Counts) -> bool:
    return any(by_reason.get("", 0) for by_reason in counts.values())


def _bad_in(counts: Counts) -> bool:
    return any(n for by_reason in counts.values() for reason, n in by_reason.items() if reason)
