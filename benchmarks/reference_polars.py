"""Yardstick: the whole contract as one lazy Polars plan over every stream file.

Same validation as `music-etl run` (trim, every row reason in order, the same patterns,
first occurrence wins in file then line order) and the same KPIs, top songs and top genres,
but no ledger, no per-day files, no bad-record files: the fastest straightforward
Polars program for the job. `run_benchmark.py` times it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from music_etl.logic.rules import INTEGER_PATTERN, TIMESTAMP_PATTERN

_TRIM = " \t"
_SLACK = timedelta(hours=24)


def _trimmed(name: str) -> pl.Expr:
    value = pl.col(name).str.strip_chars(_TRIM)
    return pl.when(value != "").then(value).alias(name)


def _int64(name: str) -> pl.Expr:
    column = pl.col(name)
    return pl.when(column.str.contains(INTEGER_PATTERN)).then(column.cast(pl.Int64, strict=False))


def _timestamp(name: str) -> pl.Expr:
    column = pl.col(name)
    text = column.str.replace("T", " ", literal=True, n=1).str.head(19)
    value = text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False, cache=False)
    return pl.when(column.str.contains(TIMESTAMP_PATTERN)).then(value)


def _read(path: str | list[str]) -> pl.LazyFrame:
    return pl.scan_csv(
        path,
        infer_schema=False,
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
        row_index_name="_line",
    )


def songs(lake: Path) -> pl.LazyFrame:
    """Valid songs: keys present, integer duration, first (track_id, genre) row wins."""
    frame = _read(str(lake / "raw/songs/songs.csv")).select(
        "_line",
        *(_trimmed(c) for c in ("track_id", "track_genre", "track_name", "artists")),
        _trimmed("duration_ms"),
    )
    valid = frame.with_columns(_int64("duration_ms")).filter(
        pl.col("track_id").is_not_null()
        & pl.col("track_genre").is_not_null()
        & pl.col("duration_ms").is_not_null()
    )
    return valid.unique(["track_id", "track_genre"], keep="first", maintain_order=True).select(
        "track_id", pl.col("track_genre").alias("genre"), "duration_ms", "track_name", "artists"
    )


def users(lake: Path) -> pl.LazyFrame:
    """Valid user ids."""
    frame = _read(str(lake / "raw/users/users.csv")).select(_trimmed("user_id"))
    return frame.select(_int64("user_id")).drop_nulls().unique()


def judged(lake: Path, clock: datetime) -> pl.LazyFrame:
    """Every stream row with its parsed values and its reason (null when valid)."""
    files = sorted(str(p) for p in (lake / "raw/streams").glob("*.csv"))
    catalogue, known_users = songs(lake), users(lake)
    track_ids = catalogue.select("track_id").unique().collect().get_column("track_id")
    user_ids = known_users.collect().get_column("user_id")
    names = ("user_id", "track_id", "listen_time")
    frame = _read(files).select("_line", *(_trimmed(c) for c in names))
    typed = frame.with_columns(
        _int64("user_id").alias("uid"), _timestamp("listen_time").alias("ts")
    )
    limit = clock + _SLACK
    reason = (
        pl.when(pl.any_horizontal(pl.col(c).is_null() for c in names))
        .then(pl.lit("null_field"))
        .when(pl.col("uid").is_null())
        .then(pl.lit("bad_user_id"))
        .when(pl.col("ts").is_null())
        .then(pl.lit("bad_timestamp"))
        .when(pl.col("ts") > limit)
        .then(pl.lit("future_timestamp"))
        .when(~pl.col("track_id").is_in(track_ids.implode()))
        .then(pl.lit("unknown_track"))
        .when(~pl.col("uid").is_in(user_ids.implode()))
        .then(pl.lit("unknown_user"))
    )
    return typed.select(
        pl.col("uid").alias("user_id"),
        "track_id",
        pl.col("ts").alias("listen_time"),
        reason.alias("reason"),
    )


def compute(lake: str | Path, clock: datetime) -> dict[str, pl.DataFrame]:
    """The three output tables (and the rows per reason, `valid` for accepted rows)."""
    lake = Path(lake)
    rows = judged(lake, clock).collect()
    catalogue = songs(lake).collect()
    valid = rows.filter(pl.col("reason").is_null()).drop("reason")
    # Repeats of an accepted (user, track, time) are duplicates; which copy is kept does not
    # change any output, so no order is needed here.
    events = valid.unique(keep="any")
    duplicates = valid.height - events.height
    reasons = rows.group_by("reason").len().with_columns(pl.col("reason").fill_null("valid"))
    reasons = reasons.with_columns(
        pl.when(pl.col("reason") == "valid")
        .then(pl.col("len") - duplicates)
        .otherwise(pl.col("len"))
        .cast(pl.UInt32)
    )
    reasons = pl.concat(
        [
            reasons,
            pl.DataFrame(
                {"reason": ["duplicate_event"], "len": [duplicates]}, schema=reasons.schema
            ),
        ]
    )
    del rows, valid
    daily = events.lazy().select(
        pl.col("listen_time").dt.date().alias("date"), "user_id", "track_id"
    )
    plays = daily.join(
        catalogue.lazy().select("track_id", "genre", "duration_ms"), on="track_id", how="inner"
    )
    kpis = (
        plays.group_by("date", "genre")
        .agg(
            pl.len().cast(pl.Int64).alias("listen_count"),
            pl.col("user_id").n_unique().cast(pl.Int64).alias("unique_listeners"),
            pl.col("duration_ms").sum().alias("total_listening_time"),
        )
        .with_columns(
            (pl.col("total_listening_time") / pl.col("unique_listeners")).alias(
                "avg_listening_time"
            )
        )
    )
    counted = (
        daily.group_by("date", "track_id")
        .len("play_count")
        .join(catalogue.lazy(), on="track_id", how="inner")
    )
    top_songs = (
        counted.with_columns(pl.col("play_count").cast(pl.Int64))
        .sort(["date", "genre", "play_count", "track_id"], descending=[False, False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("date", "genre").alias("rank"))
        .filter(pl.col("rank") <= 3)
        .select("date", "genre", "rank", "track_id", "track_name", "artists", "play_count")
    )
    top_genres = (
        kpis.sort(["date", "listen_count", "genre"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("date").alias("rank"))
        .filter(pl.col("rank") <= 5)
        .select("date", "rank", "genre", "listen_count")
    )
    tables = [*pl.collect_all([kpis, top_songs, top_genres]), reasons]
    names = ("daily_genre_kpis", "top_songs", "top_genres", "reasons")
    return dict(zip(names, tables, strict=True))
