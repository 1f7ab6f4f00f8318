"""The Polars transform on integer codes gives the contract's tables exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from music_etl.engines.polars import transform


def _songs(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "track_id": [r[0] for r in rows],
            "track_genre": [r[1] for r in rows],
            "track_name": [f"name of {r[0]}" for r in rows],
            "artists": [f"artist of {r[0]}" for r in rows],
            "duration_ms": [r[2] for r in rows],
        },
        schema={
            "track_id": pl.String,
            "track_genre": pl.String,
            "track_name": pl.String,
            "artists": pl.String,
            "duration_ms": pl.Int64,
        },
    )


def _streams(rows: list[tuple[int, str, datetime]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "user_id": [r[0] for r in rows],
            "track_id": [r[1] for r in rows],
            "listen_time": [r[2] for r in rows],
        },
        schema={
            "user_id": pl.Int64,
            "track_id": pl.String,
            "listen_time": pl.Datetime("us", "UTC"),
        },
    )


def _at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


DAY = date(2024, 6, 1)
#: Before 1970: day numbers are negative.
OLD = date(1, 1, 1)


def test_ties_rank_by_track_id_whatever_the_catalogue_order() -> None:
    # The catalogue lists tracks in reverse string order; "b10" < "b9" as strings.
    songs = _songs([("z", "pop", 10), ("b9", "pop", 10), ("b10", "pop", 10), ("a", "rock", 10)])
    streams = _streams([(u, t, _at(DAY)) for u, t in ((1, "z"), (2, "b9"), (3, "b10"))])
    top = transform.tables(streams, songs)["top_songs"]
    assert top.select("rank", "track_id").rows() == [(1, "b10"), (2, "b9"), (3, "z")]


def test_multi_genre_tracks_count_in_each_genre_and_unknown_tracks_nowhere() -> None:
    songs = _songs([("t1", "pop", 100), ("t1", "rock", 200), ("t2", "pop", 50)])
    streams = _streams(
        [
            (1, "t1", _at(DAY, 1)),
            (1, "t1", _at(DAY, 2)),
            (2, "t2", _at(DAY, 3)),
            (3, "gone", _at(DAY, 4)),
            (4, "t2", _at(OLD)),
        ]
    )
    tables = transform.tables(streams, songs)
    kpis = tables["daily_genre_kpis"].sort("date", "genre")
    assert kpis.rows() == [
        (OLD, "pop", 1, 1, 50, 50.0),
        (DAY, "pop", 3, 2, 250, 125.0),
        (DAY, "rock", 2, 1, 400, 400.0),
    ]
    top = tables["top_songs"].filter(pl.col("date") == DAY).sort("genre", "rank")
    assert top.select("genre", "rank", "track_id", "play_count").rows() == [
        ("pop", 1, "t1", 2),
        ("pop", 2, "t2", 1),
        ("rock", 1, "t1", 2),
    ]
    genres = tables["top_genres"].sort("date", "rank")
    assert genres.select("date", "rank", "genre", "listen_count").rows() == [
        (OLD, 1, "pop", 1),
        (DAY, 1, "pop", 3),
        (DAY, 2, "rock", 2),
    ]


@pytest.mark.parametrize(
    ("streams", "songs"),
    [
        ([], [("t1", "pop", 1)]),
        ([(1, "t1", _at(DAY))], []),
    ],
    ids=["no-listens", "empty-catalogue"],
)
def test_nothing_to_count_gives_empty_tables_with_the_contract_columns(
    streams: list[tuple[int, str, datetime]], songs: list[tuple[str, str, int]]
) -> None:
    tables = transform.tables(_streams(streams), _songs(songs))
    assert {name: table.height for name, table in tables.items()} == {
        "daily_genre_kpis": 0,
        "top_songs": 0,
        "top_genres": 0,
    }
    assert tables["top_songs"].columns == [
        "date",
        "genre",
        "rank",
        "track_id",
        "track_name",
        "artists",
        "play_count",
    ]
