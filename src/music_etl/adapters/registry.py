"""Which ledger and serving store a URL names: one table, one error message.

A scheme maps to the factory of each role it can play; the backend modules (and boto3)
are imported only when a URL of theirs is opened. A new backend is one row here.

Example:
    >>> backend_for("sqlite:///lake/_state/ledger.sqlite", "ledger").scheme
    'sqlite:///'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from music_etl.adapters.sqlite_common import BUSY_SECONDS
from music_etl.errors import ConfigError

if TYPE_CHECKING:
    from music_etl.adapters.ledger.base import Ledger
    from music_etl.adapters.serving.base import ServingStore


@dataclass(frozen=True, kw_only=True)
class Options:
    """What an opener may pass on to a backend (each takes what applies to it)."""

    endpoint: str = ""
    """The AWS endpoint override (moto, LocalStack) unless the URL names one."""
    busy_seconds: float = BUSY_SECONDS
    """How long SQLite waits for another process's write lock."""
    read_only: bool = False
    """Open an existing store without writing to it (SQLite; DynamoDB writes only when asked)."""


LedgerFactory = Callable[[str, Options], "Ledger"]
ServingFactory = Callable[[str, Options], "ServingStore"]


@dataclass(frozen=True, kw_only=True)
class Backend:
    """One URL scheme and the factories of the roles its backend plays."""

    scheme: str
    example: str
    ledger: LedgerFactory
    serving: ServingFactory


def _sqlite_ledger(url: str, options: Options) -> Ledger:
    from music_etl.adapters.ledger.sqlite import SQLiteLedger

    return SQLiteLedger(url, busy_seconds=options.busy_seconds, read_only=options.read_only)


def _sqlite_serving(url: str, options: Options) -> ServingStore:
    from music_etl.adapters.serving.sqlite import SQLiteServingStore

    return SQLiteServingStore(url, read_only=options.read_only)


def _dynamodb_ledger(url: str, options: Options) -> Ledger:
    from music_etl.adapters.ledger.dynamodb import DynamoDBLedger

    return DynamoDBLedger(url, endpoint=options.endpoint)


def _dynamodb_serving(url: str, options: Options) -> ServingStore:
    from music_etl.adapters.serving.dynamodb import DynamoDBServingStore

    return DynamoDBServingStore(url, endpoint=options.endpoint)


BACKENDS = (
    Backend(
        scheme="sqlite:///",
        example="sqlite:///path",
        ledger=_sqlite_ledger,
        serving=_sqlite_serving,
    ),
    Backend(
        scheme="dynamodb://",
        example="dynamodb://?region=…",
        ledger=_dynamodb_ledger,
        serving=_dynamodb_serving,
    ),
)


def backend_for(url: str, role: str) -> Backend:
    """The backend whose scheme starts `url`; `ConfigError` naming every scheme otherwise.

    `role` names what the URL was given for (`ledger`, `serving store`) in the message.
    """
    for backend in BACKENDS:
        if url.startswith(backend.scheme):
            return backend
    supported = " or ".join(b.example for b in BACKENDS)
    raise ConfigError(f"Unsupported {role} {url!r}: use {supported}.")
