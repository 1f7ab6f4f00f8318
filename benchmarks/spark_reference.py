"""A hand-written, one-shot PySpark job of the data contract: the yardstick for `--engine spark`.

Written the way a data engineer writes a Glue job, straight from `docs/data-contract.md`
(not from the engine's code): read the CSVs as strings, trim, check with regexes, join
the dimensions by broadcast, find first occurrences and the top N with window functions,
write the lake's outputs. It knows one batch on an empty lake only (no earlier files, no
bad-row threshold, no ledger): the work the engine's first run does.

    python benchmarks/spark_reference.py LAKE OUT 2024-07-01T00:00:00Z

writes `OUT/validated/listen_date=…/`, `OUT/bad-records/reason=…/` and
`OUT/<table>/date=…/` for the three output tables.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

DIGITS = r"^[0-9]+\z"
TIMESTAMP = (
    r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])"
    r"-(0[1-9]|[12][0-9]|3[01])[ T]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z?\z"
)


def clean(name: str) -> Column:
    """Trimmed of spaces and tabs; empty is null."""
    value = F.expr(f"btrim(`{name}`, ' \t')")
    return F.when(value != "", value)


def as_long(name: str) -> Column:
    """Digits only, at most INT64_MAX; null otherwise."""
    return F.when(F.col(name).rlike(DIGITS), F.expr(f"try_cast(`{name}` AS BIGINT)"))


def as_time(name: str) -> Column:
    """The accepted timestamp spellings, real calendar instants only; null otherwise."""
    value = F.col(name)
    text = F.concat(F.substring(value, 1, 10), F.lit(" "), F.substring(value, 12, 8))
    return F.when(value.rlike(TIMESTAMP), F.try_to_timestamp(text, F.lit("yyyy-MM-dd HH:mm:ss")))


def read_csv(spark: SparkSession, path: str, *, multiline: bool = False) -> DataFrame:
    """Every column a string, named by the header."""
    return (
        spark.read.option("header", "true")
        .option("multiLine", str(multiline).lower())
        .option("escape", '"')
        .csv(path)
    )


def first_only(frame: DataFrame, key: list[str], order: list[str]) -> DataFrame:
    """The first row of each key in `order`."""
    number = F.row_number().over(Window.partitionBy(*key).orderBy(*order))
    return frame.withColumn("_n", number).where("_n = 1").drop("_n")


def songs(spark: SparkSession, lake: Path) -> DataFrame:
    """Valid song rows: keys present, a duration, first row per (track, genre)."""
    raw = read_csv(spark, str(lake / "raw/songs/songs.csv"), multiline=True)
    rows = raw.select(
        F.monotonically_increasing_id().alias("pos"),
        clean("track_id").alias("track_id"),
        clean("track_genre").alias("genre"),
        clean("track_name").alias("track_name"),
        clean("artists").alias("artists"),
        clean("duration_ms").alias("duration_text"),
    ).select("*", as_long("duration_text").alias("duration_ms"))
    ok = rows.where("track_id IS NOT NULL AND genre IS NOT NULL AND duration_ms IS NOT NULL")
    return first_only(ok, ["track_id", "genre"], ["pos"]).select(
        "track_id", "genre", "track_name", "artists", "duration_ms"
    )


def users(spark: SparkSession, lake: Path) -> DataFrame:
    """Valid user ids."""
    raw = read_csv(spark, str(lake / "raw/users/users.csv"))
    ids = raw.select(clean("user_id").alias("user_id")).select(as_long("user_id").alias("user_id"))
    return ids.where("user_id IS NOT NULL")


def judged(spark: SparkSession, lake: Path, now: datetime) -> DataFrame:
    """Every stream row with its raw values, parsed values and first failing reason."""
    raw = read_csv(spark, str(lake / "raw/streams/*.csv"))
    rows = raw.select(
        F.input_file_name().alias("source_file"),
        F.monotonically_increasing_id().alias("pos"),
        F.col("user_id").alias("raw_user_id"),
        F.col("track_id").alias("raw_track_id"),
        F.col("listen_time").alias("raw_listen_time"),
        clean("user_id").alias("uid_text"),
        clean("track_id").alias("track_id"),
        clean("listen_time").alias("time_text"),
    ).select("*", as_long("uid_text").alias("user_id"), as_time("time_text").alias("listen_time"))
    known = F.lit(True)  # noqa: FBT003 - a literal column
    tracks = songs(spark, lake).select("track_id", known.alias("known_track")).distinct()
    people = users(spark, lake).select("user_id", known.alias("known_user")).distinct()
    rows = rows.join(F.broadcast(tracks), "track_id", "left")
    rows = rows.join(F.broadcast(people), "user_id", "left")
    limit = F.lit(now + timedelta(hours=24))
    reason = (
        F.when(
            F.col("uid_text").isNull() | F.col("track_id").isNull() | F.col("time_text").isNull(),
            "null_field",
        )
        .when(F.col("user_id").isNull(), "bad_user_id")
        .when(F.col("listen_time").isNull(), "bad_timestamp")
        .when(F.col("listen_time") > limit, "future_timestamp")
        .when(F.col("known_track").isNull(), "unknown_track")
        .when(F.col("known_user").isNull(), "unknown_user")
    )
    rows = rows.withColumn("reason", reason)
    order = [F.col("reason").isNotNull(), "source_file", "pos"]
    repeat = F.row_number().over(
        Window.partitionBy("user_id", "track_id", "listen_time").orderBy(*order)
    )
    duplicate = F.col("reason").isNull() & (repeat > 1)
    return rows.withColumn(
        "reason", F.when(duplicate, "duplicate_event").otherwise(F.col("reason"))
    )


def top(frame: DataFrame, partition: list[str], order: list[Column], n: int) -> DataFrame:
    """Rows ranked 1..n within `partition`."""
    rank = F.row_number().over(Window.partitionBy(*partition).orderBy(*order))
    return frame.withColumn("rank", rank.cast("long")).where(F.col("rank") <= n)


def main(lake: Path, out: Path, now: datetime) -> None:
    """Validate the landing zone of `lake`, write the outputs under `out`."""
    from music_etl.engines.spark.session import spark_session  # the engine's session conf

    spark = spark_session()
    rows = judged(spark, lake, now).cache()
    valid = rows.where("reason IS NULL")
    valid.select(
        "user_id",
        "track_id",
        "listen_time",
        "source_file",
        F.to_date("listen_time").alias("listen_date"),
    ).write.partitionBy("listen_date").parquet(str(out / "validated"))
    rows.where("reason IS NOT NULL").select(
        F.col("raw_user_id").alias("user_id"),
        F.col("raw_track_id").alias("track_id"),
        F.col("raw_listen_time").alias("listen_time"),
        "source_file",
        "reason",
    ).write.partitionBy("reason").parquet(str(out / "bad-records"))
    catalogue = songs(spark, lake)
    plays = valid.select(F.to_date("listen_time").alias("date"), "user_id", "track_id").join(
        F.broadcast(catalogue), "track_id"
    )
    kpis = (
        plays.groupBy("date", "genre")
        .agg(
            F.count(F.lit(1)).alias("listen_count"),
            F.countDistinct("user_id").alias("unique_listeners"),
            F.sum("duration_ms").alias("total_listening_time"),
        )
        .withColumn("avg_listening_time", F.col("total_listening_time") / F.col("unique_listeners"))
        .cache()
    )
    kpis.write.partitionBy("date").parquet(str(out / "daily_genre_kpis"))
    counted = plays.groupBy("date", "genre", "track_id", "track_name", "artists").agg(
        F.count(F.lit(1)).alias("play_count")
    )
    order = [F.col("play_count").desc(), F.col("track_id")]
    top(counted, ["date", "genre"], order, 3).write.partitionBy("date").parquet(
        str(out / "top_songs")
    )
    order = [F.col("listen_count").desc(), F.col("genre")]
    top(kpis.select("date", "genre", "listen_count"), ["date"], order, 5).write.partitionBy(
        "date"
    ).parquet(str(out / "top_genres"))
    spark.stop()


if __name__ == "__main__":
    clock = datetime.fromisoformat(sys.argv[3].replace("Z", "+00:00")).astimezone(UTC)
    main(Path(sys.argv[1]), Path(sys.argv[2]), clock)
