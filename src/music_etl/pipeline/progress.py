"""How the pipeline reports progress and events: the CLI draws bars or logs, tests stay quiet.

One sink (`Progress`) goes through the whole pipeline. Its `step`/`advance` drive progress
bars; its `event` receives the run's milestones (`EVENTS`) with the counts the pipeline
already holds (nothing is counted twice). `JsonLines` writes each event as one JSON object
per line, stamped with the run id, the time and a level; `Tee` feeds several sinks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

#: The milestones of a run, in the order they happen for one file.
EVENTS = (
    "run_started",
    "file_claimed",
    "file_validated",
    "day_recomputed",
    "day_loaded",
    "file_archived",
    "run_finished",
)
#: Levels an event may carry; `-q` keeps only the last two.
LEVELS = ("debug", "info", "warning", "error")


class Progress(Protocol):
    """Receives the pipeline's steps and events as they happen."""

    def step(self, name: str, total: int) -> None:
        """A step with `total` units of work starts."""
        ...

    def advance(self, units: int = 1) -> None:
        """`units` of the current step are done."""
        ...

    def event(self, name: str, level: str = "info", **fields: Any) -> None:
        """A milestone (`EVENTS`) or a warning/error, with its facts as `fields`."""
        ...


class Silent:
    """Reports nothing."""

    def step(self, name: str, total: int) -> None:
        """Ignore the step."""

    def advance(self, units: int = 1) -> None:
        """Ignore the progress."""

    def event(self, name: str, level: str = "info", **fields: Any) -> None:
        """Ignore the event."""


class JsonLines(Silent):
    """Each event as one JSON object on its own line: `run_id`, `event`, `ts`, `level`, facts.

    The run id comes from the latest `run_started` event (empty before one). Events
    below `min_level` are dropped, but `run_finished` always goes out.

    Example:
        >>> log = JsonLines(sys.stderr)  # doctest: +SKIP
        >>> run(settings, log)  # doctest: +SKIP
    """

    def __init__(self, stream: TextIO | Callable[[], TextIO], min_level: str = "info") -> None:
        self._stream = stream
        self._min = LEVELS.index(min_level)
        self.run_id = ""

    def event(self, name: str, level: str = "info", **fields: Any) -> None:
        """Write the event as one line (and flush: a log follows it live)."""
        if name == "run_started":
            self.run_id = str(fields.get("run_id", ""))
        if LEVELS.index(level) < self._min and name != "run_finished":
            return
        line = {"run_id": self.run_id, "event": name, "ts": _now(), "level": level, **fields}
        stream = self._stream() if callable(self._stream) else self._stream
        stream.write(json.dumps(line, default=str) + "\n")
        stream.flush()


class Tee:
    """Feeds every sink: bars to one, events to another."""

    def __init__(self, *sinks: Progress) -> None:
        self._sinks = sinks

    def step(self, name: str, total: int) -> None:
        """Start the step in every sink."""
        for sink in self._sinks:
            sink.step(name, total)

    def advance(self, units: int = 1) -> None:
        """Advance every sink."""
        for sink in self._sinks:
            sink.advance(units)

    def event(self, name: str, level: str = "info", **fields: Any) -> None:
        """Hand the event to every sink."""
        for sink in self._sinks:
            sink.event(name, level, **fields)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
