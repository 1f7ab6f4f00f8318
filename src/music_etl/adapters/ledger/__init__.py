"""Ledger backends, chosen by URL."""

from __future__ import annotations

from music_etl.adapters.ledger.base import FileRecord, Ledger, RunRecord
from music_etl.errors import ConfigError

__all__ = ["FileRecord", "Ledger", "RunRecord", "open_ledger"]


def open_ledger(url: str, *, endpoint: str = "") -> Ledger:
    """`SQLiteLedger` for `sqlite:///path`; `DynamoDBLedger` for `dynamodb://?region=…`.

    `endpoint` overrides the AWS endpoint (moto, LocalStack) unless the URL names one.
    """
    if url.startswith("sqlite:///"):
        from music_etl.adapters.ledger.sqlite import SQLiteLedger

        return SQLiteLedger(url)
    if url.startswith("dynamodb://"):
        from music_etl.adapters.ledger.dynamodb import DynamoDBLedger

        return DynamoDBLedger(url, endpoint=endpoint)
    raise ConfigError(f"Unsupported ledger {url!r}: use sqlite:///path or dynamodb://?region=….")
