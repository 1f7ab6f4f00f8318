"""Serving store backends, chosen by URL."""

from __future__ import annotations

from music_etl.adapters.serving.base import ServingStore
from music_etl.errors import ConfigError

__all__ = ["ServingStore", "open_serving"]


def open_serving(url: str, *, endpoint: str = "", read_only: bool = False) -> ServingStore:
    """`SQLiteServingStore` for `sqlite:///path`; `DynamoDBServingStore` for `dynamodb://…`.

    `endpoint` overrides the AWS endpoint (moto, LocalStack) unless the URL names one.
    `read_only` opens an existing SQLite store without writing to it (`serve`); a
    DynamoDB store writes only in `replace_days`, so it needs no such mode.
    """
    if url.startswith("sqlite:///"):
        from music_etl.adapters.serving.sqlite import SQLiteServingStore

        return SQLiteServingStore(url, read_only=read_only)
    if url.startswith("dynamodb://"):
        from music_etl.adapters.serving.dynamodb import DynamoDBServingStore

        return DynamoDBServingStore(url, endpoint=endpoint)
    raise ConfigError(
        f"Unsupported serving store {url!r}: use sqlite:///path or dynamodb://?region=…."
    )
