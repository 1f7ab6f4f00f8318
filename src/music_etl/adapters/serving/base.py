"""The serving store contract: whole days replaced at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ServingStore(Protocol):
    """A key-value store holding `DailyGenreKPIs`, `TopSongsPerGenre`, `TopGenresPerDay`."""

    def replace_days(self, days: Sequence[str], items: dict[str, list[dict[str, Any]]]) -> None:
        """Make each of `days` hold exactly its `items` in every table (idempotent)."""
        ...

    def scan(self, table: str) -> list[dict[str, Any]]:
        """Every item of `table`, ordered by key."""
        ...
