"""Serving store backends, chosen by URL (`adapters/registry.py`)."""

from __future__ import annotations

from music_etl.adapters.registry import Options, backend_for
from music_etl.adapters.serving.base import ServingStore

__all__ = ["ServingStore", "open_serving"]


def open_serving(url: str, *, endpoint: str = "", read_only: bool = False) -> ServingStore:
    """`SQLiteServingStore` for `sqlite:///path`; `DynamoDBServingStore` for `dynamodb://…`.

    `endpoint` overrides the AWS endpoint (moto, LocalStack) unless the URL names one.
    `read_only` opens an existing SQLite store without writing to it (`serve`); a
    DynamoDB store writes only in `replace_days`, so it needs no such mode.
    """
    options = Options(endpoint=endpoint, read_only=read_only)
    return backend_for(url, "serving store").serving(url, options)
