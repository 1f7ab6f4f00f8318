"""`query`: read-only SQL over the lake with DuckDB, the local stand-in for Athena.

The connection is sandboxed before any SQL of the user's runs: DuckDB may open only
the lake's Parquet files that the views name (`allowed_paths`), nothing else on the
machine or the network (`enable_external_access = false`), installs and loads no
extension, and the configuration is locked so a `SET` cannot undo any of it. Only a
single read statement (`SELECT`, `WITH`, `FROM`, `DESCRIBE`, `EXPLAIN`, …) is run.

On an S3 lake the objects are listed with `S3Storage.list` and exactly their
`s3://` URLs are allowed; httpfs comes from its PyPI package (`query_s3`) and is
loaded before the lock, so the user's SQL can load nothing either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from music_etl.adapters.storage import open_storage
from music_etl.adapters.storage.local import LocalStorage
from music_etl.errors import Terminal, UnreadableFile
from music_etl.logic import layout
from music_etl.logic.contract import OUTPUT_TABLES, STREAMS, VALID_STREAM_COLUMNS
from music_etl.pipeline.lake import require_lake

if TYPE_CHECKING:
    import duckdb

    from music_etl.adapters.storage.base import Storage

#: View name -> (prefix under the lake, columns when there is no data yet).
VIEWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "streams": (layout.VALIDATED_STREAMS, VALID_STREAM_COLUMNS),
    "bad_records": (
        f"{layout.BAD_RECORDS}{STREAMS.name}/",
        (*STREAMS.columns, "reason", "source_file", "source_line"),
    ),
    **{name: (f"{layout.PROCESSED}{name}/", cols) for name, cols in OUTPUT_TABLES.items()},
}
#: DuckDB's glob characters; each becomes a one-character class so it matches only itself.
_GLOB = re.compile(r"([*?\[])")
_READ_ONLY = "query is read-only: it runs one SELECT (or WITH, DESCRIBE, EXPLAIN)"


@dataclass(frozen=True, kw_only=True)
class QueryResult:
    """Column names and rows of a query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def connect_lake(lake: str, *, endpoint: str = "") -> duckdb.DuckDBPyConnection:
    """An in-memory, locked-down DuckDB with one view per lake table.

    `lake` is a folder or `s3://bucket/prefix` (reached through `endpoint` when set).
    Raises `NotALake` when `lake` names no lake; nothing is written to it.
    """
    import duckdb

    storage = open_storage(lake, endpoint=endpoint)
    require_lake(storage, adopt=False)
    files = {name: _parquet_files(storage, prefix) for name, (prefix, _) in VIEWS.items()}
    conn = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    if not isinstance(storage, LocalStorage):
        from music_etl.adapters.storage.s3 import S3Storage
        from music_etl.pipeline.query_s3 import attach_s3

        attach_s3(conn, cast("S3Storage", storage), endpoint)
    _lock_down(conn, [path for paths in files.values() for path in paths])
    for name, (_, columns) in VIEWS.items():
        _create_view(conn, storage, name, files[name], columns)
    return conn


def query(lake: str, sql: str, *, endpoint: str = "") -> QueryResult:
    """Run one read statement `sql` against the lake's views (a folder or an S3 lake).

    Raises `Terminal` for an empty or non-read statement and a failing query, and
    `StorageError` naming the file when a lake file cannot be read.

    Example:
        >>> query("./lake", "SELECT genre FROM top_genres WHERE rank = 1")  # doctest: +SKIP
    """
    import duckdb

    conn = connect_lake(lake, endpoint=endpoint)
    statement = _read_statement(conn, sql)
    try:
        table = conn.execute(statement).to_arrow_table()
    except duckdb.Error as exc:
        raise _query_error(exc, _root(lake)) from exc
    # Through Arrow, time-zone-aware timestamps become datetimes in UTC without pytz.
    rows = [tuple(row.values()) for row in table.to_pylist()]
    return QueryResult(columns=table.column_names, rows=rows)


def _parquet_files(storage: Storage, prefix: str) -> list[str]:
    """Absolute paths (or `s3://` URLs) of the regular Parquet files under `prefix`."""
    keys = [info.key for info in storage.list(prefix) if info.key.endswith(".parquet")]
    if isinstance(storage, LocalStorage):
        return [str(storage.path(key).absolute()) for key in keys]
    return [storage.uri(key) for key in keys]


def _root(lake: str) -> str:
    """How DuckDB's messages spell the lake root."""
    return lake.rstrip("/") if lake.startswith("s3://") else LocalStorage(lake).root


def _lock_down(conn: duckdb.DuckDBPyConnection, paths: list[str]) -> None:
    """Allow reading exactly `paths`, nothing else, and lock the configuration.

    DuckDB checks both the pattern a reader is given and each file it expands to,
    so each path is allowed both literally and in its glob-escaped spelling.
    """
    allowed = sorted({*paths, *(_literal(path) for path in paths)})
    conn.execute("SET allowed_paths = ?", [allowed])
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")


def _create_view(
    conn: duckdb.DuckDBPyConnection,
    storage: Storage,
    name: str,
    paths: list[str],
    columns: tuple[str, ...],
) -> None:
    import duckdb

    if not paths:
        empty = ", ".join(f"NULL::VARCHAR AS {c}" for c in columns)
        conn.execute(f"CREATE VIEW {name} AS SELECT {empty} WHERE false")
        return
    listed = ", ".join("'" + _literal(path).replace("'", "''") + "'" for path in paths)
    try:
        conn.execute(
            f"CREATE VIEW {name} AS SELECT {', '.join(columns)} FROM read_parquet([{listed}], "
            "hive_partitioning = true, union_by_name = true)"
        )
    except duckdb.Error as exc:
        raise _query_error(exc, storage.root) from exc


def _literal(path: str) -> str:
    """`path` as a DuckDB glob pattern that matches only `path` itself.

    >>> _literal("/data/lake[1]/a*.parquet")
    '/data/lake[[]1]/a[*].parquet'
    """
    return _GLOB.sub(r"[\1]", path)


def _read_statement(conn: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """The one statement of `sql`, if it is a read; otherwise a one-line `Terminal`."""
    import duckdb

    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise Terminal(f"Query failed: {exc}".splitlines()[0]) from exc
    if not statements:
        raise Terminal(
            'query needs one SQL statement, e.g. music-etl query "SELECT * FROM top_genres".'
        )
    if len(statements) > 1:
        raise Terminal(f"{_READ_ONLY}, not {len(statements)} statements at once.")
    reads = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
    statement = statements[0]
    if statement.type not in reads:
        raise Terminal(f"{_READ_ONLY}; {statement.type.name} is not allowed.")
    return statement


def _query_error(exc: Exception, root: str) -> Terminal:
    """`StorageError` naming a lake file DuckDB could not read, else `Query failed: …`."""
    import duckdb

    message = str(exc).splitlines()[0]
    if isinstance(exc, duckdb.PermissionException):
        # Also a lake file no view names (`_state/`, `archive/`): not a corrupt file.
        return Terminal(f"query reads only the lake's views ({', '.join(VIEWS)}): {message}")
    match = re.search(r"""["']([^"']+\.parquet)["']""", message)
    if match and match.group(1).startswith(root + "/"):
        return UnreadableFile(match.group(1)[len(root) + 1 :], root)
    return Terminal(f"Query failed: {message}")
