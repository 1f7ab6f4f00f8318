"""Output columns, the Glue catalog, the Athena DDL and the SQLite store follow the contract.

A KPI added to `contract.KPI_METRICS` reaches every store with no other edit: the tests
add one to a copy of the spec and look for it in each derived definition.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.logic import catalog, contract
from music_etl.logic.contract import Metric
from music_etl.logic.rules import Kind
from music_etl.logic.serving_model import DAILY_GENRE_KPIS, TOP_GENRES_PER_DAY
from music_etl.serve.params import DayRange

NEW_KPI = Metric(name="distinct_tracks", op="count_distinct", column="track_id")
RATIO_KPI = Metric(
    name="plays_per_listener", op="ratio", numerator="listen_count", denominator="unique_listeners"
)
ROW = {
    "date": "2024-06-01",
    "genre": "pop",
    "listen_count": 4,
    "unique_listeners": 2,
    "total_listening_time": 800_000,
    "avg_listening_time": 400_000.0,
}


@pytest.fixture
def more_kpis(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract with two KPIs more: an integer and a ratio."""
    monkeypatch.setattr(contract, "KPI_METRICS", (*contract.KPI_METRICS, NEW_KPI, RATIO_KPI))


def columns_of(path: Path, table: str) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return {row[1]: row[2] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_the_derived_columns_are_the_published_ones() -> None:
    assert contract.OUTPUT_TABLES == {
        "daily_genre_kpis": (
            "date",
            "genre",
            "listen_count",
            "unique_listeners",
            "total_listening_time",
            "avg_listening_time",
        ),
        "top_songs": ("date", "genre", "rank", "track_id", "track_name", "artists", "play_count"),
        "top_genres": ("date", "rank", "genre", "listen_count"),
    }
    kpis = contract.output_schemas()["daily_genre_kpis"]
    assert kpis["avg_listening_time"] is Kind.FLOAT64
    assert kpis["listen_count"] is Kind.INT64


@pytest.mark.usefixtures("more_kpis")
def test_a_new_kpi_reaches_the_columns_the_catalog_and_the_athena_ddl() -> None:
    assert contract.output_tables()["daily_genre_kpis"][-2:] == (
        "distinct_tracks",
        "plays_per_listener",
    )
    table = next(t for t in catalog.tables() if t.name == "daily_genre_kpis")
    assert table.columns[-2:] == (("distinct_tracks", "bigint"), ("plays_per_listener", "double"))
    script = catalog.athena_script("s3://bucket/lake", "music_etl")
    assert "`distinct_tracks` bigint" in script
    assert "`plays_per_listener` double" in script


@pytest.mark.usefixtures("more_kpis")
def test_a_new_kpi_is_a_column_of_a_new_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "serving.sqlite"
    store = SQLiteServingStore(f"sqlite:///{path}")
    row = {**ROW, "distinct_tracks": 3, "plays_per_listener": 2.0}
    store.replace_days(["2024-06-01"], {DAILY_GENRE_KPIS: [row]})
    assert store.scan(DAILY_GENRE_KPIS) == [row]
    store.close()
    found = columns_of(path, DAILY_GENRE_KPIS)
    assert (found["distinct_tracks"], found["plays_per_listener"]) == ("INTEGER", "REAL")


def test_a_store_made_before_a_new_kpi_gains_its_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'serving.sqlite'}"
    old = SQLiteServingStore(url)
    old.replace_days(["2024-06-01"], {DAILY_GENRE_KPIS: [ROW]})
    old.close()
    monkeypatch.setattr(contract, "KPI_METRICS", (*contract.KPI_METRICS, NEW_KPI))
    store = SQLiteServingStore(url)
    assert store.scan(DAILY_GENRE_KPIS) == [{**ROW, "distinct_tracks": None}]
    store.replace_days(["2024-06-01"], {DAILY_GENRE_KPIS: [{**ROW, "distinct_tracks": 3}]})
    assert store.scan(DAILY_GENRE_KPIS) == [{**ROW, "distinct_tracks": 3}]
    store.close()


def test_a_metric_kind_follows_its_op() -> None:
    assert replace(NEW_KPI, op="sum").kind is Kind.INT64
    assert RATIO_KPI.kind is Kind.FLOAT64


def test_a_new_kpi_reaches_the_api_answers_and_its_description(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from music_etl.serve import serving_views
    from music_etl.serve.openapi import openapi_document

    url = f"sqlite:///{tmp_path / 'serving.sqlite'}"
    old = SQLiteServingStore(url)  # a day loaded before the new KPIs existed
    old.replace_days(["2024-05-31"], _day("2024-05-31", {**ROW, "date": "2024-05-31"}))
    old.close()
    monkeypatch.setattr(contract, "KPI_METRICS", (*contract.KPI_METRICS, NEW_KPI, RATIO_KPI))
    store = SQLiteServingStore(url)
    row = {**ROW, "distinct_tracks": 3, "plays_per_listener": 2.0}
    store.replace_days(["2024-06-01"], _day("2024-06-01", row))
    try:
        span = DayRange(date(2024, 5, 31), date(2024, 6, 1))
        points = serving_views.trend(store, "pop", span)["points"]
    finally:
        store.close()
    assert [(p["distinct_tracks"], p["plays_per_listener"]) for p in points] == [
        (None, None),
        (3, 2.0),
    ]
    assert points[1]["listen_count"] == 4
    schemas = openapi_document("0")["components"]["schemas"]
    kpi = schemas["Day"]["properties"]["kpis"]["items"]["properties"]
    assert kpi["distinct_tracks"] == {"type": ["integer", "null"]}
    assert kpi["plays_per_listener"] == {"type": ["number", "null"]}


def _day(day: str, kpis: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    """One genre's KPIs and its top-genre row (which makes the day listed)."""
    top = {"date": day, "rank": 1, "genre": "pop", "listen_count": 4}
    return {DAILY_GENRE_KPIS: [kpis], TOP_GENRES_PER_DAY: [top]}
