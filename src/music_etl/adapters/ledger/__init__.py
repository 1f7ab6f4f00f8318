"""Ledger backends, chosen by URL."""

from __future__ import annotations

from music_etl.adapters.ledger.base import FileRecord, Ledger, RunRecord
from music_etl.errors import ConfigError

__all__ = ["FileRecord", "Ledger", "RunRecord", "open_ledger"]


def open_ledger(url: str) -> Ledger:
    """`SQLiteLedger` for `sqlite:///path`."""
    if url.startswith("sqlite:///"):
        from music_etl.adapters.ledger.sqlite import SQLiteLedger

        return SQLiteLedger(url)
    raise ConfigError(f"Unsupported ledger {url!r}: use sqlite:///path.")
