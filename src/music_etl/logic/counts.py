"""What validating one file counted: the one set of per-file counters every layer shares.

`engines.base.Outcome` (what an engine reports), `pipeline.batch.FileResult` (what a run
reports) extend it; the ledger's `FileRecord` keeps the same names as its persisted
attributes (`FileRecord.counts` gives them as this type).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class FileCounts:
    """Rows of one file: read, valid, bad per reason; the listen dates it put rows on.

    Example:
        >>> FileCounts(rows_in=3, rows_valid=2, bad_by_reason={"null_field": 1}).rows_bad
        1
    """

    rows_in: int = 0
    rows_valid: int = 0
    """Rows that passed every rule (of a file rejected whole: passed, but not loaded)."""
    bad_by_reason: dict[str, int] = field(default_factory=dict)
    days: tuple[str, ...] = ()
    """Listen dates (`YYYY-MM-DD`) with rows of this file."""

    @property
    def rows_bad(self) -> int:
        """Rows rejected, whatever the reason."""
        return sum(self.bad_by_reason.values())
