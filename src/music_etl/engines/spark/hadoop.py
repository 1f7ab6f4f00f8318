"""The file-system calls the engine makes through Spark's own Hadoop client.

They reach the JVM through PySpark's gateway (`_jvm`, `_jsc`), the one place the engine
leaves the public API: Hadoop's `FileSystem` reads and deletes whatever URI Spark
reads (a local path, `s3://` on Glue and EMR), with the credentials Spark already has.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def first_line(spark: SparkSession, uri: str) -> bytes | None:
    r"""The bytes of the file's first line without its line break; None for an empty file.

    One small read on the driver: no Spark job. `readLine` maps each byte to one
    character (ISO-8859-1), so encoding back gives the bytes exactly.

    >>> first_line(spark, "/lake/raw/streams/a.csv")  # doctest: +SKIP
    b'user_id,track_id,listen_time'
    """
    path, fs = _path(spark, uri)
    stream = fs.open(path)
    try:
        line = stream.readLine()
    finally:
        stream.close()
    return None if line is None else str(line).encode("latin-1")


def delete_tree(spark: SparkSession, uri: str) -> None:
    """Delete the folder at `uri` with everything in it; a missing folder is fine."""
    path, fs = _path(spark, uri)
    recursive = True
    fs.delete(path, recursive)


def filesystem_class(spark: SparkSession, uri: str) -> str:
    """The Hadoop `FileSystem` class serving `uri`'s scheme; raises when none can.

    >>> filesystem_class(spark, "s3://bucket/lake/_tmp/spark/")  # doctest: +SKIP
    'com.amazon.ws.emr.hadoop.fs.EmrFileSystem'
    """
    _unused, fs = _path(spark, uri)
    return str(fs.getClass().getName())


def _path(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    context = spark.sparkContext
    jvm: Any = context._jvm
    conf: Any = context._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(conf)
