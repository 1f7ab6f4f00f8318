"""The data contract of `shared/DESIGN.md`, written once.

Every engine reads these objects; nothing else in the code base lists a
column, a reason or a ranking rule. See `docs/data-contract.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from music_etl.logic.rules import (
    FirstOccurrence,
    InReference,
    Kind,
    NotAfterClock,
    NotNull,
    ParseInt64,
    ParseTimestamp,
    Rule,
)

#: File-level reasons: the whole file is quarantined, no row is loaded.
MISSING_COLUMN = "missing_column"
UNREADABLE_FILE = "unreadable_file"
TOO_MANY_BAD_ROWS = "too_many_bad_rows"
#: A dimension file without a single valid row (a header alone, or nothing).
EMPTY_FILE = "empty_file"
FILE_REASONS = (MISSING_COLUMN, UNREADABLE_FILE, TOO_MANY_BAD_ROWS, EMPTY_FILE)


@dataclass(frozen=True, kw_only=True)
class DatasetContract:
    """What a raw CSV must contain and the ordered rules each row must pass."""

    name: str
    #: Columns the file must have, with the type each has once valid.
    columns: dict[str, Kind]
    #: Columns kept as strings when present, never required.
    optional: tuple[str, ...]
    rules: tuple[Rule, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """Row-level reasons in the order they are checked."""
        return tuple(dict.fromkeys(rule.reason for rule in self.rules))


STREAMS = DatasetContract(
    name="streams",
    columns={"user_id": Kind.INT64, "track_id": Kind.STRING, "listen_time": Kind.TIMESTAMP},
    optional=(),
    rules=(
        NotNull(reason="null_field", columns=("user_id", "track_id", "listen_time")),
        ParseInt64(reason="bad_user_id", column="user_id"),
        ParseTimestamp(reason="bad_timestamp", column="listen_time"),
        NotAfterClock(reason="future_timestamp", column="listen_time", slack=timedelta(hours=24)),
        InReference(reason="unknown_track", column="track_id", reference="songs"),
        InReference(reason="unknown_user", column="user_id", reference="users"),
        FirstOccurrence(
            reason="duplicate_event", key=("user_id", "track_id", "listen_time"), across_files=True
        ),
    ),
)

SONGS = DatasetContract(
    name="songs",
    columns={
        "track_id": Kind.STRING,
        "track_genre": Kind.STRING,
        "track_name": Kind.STRING,
        "artists": Kind.STRING,
        "duration_ms": Kind.INT64,
    },
    optional=("album_name", "popularity"),
    rules=(
        NotNull(reason="null_field", columns=("track_id", "track_genre")),
        ParseInt64(reason="bad_duration_ms", column="duration_ms"),
        FirstOccurrence(
            reason="duplicate_song", key=("track_id", "track_genre"), across_files=False
        ),
    ),
)

USERS = DatasetContract(
    name="users",
    columns={"user_id": Kind.INT64},
    optional=("user_name", "user_age", "user_country", "created_at"),
    rules=(
        NotNull(reason="null_field", columns=("user_id",)),
        ParseInt64(reason="bad_user_id", column="user_id"),
        FirstOccurrence(reason="duplicate_user", key=("user_id",), across_files=False),
    ),
)

DIMENSIONS = (SONGS, USERS)

#: Columns every bad record carries besides the raw values of the dataset's columns.
BAD_RECORD_COLUMNS = ("reason", "source_file", "source_line")

#: Columns of a validated stream row, in order; `listen_date` is the partition folder.
VALID_STREAM_COLUMNS = (
    "user_id",
    "track_id",
    "listen_time",
    "source_file",
    "source_line",
    "listen_date",
)


#: The aggregates a KPI may be: a typo in `Metric.op` is a type error, not a run-time one.
MetricOp = Literal["count", "count_distinct", "sum", "ratio"]


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One aggregate of a group: `count`, `count_distinct`, `sum` or `ratio`."""

    name: str
    op: MetricOp
    column: str = ""
    numerator: str = ""
    denominator: str = ""

    @property
    def kind(self) -> Kind:
        """The type of the KPI: a ratio is a float, every other aggregate an integer."""
        return Kind.FLOAT64 if self.op == "ratio" else Kind.INT64


@dataclass(frozen=True, kw_only=True)
class TopN:
    """Rank rows within `partition` by `order` (column, descending) and keep ranks 1..n."""

    partition: tuple[str, ...]
    n: int
    order: tuple[tuple[str, bool], ...]


#: KPIs per (date, genre) over the streams joined with songs (one row per genre of a track).
KPI_GROUP = ("date", "genre")
KPI_METRICS = (
    Metric(name="listen_count", op="count"),
    Metric(name="unique_listeners", op="count_distinct", column="user_id"),
    Metric(name="total_listening_time", op="sum", column="duration_ms"),
    Metric(
        name="avg_listening_time",
        op="ratio",
        numerator="total_listening_time",
        denominator="unique_listeners",
    ),
)
TOP_SONGS = TopN(
    partition=("date", "genre"), n=3, order=(("play_count", True), ("track_id", False))
)
TOP_GENRES = TopN(partition=("date",), n=5, order=(("listen_count", True), ("genre", False)))

#: Columns of a `top_songs` row besides its (date, genre) and rank.
_SONG_COLUMNS = {
    "track_id": Kind.STRING,
    "track_name": Kind.STRING,
    "artists": Kind.STRING,
    "play_count": Kind.INT64,
}


def output_schemas() -> dict[str, dict[str, Kind]]:
    """Each output table's columns, in order, with their types.

    Derived from `KPI_GROUP` and `KPI_METRICS` when called, so a new metric reaches
    every store that reads this (the SQLite serving store, the Glue catalog, the
    Athena DDL) with no other edit.

    Example:
        >>> list(output_schemas()["top_genres"])
        ['date', 'rank', 'genre', 'listen_count']
    """
    group = {"date": Kind.DATE, "genre": Kind.STRING}
    kpis = {m.name: m.kind for m in KPI_METRICS}
    return {
        "daily_genre_kpis": {**{c: group[c] for c in KPI_GROUP}, **kpis},
        "top_songs": {**group, "rank": Kind.INT64, **_SONG_COLUMNS},
        "top_genres": {
            "date": Kind.DATE,
            "rank": Kind.INT64,
            "genre": Kind.STRING,
            TOP_GENRES.order[0][0]: kpis[TOP_GENRES.order[0][0]],
        },
    }


def output_tables() -> dict[str, tuple[str, ...]]:
    """Each output table's column names, in order (see `output_schemas`)."""
    return {name: tuple(columns) for name, columns in output_schemas().items()}


#: Output tables and their columns: the contract Athena, dashboards and checks read.
OUTPUT_TABLES = output_tables()
DAILY_GENRE_KPIS_COLUMNS = OUTPUT_TABLES["daily_genre_kpis"]
TOP_SONGS_COLUMNS = OUTPUT_TABLES["top_songs"]
TOP_GENRES_COLUMNS = OUTPUT_TABLES["top_genres"]
