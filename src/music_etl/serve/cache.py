"""Encoded answers of the endpoints, kept until the store they were read from changes."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

#: Bytes of encoded answers kept: two years of precomputed single-day answers (730 days of
#: 110 genres: ~44 MB of `/days/{day}` and ~30 MB of `…/top-songs`, measured) and room to spare.
DEFAULT_MAX_BYTES = 128 * 2**20
#: Versions remembered as left: a request that read one of them can neither be served from,
#: nor empty, the answers of the version that replaced it.
_RETIRED_KEPT = 64


class BodyCache:
    """Answers by ETag for one store version, least recently used out first.

    Every answer of a serving endpoint is a function of the store's version, the path and
    the query, which its ETag hashes; so a kept body is served as long as the version holds,
    and a new version empties the cache (the old bodies can never be asked for again). A
    version the cache has left never comes back (`version()` tokens only move forward), so
    a late reader of an old version is answered None and leaves the new answers in place.
    Thread-safe: request handlers and the warm-up run in threads.

    Example:
        >>> cache = BodyCache(max_bytes=10)
        >>> cache.put("v1", "tag", b"{}")
        >>> cache.get("v1", "tag"), cache.get("v2", "tag"), cache.get("v1", "tag")
        (b'{}', None, None)
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._version: str | None = None
        self._retired: deque[str] = deque(maxlen=_RETIRED_KEPT)
        self._mutex = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes of the bodies kept."""
        return self._size

    @property
    def version(self) -> str | None:
        """The version whose answers are kept (None before the first)."""
        return self._version

    def get(self, version: str, tag: str) -> bytes | None:
        """The body kept for `tag` under `version`, or None."""
        with self._mutex:
            if not self._follow(version):
                return None
            body = self._bodies.get(tag)
            if body is not None:
                self._bodies.move_to_end(tag)
            return body

    def has(self, version: str, tag: str) -> bool:
        """Whether `tag` is kept under `version`, without making it the most recent."""
        with self._mutex:
            return self._follow(version) and tag in self._bodies

    def put(self, version: str, tag: str, body: bytes) -> None:
        """Keep `body` for `tag` under `version`, dropping the oldest beyond `max_bytes`.

        A body read under a version the cache has already left (a load committed while it
        was being read) is not kept, and does not empty the newer answers.
        """
        self.add(version, tag, body, evict=True)

    def add(self, version: str, tag: str, body: bytes, *, evict: bool = False) -> bool:
        """Keep `body` for `tag` under `version`; False when not kept.

        Without `evict`, a body that does not fit beside those kept is refused rather than
        pushing older ones out (the warm-up stops there instead of churning the cache).
        """
        if len(body) > self.max_bytes:
            return False
        body = memoryview(body).tobytes()  # exact size: orjson's output keeps ~4 KB spare
        with self._mutex:
            if not self._follow(version):
                return False
            previous = self._bodies.pop(tag, None)
            grown = len(body) - (len(previous) if previous is not None else 0)
            if not evict and self._size + grown > self.max_bytes:
                if previous is not None:
                    self._bodies[tag] = previous
                return False
            self._size += grown
            self._bodies[tag] = body
            while self._size > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._size -= len(dropped)
            return True

    def _follow(self, version: str) -> bool:
        """Move to `version` (emptying the cache) unless it is one already left; False then."""
        if version == self._version:
            return True
        if version in self._retired:
            return False
        if self._version is not None:
            self._retired.append(self._version)
        self._bodies.clear()
        self._size = 0
        self._version = version
        return True
