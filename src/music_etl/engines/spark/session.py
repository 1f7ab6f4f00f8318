"""The Spark session the engine runs on, and the settings the contract depends on.

On Glue, EMR, a notebook or under `spark-submit`, a master is already configured and the
existing session is used. Run from plain Python (`music-etl run --engine spark`), a local
session is started with `LOCAL_DEFAULTS`.
"""

from __future__ import annotations

from pyspark import SparkConf
from pyspark.sql import SparkSession

#: SQL settings the contract needs, applied to whichever session the engine runs on.
CONTRACT_CONF = {
    # Dates are UTC dates; parsed timestamps are UTC instants.
    "spark.sql.session.timeZone": "UTC",
    # A failed cast or an overflow raises instead of silently becoming null or wrapping:
    # every parse the contract allows to fail is an explicit `try_` function behind a pattern.
    "spark.sql.ansi.enabled": "true",
    # The Java 8 time parser, never the legacy one (which aborts on `2024-6-5 1:2:3`).
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    # Parquet `TIMESTAMP(MICROS, UTC)` as the embedded engine writes, not INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # Proleptic Gregorian dates as they are: year 0001 is written, not refused.
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.compression.codec": "zstd",
}

#: Settings for how the engine reads the lake, applied the same way.
ENGINE_CONF = {
    # The engine names the files it reads (one per source file and day): list them on
    # the driver rather than with a Spark job of one task per path (Spark's default
    # from 32 paths), which costs more than it saves for a few hundred objects.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "1024",
}

#: Only when no master is configured (plain `python`): a local session on this machine.
LOCAL_DEFAULTS = {
    "spark.master": "local[*]",
    "spark.app.name": "music-etl",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.memory": "4g",
    "spark.sql.shuffle.partitions": "8",
}


def spark_session() -> SparkSession:
    """The active Spark session (a local one if none is configured), set up for the contract.

    Example:
        >>> spark = spark_session()  # doctest: +SKIP
        >>> spark.conf.get("spark.sql.session.timeZone")  # doctest: +SKIP
        'UTC'
    """
    builder = SparkSession.builder
    local = not SparkConf().contains("spark.master")
    if local:
        for key, value in LOCAL_DEFAULTS.items():
            builder = builder.config(key, value)
    session = builder.getOrCreate()
    if local:  # a command-line run: Spark's warnings are not the user's business
        session.sparkContext.setLogLevel("ERROR")
    configure(session)
    return session


def configure(session: SparkSession) -> None:
    """Apply `CONTRACT_CONF` and `ENGINE_CONF` to `session` (runtime settings only)."""
    for key, value in {**CONTRACT_CONF, **ENGINE_CONF}.items():
        session.conf.set(key, value)
