"""The Spark session the engine runs on, and the settings the contract depends on.

On Glue, EMR, a notebook or under `spark-submit`, a master is already configured and the
existing session is used. Run from plain Python (`music-etl run --engine spark`), a local
session is started with `LOCAL_DEFAULTS`.

S3: Glue and EMR read the lake's `s3://` URIs through EMRFS. A local session maps `s3://` to
Hadoop's S3A connector instead (`LOCAL_S3`), which needs the `hadoop-aws` jar of Spark's
Hadoop line and its AWS SDK bundle on `spark.jars` (`docs/spark-engine.md#s3`). With an
endpoint override (`aws_endpoint`: MinIO, LocalStack, moto), S3A is pointed at it with
path-style addressing (`s3a_endpoint_conf`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

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
    # Adaptive execution: small shuffles merged, small join sides broadcast at run time
    # (the engine sizes `spark.sql.shuffle.partitions` to each batch's input).
    "spark.sql.adaptive.enabled": "true",
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

#: Only for a local session: `s3://` through S3A, as EMRFS serves it on Glue and EMR.
LOCAL_S3 = {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}


def s3a_endpoint_conf(endpoint: str) -> dict[str, str]:
    """Hadoop S3A settings that send S3 calls to `endpoint`; none without an override.

    Path-style addressing (`http://host:port/bucket/key`), since endpoints such as MinIO,
    LocalStack or moto serve no per-bucket host names; TLS as the endpoint's scheme says.
    Credentials come from S3A's default chain (the `AWS_*` variables, then the instance).

    Example:
        >>> s3a_endpoint_conf("http://127.0.0.1:5000")["spark.hadoop.fs.s3a.endpoint"]
        'http://127.0.0.1:5000'
    """
    if not endpoint:
        return {}
    secure = urlsplit(endpoint).scheme.lower() != "http"
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(secure).lower(),
    }


def spark_session(aws_endpoint: str = "") -> SparkSession:
    """The active Spark session (a local one if none is configured), set up for the contract.

    `aws_endpoint` (the setting) points S3A at an S3-compatible endpoint; on Glue and EMR,
    whose `s3://` is EMRFS, the S3A settings are inert.

    Example:
        >>> spark = spark_session()  # doctest: +SKIP
        >>> spark.conf.get("spark.sql.session.timeZone")  # doctest: +SKIP
        'UTC'
    """
    builder = SparkSession.builder
    local = not SparkConf().contains("spark.master")
    if local:
        for key, value in {**LOCAL_DEFAULTS, **LOCAL_S3}.items():
            builder = builder.config(key, value)
    for key, value in s3a_endpoint_conf(aws_endpoint).items():
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
