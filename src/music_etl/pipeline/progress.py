"""How the pipeline reports progress: the CLI draws bars, tests and DAGs stay quiet."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives the pipeline's steps as they happen."""

    def step(self, name: str, total: int) -> None:
        """A step with `total` units of work starts."""
        ...

    def advance(self, units: int = 1) -> None:
        """`units` of the current step are done."""
        ...


class Silent:
    """Reports nothing."""

    def step(self, name: str, total: int) -> None:
        """Ignore the step."""

    def advance(self, units: int = 1) -> None:
        """Ignore the progress."""
