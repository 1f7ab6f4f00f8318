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

    def close(self) -> None:
        """Release what the backend holds (connections, clients); idempotent."""
        ...

    def scan(self, table: str) -> list[dict[str, Any]]:
        """Every item of `table`, ordered by key."""
        ...

    def days(self) -> list[str]:
        """Every day that has results (a `TopGenresPerDay` item), ascending."""
        ...

    def read(
        self, table: str, days: Sequence[str], *, sort_key: str | int | None = None
    ) -> list[dict[str, Any]]:
        """The items of `table` on `days` (only those with that sort key when given), by key.

        Reads one day's partition, not the table: what the serving API needs to stay fast
        on years of days.
        """
        ...

    def version(self) -> str:
        """An opaque token that changes whenever a `replace_days` commits (HTTP ETags)."""
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
