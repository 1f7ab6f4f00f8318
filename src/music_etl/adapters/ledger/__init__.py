"""Ledger backends, chosen by URL."""

from __future__ import annotations

from music_etl.adapters.ledger.base import FileRecord, Ledger, RunRecord
from music_etl.adapters.sqlite_common import BUSY_SECONDS
from music_etl.errors import ConfigError

__all__ = ["FileRecord", "Ledger", "RunRecord", "open_ledger"]


def open_ledger(
    url: str, *, endpoint: str = "", busy_seconds: float = BUSY_SECONDS, read_only: bool = False
) -> Ledger:
    """`SQLiteLedger` for `sqlite:///path`; `DynamoDBLedger` for `dynamodb://?region=…`.

    `endpoint` overrides the AWS endpoint (moto, LocalStack) unless the URL names one.
    `busy_seconds` bounds how long SQLite waits for another process's write lock
    (callers pass the `lock_wait_seconds` setting); it ends in `LockHeld`.
    `read_only` opens an existing SQLite ledger without writing to it (`serve`); the
    DynamoDB ledger writes only when asked to, so it needs no such mode.
    """
    if url.startswith("sqlite:///"):
        from music_etl.adapters.ledger.sqlite import SQLiteLedger

        return SQLiteLedger(url, busy_seconds=busy_seconds, read_only=read_only)
    if url.startswith("dynamodb://"):
        from music_etl.adapters.ledger.dynamodb import DynamoDBLedger

        return DynamoDBLedger(url, endpoint=endpoint)
    raise ConfigError(f"Unsupported ledger {url!r}: use sqlite:///path or dynamodb://?region=….")
