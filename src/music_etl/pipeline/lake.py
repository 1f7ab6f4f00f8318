"""Lake-level helpers for the CLI: create the layout, read the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from music_etl.adapters.ledger import FileRecord, RunRecord, open_ledger
from music_etl.adapters.storage import open_storage
from music_etl.logic import layout
from music_etl.settings import Settings

_KEEP = ".keep"


def init_lake(settings: Settings) -> list[str]:
    """Create the lake's folders (a marker object in each) and its ledger; return the prefixes."""
    storage = open_storage(settings.lake, endpoint=settings.aws_endpoint)
    for prefix in layout.LAYOUT:
        if not any(True for _ in storage.list(prefix)):
            storage.write_bytes(prefix + _KEEP, b"")
    open_ledger(settings.ledger_url, endpoint=settings.aws_endpoint)
    return list(layout.LAYOUT)


@dataclass(frozen=True, kw_only=True)
class LakeStatus:
    """The ledger's view of the lake."""

    files: list[FileRecord]
    runs: list[RunRecord]


def lake_status(settings: Settings, *, runs: int = 10) -> LakeStatus:
    """Every file record and the latest runs."""
    ledger = open_ledger(settings.ledger_url, endpoint=settings.aws_endpoint)
    return LakeStatus(files=ledger.records(), runs=ledger.runs(runs))
