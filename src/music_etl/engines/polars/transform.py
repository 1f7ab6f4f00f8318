"""KPIs and rankings of the logic layer as Polars plans."""

from __future__ import annotations

import polars as pl

from music_etl.logic.contract import (
    DAILY_GENRE_KPIS_COLUMNS,
    KPI_GROUP,
    KPI_METRICS,
    TOP_GENRES,
    TOP_GENRES_COLUMNS,
    TOP_SONGS,
    TOP_SONGS_COLUMNS,
    Metric,
    TopN,
)


def plays(streams: pl.LazyFrame, songs: pl.LazyFrame) -> pl.LazyFrame:
    """Each valid listen once per genre of its track, with the track's duration."""
    catalogue = songs.select("track_id", pl.col("track_genre").alias("genre"), "duration_ms")
    return streams.select(
        pl.col("listen_time").dt.date().alias("date"), "user_id", "track_id"
    ).join(catalogue, on="track_id", how="inner")


def metric_expr(metric: Metric) -> pl.Expr:
    """One aggregate of the KPI contract."""
    if metric.op == "count":
        return pl.len().cast(pl.Int64).alias(metric.name)
    if metric.op == "count_distinct":
        return pl.col(metric.column).n_unique().cast(pl.Int64).alias(metric.name)
    if metric.op == "sum":
        return pl.col(metric.column).sum().cast(pl.Int64).alias(metric.name)
    raise ValueError(f"{metric.op} is not an aggregate")


def kpis(joined: pl.LazyFrame) -> pl.LazyFrame:
    """`daily_genre_kpis`: the KPI metrics per (date, genre)."""
    aggregates = [metric_expr(m) for m in KPI_METRICS if m.op != "ratio"]
    ratios = [
        (pl.col(m.numerator).cast(pl.Float64) / pl.col(m.denominator)).alias(m.name)
        for m in KPI_METRICS
        if m.op == "ratio"
    ]
    return (
        joined.group_by(list(KPI_GROUP))
        .agg(aggregates)
        .with_columns(ratios)
        .select(DAILY_GENRE_KPIS_COLUMNS)
    )


def top_n(frame: pl.LazyFrame, spec: TopN) -> pl.LazyFrame:
    """Rows ranked 1..n within each partition by the spec's order (ties already broken)."""
    by = [*spec.partition, *(name for name, _ in spec.order)]
    descending = [False] * len(spec.partition) + [desc for _, desc in spec.order]
    ranked = frame.sort(by, descending=descending).with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64).over(list(spec.partition)) + 1).alias("rank")
    )
    return ranked.filter(pl.col("rank") <= spec.n)


def top_songs(joined: pl.LazyFrame, songs: pl.LazyFrame) -> pl.LazyFrame:
    """`top_songs`: the most played tracks per (date, genre), named after ranking."""
    counted = joined.group_by([*TOP_SONGS.partition, "track_id"]).agg(
        pl.len().cast(pl.Int64).alias("play_count")
    )
    names = songs.select("track_id", pl.col("track_genre").alias("genre"), "track_name", "artists")
    ranked = top_n(counted, TOP_SONGS)
    return ranked.join(names, on=["track_id", "genre"], how="left").select(TOP_SONGS_COLUMNS)


def top_genres(daily_kpis: pl.LazyFrame) -> pl.LazyFrame:
    """`top_genres`: the genres with most listens per date."""
    return top_n(daily_kpis, TOP_GENRES).select(TOP_GENRES_COLUMNS)
