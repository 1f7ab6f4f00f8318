"""A failed file after its cause is fixed: automatic retry, `music-etl retry`, and the hint.

A file rejected as `too_many_bad_rows` may have failed on rows judged against something
outside it: `users.csv` (`unknown_user`), `songs.csv` (`unknown_track`) or the processing
clock (`future_timestamp`). Such a failure is *fixable from outside* when the file's other
bad rows alone stay within the bad-row threshold. Its ledger record then keeps what those
rows were judged against (`FileRecord.judged_against`): the content hash of each dimension
file and the clock. Every other failure (`missing_column`, `unreadable_file`, or too many
bad rows of the file's own making) keeps it empty: its fix is a new version of the file,
which the next run processes anyway.

- **Automatic:** `run` retries a fixable failure once a dimension file it was judged against
  changed (`retry_if_fixed`). The clock is not watched: it changes on every run, so a file
  with listens truly in the future would be validated again on every run.
- **Manual:** `music-etl retry [KEY …]` marks failed files retryable (`retry`), e.g. after a
  wrong clock (`MUSIC_ETL_NOW`) is fixed or the bad-row threshold raised.

Example:
    >>> retry(load_settings(lake="./lake"), ["raw/streams/a.csv"]).reset  # doctest: +SKIP
    ['raw/streams/a.csv']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime

from music_etl.adapters.ledger import FileRecord, Ledger, open_ledger
from music_etl.adapters.ledger.base import FAILED
from music_etl.adapters.storage import Storage, open_storage
from music_etl.engines.base import Outcome
from music_etl.errors import ConfigError
from music_etl.logic import layout
from music_etl.logic.checks import exceeds_threshold
from music_etl.logic.contract import STREAMS, TOO_MANY_BAD_ROWS
from music_etl.logic.rules import InReference, NotAfterClock
from music_etl.pipeline.components import Components
from music_etl.pipeline.lake import require_lake
from music_etl.settings import Settings

#: What `future_timestamp` rows are judged against.
CLOCK = "clock"
_FIXES = {
    "users": "add the missing users to raw/users/users.csv",
    "songs": "add the missing tracks to raw/songs/songs.csv",
    CLOCK: "fix the processing clock (MUSIC_ETL_NOW or the system clock)",
}


@dataclass(frozen=True, kw_only=True)
class RetryReport:
    """What `retry` did."""

    reset: list[FileRecord]
    """Failed files the next run processes again."""
    left: list[FileRecord]
    """Named files that are not failed (done or claimed): left as they are."""


def outside_causes() -> dict[str, str]:
    """Row reasons judged against something outside the file, and what that is.

    >>> outside_causes()
    {'future_timestamp': 'clock', 'unknown_track': 'songs', 'unknown_user': 'users'}
    """
    causes = {}
    for rule in STREAMS.rules:
        if isinstance(rule, InReference):
            causes[rule.reason] = rule.reference
        elif isinstance(rule, NotAfterClock):
            causes[rule.reason] = CLOCK
    return causes


def judged_against(components: Components, outcome: Outcome, clock: datetime) -> dict[str, str]:
    """For a failure fixable from outside, what its rows were judged against; else empty."""
    if outcome.file_error != TOO_MANY_BAD_ROWS:
        return {}
    outside = outside_causes()
    causes = {outside[reason] for reason in outcome.bad_by_reason if reason in outside}
    own = sum(n for reason, n in outcome.bad_by_reason.items() if reason not in outside)
    threshold = components.settings.bad_row_threshold
    if not causes or exceeds_threshold(outcome.rows_in, own, threshold):
        return {}
    judged = {cause: _dimension_hash(components.storage, cause) for cause in causes - {CLOCK}}
    if CLOCK in causes:
        judged[CLOCK] = clock.isoformat()
    return dict(sorted(judged.items()))


def retry_if_fixed(components: Components, record: FileRecord) -> bool:
    """Mark the failed `record` retryable if a dimension file it was judged against changed.

    `run` calls it for failed files whose content is unchanged; True: process it again.
    """
    storage = components.storage
    changed = any(
        _dimension_hash(storage, cause) != digest
        for cause, digest in record.judged_against.items()
        if cause != CLOCK
    )
    return changed and components.ledger.mark_retryable(record.file_key)


def retry(settings: Settings, keys: Sequence[str]) -> RetryReport:
    """Mark the named failed files (every failed file when none is named) retryable.

    Raises `ConfigError` naming every key the ledger does not know; nothing is changed then.
    """
    with closing(open_storage(settings.lake, endpoint=settings.aws_endpoint)) as storage:
        require_lake(storage)
    with closing(open_ledger(settings.ledger_url, endpoint=settings.aws_endpoint)) as ledger:
        return retry_with(ledger, keys)


def retry_with(ledger: Ledger, keys: Sequence[str]) -> RetryReport:
    """`retry` on an open ledger."""
    records = {r.file_key: r for r in ledger.records()}
    named = _known(records, keys) if keys else [k for k, r in records.items() if r.status == FAILED]
    reset = [records[k] for k in named if records[k].status == FAILED and ledger.mark_retryable(k)]
    done = {r.file_key for r in reset}
    return RetryReport(reset=reset, left=[records[k] for k in named if k not in done])


def next_step(key: str, error: str, judged: Mapping[str, str], *, retryable: bool = False) -> str:
    """What the operator does about a failed file (empty for a file that did not fail).

    >>> next_step("raw/streams/a.csv", "too_many_bad_rows", {"users": "9f86d0"})[:31]
    'add the missing users to raw/us'
    """
    if not error:
        return ""
    if retryable:
        return "the next `music-etl run` processes it again"
    manual = f"`music-etl retry {key}`"
    if not judged:
        return (
            f"correct the file and land the new version as {key}; the next `music-etl run` takes it"
        )
    fixes = " and ".join(_FIXES[cause] for cause in sorted(judged, key=list(_FIXES).index))
    if set(judged) == {CLOCK}:
        return f"{fixes}, then {manual} and `music-etl run`"
    return f"{fixes}, then `music-etl run` (retries it automatically) or {manual}"


def retry_mode(error: str, judged: Mapping[str, str], *, retryable: bool = False) -> str:
    """How a failed file gets processed again, in a word or two (for `status`)."""
    if not error:
        return ""
    if retryable:
        return "next run"
    if set(judged) - {CLOCK}:
        return "automatic"
    return "`retry`" if judged else "new version"


def with_next_step(message: str, step: str) -> str:
    """A failure message followed by what to do about it."""
    return "; ".join(part for part in (message, step and f"to fix: {step}") if part)


def _known(records: Mapping[str, FileRecord], keys: Sequence[str]) -> list[str]:
    """The ledger keys of `keys` (`x.csv` also names `raw/streams/x.csv`)."""
    found = {key: _ledger_key(records, key) for key in keys}
    unknown = [key for key, found_key in found.items() if found_key is None]
    if unknown:
        raise ConfigError(
            f"Not in the ledger: {', '.join(unknown)}. `music-etl status` lists the files it "
            "knows (a file not processed yet needs no retry: `music-etl run` takes it)."
        )
    return list(dict.fromkeys(k for k in found.values() if k is not None))


def _ledger_key(records: Mapping[str, FileRecord], key: str) -> str | None:
    for candidate in (key, layout.RAW_STREAMS + key.removeprefix("./")):
        if candidate in records:
            return candidate
    return None


def _dimension_hash(storage: Storage, dataset: str) -> str:
    """The content hash of the raw dimension file the snapshot in force was made from."""
    marker = layout.dimension_marker_key(dataset)
    return storage.read_bytes(marker).decode() if storage.exists(marker) else ""
