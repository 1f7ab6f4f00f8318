"""Spark writes that land at the lake's deterministic keys, atomically.

Distributed outputs (validated rows, bad records) are written by Spark into the lake's
`_tmp/spark/<id>/` and each file then moves to its key. Small outputs already collected
to the driver (the day tables) are written from there through the storage's writer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T  # noqa: N812 - the conventional alias

from music_etl.adapters.storage.base import Storage
from music_etl.engines.spark.hadoop import delete_tree
from music_etl.engines.spark.io import spark_path
from music_etl.errors import StorageError

#: Where Spark writes before each file moves to its key; only the engine uses it.
TMP_PREFIX = "_tmp/spark/"
_ARROW_TYPES = {
    T.LongType: pa.int64(),
    T.IntegerType: pa.int32(),
    T.DoubleType: pa.float64(),
    T.StringType: pa.string(),
    T.DateType: pa.date32(),
    T.BooleanType: pa.bool_(),
}


class TempWriter:
    """Spark writes into the lake's temp folder; each file then moves to its key.

    The move is the storage's own (a rename locally), so every key appears whole or
    not at all, and its name is the deterministic key of the layout, never Spark's
    `part-<uuid>` name.
    """

    def __init__(self, spark: SparkSession, storage: Storage) -> None:
        self._spark = spark
        self._storage = storage

    def write(
        self,
        frame: DataFrame,
        *,
        partition_by: Sequence[str],
        order_by: Sequence[str],
        columns: Sequence[str],
        key_of: Callable[[Mapping[str, str]], str],
        grouped: bool = False,
    ) -> list[dict[str, str]]:
        """Write one Parquet file per partition value and move it to `key_of(values)`.

        Each file holds `columns`, rows sorted by `order_by` (which may be working
        columns that are not written). Returns the partition values written.

        One task must hold all rows of a partition value, so that it gets exactly one
        file. `grouped` says the frame's partitions already do that (a validation batch:
        each source file is read by one task and its rows stay there), so the rows are
        written where they are, without a shuffle. That is checked on what Spark wrote:
        if a value got two files after all, the frame is shuffled and written again.
        """
        prefix = f"{TMP_PREFIX}{uuid.uuid4().hex}/"
        try:
            shape = {"partition_by": partition_by, "order_by": order_by, "columns": columns}
            produced = None
            if grouped and partition_by:
                produced = self._write(frame, prefix, **shape, shuffle=False)
                if produced is None:
                    self.remove(prefix)
            if produced is None:
                produced = self._write(frame, prefix, **shape, shuffle=True)
            if produced is None:
                raise StorageError(f"Spark wrote two files for one partition under {prefix}")
            for values, key in produced:
                self._storage.move(key, key_of(values))
            return [values for values, _key in produced]
        finally:
            self.remove(prefix)

    def _write(
        self,
        frame: DataFrame,
        prefix: str,
        *,
        partition_by: Sequence[str],
        order_by: Sequence[str],
        columns: Sequence[str],
        shuffle: bool,
    ) -> list[tuple[dict[str, str], str]] | None:
        """Write `frame` under `prefix`; its files by partition values (None: not one each)."""
        spread = frame
        if shuffle:
            # One task per partition value: exactly one file per key.
            spread = frame.repartition(*partition_by) if partition_by else frame.repartition(1)
        shaped = spread.sortWithinPartitions(*partition_by, *order_by)
        writer = shaped.select(*partition_by, *columns).write
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(spark_path(self._storage.uri(prefix)))
        return self._produced(prefix)

    def remove(self, prefix: str) -> None:
        """Delete the folder `prefix` of the lake with everything Spark left in it."""
        delete_tree(self._spark, self._storage.uri(prefix))

    def _produced(self, prefix: str) -> list[tuple[dict[str, str], str]] | None:
        """The data files under `prefix` with their partition values; None if a value has two."""
        found: dict[tuple[tuple[str, str], ...], str] = {}
        for info in self._storage.list(prefix):
            *folders, name = info.key[len(prefix) :].split("/")
            if name.startswith(("_", ".")) or not name.endswith(".parquet"):
                continue
            values = tuple(_partition_value(folder) for folder in folders)
            if values in found:
                return None
            found[values] = info.key
        return [(dict(values), key) for values, key in sorted(found.items())]


def write_rows(
    storage: Storage, key: str, rows: Sequence[Mapping[str, Any]], schema: T.StructType
) -> None:
    """Write rows collected to the driver as one Parquet file at `key`, atomically."""
    fields = [pa.field(f.name, _arrow_type(f.dataType)) for f in schema.fields]
    table = pa.Table.from_pylist([dict(row) for row in rows], schema=pa.schema(fields))
    with storage.writer(key) as path:
        pq.write_table(table, path, compression="zstd")


def _arrow_type(kind: T.DataType) -> Any:
    for spark_type, arrow_type in _ARROW_TYPES.items():
        if isinstance(kind, spark_type):
            return arrow_type
    raise TypeError(f"No Parquet mapping for Spark type {kind}")


def _partition_value(folder: str) -> tuple[str, str]:
    """`name=value` of a Hive-style partition folder, unescaped."""
    name, _sep, value = folder.partition("=")
    return unquote(name), unquote(value)
