"""The single-day answers precomputed per serving-store version, like a materialized view.

The serving store changes only when a load commits (its `version()` moves). A background
thread (`Warmer`) reads every day's answer, newest day first, encodes it and the answer of
each of its genres' top songs, and keeps them in the server's `BodyCache` under the ETag a
request for them would carry; requests never wait for it (docs/api.md, "Caching").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from music_etl.serve import serving_views
from music_etl.serve.cache import BodyCache
from music_etl.serve.errors import ApiError
from music_etl.serve.sources import Sources

log = logging.getLogger(__name__)

#: Seconds between two looks at the store's version when no request brought news of one.
POLL_SECONDS = 2.0
#: The ETag of the answer to a path (no query) under a version.
Tagger = Callable[[str, str], str]


@dataclass(frozen=True)
class WarmStatus:
    """How far the warm-up of `version` has come: `days` kept; `done` once all are tried."""

    version: str | None = None
    days: int = 0
    done: bool = False

    def health(self) -> dict[str, Any]:
        """The `warm` field of `/api/v1/health`."""
        return {"days": self.days, "done": self.done}


class _Moved(Exception):
    """The store's version moved during the warm-up: start again for the new one."""


class Warmer:
    """One daemon thread keeping the single-day answers of the store's current version.

    At `start()` and whenever the version moves (a request saw it: `notice`, or the
    thread's own look every `POLL_SECONDS`), it warms the days newest first. Each day
    is read under the sources' lock between two `version()` calls; when they differ, or
    the cache has moved on, the warm restarts for the new version, so an answer read from
    one version is never kept under another. It stops early when the cache's byte budget
    is full (the newest days are kept; an older day is read on request as before).

    Example:
        >>> warmer = Warmer(sources, bodies, tagger)  # doctest: +SKIP
        >>> warmer.start(); warmer.status().health()  # doctest: +SKIP
        {'days': 0, 'done': False}
    """

    def __init__(
        self,
        sources: Sources,
        bodies: BodyCache,
        tagger: Tagger,
        prefix: str,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.sources, self.bodies, self.tagger = sources, bodies, tagger
        self.prefix = prefix
        self.poll_seconds = poll_seconds
        self._status = WarmStatus()
        self._seen: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self) -> WarmStatus:
        """The warm-up's progress for the newest version seen (not done while it is behind)."""
        status = self._status
        if self._seen is not None and self._seen != status.version:
            return WarmStatus(version=self._seen)
        return status

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="serve-warm", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end after the day it is on, and wait a little for it."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def notice(self, version: str) -> None:
        """A request saw `version`: wake the thread when it is not the one warmed."""
        if version != self._status.version:
            self._seen = version
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                version = self.sources.call(self.sources.serving.version)
                if version != self._status.version or not self._status.done:
                    self._warm(version)  # a new version, or a warm-up the store failed
            except _Moved:
                continue
            except Exception:  # the store failing: requests report it; look again later
                log.warning("Warming the day answers failed; trying again", exc_info=True)
            self._wake.wait(self.poll_seconds)

    def _warm(self, version: str) -> None:
        """Keep every day's answers of `version`, newest first, until done or full."""
        self._status = WarmStatus(version=version)
        started = time.monotonic()
        days = self.sources.call(self.sources.serving.days)
        for count, day in enumerate(reversed(days), start=1):
            if self._stopping.is_set():
                return
            if not self._warm_day(version, day):
                log.info("Warm-up stopped at %d days: the cache's byte budget is full", count - 1)
                break
            self._status = WarmStatus(version=version, days=count)
            time.sleep(0)  # let request threads have the interpreter between days
        self._status = WarmStatus(version=version, days=self._status.days, done=True)
        log.info(
            "Warmed %d days (%d bytes) in %.1f s",
            self._status.days,
            self.bodies.size,
            time.monotonic() - started,
        )

    def _warm_day(self, version: str, day: str) -> bool:
        """Keep `day`'s answer and its genres' top songs; False when the budget is full."""
        path = f"{self.prefix}/days/{day}"
        answer = self._read(version, day)
        if answer is None:
            return True
        kept = [(path, answer)]
        kept += [
            (f"{path}/genres/{genre}/top-songs", one)
            for genre, one in serving_views.top_songs_of(answer).items()
        ]
        for at, body in kept:
            if not self.bodies.add(version, self.tagger(version, at), orjson.dumps(body)):
                if self.bodies.version != version:
                    raise _Moved  # a request saw a newer version: the cache has left this one
                return False
        return True

    def _read(self, version: str, day: str) -> dict[str, Any] | None:
        """`day`'s answer as read under `version` (None when it has none), or `_Moved`."""
        store = self.sources.serving

        def read() -> tuple[str, dict[str, Any] | None, str]:
            before = store.version()
            try:
                answer = serving_views.one_day(store, day)
            except ApiError:  # the day went away under a load: the version moves too
                answer = None
            return before, answer, store.version()

        before, answer, after = self.sources.call(read)
        if before != version or after != version:
            raise _Moved
        return answer
