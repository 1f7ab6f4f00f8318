"""Keep the validated snapshots of `users.csv` and `songs.csv` in step with the raw files.

A new raw file never replaces the catalogue in force until it is accepted. The engine
writes its snapshot and bad records to staged keys; a file-level problem, no valid
row, or a share of bad rows above `bad_row_threshold` rejects it, and the staged
output is dropped. An accepted file is swapped in under a commit marker:

1. `validated/<ds>/_COMMIT` is written (the commit point, naming the staged bad records);
2. the staged snapshot and bad records are moved over the live ones, stale ones deleted;
3. `validated/<ds>/_SOURCE` records the accepted raw content, `_COMMIT` is deleted.

A crash before step 1 leaves the old catalogue (the staged files are dropped on the
next run); a crash after it is rolled forward by the next run. For `songs`, the
marker `validated/songs/_RECOMPUTE` is written at the commit point and removed once
every day was recomputed, so a crash cannot leave days computed on the old catalogue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from music_etl.adapters.ledger.base import FAILED
from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import Outcome, Source
from music_etl.errors import DimensionError
from music_etl.logic import layout
from music_etl.logic.checks import exceeds_threshold
from music_etl.logic.contract import (
    DIMENSIONS,
    EMPTY_FILE,
    SONGS,
    TOO_MANY_BAD_ROWS,
    DatasetContract,
)
from music_etl.pipeline.batch import FileResult
from music_etl.pipeline.components import Components

_RAW = {"songs": layout.RAW_SONGS, "users": layout.RAW_USERS}
#: Status of a dimension file whose new snapshot is now in force.
ACCEPTED = "accepted"


@dataclass(frozen=True, kw_only=True)
class DimensionsReport:
    """What refreshing the dimensions did."""

    refreshed: dict[str, Outcome]
    """Dimensions whose new raw file was accepted: its snapshot is now in force."""
    songs_changed: bool
    """The song catalogue changed under existing results: every day needs recomputing."""
    rejected: dict[str, Outcome] = field(default_factory=dict)
    """Dimensions whose new raw file was rejected: the previous snapshot stays in force."""

    def files(self) -> list[FileResult]:
        """The dimension files this run looked at, as file results (`accepted` or `failed`)."""
        return [
            _file_result(outcome, ACCEPTED if name in self.refreshed else FAILED)
            for name, outcome in sorted({**self.refreshed, **self.rejected}.items())
        ]


def refresh_dimensions(components: Components, *, force: bool = False) -> DimensionsReport:
    """Validate each dimension whose raw file changed since its snapshot; swap in the good ones.

    Raises `DimensionError` when a dimension has no snapshot in force and its raw file is
    missing or rejected: no stream can be validated without it.
    """
    refreshed, rejected = {}, {}
    had_songs = components.storage.exists(layout.validated_dimension_key(SONGS.name))
    for contract in DIMENSIONS:
        _recover(components.storage, contract)
        outcome = _refresh(components, contract, force=force)
        if outcome is None:
            continue
        if outcome.file_error:
            rejected[contract.name] = outcome
        else:
            refreshed[contract.name] = outcome
    pending = components.storage.exists(layout.dimension_recompute_key(SONGS.name))
    changed = pending or (had_songs and "songs" in refreshed)
    return DimensionsReport(refreshed=refreshed, songs_changed=changed, rejected=rejected)


def days_recomputed(components: Components) -> None:
    """Every day now reflects the song catalogue in force."""
    components.storage.delete(layout.dimension_recompute_key(SONGS.name))


def _refresh(components: Components, contract: DatasetContract, *, force: bool) -> Outcome | None:
    storage = components.storage
    raw = _RAW[contract.name]
    in_force = storage.exists(layout.validated_dimension_key(contract.name))
    if not storage.exists(raw):
        if in_force:
            return None
        raise DimensionError(
            f"{raw} is missing from the lake {storage.root}: put {contract.name}.csv there "
            "(or run `music-etl generate` for sample data)."
        )
    digest = storage.content_hash(raw)
    marker = layout.dimension_marker_key(contract.name)
    if not force and storage.exists(marker) and storage.read_bytes(marker).decode() == digest:
        return None
    outcome = _judged(components, contract, _validate(components, contract))
    if outcome.file_error:
        _drop_staged(storage, contract)
        if not in_force:
            raise DimensionError(_first_run_message(raw, outcome))
        return outcome
    _commit(storage, contract, digest, outcome)
    return outcome


def _validate(components: Components, contract: DatasetContract) -> Outcome:
    """The engine's verdict on the raw file, its output written to the staged keys."""
    _drop_staged(components.storage, contract)
    raw = _RAW[contract.name]
    source = Source(key=raw, original_key=raw, sid=layout.staged_dimension_sid(contract.name))
    staged = layout.staged_dimension_key(contract.name)
    return components.engine.validate_dimension(contract, source, staged)


def _judged(components: Components, contract: DatasetContract, outcome: Outcome) -> Outcome:
    """`outcome` rejected when the file is unusable as a catalogue."""
    threshold = components.settings.bad_row_threshold
    if outcome.file_error:
        return outcome
    if exceeds_threshold(outcome.rows_in, outcome.rows_bad, threshold):
        share = outcome.rows_bad / outcome.rows_in
        message = f"{share:.1%} of rows are bad, above the threshold of {threshold:.1%}"
        return replace(outcome, file_error=TOO_MANY_BAD_ROWS, message=message)
    if not outcome.rows_valid:
        return replace(outcome, file_error=EMPTY_FILE, message=f"no valid {contract.name} row")
    return outcome


def _first_run_message(raw: str, outcome: Outcome) -> str:
    counts = _counts(outcome)
    return (
        f"{raw} was rejected ({outcome.file_error}: {outcome.message}{counts}) and the lake has "
        "no earlier snapshot to keep in force: fix the file and run again."
    )


def _counts(outcome: Outcome) -> str:
    if not outcome.rows_in:
        return ""
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(outcome.bad_by_reason.items()))
    return f"; {outcome.rows_in} rows in, {outcome.rows_valid} valid, {outcome.rows_bad} bad" + (
        f" [{reasons}]" if reasons else ""
    )


# --------------------------------------------------------------------------- the swap


def _commit(storage: Storage, contract: DatasetContract, digest: str, outcome: Outcome) -> None:
    """Make the staged snapshot the one in force (see the module docstring)."""
    intent = {"source": digest, "bad_reasons": sorted(outcome.bad_by_reason)}
    storage.write_bytes(layout.dimension_commit_key(contract.name), json.dumps(intent).encode())
    _roll_forward(storage, contract)


def _recover(storage: Storage, contract: DatasetContract) -> None:
    """Finish a swap a crash interrupted after its commit point, or drop an unfinished one."""
    if storage.exists(layout.dimension_commit_key(contract.name)):
        _roll_forward(storage, contract)
    else:
        _drop_staged(storage, contract)


def _roll_forward(storage: Storage, contract: DatasetContract) -> None:
    """Move the staged files over the live ones; every step can be repeated after a crash."""
    name = contract.name
    commit = layout.dimension_commit_key(name)
    intent = json.loads(storage.read_bytes(commit))
    if name == SONGS.name and storage.exists(layout.validated_dimension_key(name)):
        storage.write_bytes(layout.dimension_recompute_key(name), b"")
    _move_if_there(storage, layout.staged_dimension_key(name), layout.validated_dimension_key(name))
    for reason in contract.reasons:
        live = layout.bad_records_key(name, reason, name)
        if reason in intent["bad_reasons"]:
            _move_if_there(storage, _staged_bad(name, reason), live)
        else:
            storage.delete(live)
    storage.write_bytes(layout.dimension_marker_key(name), intent["source"].encode())
    storage.delete(commit)


def _move_if_there(storage: Storage, src: str, dst: str) -> None:
    if storage.exists(src):
        storage.move(src, dst)


def _drop_staged(storage: Storage, contract: DatasetContract) -> None:
    storage.delete(layout.staged_dimension_key(contract.name))
    for reason in contract.reasons:
        storage.delete(_staged_bad(contract.name, reason))


def _staged_bad(name: str, reason: str) -> str:
    return layout.bad_records_key(name, reason, layout.staged_dimension_sid(name))


def _file_result(outcome: Outcome, status: str) -> FileResult:
    return FileResult(
        key=outcome.original_key,
        status=status,
        rows_in=outcome.rows_in,
        rows_valid=outcome.rows_valid,
        bad_by_reason=dict(outcome.bad_by_reason),
        error=outcome.file_error,
        message=outcome.message,
    )
