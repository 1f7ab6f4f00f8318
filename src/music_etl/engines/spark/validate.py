"""Validation on Spark: raw strings in, typed valid rows and reasoned bad rows out."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

from music_etl.engines.outcomes import LINE, ORDER, RAW_PREFIX, REASON
from music_etl.engines.spark.rules import (
    RuleContext,
    canonical,
    reason_expr,
    trimmed,
    with_parsed,
    with_reference_flags,
)
from music_etl.logic.contract import DatasetContract
from music_etl.logic.rules import Kind


def kept_columns(raw: DataFrame, contract: DatasetContract) -> list[str]:
    """The contract's columns, then the optional ones the file has."""
    return [*contract.columns, *(c for c in contract.optional if c in raw.columns)]


def judge_rows(raw: DataFrame, contract: DatasetContract, ctx: RuleContext) -> DataFrame:
    """Apply the row-level rules in order; keep the raw values bad records need.

    Returns the rows with `LINE`, `ORDER`, the raw values, `REASON` (null while valid)
    and the contract's columns parsed to their types (null where they do not parse).
    Each field is trimmed and parsed once (`with_parsed`); the rules compare columns.
    A raw value is kept only where a bad record could need it and it differs from what
    the parsed value is written as (`canonical`): the cached frame stays narrow.
    """
    names = list(contract.columns)
    kept = kept_columns(raw, contract)
    frame = raw.select(
        LINE,
        ORDER,
        *(F.col(c).alias(RAW_PREFIX + c) for c in names),
        *(trimmed(c) for c in kept),
    )
    frame = with_parsed(frame, contract.columns, kept)
    frame = with_reference_flags(frame, contract, ctx)
    frame = frame.withColumn(REASON, reason_expr(contract, ctx))
    return frame.select(
        LINE, ORDER, *(_raw_if_needed(c, k) for c, k in contract.columns.items()), REASON, *kept
    )


def _raw_if_needed(name: str, kind: Kind) -> Column:
    """The raw value, or null where the row is valid and the value is written as it was."""
    raw = F.col(RAW_PREFIX + name)
    differs = ~raw.eqNullSafe(canonical(name, kind))
    return F.when(F.col(REASON).isNotNull() | differs, raw).alias(RAW_PREFIX + name)


def valid_rows(frame: DataFrame, contract: DatasetContract) -> DataFrame:
    """Typed rows that passed every rule, with `LINE` and `ORDER`."""
    kept = [c for c in frame.columns if not c.startswith(RAW_PREFIX) and c != REASON]
    return frame.where(F.col(REASON).isNull()).select(*kept)


def bad_rows(frame: DataFrame, contract: DatasetContract) -> DataFrame:
    """Rejected rows: raw values as they were in the file, reason, `LINE` and `ORDER`."""
    raw = [
        F.coalesce(F.col(RAW_PREFIX + c), canonical(c, kind)).alias(c)
        for c, kind in contract.columns.items()
    ]
    return frame.where(F.col(REASON).isNotNull()).select(*raw, REASON, LINE, ORDER)


def counts_by_file(frame: DataFrame) -> dict[int, dict[str, int]]:
    """Per file order: rows per reason, with `""` for valid rows (one small Spark job)."""
    counts: dict[int, dict[str, int]] = {}
    for row in frame.groupBy(ORDER, REASON).count().collect():
        counts.setdefault(int(row[ORDER]), {})[row[REASON] or ""] = int(row["count"])
    return counts
