"""Lake storage backends, chosen by the lake URL."""

from __future__ import annotations

from music_etl.adapters.storage.base import ObjectInfo, Storage

__all__ = ["ObjectInfo", "Storage", "open_storage"]


def open_storage(lake: str, *, endpoint: str = "") -> Storage:
    """`LocalStorage` for a folder; S3 storage for `s3://bucket/prefix`."""
    if lake.startswith("s3://"):
        from music_etl.errors import ConfigError

        raise ConfigError("S3 lakes are not available in this build yet; use a local folder.")
    from music_etl.adapters.storage.local import LocalStorage

    del endpoint
    return LocalStorage(lake)
