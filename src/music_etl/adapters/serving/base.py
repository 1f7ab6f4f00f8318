"""The serving store contract: whole days replaced at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


class ServingStore(Protocol):
    """A key-value store holding `DailyGenreKPIs`, `TopSongsPerGenre`, `TopGenresPerDay`."""

    def replace_days(self, days: Sequence[str], items: dict[str, list[dict[str, Any]]]) -> None:
        """Make each of `days` hold exactly its `items` in every table (idempotent)."""
        ...

    def scan(self, table: str) -> list[dict[str, Any]]:
        """Every item of `table`, ordered by key."""
        ...


@dataclass(frozen=True, kw_only=True)
class SkippedItem:
    """An item the store could not write: which table, which key, why."""

    table: str
    day: str
    """The day whose load it belonged to (flagged as partial)."""
    key: dict[str, Any]
    reason: str


@runtime_checkable
class SkipsBadItems(Protocol):
    """A store that skips items it cannot write instead of failing the whole load."""

    last_skipped: list[SkippedItem]
    """What the last `replace_days` skipped (empty when every item was written)."""

    def flagged_days(self) -> dict[str, int]:
        """Every day loaded with skipped items: day -> how many."""
        ...
