"""What `serve` reads: the serving store and the ledger, opened read-only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass, field
from typing import TypeVar

from music_etl.adapters.ledger import Ledger, open_ledger
from music_etl.adapters.serving import ServingStore, open_serving
from music_etl.adapters.storage import open_storage
from music_etl.pipeline.lake import require_lake
from music_etl.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Sources:
    """The serving store and ledger the API reads, and how calls to them are serialised.

    Request handlers run in worker threads; a SQLite connection is shared by them, so
    its calls take `lock` one at a time (DynamoDB clients are thread-safe: no lock).
    `quick`, when set, is that same lock, and says the serving store's `version()` is a
    local read (SQLite's `PRAGMA data_version`) the event loop may make itself.
    """

    serving: ServingStore
    ledger: Ledger
    lock: Callable[[], AbstractContextManager[object]] = field(default=nullcontext)
    quick: threading.Lock | None = None

    def call(self, read: Callable[[], T]) -> T:
        """`read()` under the lock."""
        with self.lock():
            return read()

    def quick_version(self) -> str | None:
        """The serving store's version if it can be had without waiting, else None.

        None for a remote store (DynamoDB: a network call) and while a worker thread
        holds the SQLite lock: the event loop never blocks on either.
        """
        if self.quick is None or not self.quick.acquire(blocking=False):
            return None
        try:
            return self.serving.version()
        finally:
            self.quick.release()


def open_sources(settings: Settings) -> Sources:
    """Open the lake's serving store and ledger without writing anything.

    A local lake must be one (`NotALake`, nothing created); SQLite files are opened
    read-only (missing: a `ConfigError` saying to run the pipeline first). DynamoDB
    tables are not created here, unlike `open_components`: a missing table is an error
    on the first request.
    """
    if not settings.lake.startswith("s3://"):
        with closing(open_storage(settings.lake, endpoint=settings.aws_endpoint)) as storage:
            require_lake(storage, adopt=False)
    endpoint = settings.aws_endpoint
    sqlite = any(
        url.startswith("sqlite:///") for url in (settings.serving_url, settings.ledger_url)
    )
    mutex = threading.Lock()
    local_serving = settings.serving_url.startswith("sqlite:///")
    return Sources(
        serving=open_serving(settings.serving_url, endpoint=endpoint, read_only=True),
        ledger=open_ledger(
            settings.ledger_url,
            endpoint=endpoint,
            busy_seconds=settings.lock_wait_seconds,
            read_only=True,
        ),
        lock=(lambda: mutex) if sqlite else nullcontext,
        quick=mutex if local_serving else None,
    )
