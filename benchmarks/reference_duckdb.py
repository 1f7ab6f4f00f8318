"""Yardstick: the whole contract in DuckDB: raw rows loaded into a table, then SQL.

Same validation as `music-etl run` (trim, every row reason in order, the same patterns,
first occurrence wins in file then line order) and the same KPIs, top songs and top genres,
but no ledger, no per-day files, no bad-record files: the fastest straightforward
DuckDB program for the job. `run_benchmark.py` times it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from music_etl.logic.rules import INTEGER_PATTERN, TIMESTAMP_PATTERN

_SLACK = timedelta(hours=24)
_READ = "read_csv({files}, all_varchar = true, header = true, null_padding = true)"


def _trim(column: str) -> str:
    return f"nullif(trim({column}, ' ' || chr(9)), '') AS {column}"


def _int64(column: str) -> str:
    return f"CASE WHEN regexp_matches({column}, $int) THEN TRY_CAST({column} AS BIGINT) END"


def _timestamp(column: str) -> str:
    text = f"substr({column}, 1, 10) || ' ' || substr({column}, 12, 8)"
    return (
        f"CASE WHEN regexp_matches({column}, $ts) "
        f"THEN try_strptime({text}, '%Y-%m-%d %H:%M:%S') END"
    )


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> None:
    con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})


def compute(lake: str | Path, clock: datetime) -> dict[str, pl.DataFrame]:
    """The three output tables (and the rows per reason, `valid` for accepted rows)."""
    lake = Path(lake)
    files = sorted(str(p) for p in (lake / "raw/streams").glob("*.csv"))
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    params = {"int": INTEGER_PATTERN, "ts": TIMESTAMP_PATTERN}
    con.execute(
        f"CREATE TABLE raw_streams AS SELECT user_id, track_id, listen_time "
        f"FROM {_READ.format(files=files)}"
    )
    _execute(
        con,
        f"""
        CREATE TABLE songs AS
        WITH t AS (
            SELECT row_number() OVER () AS line, {_trim("track_id")}, {_trim("track_genre")},
                   {_trim("track_name")}, {_trim("artists")}, {_trim("duration_ms")}
            FROM {_READ.format(files=[str(lake / "raw/songs/songs.csv")])}
        ), v AS (
            SELECT *, {_int64("duration_ms")} AS duration FROM t
            WHERE track_id IS NOT NULL AND track_genre IS NOT NULL
        )
        SELECT track_id, track_genre AS genre, duration AS duration_ms, track_name, artists
        FROM v WHERE duration IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY track_id, track_genre ORDER BY line) = 1
        """,
        params,
    )
    _execute(
        con,
        f"""
        CREATE TABLE users AS
        SELECT DISTINCT {_int64("user_id")} AS user_id
        FROM (SELECT {_trim("user_id")}
              FROM {_READ.format(files=[str(lake / "raw/users/users.csv")])})
        WHERE user_id IS NOT NULL
        """,
        params,
    )
    con.execute("DELETE FROM users WHERE user_id IS NULL")
    _execute(
        con,
        f"""
        CREATE TABLE judged AS
        WITH t AS (
            SELECT rowid AS line, {_trim("user_id")}, {_trim("track_id")}, {_trim("listen_time")}
            FROM raw_streams
        ), p AS (
            SELECT line, user_id AS raw_user, track_id, listen_time AS raw_time,
                   {_int64("user_id")} AS user_id, {_timestamp("listen_time")} AS listen_time
            FROM t
        ), r AS (
            SELECT line, user_id, track_id, listen_time,
                CASE
                    WHEN raw_user IS NULL OR track_id IS NULL OR raw_time IS NULL
                        THEN 'null_field'
                    WHEN user_id IS NULL THEN 'bad_user_id'
                    WHEN listen_time IS NULL THEN 'bad_timestamp'
                    WHEN listen_time > $limit THEN 'future_timestamp'
                    WHEN track_id NOT IN (SELECT track_id FROM songs) THEN 'unknown_track'
                    WHEN user_id NOT IN (SELECT user_id FROM users) THEN 'unknown_user'
                END AS reason
            FROM p
        )
        SELECT user_id, track_id, listen_time,
            CASE WHEN reason IS NULL AND row_number() OVER (
                PARTITION BY reason IS NULL, user_id, track_id, listen_time ORDER BY line) > 1
            THEN 'duplicate_event' ELSE reason END AS reason
        FROM r
        """,
        {**params, "limit": clock + _SLACK},
    )
    con.execute(
        """
        CREATE TABLE plays AS
        SELECT CAST(j.listen_time AS DATE) AS date, j.user_id, j.track_id,
               s.genre, s.duration_ms, s.track_name, s.artists
        FROM judged j JOIN songs s USING (track_id)
        WHERE j.reason IS NULL
        """
    )
    con.execute(
        """
        CREATE TABLE kpis AS
        SELECT date, genre, count(*) AS listen_count,
               count(DISTINCT user_id) AS unique_listeners,
               sum(duration_ms)::BIGINT AS total_listening_time,
               sum(duration_ms)::DOUBLE / count(DISTINCT user_id) AS avg_listening_time
        FROM plays GROUP BY date, genre
        """
    )
    top_songs = """
        SELECT date, genre, rank, track_id, track_name, artists, play_count FROM (
            SELECT *, row_number() OVER (
                PARTITION BY date, genre ORDER BY play_count DESC, track_id) AS rank
            FROM (SELECT date, genre, track_id, count(*) AS play_count,
                         first(track_name) AS track_name, first(artists) AS artists
                  FROM plays GROUP BY date, genre, track_id))
        WHERE rank <= 3
    """
    top_genres = """
        SELECT date, rank, genre, listen_count FROM (
            SELECT *, row_number() OVER (
                PARTITION BY date ORDER BY listen_count DESC, genre) AS rank
            FROM kpis)
        WHERE rank <= 5
    """
    reasons = "SELECT coalesce(reason, 'valid') AS reason, count(*) AS len FROM judged GROUP BY 1"
    tables = {
        "daily_genre_kpis": con.sql("SELECT * FROM kpis").pl(),
        "top_songs": con.sql(top_songs).pl(),
        "top_genres": con.sql(top_genres).pl(),
        "reasons": con.sql(reasons).pl(),
    }
    con.close()
    return tables
