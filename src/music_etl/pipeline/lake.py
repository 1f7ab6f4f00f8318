"""Lake-level helpers for the CLI: create the layout, read the ledger."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime

from music_etl.adapters.ledger import FileRecord, RunRecord, open_ledger
from music_etl.adapters.storage import Storage, open_storage
from music_etl.errors import NotALake
from music_etl.logic import layout
from music_etl.pipeline.landing import Landing, scan
from music_etl.settings import Settings

_KEEP = ".keep"


def is_lake(storage: Storage) -> bool:
    """Whether `storage` stands in a lake: it holds the lake marker, or a `raw/` landing zone.

    The `raw/` rule adopts lakes made before the marker existed; `require_lake` then
    writes the marker for them.
    """
    if storage.exists(layout.LAKE_MARKER):
        return True
    return any(True for _ in storage.list("raw/"))


def require_lake(storage: Storage, *, adopt: bool = True) -> None:
    """Raise `NotALake` unless `storage` is a lake; nothing is written to a non-lake.

    With `adopt`, a lake from before the marker gets its marker (writers pass True,
    readers False).
    """
    if not is_lake(storage):
        raise NotALake(
            f"{storage.root} is not a music-etl lake (no {layout.LAKE_MARKER} and no raw/ "
            f"folder). Check --lake, or create one with `music-etl init --lake {storage.root}`."
        )
    if adopt and not storage.exists(layout.LAKE_MARKER):
        mark_lake(storage)


def mark_lake(storage: Storage) -> None:
    """Write the lake marker (idempotent: an existing marker is kept)."""
    if storage.exists(layout.LAKE_MARKER):
        return
    created = datetime.now(UTC).isoformat(timespec="seconds")
    marker = {"format": 1, "created": created, "tool": "music-streaming-etl"}
    storage.write_bytes(layout.LAKE_MARKER, json.dumps(marker).encode())


def init_lake(settings: Settings) -> list[str]:
    """Create the lake's folders (a marker object in each) and its ledger; return the prefixes."""
    with closing(open_storage(settings.lake, endpoint=settings.aws_endpoint)) as storage:
        mark_lake(storage)
        for prefix in layout.LAYOUT:
            if not any(True for _ in storage.list(prefix)):
                storage.write_bytes(prefix + _KEEP, b"")
    # Opening the ledger creates it (its tables, on SQLite).
    open_ledger(
        settings.ledger_url, endpoint=settings.aws_endpoint, busy_seconds=settings.lock_wait_seconds
    ).close()
    return list(layout.LAYOUT)


@dataclass(frozen=True, kw_only=True)
class LakeStatus:
    """The ledger's view of the lake."""

    files: list[FileRecord]
    runs: list[RunRecord]
    landing: Landing
    """What waits in raw/streams/ and what is never taken there, with the reason."""
    flagged_days: dict[str, int] = field(default_factory=dict)
    """Days the serving store (DynamoDB) holds without items it could not write: day -> count."""


def lake_status(settings: Settings, *, runs: int = 10) -> LakeStatus:
    """Every file record, the latest runs and the landing zone's entries not yet taken.

    Raises `NotALake` for a local path that names no lake, before the ledger (kept
    in `<lake>/_state/` by default) is opened: a mistyped path gets nothing created.
    An S3 lake keeps its ledger in DynamoDB, and `aws init` leaves its prefix empty.
    """
    with closing(open_storage(settings.lake, endpoint=settings.aws_endpoint)) as storage:
        if not settings.lake.startswith("s3://"):
            require_lake(storage, adopt=False)
        ledger = open_ledger(
            settings.ledger_url,
            endpoint=settings.aws_endpoint,
            busy_seconds=settings.lock_wait_seconds,
        )
        with closing(ledger):
            return LakeStatus(
                files=ledger.records(),
                runs=ledger.runs(runs),
                landing=scan(storage, settings.settle_seconds),
                flagged_days=_flagged_days(settings),
            )


def _flagged_days(settings: Settings) -> dict[str, int]:
    """The serving store's flagged days; only DynamoDB skips items (SQLite is not opened)."""
    if not settings.serving_url.startswith("dynamodb://"):
        return {}
    from music_etl.adapters.serving import open_serving
    from music_etl.adapters.serving.base import SkipsBadItems

    with closing(open_serving(settings.serving_url, endpoint=settings.aws_endpoint)) as serving:
        return serving.flagged_days() if isinstance(serving, SkipsBadItems) else {}
