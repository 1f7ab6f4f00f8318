"""Fakes with failure injection, shipped so the crash and retry paths can be tested.

`Faulty` wraps any adapter and fails (raises, or kills the process as `kill -9`
would) on the Nth call of a method whose first argument starts with a prefix.

Example:
    >>> storage = Faulty(LocalStorage("./lake"), method="move", nth=1, crash=True)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from music_etl.errors import Retryable

CRASH_EXIT_CODE = 137


class InjectedFault(Retryable):
    """The failure a `Faulty` adapter was told to raise."""


class Faulty:
    """Delegates to `inner`; the `nth` matching call of `method` fails.

    With `delay` the call is only slow: it waits `delay` seconds, then goes on (a
    stalled disk or network, to interrupt a run at a known point).
    """

    def __init__(
        self,
        inner: Any,
        *,
        method: str,
        nth: int = 1,
        prefix: str = "",
        crash: bool = False,
        delay: float = 0.0,
    ) -> None:
        self._inner = inner
        self._method = method
        self._nth = nth
        self._prefix = prefix
        self._crash = crash
        self._delay = delay
        self._calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method or not callable(attr):
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self._matches(args):
                self._fail()
            return attr(*args, **kwargs)

        return wrapped

    def _matches(self, args: tuple[Any, ...]) -> bool:
        first = args[0] if args else ""
        if isinstance(first, str) and not first.startswith(self._prefix):
            return False
        with self._lock:
            self._calls += 1
            return self._calls == self._nth

    def _fail(self) -> None:
        if self._delay:
            time.sleep(self._delay)
            return
        if self._crash:
            os._exit(CRASH_EXIT_CODE)
        raise InjectedFault(f"injected failure in {self._method} (call {self._nth})")


class RewrittenBeforeMove:
    """Storage on which a writer replaces `key` with `data` just before it is first moved.

    It plays a slow uploader (or a rename over the landing key) racing the archive step.
    """

    def __init__(self, inner: Any, *, key: str, data: bytes) -> None:
        self._inner = inner
        self._key = key
        self._data = data
        self.rewritten = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def move(self, src: str, dst: str, *, if_fingerprint: str = "") -> None:
        """Rewrite `src` first if it is the watched key (once), then move it."""
        if src == self._key and not self.rewritten:
            self.rewritten = True
            self._inner.write_bytes(src, self._data)
        self._inner.move(src, dst, if_fingerprint=if_fingerprint)
