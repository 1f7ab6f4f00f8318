"""Reading raw CSVs with Spark: every column a string, every row numbered by its line."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from functools import reduce

from py4j.protocol import Py4JError  # type: ignore[import-untyped, unused-ignore]
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, DataFrameReader, SparkSession

from music_etl.engines.outcomes import FIRST_DATA_LINE, LINE, ORDER, FileRejected
from music_etl.engines.spark.hadoop import first_line
from music_etl.errors import StorageError
from music_etl.logic.checks import missing_columns, normalize_header
from music_etl.logic.contract import MISSING_COLUMN, UNREADABLE_FILE, DatasetContract

#: Spark's name for a field that is null. Nothing real spells it, so an unquoted empty
#: field is null while a quoted empty one (`""`) stays an empty string, as the CSV has it.
_NULL_SENTINEL = "\u0000music-etl:null\u0000"
CSV_OPTIONS = {
    # The header is row 0, matched by us as the embedded engine matches it.
    "header": "false",
    # RFC 4180 (quoted line breaks), and one file is one partition: exact line numbers.
    "multiLine": "true",
    # Malformed rows are kept: too few fields are null, extra fields are dropped.
    "mode": "PERMISSIVE",
    "quote": '"',
    # A doubled quote is a quote; Spark's default escape (`\`) would keep both.
    "escape": '"',
    "encoding": "UTF-8",
    "nullValue": _NULL_SENTINEL,
    "emptyValue": "",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
    "maxCharsPerColumn": "-1",
}
_RECORD = "_record"
_GLOB_CHARS = re.compile(r"([\\*?\[\]{}])")
#: Errors Spark raises for input it cannot read (analysis errors, failed jobs).
SPARK_ERRORS = (PySparkException, Py4JError)


def read_raw(spark: SparkSession, uri: str, contract: DatasetContract, order: int) -> DataFrame:
    """The contract's columns of a raw CSV as untouched strings, with line numbers.

    Raises:
        FileRejected: The file is not a readable CSV with the required columns.
    """
    header = read_header(spark, uri)
    missing = missing_columns(contract, header)
    if missing:
        raise FileRejected(MISSING_COLUMN, f"missing required column(s): {', '.join(missing)}")
    try:
        table = _csv_reader(spark, len(header)).csv(spark_path(uri))
    except SPARK_ERRORS as exc:
        raise FileRejected(UNREADABLE_FILE, f"not a readable CSV file: {brief(exc)}") from exc
    keep = [*contract.columns, *(c for c in contract.optional if c in header)]
    return _numbered(table, {name: header.index(name) for name in keep}, order)


def _csv_reader(spark: SparkSession, width: int) -> DataFrameReader:
    """A CSV reader of `width` string columns: Spark never infers a type."""
    schema = ", ".join(f"_c{i} STRING" for i in range(width))
    return spark.read.schema(schema).options(**CSV_OPTIONS)


def read_header(spark: SparkSession, uri: str) -> list[str]:
    """The file's header cells, normalized; `[]` for an empty file."""
    try:
        line = first_line(spark, uri)
    except SPARK_ERRORS as exc:
        raise FileRejected(UNREADABLE_FILE, f"not a readable file: {brief(exc)}") from exc
    if line is None:
        return []
    text = line.decode("utf-8", errors="replace")
    try:
        cells = next(csv.reader([text]), [])
    except csv.Error as exc:
        raise FileRejected(UNREADABLE_FILE, f"not a readable CSV header: {exc}") from exc
    return [normalize_header(cell) for cell in cells]


def _numbered(table: DataFrame, positions: Mapping[str, int], order: int) -> DataFrame:
    """Data rows with their line numbers: the record index of the file, plus one.

    A multi-line CSV is never split, so the file is read by one task, in order, and
    `monotonically_increasing_id` numbers its records 0, 1, 2, ... exactly (record 0 is
    the header). `union_of_files` checks that assumption.
    """
    columns = [f"`_c{index}` AS `{name}`" for name, index in positions.items()]
    numbered = table.selectExpr(f"monotonically_increasing_id() AS {_RECORD}", *columns)
    # A CASE without ELSE keeps the column optional in Parquet, as the embedded engine
    # writes it (the record index itself is never null).
    line = f"CASE WHEN {_RECORD} > 0 THEN {_RECORD} + {FIRST_DATA_LINE - 1} END AS {LINE}"
    return numbered.where(f"{_RECORD} > 0").selectExpr(
        line, f"CAST({order} AS INT) AS {ORDER}", *(f"`{name}`" for name in positions)
    )


def union_of_files(raws: Sequence[DataFrame], partitions: int) -> DataFrame:
    """The rows of files read by `read_raw`, together in at most `partitions` partitions.

    Raises:
        StorageError: Spark split a file, so its rows cannot be numbered by position.
    """
    union = reduce(DataFrame.union, raws)
    parts = union.rdd.getNumPartitions()
    if parts != len(raws):
        raise StorageError(f"Spark read {len(raws)} CSV file(s) as {parts} parts; cannot number")
    return union.coalesce(max(1, min(len(raws), partitions)))


def spark_path(uri: str) -> str:
    """`uri` with Hadoop's glob characters escaped: a key is a file name, not a pattern."""
    return _GLOB_CHARS.sub(r"\\\1", uri)


def brief(exc: BaseException) -> str:
    """The first line of a Spark error, without the JVM stack trace."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
