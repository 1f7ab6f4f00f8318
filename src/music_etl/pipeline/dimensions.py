"""Keep the validated snapshots of `users.csv` and `songs.csv` in step with the raw files."""

from __future__ import annotations

from dataclasses import dataclass

from music_etl.engines.base import Outcome, Source
from music_etl.errors import DimensionError
from music_etl.logic import layout
from music_etl.logic.contract import DIMENSIONS, SONGS, DatasetContract
from music_etl.pipeline.components import Components

_RAW = {"songs": layout.RAW_SONGS, "users": layout.RAW_USERS}


@dataclass(frozen=True, kw_only=True)
class DimensionsReport:
    """What refreshing the dimensions did."""

    refreshed: dict[str, Outcome]
    songs_changed: bool
    """The song catalogue changed under existing results: every day needs recomputing."""


def refresh_dimensions(components: Components, *, force: bool = False) -> DimensionsReport:
    """Validate each dimension whose raw file changed since its snapshot."""
    refreshed = {}
    had_songs = components.storage.exists(layout.validated_dimension_key(SONGS.name))
    for contract in DIMENSIONS:
        outcome = _refresh(components, contract, force=force)
        if outcome is not None:
            refreshed[contract.name] = outcome
    return DimensionsReport(refreshed=refreshed, songs_changed=had_songs and "songs" in refreshed)


def _refresh(components: Components, contract: DatasetContract, *, force: bool) -> Outcome | None:
    storage = components.storage
    raw = _RAW[contract.name]
    snapshot = layout.validated_dimension_key(contract.name)
    if not storage.exists(raw):
        if storage.exists(snapshot):
            return None
        raise DimensionError(
            f"{raw} is missing from the lake {storage.root}: put {contract.name}.csv there "
            "(or run `music-etl generate` for sample data)."
        )
    digest = storage.content_hash(raw)
    marker = layout.dimension_marker_key(contract.name)
    if not force and storage.exists(marker) and storage.read_bytes(marker).decode() == digest:
        return None
    for reason in contract.reasons:
        storage.delete(layout.bad_records_key(contract.name, reason, contract.name))
    source = Source(key=raw, original_key=raw, sid=contract.name)
    outcome = components.engine.validate_dimension(contract, source)
    if outcome.file_error:
        raise DimensionError(f"{raw}: {outcome.message}. Fix the file and run again.")
    storage.write_bytes(marker, digest.encode())
    return outcome
