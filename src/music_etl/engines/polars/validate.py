"""Validation on Polars: raw strings in, typed valid rows and reasoned bad rows out."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from music_etl.engines.outcomes import LINE, ORDER, RAW_PREFIX, REASON
from music_etl.engines.polars.rules import (
    TYPED_PREFIX,
    RuleContext,
    reason_expr,
    trimmed,
    with_typed,
)
from music_etl.logic.contract import DatasetContract
from music_etl.logic.rules import Kind


def judge_rows(raw: pl.DataFrame, contract: DatasetContract, ctx: RuleContext) -> pl.DataFrame:
    """Apply the row-level rules in order; keep the raw values for bad records."""
    names = list(contract.columns)
    optional = [c for c in contract.optional if c in raw.columns]
    typed_names = [TYPED_PREFIX + c for c, k in contract.columns.items() if k is not Kind.STRING]
    return (
        with_typed(
            raw.lazy()
            .with_columns(pl.col(c).alias(RAW_PREFIX + c) for c in names)
            .with_columns(trimmed(c) for c in [*names, *optional]),
            contract.columns,
        )
        .with_columns(reason_expr(contract, ctx))
        .with_columns(pl.col(t).alias(t.removeprefix(TYPED_PREFIX)) for t in typed_names)
        .drop(typed_names)
        .collect()
    )


def valid_rows(frame: pl.DataFrame, contract: DatasetContract) -> pl.DataFrame:
    """Typed rows that passed every rule, with their line numbers."""
    keep = [c for c in frame.columns if not c.startswith(RAW_PREFIX) and c != REASON]
    valid = pl.col(REASON).is_null()
    return frame.lazy().filter(valid).select(keep).collect()


def without_raw(frame: pl.DataFrame) -> pl.DataFrame:
    """The judged rows without the raw values (which bad records alone need).

    The other columns are shared as they are: `drop` would rechunk every column of a
    frame whose columns are chunked differently (as Polars 2's streaming engine leaves
    them), copying the whole batch.
    """
    out = frame.clone()  # shallow: the columns' memory is shared
    for name in frame.columns:
        if name.startswith(RAW_PREFIX):
            out.drop_in_place(name)
    return out


def bad_rows(frame: pl.DataFrame, contract: DatasetContract) -> pl.DataFrame:
    """Rejected rows: raw values as they were in the file, reason and line."""
    raw = [pl.col(RAW_PREFIX + c).alias(c) for c in contract.columns]
    bad = pl.col(REASON).is_not_null()
    return frame.lazy().filter(bad).select(*raw, REASON, LINE, ORDER).collect()


def counts_by_file(frame: pl.DataFrame) -> dict[int, dict[str, int]]:
    """Per file order: rows per reason, with `""` for valid rows."""
    # Valid rows are most rows: count them by one integer key, not by (order, reason).
    columns = frame.lazy().select(ORDER, REASON)
    valid = columns.filter(pl.col(REASON).is_null()).group_by(ORDER).len()
    bad = columns.filter(pl.col(REASON).is_not_null()).group_by(ORDER, REASON).len()
    counts: dict[int, dict[str, int]] = {}
    for order, rows in valid.collect().iter_rows():
        counts.setdefault(order, {})[""] = rows
    for order, reason, rows in bad.collect().iter_rows():
        counts.setdefault(order, {})[reason] = rows
    return counts


def drop_files(frame: pl.DataFrame, orders: Sequence[int]) -> pl.DataFrame:
    """The judged rows without the files in `orders`."""
    if not orders:
        return frame
    return frame.filter(~pl.col(ORDER).is_in(list(orders)))
