"""The vocabulary of rule primitives that every engine implements.

A dataset contract is a list of these, in order; the first rule a row fails
gives its bad-record reason. Engines translate each primitive into their own
expressions (Polars, Spark SQL, ...) and never invent rules of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

#: Characters trimmed from both ends of every field before any rule runs.
TRIM_CHARS = " \t"

#: A non-negative decimal integer; range is checked separately (see `INT64_MAX`).
INTEGER_PATTERN = r"^[0-9]+$"

#: Largest value a signed 64-bit integer holds; bigger ids are bad ids.
INT64_MAX = 9_223_372_036_854_775_807

#: `YYYY-MM-DD hh:mm:ss` or `YYYY-MM-DDThh:mm:ss`, optional `Z`, fields in range.
#: Year 0000, month 13, day 32, hour 24, minute 60 and second 60 fail here;
#: day-of-month against the month's length is the calendar check.
TIMESTAMP_PATTERN = (
    r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
    r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z?$"
)


class Kind(Enum):
    """The parsed type a column has once the contract accepted it."""

    INT64 = "int64"
    STRING = "string"
    TIMESTAMP = "timestamp"
    #: Output columns only (a ratio KPI); no raw column parses to it.
    FLOAT64 = "float64"
    #: Output columns only (the day a row belongs to); no raw column parses to it.
    DATE = "date"


@dataclass(frozen=True, kw_only=True)
class NotNull:
    """Each of `columns` is present and not empty after trimming."""

    reason: str
    columns: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ParseInt64:
    """`column` matches `INTEGER_PATTERN` and is at most `INT64_MAX`."""

    reason: str
    column: str


@dataclass(frozen=True, kw_only=True)
class ParseTimestamp:
    """`column` matches `TIMESTAMP_PATTERN` and names a real calendar instant (UTC)."""

    reason: str
    column: str


@dataclass(frozen=True, kw_only=True)
class NotAfterClock:
    """`column` is at most `slack` after the processing clock."""

    reason: str
    column: str
    slack: timedelta


@dataclass(frozen=True, kw_only=True)
class InReference:
    """`column` occurs in `reference`'s column of the same name (a valid dimension)."""

    reason: str
    column: str
    reference: str


@dataclass(frozen=True, kw_only=True)
class FirstOccurrence:
    """The first row for `key` (in file order, then line order) wins; later ones fail.

    With `across_files`, rows already accepted from other files also count as seen.
    """

    reason: str
    key: tuple[str, ...]
    across_files: bool


Rule = NotNull | ParseInt64 | ParseTimestamp | NotAfterClock | InReference | FirstOccurrence
