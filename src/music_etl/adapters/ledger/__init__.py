"""Ledger backends, chosen by URL (`adapters/registry.py`)."""

from __future__ import annotations

from music_etl.adapters.ledger.base import FileRecord, Ledger, RunRecord
from music_etl.adapters.registry import Options, backend_for
from music_etl.adapters.sqlite_common import BUSY_SECONDS

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
    options = Options(endpoint=endpoint, busy_seconds=busy_seconds, read_only=read_only)
    return backend_for(url, "ledger").ledger(url, options)
