"""`rebuild`: recreate all derived state from the archived and pending raw files."""

from __future__ import annotations

from datetime import datetime

from music_etl.adapters.ledger.base import DONE, new_owner
from music_etl.logic import layout
from music_etl.logic.contract import DIMENSIONS
from music_etl.logic.serving_model import SERVING_KEYS
from music_etl.pipeline.batch import Pending
from music_etl.pipeline.components import Components, lake_lock, open_components
from music_etl.pipeline.progress import Progress, Silent
from music_etl.pipeline.run import RunReport, run_with
from music_etl.settings import Settings

#: Derived folders of the dimensions (see `pipeline.dimensions`), which `rebuild` keeps.
_DIMENSION_PREFIXES = tuple(
    f"{top}{dim.name}/" for dim in DIMENSIONS for top in ("validated/", layout.BAD_RECORDS)
)


def rebuild(settings: Settings, progress: Progress | None = None) -> RunReport:
    """Wipe validated, bad-records, processed and the serving store, then replay every file.

    Archived files replay in the order they were first processed, each against the
    processing clock it had then, so the result equals the state before the wipe.
    """
    components = open_components(settings)
    owner = new_owner()
    with lake_lock(components, owner):
        archived = archived_files(components)
        wipe_derived(components)
        return run_with(components, progress or Silent(), extra=archived, owner=owner)


def archived_files(components: Components) -> list[Pending]:
    """The archive as pending files, in ledger order, each with its original clock."""
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
