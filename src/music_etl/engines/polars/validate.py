"""Validation on Polars: raw strings in, typed valid rows and reasoned bad rows out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from music_etl.engines.polars.io import LINE, ORDER
from music_etl.engines.polars.rules import (
    REASON,
    RuleContext,
    apply_first_occurrence,
    occurrence_rules,
    parsed,
    reason_expr,
    trimmed,
)
from music_etl.logic.contract import DatasetContract

RAW_PREFIX = "_raw_"


@dataclass(frozen=True, kw_only=True)
class Judged:
    """Rows after every row-level rule: typed values, raw values, reason so far."""

    contract: DatasetContract
    frame: pl.DataFrame

    def valid_so_far(self) -> pl.DataFrame:
        """The rows no rule has rejected yet."""
        return self.frame.filter(pl.col(REASON).is_null())


def judge_rows(raw: pl.DataFrame, contract: DatasetContract, ctx: RuleContext) -> Judged:
    """Apply the row-level rules in order; keep the raw values for bad records."""
    names = list(contract.columns)
    optional = [c for c in contract.optional if c in raw.columns]
    frame = (
        raw.lazy()
        .with_columns(pl.col(c).alias(RAW_PREFIX + c) for c in names)
        .with_columns(trimmed(c) for c in [*names, *optional])
        .with_columns(reason_expr(contract, ctx))
        .with_columns(parsed(c, kind).alias(c) for c, kind in contract.columns.items())
        .collect()
    )
    return Judged(contract=contract, frame=frame)


def judge_occurrences(judged: Judged, seen: pl.LazyFrame | None) -> pl.DataFrame:
    """Apply the first-occurrence rules; `seen` holds keys accepted from other files."""
    frame = judged.frame.lazy()
    for rule in occurrence_rules(judged.contract):
        frame = apply_first_occurrence(frame, rule, seen if rule.across_files else None)
    return frame.collect()


def valid_rows(frame: pl.DataFrame, contract: DatasetContract) -> pl.DataFrame:
    """Typed rows that passed every rule, with their line numbers."""
    keep = [c for c in frame.columns if not c.startswith(RAW_PREFIX) and c != REASON]
    return frame.filter(pl.col(REASON).is_null()).select(keep)


def bad_rows(frame: pl.DataFrame, contract: DatasetContract) -> pl.DataFrame:
    """Rejected rows: raw values as they were in the file, reason and line."""
    raw = [pl.col(RAW_PREFIX + c).alias(c) for c in contract.columns]
    return frame.filter(pl.col(REASON).is_not_null()).select(
        *raw, pl.col(REASON), pl.col(LINE), pl.col(ORDER)
    )


def counts_by_file(frame: pl.DataFrame) -> dict[int, dict[str, int]]:
    """Per file order: rows per reason, with `""` for valid rows."""
    grouped = frame.group_by(ORDER, REASON).len()
    counts: dict[int, dict[str, int]] = {}
    for order, reason, rows in grouped.iter_rows():
        counts.setdefault(order, {})[reason or ""] = rows
    return counts


def drop_files(judged: Judged, orders: Sequence[int]) -> Judged:
    """The judged rows without the files in `orders`."""
    return Judged(
        contract=judged.contract, frame=judged.frame.filter(~pl.col(ORDER).is_in(list(orders)))
    )
