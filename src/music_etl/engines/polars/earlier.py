"""Valid rows that other files already put on given days, read once per batch."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import date

import polars as pl

from music_etl.adapters.storage.base import Storage
from music_etl.engines.polars.io import day_chunks, read_parquet

KEY_COLUMNS = ("user_id", "track_id", "listen_time")
#: Rows kept in memory between the duplicate check and the recomputation (~40 B a row).
CACHE_ROWS = 20_000_000
_EMPTY_SCHEMA = pl.Schema(
    {"user_id": pl.Int64(), "track_id": pl.String(), "listen_time": pl.Datetime("us", "UTC")}
)


class EarlierRows:
    """The key columns of valid rows on some days, from every source but `exclude`.

    The duplicate check and the recomputation of the same days both need these rows;
    up to `CACHE_ROWS` of them stay in memory so the second reader does not read them
    again. Beyond that, chunks are read as they are needed and memory stays bounded.
    """

    def __init__(self, storage: Storage, exclude: Collection[str]) -> None:
        self.storage = storage
        self.exclude = frozenset(exclude)
        self._cache: dict[date, pl.DataFrame] = {}
        self._cached_rows = 0

    def chunks(self, days: Iterable[date]) -> Iterator[tuple[list[date], pl.DataFrame]]:
        """(days, their rows) in groups of bounded size, cached days first."""
        wanted = sorted(set(days))
        cached = [day for day in wanted if day in self._cache]
        if cached:
            yield cached, pl.concat([self._cache[day] for day in cached])
        missing = [day for day in wanted if day not in self._cache]
        for chunk in day_chunks(self.storage, missing, self.exclude):
            by_day = {day: self._read(keys) for day, keys in chunk.files.items()}
            self._remember(by_day)
            yield chunk.days, pl.concat(by_day.values())

    def _read(self, keys: list[str]) -> pl.DataFrame:
        if not keys:
            return pl.DataFrame(schema=_EMPTY_SCHEMA)
        return read_parquet(self.storage, keys, KEY_COLUMNS)

    def _remember(self, by_day: dict[date, pl.DataFrame]) -> None:
        rows = sum(frame.height for frame in by_day.values())
        if self._cached_rows + rows > CACHE_ROWS:
            return
        self._cached_rows += rows
        self._cache.update(by_day)
