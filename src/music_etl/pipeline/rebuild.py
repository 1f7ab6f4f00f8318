"""`rebuild`: recreate all derived state from the archived and pending raw files."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from music_etl.adapters.ledger.base import DONE, new_owner
from music_etl.errors import ArchiveIncomplete
from music_etl.logic import layout
from music_etl.logic.contract import DIMENSIONS
from music_etl.logic.serving_model import SERVING_KEYS
from music_etl.pipeline.archive import locate, versions
from music_etl.pipeline.batch import Pending
from music_etl.pipeline.components import Components, lake_lock, open_components
from music_etl.pipeline.progress import Progress, Silent
from music_etl.pipeline.run import RunReport, run_with
from music_etl.settings import Settings

#: Derived folders of the dimensions (see `pipeline.dimensions`), which `rebuild` keeps.
_DIMENSION_PREFIXES = tuple(
    f"{top}{dim.name}/" for dim in DIMENSIONS for top in ("validated/", layout.BAD_RECORDS)
)


def rebuild(
    settings: Settings, progress: Progress | None = None, *, allow_missing: bool = False
) -> RunReport:
    """Wipe validated, bad-records, processed and the serving store, then replay every version.

    Every processed version replays in the order it was processed, each against the
    processing clock it had then, so the result equals the live state before the wipe.
    If the archive lacks a version, nothing is wiped and `ArchiveIncomplete` names every
    missing one; `allow_missing` goes on without them (and the report lists them).
    """
    owner = new_owner()
    with open_components(settings) as components, lake_lock(components, owner):
        archived, missing = replay_plan(components)
        if missing and not allow_missing:
            raise ArchiveIncomplete(
                f"rebuild would lose data: {len(missing)} processed version(s) are not in the "
                f"archive: {'; '.join(missing)}. Put them back, or pass --allow-missing to "
                "rebuild without them. Nothing was changed."
            )
        wipe_derived(components)
        report = run_with(
            components, progress or Silent(), extra=archived, owner=owner, command="rebuild"
        )
        return replace(report, missing=tuple(missing))


def replay_plan(components: Components) -> tuple[list[Pending], list[str]]:
    """Every processed version in processing order, and those whose bytes are gone.

    Archived files that no manifest names (lakes from before manifests) follow, in
    ledger order.
    """
    storage = components.storage
    sizes = {
        info.key: info.size
        for prefix in (layout.ARCHIVE_STREAMS, layout.ARCHIVE_VERSIONS, layout.RAW_STREAMS)
        for info in storage.list(prefix)
    }
    plan: list[Pending] = []
    missing: list[str] = []
    replayed: dict[str, str] = {}
    for version in versions(storage):
        where = locate(storage, version)
        if where is None:
            missing.append(f"{version.file_key} (content {version.content_hash[:12]})")
            continue
        if replayed.get(version.file_key) == version.content_hash:
            continue  # the version between them is missing: nothing changes
        replayed[version.file_key] = version.content_hash
        plan.append(
            Pending(
                key=where,
                content_hash=version.content_hash,
                size=sizes.get(where, 0),
                clock=version.clock,
            )
        )
    named = {p.key for p in plan}
    return plan + [p for p in archived_files(components) if p.key not in named], missing


def archived_files(components: Components) -> list[Pending]:
    """The latest archived files as pending files, in ledger order, with their clocks."""
    storage = components.storage
    order = {r.file_key: (i, r) for i, r in enumerate(components.ledger.records())}
    found = []
    for info in storage.list(layout.ARCHIVE_STREAMS):
        if not info.key.lower().endswith(".csv"):
            continue
        position, record = order.get(layout.original_key(info.key), (len(order), None))
        clock = (
            datetime.fromisoformat(record.processed_at) if record and record.processed_at else None
        )
        if record is not None and record.status != DONE:
            clock = None
        pending = Pending(
            key=info.key, content_hash=storage.content_hash(info.key), size=info.size, clock=clock
        )
        found.append((position, info.key, pending))
    return [pending for _, _, pending in sorted(found, key=lambda item: item[:2])]


def wipe_derived(components: Components) -> None:
    """Delete every derived object, every serving day and every file record.

    The dimension snapshots in force and their bad records stay: they may come from an
    earlier `users.csv`/`songs.csv` than the raw one, which may have been rejected.
    """
    storage = components.storage
    for prefix in layout.DERIVED_PREFIXES:
        for info in storage.list(prefix):
            if not info.key.startswith(_DIMENSION_PREFIXES):
                storage.delete(info.key)
    days = sorted(
        {item["date"] for table in SERVING_KEYS for item in components.serving.scan(table)}
    )
    components.serving.replace_days(days, {})
    components.ledger.forget_files()
