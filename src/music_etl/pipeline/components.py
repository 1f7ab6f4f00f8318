"""The adapters and engine one run works with, built from settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import TracebackType

from music_etl.adapters.ledger import Ledger, open_ledger
from music_etl.adapters.serving import ServingStore, open_serving
from music_etl.adapters.storage import Storage, open_storage
from music_etl.engines.base import Engine
from music_etl.engines.registry import make_engine
from music_etl.errors import LockHeld
from music_etl.pipeline.lake import require_lake
from music_etl.settings import Settings

LAKE_LOCK = "lake"
_POLL_SECONDS = 0.2


@dataclass(frozen=True, kw_only=True)
class Components:
    """Storage, ledger, serving store and engine for one lake; a context manager.

    Example:
        >>> with open_components(settings) as components:  # doctest: +SKIP
        ...     components.ledger.records()
    """

    settings: Settings
    storage: Storage
    ledger: Ledger
    serving: ServingStore
    engine: Engine

    def close(self) -> None:
        """Close the serving store, the ledger and the storage, each even if another fails.

        The engine is the caller's (a Spark session outlives one run in a Glue job).
        """
        with ExitStack() as stack:
            for adapter in (self.storage, self.ledger, self.serving):
                stack.callback(adapter.close)

    def __enter__(self) -> Components:
        """The components themselves; leaving the block closes them."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close every adapter, whether the block ended normally or not."""
        self.close()


def open_components(settings: Settings, engine: Engine | None = None) -> Components:
    """Open every adapter the settings name; nothing heavy is imported before it is needed.

    Refuses (`NotALake`) before anything is created when the lake path names no lake.
    Creates the DynamoDB tables the settings name that are missing (see `aws/tables.py`).
    `engine` replaces the one the settings name (discovery passes `NoEngine()`).
    """
    storage = open_storage(settings.lake, endpoint=settings.aws_endpoint)
    require_lake(storage)
    _ensure_dynamodb_tables(settings)
    return Components(
        settings=settings,
        storage=storage,
        ledger=open_ledger(
            settings.ledger_url,
            endpoint=settings.aws_endpoint,
            busy_seconds=settings.lock_wait_seconds,
        ),
        serving=open_serving(settings.serving_url, endpoint=settings.aws_endpoint),
        engine=engine or make_engine(settings.engine, storage, aws_endpoint=settings.aws_endpoint),
    )


def _ensure_dynamodb_tables(settings: Settings) -> None:
    urls = (settings.ledger_url, settings.serving_url)
    if any(url.startswith("dynamodb://") for url in urls):
        from music_etl.adapters.aws.setup import ensure_tables

        ensure_tables(serving=urls[1], ledger=urls[0], endpoint=settings.aws_endpoint)


@contextmanager
def lake_lock(components: Components, owner: str) -> Iterator[None]:
    """Hold the lake's lock: one runner at a time validates and recomputes days.

    Claims alone would keep files exactly once, but two runners validating at once
    could both accept one event (a duplicate across their files) or load a day
    computed without the other's rows; the lock serialises those steps.
    """
    settings = components.settings
    deadline = time.monotonic() + settings.lock_wait_seconds
    while not components.ledger.acquire_lock(LAKE_LOCK, owner, settings.lease_seconds):
        if time.monotonic() >= deadline:
            raise LockHeld(
                f"Another run holds the lock on {settings.lake}; try again when it has finished."
            )
        time.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        components.ledger.release_lock(LAKE_LOCK, owner)
