"""KPIs and rankings of the logic layer as Spark plans."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

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


def plays(streams: DataFrame, songs: DataFrame) -> DataFrame:
    """Each valid listen once per genre of its track, with the track's duration.

    Names stay out (`names` adds them to the few ranked rows): narrower rows to aggregate.
    """
    catalogue = songs.select("track_id", F.col("track_genre").alias("genre"), "duration_ms")
    listens = streams.select(F.to_date("listen_time").alias("date"), "user_id", "track_id")
    return listens.join(F.broadcast(catalogue), on="track_id", how="inner")


def names(ranked: DataFrame, songs: DataFrame) -> DataFrame:
    """`ranked` with each track's name and artists, from its (track, genre) song row."""
    catalogue = songs.select(
        "track_id", F.col("track_genre").alias("genre"), "track_name", "artists"
    )
    return ranked.join(F.broadcast(catalogue), on=["track_id", "genre"], how="left")


def metric_expr(metric: Metric) -> Column:
    """One aggregate of the KPI contract."""
    if metric.op == "count":
        return F.count(F.lit(1)).cast("long").alias(metric.name)
    if metric.op == "count_distinct":
        return F.countDistinct(metric.column).cast("long").alias(metric.name)
    if metric.op == "sum":
        return F.sum(metric.column).cast("long").alias(metric.name)
    raise ValueError(f"{metric.op} is not an aggregate")


def kpis(joined: DataFrame) -> DataFrame:
    """`daily_genre_kpis`: the KPI metrics per (date, genre)."""
    aggregates = [metric_expr(m) for m in KPI_METRICS if m.op != "ratio"]
    grouped = joined.groupBy(*KPI_GROUP).agg(*aggregates)
    for m in KPI_METRICS:
        if m.op == "ratio":
            ratio = F.col(m.numerator).cast("double") / F.col(m.denominator).cast("double")
            grouped = grouped.withColumn(m.name, ratio)
    return grouped.select(*DAILY_GENRE_KPIS_COLUMNS)


def top_n(frame: DataFrame, spec: TopN) -> DataFrame:
    """Rows ranked 1..n within each partition by the spec's order (ties already broken)."""
    order = [F.col(name).desc() if desc else F.col(name).asc() for name, desc in spec.order]
    window = Window.partitionBy(*spec.partition).orderBy(*order)
    ranked = frame.withColumn("rank", F.row_number().over(window).cast("long"))
    return ranked.where(F.col("rank") <= spec.n)


def top_songs(joined: DataFrame, songs: DataFrame) -> DataFrame:
    """`top_songs`: the most played tracks per (date, genre)."""
    counted = joined.groupBy(*TOP_SONGS.partition, "track_id").agg(
        F.count(F.lit(1)).cast("long").alias("play_count"),
    )
    return names(top_n(counted, TOP_SONGS), songs).select(*TOP_SONGS_COLUMNS)


def top_genres(daily_kpis: DataFrame) -> DataFrame:
    """`top_genres`: the genres with most listens per date."""
    return top_n(daily_kpis, TOP_GENRES).select(*TOP_GENRES_COLUMNS)
