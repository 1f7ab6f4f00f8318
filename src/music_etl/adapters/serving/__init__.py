"""Serving store backends, chosen by URL."""

from __future__ import annotations

from music_etl.adapters.serving.base import ServingStore
from music_etl.errors import ConfigError

__all__ = ["ServingStore", "open_serving"]


def open_serving(url: str, *, endpoint: str = "") -> ServingStore:
    """`SQLiteServingStore` for `sqlite:///path`; `DynamoDBServingStore` for `dynamodb://…`.

    `endpoint` overrides the AWS endpoint (moto, LocalStack) unless the URL names one.
    """
    if url.startswith("sqlite:///"):
        from music_etl.adapters.serving.sqlite import SQLiteServingStore

        return SQLiteServingStore(url)
    if url.startswith("dynamodb://"):
        from music_etl.adapters.serving.dynamodb import DynamoDBServingStore

        return DynamoDBServingStore(url, endpoint=endpoint)
    raise ConfigError(
        f"Unsupported serving store {url!r}: use sqlite:///path or dynamodb://?region=…."
    )
