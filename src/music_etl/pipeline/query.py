"""`query`: SQL over the lake with DuckDB, the local stand-in for Athena."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from music_etl.adapters.storage.local import LocalStorage
from music_etl.errors import ConfigError, Terminal
from music_etl.logic import layout
from music_etl.logic.contract import OUTPUT_TABLES, STREAMS, VALID_STREAM_COLUMNS

if TYPE_CHECKING:
    import duckdb

#: View name -> (prefix under the lake, columns when there is no data yet).
VIEWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "streams": (layout.VALIDATED_STREAMS, VALID_STREAM_COLUMNS),
    "bad_records": (
        f"{layout.BAD_RECORDS}{STREAMS.name}/",
        (*STREAMS.columns, "reason", "source_file", "source_line"),
    ),
    **{name: (f"{layout.PROCESSED}{name}/", cols) for name, cols in OUTPUT_TABLES.items()},
}


@dataclass(frozen=True, kw_only=True)
class QueryResult:
    """Column names and rows of a query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def connect_lake(lake: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per lake table."""
    if lake.startswith("s3://"):
        raise ConfigError(
            "query over an S3 lake is not available yet: use Athena, or a local copy of the lake."
        )
    import duckdb

    storage = LocalStorage(lake)
    conn = duckdb.connect()
    for name, (prefix, columns) in VIEWS.items():
        conn.execute(_view_sql(storage, name, prefix, columns))
    return conn


def query(lake: str, sql: str) -> QueryResult:
    """Run `sql` against the lake's views.

    Example:
        >>> query("./lake", "SELECT genre FROM top_genres WHERE rank = 1")  # doctest: +SKIP
    """
    import duckdb

    conn = connect_lake(lake)
    try:
        cursor = conn.execute(sql)
    except duckdb.Error as exc:
        raise Terminal(f"Query failed: {exc}".splitlines()[0]) from exc
    columns = [d[0] for d in cursor.description or []]
    return QueryResult(columns=columns, rows=cursor.fetchall())


def _view_sql(storage: LocalStorage, name: str, prefix: str, columns: tuple[str, ...]) -> str:
    if not any(info.key.endswith(".parquet") for info in storage.list(prefix)):
        empty = ", ".join(f"NULL::VARCHAR AS {c}" for c in columns)
        return f"CREATE VIEW {name} AS SELECT {empty} WHERE false"
    pattern = str(storage.path(prefix)).replace("'", "''") + "/**/*.parquet"
    return (
        f"CREATE VIEW {name} AS SELECT {', '.join(columns)} FROM read_parquet('{pattern}', "
        "hive_partitioning = true, union_by_name = true)"
    )
