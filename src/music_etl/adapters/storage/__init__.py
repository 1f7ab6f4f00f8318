"""Lake storage backends, chosen by the lake URL."""

from __future__ import annotations

from music_etl.adapters.storage.base import ObjectInfo, Storage

__all__ = ["ObjectInfo", "Storage", "open_storage"]


def open_storage(lake: str, *, endpoint: str = "") -> Storage:
    """`S3Storage` for `s3://bucket/prefix`; `LocalStorage` for a folder."""
    if lake.startswith("s3://"):
        from music_etl.adapters.storage.s3 import S3Storage

        return S3Storage(lake, endpoint=endpoint)
    from music_etl.adapters.storage.local import LocalStorage

    return LocalStorage(lake)
