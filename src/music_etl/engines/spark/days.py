"""The day tables: KPIs and rankings of some days, collected to the driver and written.

They are small (days x genres rows) and the serving store needs them as rows anyway,
so they are written from the driver, one Parquet file per (table, day).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql.types import StructType

from music_etl.adapters.storage.base import Storage
from music_etl.engines.outcomes import OUTPUTS
from music_etl.engines.spark import transform
from music_etl.engines.spark.output import write_rows
from music_etl.logic import layout
from music_etl.logic.contract import KPI_GROUP, TOP_GENRES, TOP_SONGS

#: Key order of each output table's rows.
_ROW_ORDER = {
    "daily_genre_kpis": KPI_GROUP,
    "top_songs": (*TOP_SONGS.partition, "rank"),
    "top_genres": (*TOP_GENRES.partition, "rank"),
}


@dataclass(frozen=True, kw_only=True)
class DayTable:
    """An output table collected to the driver, rows in key order."""

    schema: StructType
    rows: list[dict[str, Any]]

    @classmethod
    def collect(cls, name: str, frame: DataFrame) -> DayTable:
        """Collect `frame`, the output table called `name`."""
        rows = [row.asDict() for row in frame.collect()]
        return cls(schema=frame.schema, rows=sorted(rows, key=itemgetter(*_ROW_ORDER[name])))

    @property
    def file_schema(self) -> StructType:
        """The columns of a day file: `date` is its partition folder."""
        return StructType([f for f in self.schema.fields if f.name != "date"])

    def served(self) -> list[dict[str, Any]]:
        """Rows as the serving store takes them: the date as `YYYY-MM-DD`."""
        return [{**row, "date": row["date"].isoformat()} for row in self.rows]


@contextmanager
def persisted(frame: DataFrame) -> Iterator[DataFrame]:
    """`frame` cached for the block: it feeds several jobs."""
    cached = frame.persist()
    try:
        yield cached
    finally:
        cached.unpersist()


def day_tables(streams: DataFrame, songs: DataFrame, *, cache: bool) -> dict[str, DayTable]:
    """The three output tables of the valid rows `streams`, collected to the driver.

    The plays (narrow: no names) feed two aggregations: cached when `cache` says
    `streams` would otherwise be read twice from the lake, not when they are in memory.
    The KPIs (days x genres rows) feed their table and the genre ranking: cached.
    """
    joined = transform.plays(streams, songs)
    with (
        persisted(joined) if cache else nullcontext(joined) as joined,
        persisted(transform.kpis(joined)) as kpis,
    ):
        frames = {
            "daily_genre_kpis": kpis,
            "top_songs": transform.top_songs(joined, songs),
            "top_genres": transform.top_genres(kpis),
        }
        return {name: DayTable.collect(name, frame) for name, frame in frames.items()}


def write_day_tables(storage: Storage, days: Sequence[date], tables: dict[str, DayTable]) -> None:
    """One file per (table, day); a day without rows loses its old file."""
    for name in OUTPUTS:
        table = tables.get(name, DayTable(schema=StructType(), rows=[]))
        for day in days:
            key = layout.processed_key(name, day)
            part = [_without_date(row) for row in table.rows if row["date"] == day]
            if part:
                write_rows(storage, key, part, table.file_schema)
            else:
                storage.delete(key)


def _without_date(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "date"}
