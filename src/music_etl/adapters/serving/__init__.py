"""Serving store backends, chosen by URL."""

from __future__ import annotations

from music_etl.adapters.serving.base import ServingStore
from music_etl.errors import ConfigError

__all__ = ["ServingStore", "open_serving"]


def open_serving(url: str) -> ServingStore:
    """`SQLiteServingStore` for `sqlite:///path`."""
    if url.startswith("sqlite:///"):
        from music_etl.adapters.serving.sqlite import SQLiteServingStore

        return SQLiteServingStore(url)
    raise ConfigError(f"Unsupported serving store {url!r}: use sqlite:///path.")
