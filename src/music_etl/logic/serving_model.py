"""The serving store's item shapes, derived from the output tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from music_etl.logic.contract import output_schemas
from music_etl.logic.rules import Kind

Row = Mapping[str, Any]

DAILY_GENRE_KPIS = "DailyGenreKPIs"
TOP_SONGS_PER_GENRE = "TopSongsPerGenre"
TOP_GENRES_PER_DAY = "TopGenresPerDay"
#: Serving tables: name -> (partition key, sort key).
SERVING_KEYS = {
    DAILY_GENRE_KPIS: ("date", "genre"),
    TOP_SONGS_PER_GENRE: ("date", "genre"),
    TOP_GENRES_PER_DAY: ("date", "rank"),
}
_SONG_FIELDS = ("rank", "track_id", "track_name", "artists", "play_count")
#: Serving attributes that hold a JSON document (SQLite stores it as text).
JSON_ATTRIBUTES = frozenset({"songs"})


def serving_schemas() -> dict[str, dict[str, Kind]]:
    """Each serving table's attributes and types, derived from the contract when called.

    `TopSongsPerGenre` holds the ranked songs of a (date, genre) as one `songs` document.

    Example:
        >>> list(serving_schemas()[TOP_SONGS_PER_GENRE])
        ['date', 'genre', 'songs']
    """
    outputs = output_schemas()
    return {
        DAILY_GENRE_KPIS: outputs["daily_genre_kpis"],
        TOP_SONGS_PER_GENRE: {"date": Kind.DATE, "genre": Kind.STRING, "songs": Kind.STRING},
        TOP_GENRES_PER_DAY: outputs["top_genres"],
    }


@dataclass(frozen=True, kw_only=True)
class DayResults:
    """The three output tables for a set of recomputed days, as plain rows."""

    days: tuple[str, ...]
    daily_genre_kpis: list[dict[str, Any]] = field(default_factory=list)
    top_songs: list[dict[str, Any]] = field(default_factory=list)
    top_genres: list[dict[str, Any]] = field(default_factory=list)


def serving_items(results: DayResults) -> dict[str, list[dict[str, Any]]]:
    """Items per serving table: the top songs of a (date, genre) become one item."""
    return {
        DAILY_GENRE_KPIS: [dict(row) for row in results.daily_genre_kpis],
        TOP_SONGS_PER_GENRE: _group_songs(results.top_songs),
        TOP_GENRES_PER_DAY: [dict(row) for row in results.top_genres],
    }


def _group_songs(rows: Iterable[Row]) -> list[dict[str, Any]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (r["date"], r["genre"], r["rank"])):
        song = {name: row[name] for name in _SONG_FIELDS}
        grouped.setdefault((row["date"], row["genre"]), []).append(song)
    return [{"date": d, "genre": g, "songs": songs} for (d, g), songs in grouped.items()]
