"""The serving store's endpoints as plain dicts: one day's partitions, never a table scan."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

from music_etl.adapters.serving.base import ServingStore, SkipsBadItems
from music_etl.logic import contract
from music_etl.logic.rules import Kind
from music_etl.logic.serving_model import (
    DAILY_GENRE_KPIS,
    TOP_GENRES_PER_DAY,
    TOP_SONGS_PER_GENRE,
)
from music_etl.serve.errors import NO_SUCH_DAY, NO_SUCH_GENRE, ApiError
from music_etl.serve.params import DayRange, today


def days(store: ServingStore) -> dict[str, Any]:
    """`/days`: every day with results, ascending, and the latest."""
    found = store.days()
    return {"days": found, "latest": found[-1] if found else None}


def latest_day(store: ServingStore) -> date:
    """The latest day with results (today in UTC when there is none): a range's default end."""
    found = store.days()
    return date.fromisoformat(found[-1]) if found else today()


def one_day(store: ServingStore, day: str) -> dict[str, Any]:
    """`/days/{day}`: the genre KPIs, the top genres, the top songs per genre, the flag."""
    genres = store.read(TOP_GENRES_PER_DAY, [day])
    if not genres:
        raise ApiError(
            404, NO_SUCH_DAY, f"No results on {day}: GET /api/v1/days lists the days that have."
        )
    casts = metric_casts()
    return {
        "date": day,
        "kpis": [_kpi(row, "genre", casts) for row in store.read(DAILY_GENRE_KPIS, [day])],
        "top_genres": [_top_genre(row) for row in genres],
        "top_songs": [
            {"genre": row["genre"], "songs": _songs(row)}
            for row in store.read(TOP_SONGS_PER_GENRE, [day])
        ],
        "flagged": _flagged(store, day),
    }


def top_songs(store: ServingStore, day: str, genre: str) -> dict[str, Any]:
    """`/days/{day}/genres/{genre}/top-songs`: one item of `TopSongsPerGenre`."""
    rows = store.read(TOP_SONGS_PER_GENRE, [day], sort_key=genre)
    if not rows:
        raise ApiError(
            404,
            NO_SUCH_GENRE,
            f"No genre {genre!r} on {day}: GET /api/v1/days/{day} lists that day's genres.",
        )
    return {"date": day, "genre": genre, "songs": _songs(rows[0])}


def trend(store: ServingStore, genre: str, span: DayRange) -> dict[str, Any]:
    """`/genres/{genre}/trend`: the genre's KPIs on each day of `span` that has them."""
    wanted = [day for day in store.days() if span.holds(day)]
    rows = store.read(DAILY_GENRE_KPIS, wanted, sort_key=genre) if wanted else []
    if not rows:
        raise ApiError(
            404,
            NO_SUCH_GENRE,
            f"No results for genre {genre!r} from {span.start} to {span.end}: check the "
            "spelling (GET /api/v1/days/{day} lists a day's genres) or widen from/to.",
        )
    casts = metric_casts()
    return {**_ends(span), "genre": genre, "points": [_kpi(row, "date", casts) for row in rows]}


def top_genres(store: ServingStore, span: DayRange) -> dict[str, Any]:
    """`/top-genres`: the ranked genres of each day of `span` that has results."""
    wanted = [day for day in store.days() if span.holds(day)]
    per_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in store.read(TOP_GENRES_PER_DAY, wanted) if wanted else []:
        per_day[row["date"]].append(_top_genre(row))
    return {**_ends(span), "days": [{"date": d, "genres": g} for d, g in sorted(per_day.items())]}


def _ends(span: DayRange) -> dict[str, str]:
    return {"from": span.start.isoformat(), "to": span.end.isoformat()}


#: How a KPI of each kind is typed in an answer, and named in the OpenAPI description.
JSON_KINDS: dict[Kind, tuple[Callable[[Any], Any], str]] = {
    Kind.INT64: (int, "integer"),
    Kind.FLOAT64: (float, "number"),
}
#: A metric's name and how its value is typed.
Casts = tuple[tuple[str, Callable[[Any], Any]], ...]


def metric_casts() -> Casts:
    """The contract's KPI metrics in order, each with its cast (read once per answer)."""
    return tuple((m.name, JSON_KINDS[m.kind][0]) for m in contract.KPI_METRICS)


def _kpi(row: dict[str, Any], first: str, casts: Casts) -> dict[str, Any]:
    """A KPI row: `first` (genre or date), then every metric of the contract, typed.

    A metric added to the contract after a day was loaded is null on that day until
    the day is recomputed.
    """
    answer = {first: row[first]}
    for name, cast in casts:
        value = row.get(name)
        answer[name] = None if value is None else cast(value)
    return answer


def _top_genre(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "rank": int(row["rank"]),
        "genre": row["genre"],
        "listen_count": int(row["listen_count"]),
    }


def _songs(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "rank": int(song["rank"]),
            "track_id": song["track_id"],
            "track_name": song["track_name"],
            "artists": song["artists"],
            "play_count": int(song["play_count"]),
        }
        for song in sorted(row["songs"], key=_rank)
    ]


def _rank(song: dict[str, Any]) -> int:
    return int(song["rank"])


def _flagged(store: ServingStore, day: str) -> int:
    return store.flagged_days().get(day, 0) if isinstance(store, SkipsBadItems) else 0


def top_songs_of(day_answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each genre's `top_songs` answer, cut from its day's `one_day` answer (no read)."""
    day = day_answer["date"]
    return {
        row["genre"]: {"date": day, "genre": row["genre"], "songs": row["songs"]}
        for row in day_answer["top_songs"]
    }
