"""The rule primitives of `music_etl.logic.rules` as Spark columns.

Every parse is guarded by the contract's own pattern first, so Spark's lenient casts
(which trim, accept signs and decimals) never decide whether a value is valid, and the
time parser only ever sees text of the exact accepted shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import assert_never

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

from music_etl.engines.outcomes import LINE, ORDER, REASON
from music_etl.engines.procedure import row_rules
from music_etl.logic.contract import DatasetContract
from music_etl.logic.rules import (
    INTEGER_PATTERN,
    TIMESTAMP_PATTERN,
    TRIM_CHARS,
    FirstOccurrence,
    InReference,
    Kind,
    NotAfterClock,
    NotNull,
    ParseInt64,
    ParseTimestamp,
    Rule,
)

_TS_FORMAT = "yyyy-MM-dd HH:mm:ss"
_SEEN = "_seen_before"
_SEEN_BEFORE_BATCH = "_seen_before_batch"
_KEY = "_reference_key"


@dataclass(frozen=True, kw_only=True)
class RuleContext:
    """What rules look things up in: reference keys and the processing clock."""

    references: Mapping[str, DataFrame]
    """Reference name (`songs`, `users`) -> its valid rows (at least the looked-up column)."""
    clock: datetime | None = None
    """The processing clock, naive UTC."""


def boolean(value: bool) -> Column:
    """A boolean literal column."""
    return F.lit(value)


def java_pattern(pattern: str) -> str:
    r"""`pattern` for Java's regex engine, anchored at the very end of the value.

    Java's `$` (like Python's) also matches before a final line break, so `42\n` would
    pass `^[0-9]+$`; `\z` is the end of the input, which is what `$` means to the
    Rust regex engine the embedded engine uses.

    >>> java_pattern("^[0-9]+$")
    '^[0-9]+\\z'
    """
    if not pattern.endswith("$") or pattern.endswith(r"\$"):
        raise ValueError(f"{pattern!r} must end with the `$` anchor")
    return pattern[:-1] + r"\z"


def trimmed(name: str) -> Column:
    """The raw column trimmed of spaces and tabs; empty becomes null."""
    value = F.btrim(F.col(name), F.lit(TRIM_CHARS))
    return F.when(value == "", F.lit(None).cast("string")).otherwise(value).alias(name)


def parsed(name: str, kind: Kind) -> Column:
    """The trimmed column parsed to `kind`; null where it does not parse."""
    column = F.col(name)
    if kind is Kind.INT64:
        # The pattern admits digits only; try_cast is null past INT64_MAX, the range rule.
        shaped = column.rlike(java_pattern(INTEGER_PATTERN))
        return F.when(shaped, F.expr(f"try_cast(`{name}` AS BIGINT)"))
    if kind is Kind.TIMESTAMP:
        shaped = column.rlike(java_pattern(TIMESTAMP_PATTERN))
        text = F.concat(F.substring(column, 1, 10), F.lit(" "), F.substring(column, 12, 8))
        # The strict resolver of the Java time parser refuses 30 February and friends.
        return F.when(shaped, F.try_to_timestamp(text, F.lit(_TS_FORMAT)))
    return column


def reference_flag(rule: InReference) -> str:
    """The working column saying whether a row's value is in the rule's reference."""
    return f"_in_{rule.reference}_{rule.column}"


def passes(rule: Rule, types: Mapping[str, Kind], ctx: RuleContext) -> Column:
    """True where a row passes `rule` (first-occurrence rules are applied separately)."""
    match rule:
        case NotNull(columns=columns):
            return reduce(lambda a, b: a & b, (F.col(c).isNotNull() for c in columns))
        case ParseInt64(column=column) | ParseTimestamp(column=column):
            return parsed(column, types[column]).isNotNull()
        case NotAfterClock(column=column, slack=slack):
            assert ctx.clock is not None, "a NotAfterClock rule needs the processing clock"
            # An aware datetime: PySpark would read a naive one in the driver's local zone.
            limit = (ctx.clock + slack).replace(tzinfo=UTC)
            return parsed(column, types[column]) <= F.lit(limit)
        case InReference():
            return F.coalesce(F.col(reference_flag(rule)), boolean(value=False))
        case FirstOccurrence():
            raise TypeError("FirstOccurrence is applied by apply_first_occurrence, not passes")
        case _:
            assert_never(rule)


def with_reference_flags(
    frame: DataFrame, contract: DatasetContract, ctx: RuleContext
) -> DataFrame:
    """Add one flag column per `InReference` rule: is the parsed value a reference key."""
    for rule in row_rules(contract):
        if not isinstance(rule, InReference):
            continue
        keys = (
            ctx.references[rule.reference]
            .select(F.col(rule.column).alias(_KEY))
            .distinct()
            .withColumn(reference_flag(rule), boolean(value=True))
        )
        value = parsed(rule.column, contract.columns[rule.column])
        frame = frame.join(F.broadcast(keys), value == keys[_KEY], "left").drop(_KEY)
    return frame


def reason_expr(contract: DatasetContract, ctx: RuleContext) -> Column:
    """The first failed row rule's reason, null when all pass."""
    expr = F.lit(None).cast("string")
    for rule in reversed(row_rules(contract)):
        failed = ~passes(rule, contract.columns, ctx)
        expr = F.when(failed, F.lit(rule.reason)).otherwise(expr)
    return expr.alias(REASON)


def apply_first_occurrence(
    frame: DataFrame, rule: FirstOccurrence, seen: DataFrame | None
) -> DataFrame:
    """Mark later repeats of `rule.key` among still-valid rows, and keys in `seen`.

    The first row in file order, then line order, wins.
    """
    key = list(rule.key)
    valid = F.col(REASON).isNull()
    first = Window.partitionBy(valid, *key).orderBy(ORDER, LINE)
    frame = frame.withColumn(_SEEN, F.row_number().over(first) > 1)
    if seen is not None:
        known = seen.select(*key).distinct().withColumn(_SEEN_BEFORE_BATCH, boolean(value=True))
        frame = frame.join(known, on=key, how="left")
        earlier = F.coalesce(F.col(_SEEN_BEFORE_BATCH), boolean(value=False))
        frame = frame.withColumn(_SEEN, F.col(_SEEN) | earlier).drop(_SEEN_BEFORE_BATCH)
    reason = F.when(valid & F.col(_SEEN), F.lit(rule.reason)).otherwise(F.col(REASON))
    return frame.withColumn(REASON, reason).drop(_SEEN)
