"""Encoded answers of the serving endpoints, kept until the serving store changes."""

from __future__ import annotations

import threading
from collections import OrderedDict

#: Bytes of encoded answers kept (two years of `/days/{day}` answers take about 45 MB).
DEFAULT_MAX_BYTES = 64 * 2**20


class BodyCache:
    """Answers by ETag for one `ServingStore.version()`, least recently used out first.

    Every answer of a serving endpoint is a function of the store's version, the path and
    the query, which its ETag hashes; so a kept body is served as long as the version holds,
    and a new version empties the cache (the old bodies can never be asked for again).
    Thread-safe: request handlers run in a thread pool.

    Example:
        >>> cache = BodyCache(max_bytes=10)
        >>> cache.put("v1", "tag", b"{}")
        >>> cache.get("v1", "tag"), cache.get("v2", "tag")
        (b'{}', None)
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._version: str | None = None
        self._mutex = threading.Lock()

    def get(self, version: str, tag: str) -> bytes | None:
        """The body kept for `tag` under `version`, or None."""
        with self._mutex:
            self._follow(version)
            body = self._bodies.get(tag)
            if body is not None:
                self._bodies.move_to_end(tag)
            return body

    def put(self, version: str, tag: str, body: bytes) -> None:
        """Keep `body` for `tag` under `version`, dropping the oldest beyond `max_bytes`.

        A body read under a version the cache has already left (a load committed while it
        was being read) is not kept, and does not empty the newer answers.
        """
        if len(body) > self.max_bytes:
            return
        with self._mutex:
            if self._version is None:
                self._version = version
            if version != self._version:
                return
            previous = self._bodies.pop(tag, None)
            self._size += len(body) - (len(previous) if previous is not None else 0)
            self._bodies[tag] = body
            while self._size > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._size -= len(dropped)

    def _follow(self, version: str) -> None:
        """Empty the cache when the store has moved on to another version."""
        if version != self._version:
            self._bodies.clear()
            self._size = 0
            self._version = version
