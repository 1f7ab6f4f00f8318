"""KPIs and rankings of the logic layer as Polars plans.

Listens are counted per (date, track) before the catalogue is joined: a day has far
fewer tracks than listens, so every metric but the distinct count runs on those
counts. Track ids become integer codes first (an `Enum` over the catalogue), which
makes the grouping and the one listen-level join integer work, not string hashing;
codes are given in string order, so rankings sort integers too.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from music_etl.engines.outcomes import OUTPUTS
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

_CODE = "_track"
_GENRE_CODE = "_genre"
_PLAYS = "play_count"
_DAY_OFFSET = 1 << 31
_LOW = 1 << 32


def tables(streams: pl.LazyFrame, songs: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """`daily_genre_kpis`, `top_songs` and `top_genres` of `streams`' valid listens.

    A listen counts once per genre of its track; listens of tracks the catalogue
    no longer holds count nowhere.
    """
    codes = _sorted_enum(songs.get_column("track_id"))
    catalogue = _catalogue(songs, codes)
    listens = (
        streams.select(
            pl.col("listen_time").dt.date().alias("date"),
            "user_id",
            pl.col("track_id").cast(codes, strict=False).to_physical().alias(_CODE),
        )
        .filter(pl.col(_CODE).is_not_null())
        .collect()
        .rechunk()
        .lazy()
    )
    plays = (
        _count_by(listens, _CODE, pl.len().cast(pl.Int64).alias(_PLAYS))
        .join(catalogue.lazy(), on=_CODE, how="inner")
        .collect()
        .lazy()
    )
    per_genre = listens.join(catalogue.lazy().select(_CODE, _GENRE_CODE), on=_CODE, how="inner")
    kpis, ranked = pl.collect_all([_kpis(plays, per_genre), top_songs(plays)])
    results = (kpis, ranked, top_genres(kpis.lazy()).collect())
    return dict(zip(OUTPUTS, results, strict=True))


def _count_by(frame: pl.LazyFrame, code: str, *aggregates: pl.Expr) -> pl.LazyFrame:
    """`aggregates` per (date, `code`), grouped on the two packed into one integer.

    One 64-bit key hashes faster than two columns. The date's day number is offset
    to be non-negative and takes the high 32 bits, the code the low 32 bits.
    """
    day = pl.col("date").cast(pl.Int32).cast(pl.Int64) + _DAY_OFFSET
    packed = (day.cast(pl.UInt64) * _LOW + pl.col(code).cast(pl.UInt64)).alias("_key")
    return (
        frame.group_by(packed)
        .agg(*aggregates)
        .select(
            ((pl.col("_key") // _LOW).cast(pl.Int64) - _DAY_OFFSET)
            .cast(pl.Int32)
            .cast(pl.Date)
            .alias("date"),
            (pl.col("_key") % _LOW).cast(frame.collect_schema()[code]).alias(code),
            pl.exclude("_key"),
        )
    )


def _sorted_enum(values: pl.Series) -> pl.Enum:
    """An `Enum` of the distinct values whose codes sort as the strings do."""
    return pl.Enum(values.drop_nulls().unique().sort())


def _catalogue(songs: pl.DataFrame, codes: pl.Enum) -> pl.DataFrame:
    """One row per (track, genre) with the track's and the genre's integer codes."""
    genres = _sorted_enum(songs.get_column("track_genre"))
    return songs.select(
        pl.col("track_id").cast(codes).to_physical().alias(_CODE),
        pl.col("track_genre").cast(genres).to_physical().alias(_GENRE_CODE),
        "track_id",
        pl.col("track_genre").alias("genre"),
        "duration_ms",
        "track_name",
        "artists",
    )


def _kpis(plays: pl.LazyFrame, per_genre: pl.LazyFrame) -> pl.LazyFrame:
    """`daily_genre_kpis`: the KPI metrics per (date, genre)."""
    group = [*KPI_GROUP, _GENRE_CODE]
    summed = plays.group_by(group).agg(
        _from_plays(m) for m in KPI_METRICS if m.op in ("count", "sum")
    )
    distinct = _count_by(
        per_genre,
        _GENRE_CODE,
        *(
            pl.col(m.column).n_unique().cast(pl.Int64).alias(m.name)
            for m in KPI_METRICS
            if m.op == "count_distinct"
        ),
    )
    ratios = [
        (pl.col(m.numerator).cast(pl.Float64) / pl.col(m.denominator)).alias(m.name)
        for m in KPI_METRICS
        if m.op == "ratio"
    ]
    return (
        summed.join(distinct, on=["date", _GENRE_CODE], how="inner")
        .with_columns(ratios)
        .select(DAILY_GENRE_KPIS_COLUMNS)
    )


def _from_plays(metric: Metric) -> pl.Expr:
    """A count, or a sum of a catalogue column, from listens counted per (date, track)."""
    if metric.op == "count":
        return pl.col(_PLAYS).sum().cast(pl.Int64).alias(metric.name)
    return (pl.col(_PLAYS) * pl.col(metric.column)).sum().cast(pl.Int64).alias(metric.name)


def top_n(frame: pl.LazyFrame, spec: TopN, codes: Mapping[str, str] | None = None) -> pl.LazyFrame:
    """Rows ranked 1..n within each partition by the spec's order (ties already broken).

    `codes` names, for some columns, an integer column in the same order to sort by.
    """
    codes = codes or {}
    by = [codes.get(c, c) for c in (*spec.partition, *(name for name, _ in spec.order))]
    descending = [False] * len(spec.partition) + [desc for _, desc in spec.order]
    ranked = frame.sort(by, descending=descending).with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64).over(by[: len(spec.partition)]) + 1).alias("rank")
    )
    return ranked.filter(pl.col("rank") <= spec.n)


def top_songs(plays: pl.LazyFrame) -> pl.LazyFrame:
    """`top_songs`: the most played tracks per (date, genre)."""
    by_code = {"track_id": _CODE, "genre": _GENRE_CODE}
    return top_n(plays, TOP_SONGS, by_code).select(TOP_SONGS_COLUMNS)


def top_genres(daily_kpis: pl.LazyFrame) -> pl.LazyFrame:
    """`top_genres`: the genres with most listens per date."""
    return top_n(daily_kpis, TOP_GENRES).select(TOP_GENRES_COLUMNS)
