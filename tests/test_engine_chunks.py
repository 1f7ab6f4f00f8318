"""Work over many days runs in memory-bounded chunks and gives the same answers."""

from __future__ import annotations

from datetime import date

import pytest

from conftest import Lake
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.engines.polars import io
from music_etl.pipeline.run import run

TABLES = ("DailyGenreKPIs", "TopSongsPerGenre", "TopGenresPerDay")


def _load_history(lake: Lake) -> None:
    days = [f"2024-06-{d:02d}" for d in range(1, 8)]
    first = [
        (u, t, f"{day} 1{u % 10}:00:00") for day in days for u in (1, 2, 3) for t in ("t1", "t2")
    ]
    lake.put_streams("a.csv", first)
    run(lake.settings())
    late = [(4, "t3", f"{day} 09:00:00") for day in days] + [first[0], first[7]]
    lake.put_streams("late.csv", late)
    report = run(lake.settings(bad_row_threshold=0.5))
    assert report.files[0].bad_by_reason == {"duplicate_event": 2}


def _serving(lake: Lake) -> dict[str, list[dict[str, object]]]:
    store = SQLiteServingStore(lake.settings().serving_url)
    return {table: store.scan(table) for table in TABLES}


def test_tiny_chunks_give_the_same_state(
    lake: Lake, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_history(lake)
    expected = _serving(lake)
    other = Lake(tmp_path_factory.mktemp("chunked") / "lake")
    other.put_dimensions()
    monkeypatch.setattr(io, "CHUNK_BYTES", 1)
    _load_history(other)
    assert _serving(other) == expected


def test_chunks_group_days_by_size(lake: Lake) -> None:
    _load_history(lake)
    days = [date(2024, 6, d) for d in range(1, 8)]
    one = io.day_chunks(lake.storage, days)
    assert len(one) == 1 and one[0].days == days
    tiny = io.day_chunks(lake.storage, days, budget=1)
    assert [c.days for c in tiny] == [[d] for d in days]
    assert sum(len(c.keys) for c in tiny) == len(one[0].keys) == 14
