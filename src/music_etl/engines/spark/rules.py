"""The rule primitives of `music_etl.logic.rules` as Spark columns.

Every parse is guarded by the contract's own pattern first, so Spark's lenient casts
(which trim, accept signs and decimals) never decide whether a value is valid, and the
time parser only ever sees text of the exact accepted shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import assert_never

from pyspark.sql import Column, DataFrame
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
_POSITION = "_position"
_LAST_ORDER = "_last_order"
#: The file order given to keys earlier files put in the lake: before every file of a batch.
_BEFORE_BATCH = -1
#: Repeated keys up to this many rows are broadcast to the join (about 100 MB).
BROADCAST_ROWS = 1_000_000
_KEY = "_reference_key"
_TEXT_PREFIX = "_text_"
_FIRST = "_first_position"
_REPEATS = "_repeats"


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
    """The raw column trimmed of spaces and tabs (empty stays empty: see `with_parsed`)."""
    return F.btrim(F.col(name), F.lit(TRIM_CHARS)).alias(name)


def text_column(name: str) -> str:
    """The working column holding `name` trimmed, as text, empty as null."""
    return f"{_TEXT_PREFIX}{name}"


def parsed(name: str, kind: Kind) -> Column:
    """The trimmed (not yet nulled) text column `name` parsed to `kind`; null where it fails.

    An empty text matches neither pattern, so it parses to null without a test of its own.
    """
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
    return F.when(column != "", column)


def with_parsed(frame: DataFrame, columns: Mapping[str, Kind], kept: Sequence[str]) -> DataFrame:
    """Each field parsed once: `kept` columns typed, and their texts for the null rule.

    `frame` holds the trimmed texts under the columns' names. One projection reads each
    text once; rules then only compare columns, so no regex or parse runs twice.
    Spark does not merge this projection into the next one, because the parsed values
    are used several times and are not cheap to recompute.
    """
    nulled = [F.when(F.col(c) != "", F.col(c)).alias(text_column(c)) for c in columns]
    kinds = {c: columns.get(c, Kind.STRING) for c in kept}
    typed = [parsed(c, kind).alias(c) for c, kind in kinds.items()]
    others = [c for c in frame.columns if c not in kinds]
    return frame.select(*others, *nulled, *typed)


def canonical(name: str, kind: Kind) -> Column:
    """The text a typed value is written as: equal to the raw text for most rows."""
    if kind is Kind.INT64:
        return F.col(name).cast("string")
    if kind is Kind.TIMESTAMP:
        return F.date_format(F.col(name), _TS_FORMAT)
    return F.col(name)


def reference_flag(rule: InReference) -> str:
    """The working column saying whether a row's value is in the rule's reference."""
    return f"_in_{rule.reference}_{rule.column}"


def passes(rule: Rule, types: Mapping[str, Kind], ctx: RuleContext) -> Column:
    """True where a row passes `rule` (first-occurrence rules are applied separately)."""
    match rule:
        case NotNull(columns=columns):
            return reduce(lambda a, b: a & b, (F.col(text_column(c)).isNotNull() for c in columns))
        case ParseInt64(column=column) | ParseTimestamp(column=column):
            return F.col(column).isNotNull()
        case NotAfterClock(column=column, slack=slack):
            assert ctx.clock is not None, "a NotAfterClock rule needs the processing clock"
            # An aware datetime: PySpark would read a naive one in the driver's local zone.
            limit = (ctx.clock + slack).replace(tzinfo=UTC)
            return F.col(column) <= F.lit(limit)
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
        # The parsed value: `with_parsed` ran before.
        frame = frame.join(F.broadcast(keys), F.col(rule.column) == keys[_KEY], "left")
        frame = frame.drop(_KEY)
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

    The first row in file order, then line order, wins; a key `seen` holds (accepted
    from an earlier file) comes before every row of the batch. Found by one aggregation,
    not a window: the keys that occur more than once, with their first position, are a
    small frame, checkpointed and broadcast (`repeated_keys`), so the big frame is never
    shuffled or sorted and keeps its partitions (one file's rows in one partition).
    """
    key = list(rule.key)
    valid = F.col(REASON).isNull()
    position = _position(F.col(ORDER), F.col(LINE))
    positions = frame.where(valid).select(*key, position.alias(_POSITION))
    if seen is not None:
        before = _position(F.lit(_BEFORE_BATCH), F.lit(0))
        positions = positions.unionByName(seen.select(*key, before.alias(_POSITION)))
    repeats = repeated_keys(
        positions.groupBy(*key)
        .agg(
            F.min(_POSITION).alias(_FIRST),
            F.count(F.lit(1)).alias(_REPEATS),
            F.max(F.col(_POSITION)[ORDER]).alias(_LAST_ORDER),
        )
        # Keys only earlier files hold concern no row of the batch.
        .where((F.col(_REPEATS) > 1) & (F.col(_LAST_ORDER) > _BEFORE_BATCH))
        .select(*(F.col(c).alias(_key_name(c)) for c in key), _FIRST)
    )
    # Null-safe: the aggregation groups null keys together too.
    same = reduce(lambda a, b: a & b, (frame[c].eqNullSafe(repeats[_key_name(c)]) for c in key))
    frame = frame.join(repeats, same, "left").drop(*(_key_name(c) for c in key))
    later = valid & F.col(_FIRST).isNotNull() & (position != F.col(_FIRST))
    reason = F.when(later, F.lit(rule.reason)).otherwise(F.col(REASON))
    return frame.withColumn(REASON, reason).drop(_FIRST)


def repeated_keys(repeats: DataFrame) -> DataFrame:
    """`repeats` computed once (checkpointed), marked for broadcast while it is small.

    Spark estimates a checkpoint's size from the plan it came from (the whole batch),
    so it would plan a sort-merge join that shuffles and sorts every row of the batch
    to join a few thousand keys. The checkpoint's real row count decides instead; past
    `BROADCAST_ROWS` the join is left to the planner (correct, slower).
    """
    kept = repeats.localCheckpoint(eager=True)
    return F.broadcast(kept) if kept.count() <= BROADCAST_ROWS else kept


def _position(order: Column, line: Column) -> Column:
    """A row's place in the batch: file order, then line; comparable as a struct."""
    return F.struct(order.cast("int").alias(ORDER), line.cast("long").alias(LINE))


def _key_name(column: str) -> str:
    return f"_repeated_{column}"
