"""Engine-neutral pieces every engine shares: file rejection and per-file outcomes.

Column names used by every engine's working frames live here too, so two engines
cannot drift apart on what a line number or a file's position is called.
"""

from __future__ import annotations

from collections.abc import Mapping

from music_etl.engines.base import Outcome, Source
from music_etl.logic.contract import TOO_MANY_BAD_ROWS

#: Working column: the 1-based physical line of a row (the header is line 1).
LINE = "_line"
#: Working column: the position of a row's file in its batch (decides duplicates).
ORDER = "_order"
#: Working column: the first failed rule's reason; null while a row is valid.
REASON = "reason"
#: Prefix of the working columns holding the raw, untrimmed values for bad records.
RAW_PREFIX = "_raw_"
#: The header is line 1, so the first data row is line 2.
FIRST_DATA_LINE = 2
#: What the three output tables are called, in the order engines compute them.
OUTPUTS = ("daily_genre_kpis", "top_songs", "top_genres")


class FileRejected(Exception):
    """The whole file is unusable; `reason` is a file-level reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def outcome(source: Source, counts: Mapping[str, int], days: tuple[str, ...]) -> Outcome:
    """A file's outcome from its rows per reason (`""` counts the valid rows)."""
    bad = {reason: n for reason, n in sorted(counts.items()) if reason}
    return Outcome(
        original_key=source.original_key,
        rows_in=sum(counts.values()),
        rows_valid=counts.get("", 0),
        bad_by_reason=bad,
        days=days,
    )


def rejected(source: Source, error: FileRejected) -> Outcome:
    """The outcome of a file rejected before any row was judged."""
    return Outcome(original_key=source.original_key, file_error=error.reason, message=error.message)


def too_many_bad(result: Outcome, threshold: float) -> Outcome:
    """`result` turned into a `too_many_bad_rows` rejection: its counts stay, no day is loaded.

    Its bad rows are written all the same (at `layout.rejected_bad_records_key`);
    `rows_valid` counts the rows that passed every rule but were not loaded.
    """
    share = result.rows_bad / result.rows_in
    return Outcome(
        original_key=result.original_key,
        rows_in=result.rows_in,
        rows_valid=result.rows_valid,
        bad_by_reason=result.bad_by_reason,
        days=(),
        file_error=TOO_MANY_BAD_ROWS,
        message=f"{share:.1%} of rows are bad, above the threshold of {threshold:.1%}",
    )
