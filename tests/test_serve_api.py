"""`music-etl serve`: the JSON API over a real run's lake, on SQLite and on DynamoDB (moto).

One generated lake per backend per module (the pipeline runs once); each test reads it
through the framework's test client and compares with what the store and ledger hold.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.concurrency import run_in_threadpool
from starlette.testclient import TestClient

from aws.helpers import NOW, SAMPLE, AwsLake, client, generate_sample
from moto_fixtures import moto_endpoint, set_aws_env
from music_etl.adapters.ledger import Ledger, open_ledger
from music_etl.adapters.ledger.base import DONE, RunRecord, RunStatus, new_owner
from music_etl.adapters.serving import ServingStore, open_serving
from music_etl.adapters.storage.local import LocalStorage
from music_etl.errors import ConfigError
from music_etl.logic.serving_model import DAILY_GENRE_KPIS, TOP_GENRES_PER_DAY, TOP_SONGS_PER_GENRE
from music_etl.pipeline.lake import mark_lake
from music_etl.pipeline.run import run
from music_etl.serve import Sources, create_app, open_sources
from music_etl.serve import app as serve_app
from music_etl.serve.cache import BodyCache
from music_etl.serve.openapi import PREFIX
from music_etl.settings import Settings, load_settings

__all__ = ["moto_endpoint"]  # the session's moto server, for the DynamoDB lake
# One worker builds the module's lakes once (`make test` runs `--dist loadgroup`).
pytestmark = pytest.mark.xdist_group("serve")

MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")
PATHS = [
    "/days",
    "/days/{day}",
    "/days/{day}/genres/{genre}/top-songs",
    "/genres/{genre}/trend",
    "/top-genres",
    "/quality",
    "/runs",
    "/files",
    "/health",
    "/openapi.json",
]


@dataclass
class Served:
    """A lake after one run, its store and ledger, and a test client over the API."""

    settings: Settings
    serving: ServingStore
    ledger: Ledger
    api: TestClient

    def get(self, path: str, **headers: str) -> Any:
        return self.api.get(PREFIX + path, headers=headers)

    def json(self, path: str) -> Any:
        answer = self.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()


def _sqlite_lake(root: Path) -> Settings:
    generate_sample(LocalStorage(root))
    settings = load_settings(env={}, config=root / "no.toml", lake=str(root), now=NOW)
    run(settings)
    return settings


@pytest.fixture(scope="module")
def sqlite_lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return _sqlite_lake(tmp_path_factory.mktemp("serve") / "lake")


def _dynamodb_lake(endpoint: str, tmp: Path) -> Settings:
    lake = AwsLake(endpoint=endpoint, name=f"s{uuid.uuid4().hex[:10]}", tmp=tmp)
    client("s3", endpoint).create_bucket(Bucket=lake.bucket)
    lake.create_tables()
    generate_sample(lake.storage())
    settings = lake.settings()
    run(settings)
    return settings


def _served(settings: Settings) -> Served:
    return Served(
        settings=settings,
        serving=open_serving(settings.serving_url, endpoint=settings.aws_endpoint),
        ledger=open_ledger(settings.ledger_url, endpoint=settings.aws_endpoint),
        api=TestClient(create_app(settings)),
    )


@pytest.fixture(scope="module", params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.aws)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The API over a lake after one run; DynamoDB clients are made under the fake AWS env."""
    if request.param == "sqlite":
        return _served(request.getfixturevalue("sqlite_lake"))
    endpoint = request.getfixturevalue("moto_endpoint")
    with pytest.MonkeyPatch.context() as patch:  # clients keep what they were made with
        set_aws_env(patch)
        return _served(_dynamodb_lake(endpoint, tmp_path_factory.mktemp("aws")))


def on(rows: list[dict[str, Any]], day: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["date"] == day]


def without(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in names}


# --------------------------------------------------------------------------- values


def test_days_are_the_stores_days(served: Served) -> None:
    days = sorted({row["date"] for row in served.serving.scan(TOP_GENRES_PER_DAY)})
    assert len(days) == SAMPLE["days"]
    assert served.json("/days") == {"days": days, "latest": days[-1]}


def test_a_day_holds_exactly_the_stores_items(served: Served) -> None:
    store = served.serving
    for day in served.json("/days")["days"]:
        got = served.json(f"/days/{day}")
        assert got["date"] == day
        assert got["flagged"] == 0
        assert got["kpis"] == [without(r, "date") for r in on(store.scan(DAILY_GENRE_KPIS), day)]
        assert got["top_genres"] == [
            without(r, "date") for r in on(store.scan(TOP_GENRES_PER_DAY), day)
        ]
        assert got["top_songs"] == [
            without(r, "date") for r in on(store.scan(TOP_SONGS_PER_GENRE), day)
        ]
        assert [g["rank"] for g in got["top_genres"]] == list(range(1, 6))
        assert all(isinstance(k["avg_listening_time"], float) for k in got["kpis"])
        assert all(isinstance(k["listen_count"], int) for k in got["kpis"])


def test_top_songs_of_one_genre_and_day(served: Served) -> None:
    item = served.serving.scan(TOP_SONGS_PER_GENRE)[-1]
    got = served.json(f"/days/{item['date']}/genres/{item['genre']}/top-songs")
    assert got == {"date": item["date"], "genre": item["genre"], "songs": item["songs"]}
    assert [s["rank"] for s in got["songs"]] == list(range(1, len(got["songs"]) + 1))


def test_trend_and_top_genres_cover_the_range(served: Served) -> None:
    kpis = served.serving.scan(DAILY_GENRE_KPIS)
    genre = kpis[0]["genre"]
    days = served.json("/days")["days"]
    trend = served.json(f"/genres/{genre}/trend")  # default: 30 days ending at the latest
    assert (trend["genre"], trend["to"]) == (genre, days[-1])
    assert trend["points"] == [without(r, "genre") for r in kpis if r["genre"] == genre]
    only_last = served.json(f"/genres/{genre}/trend?from={days[-1]}&to={days[-1]}")
    assert [p["date"] for p in only_last["points"]] in ([days[-1]], [])
    top = served.json(f"/top-genres?from={days[0]}&to={days[-1]}")
    ranked = served.serving.scan(TOP_GENRES_PER_DAY)
    assert top["days"] == [
        {"date": d, "genres": [without(r, "date") for r in on(ranked, d)]} for d in days
    ]


def test_quality_runs_and_files_are_the_ledgers(served: Served) -> None:
    records = served.ledger.records()
    processed = {r.timestamp[:10] for r in records}
    (day,) = processed
    quality = served.json(f"/quality?from={day}&to={day}")
    assert quality["by_day"] == [
        {
            "date": day,
            "rows_in": sum(r.rows_in for r in records),
            "rows_bad": sum(r.rows_bad for r in records),
            "reasons": _summed(r.bad_by_reason for r in records),
        }
    ]
    assert [f["file_key"] for f in quality["by_file"]] == [r.file_key for r in reversed(records)]
    assert quality["failed_files"] == []
    runs = served.json("/runs?limit=5")["runs"]
    assert [r["run_id"] for r in runs] == [r.run_id for r in served.ledger.runs(5)]
    assert runs[0]["files"] == SAMPLE["files"]
    assert isinstance(runs[0]["duration_seconds"], float)
    files = served.json("/files?status=done")["files"]
    assert [f["file_key"] for f in files] == sorted(r.file_key for r in records)
    assert (
        files[0]["content_hash"]
        == next(r for r in records if r.file_key == files[0]["file_key"]).content_hash
    )
    assert served.json("/files?status=failed") == {"files": []}


def _summed(parts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for reason, count in part.items():
            total[reason] = total.get(reason, 0) + count
    return dict(sorted(total.items()))


def test_health(served: Served) -> None:
    health = served.json("/health")  # the test client runs no startup: no warm-up here
    assert health == {"status": "ok", "version": "0.1.0", "warm": {"days": 0, "done": False}}


# --------------------------------------------------------------------------- errors


BAD = [
    ("/days/2024-02-30", 400, "bad_date"),
    ("/days/2024-6-01", 400, "bad_date"),
    ("/days/2023-01-01", 404, "no_such_day"),
    ("/days/{latest}/genres/no-such-genre/top-songs", 404, "no_such_genre"),
    ("/days/2024-13-01/genres/pop/top-songs", 400, "bad_date"),
    ("/genres/no-such-genre/trend", 404, "no_such_genre"),
    ("/genres/pop/trend?from=2024-06-30&to=2024-06-01", 400, "bad_range"),
    ("/genres/pop/trend?from=2023-01-01&to=2024-01-02", 400, "bad_range"),
    ("/genres/pop/trend?to=2024-02-30", 400, "bad_date"),
    ("/top-genres?from=2024-06-30&to=2024-06-01", 400, "bad_range"),
    ("/top-genres?from=2022-01-01", 400, "bad_range"),
    ("/quality?from=junk", 400, "bad_date"),
    ("/quality?from=2020-01-01&to=2024-01-01", 400, "bad_range"),
    ("/runs?limit=0", 400, "bad_parameter"),
    ("/runs?limit=501", 400, "bad_parameter"),
    ("/runs?limit=ten", 400, "bad_parameter"),
    ("/files?status=lost", 400, "bad_parameter"),
    ("/no/such/path", 404, "not_found"),
]


@pytest.mark.parametrize(("path", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_a_json_error(served: Served, path: str, status: int, code: str) -> None:
    latest = served.json("/days")["latest"]
    answer = served.get(path.format(latest=latest))
    assert answer.status_code == status, answer.text
    assert answer.headers["cache-control"] == "no-store"
    error = answer.json()["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert len(error["message"]) > 20


def test_a_range_of_exactly_366_days_is_allowed(served: Served) -> None:
    latest = date.fromisoformat(served.json("/days")["latest"])
    start = latest - timedelta(days=365)
    answer = served.get(f"/top-genres?from={start}&to={latest}")
    assert answer.status_code == 200, answer.text
    assert (
        served.get(f"/top-genres?from={start - timedelta(days=1)}&to={latest}").status_code == 400
    )


def test_a_post_is_refused_with_a_json_error(served: Served) -> None:
    answer = served.api.post(PREFIX + "/days")
    assert answer.status_code == 405
    assert answer.json()["error"]["status"] == 405


# --------------------------------------------------------------------------- caching


def test_etag_then_304_without_reading_items(served: Served) -> None:
    latest = served.json("/days")["latest"]
    counting = _Counting(served.serving)
    sources = Sources(serving=counting, ledger=served.ledger)
    with TestClient(create_app(sources, warm=False)) as api:
        first = api.get(f"{PREFIX}/days/{latest}")
        tag = first.headers["etag"]
        assert tag.startswith('W/"')
        assert first.headers["cache-control"] == "no-cache"
        counting.reads = 0
        again = api.get(f"{PREFIX}/days/{latest}", headers={"If-None-Match": tag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == tag
        assert counting.reads == 0
        other = api.get(f"{PREFIX}/days", headers={"If-None-Match": tag})
        assert other.status_code == 200  # another path, another tag
    runs = served.get("/runs")
    assert served.get("/runs", **{"If-None-Match": runs.headers["etag"]}).status_code == 304


class _Counting:
    """A serving store that counts item reads."""

    def __init__(self, inner: ServingStore) -> None:
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        if name in {"read", "scan", "days"}:
            self.reads += 1
        return getattr(self.inner, name)


def test_the_etag_moves_when_a_day_is_replaced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serving.sqlite'}"
    writer = open_serving(url)
    day = {"date": "2024-06-01", "rank": 1, "genre": "pop", "listen_count": 3}
    writer.replace_days(["2024-06-01"], {TOP_GENRES_PER_DAY: [day]})
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    sources = Sources(serving=open_serving(url, read_only=True), ledger=ledger)
    with TestClient(create_app(sources)) as api:
        before = api.get(f"{PREFIX}/days/2024-06-01").headers["etag"]
        assert api.get(f"{PREFIX}/days/2024-06-01").headers["etag"] == before
        writer.replace_days(["2024-06-01"], {TOP_GENRES_PER_DAY: [{**day, "listen_count": 4}]})
        after = api.get(f"{PREFIX}/days/2024-06-01", headers={"If-None-Match": before})
        assert after.status_code == 200
        assert after.json()["top_genres"][0]["listen_count"] == 4
        assert after.headers["etag"] != before


def test_an_answer_asked_again_is_not_read_again_until_the_store_changes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serving.sqlite'}"
    writer = open_serving(url)
    day = {"date": "2024-06-01", "rank": 1, "genre": "pop", "listen_count": 3}
    writer.replace_days(["2024-06-01"], {TOP_GENRES_PER_DAY: [day]})
    counting = _Counting(open_serving(url, read_only=True))
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with TestClient(create_app(Sources(serving=counting, ledger=ledger), warm=False)) as api:
        first = api.get(f"{PREFIX}/days/2024-06-01")
        counting.reads = 0
        again = api.get(f"{PREFIX}/days/2024-06-01")
        assert (again.status_code, again.content) == (200, first.content)
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["content-type"] == "application/json"
        assert counting.reads == 0
        assert api.get(f"{PREFIX}/days/2024-06-02").status_code == 404  # errors are not kept
        counting.reads = 0
        assert api.get(f"{PREFIX}/days/2024-06-02").status_code == 404
        assert counting.reads > 0
        writer.replace_days(["2024-06-01"], {TOP_GENRES_PER_DAY: [{**day, "listen_count": 4}]})
        after = api.get(f"{PREFIX}/days/2024-06-01")
        assert after.json()["top_genres"][0]["listen_count"] == 4


class _CountingLedger:
    """A ledger that counts reads of its records and runs."""

    def __init__(self, inner: Ledger) -> None:
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        if name in {"records", "runs", "get"}:
            self.reads += 1
        return getattr(self.inner, name)


def _done(ledger: Ledger, key: str) -> None:
    owner = new_owner()
    assert ledger.claim(key, "h", owner, 60)
    record = ledger.get(key)
    assert record is not None
    ledger.save(replace(record, status=DONE, rows_in=3, rows_valid=2, rows_bad=1))


@pytest.mark.parametrize("path", ["/quality", "/files", "/runs?limit=5"])
def test_a_ledger_answer_is_kept_until_a_new_record_changes_it_and_its_etag(
    tmp_path: Path, path: str
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    writer = open_ledger(url)
    _done(writer, "raw/streams/a.csv")
    counting = _CountingLedger(open_ledger(url, read_only=True))
    serving = open_serving(f"sqlite:///{tmp_path / 'serving.sqlite'}")
    with TestClient(create_app(Sources(serving=serving, ledger=counting))) as api:
        first = api.get(PREFIX + path)
        counting.reads = 0
        again = api.get(PREFIX + path)
        assert (again.status_code, again.content) == (200, first.content)
        assert again.headers["etag"] == first.headers["etag"]
        fresh = api.get(PREFIX + path, headers={"If-None-Match": first.headers["etag"]})
        assert fresh.status_code == 304
        assert counting.reads == 0
        _done(writer, "raw/streams/b.csv")
        writer.add_run(RunRecord(
            run_id="r2", started="2024-06-02T00:00:00Z", finished="2024-06-02T00:00:09Z",
            files=1, rows_in=3, rows_valid=2, rows_bad=1, days=1, status=RunStatus.OK,
        ))  # fmt: skip
        after = api.get(PREFIX + path, headers={"If-None-Match": first.headers["etag"]})
        assert after.status_code == 200
        assert after.content != first.content
        assert after.headers["etag"] != first.headers["etag"]
        assert counting.reads > 0


def test_quality_kept_yesterday_is_not_served_today(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    _done(open_ledger(url), "raw/streams/a.csv")  # changed today: in the default range
    serving = open_serving(f"sqlite:///{tmp_path / 'serving.sqlite'}")
    with TestClient(create_app(Sources(serving=serving, ledger=open_ledger(url)))) as api:
        first = api.get(PREFIX + "/quality")
        assert len(first.json()["by_file"]) == 1
        later = date.today() + timedelta(days=400)
        monkeypatch.setattr(serve_app, "today", lambda: later)
        after = api.get(PREFIX + "/quality", headers={"If-None-Match": first.headers["etag"]})
        assert after.status_code == 200
        assert after.json()["to"] == later.isoformat()
        assert after.json()["by_file"] == []


def test_a_kept_answer_leaves_the_event_loop_only_when_the_store_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a kept answer and a 304 skip the thread pool; a new version is read there."""
    root = tmp_path / "lake"
    mark_lake(LocalStorage(root))
    settings = load_settings(env={}, config=root / "no.toml", lake=str(root))
    writer = open_serving(settings.serving_url)
    day = {"date": "2024-06-01", "rank": 1, "genre": "pop", "listen_count": 3}
    writer.replace_days(["2024-06-01"], {TOP_GENRES_PER_DAY: [day]})
    open_ledger(settings.ledger_url)
    pooled: list[str] = []

    async def counted(func: Any, *args: Any) -> Any:
        pooled.append(func.__name__)
        return await run_in_threadpool(func, *args)

    monkeypatch.setattr(serve_app, "run_in_threadpool", counted)
    sources = open_sources(settings)
    with TestClient(create_app(sources, warm=False)) as api:
        first = api.get(f"{PREFIX}/days/2024-06-01")
        assert len(pooled) == 1  # read in a worker thread
        again = api.get(f"{PREFIX}/days/2024-06-01")
        offered = {"If-None-Match": first.headers["etag"]}
        tagged = api.get(f"{PREFIX}/days/2024-06-01", headers=offered)
        assert (again.content, tagged.status_code, len(pooled)) == (first.content, 304, 1)
        writer.replace_days(["2024-06-01"], {TOP_GENRES_PER_DAY: [{**day, "listen_count": 4}]})
        assert api.get(f"{PREFIX}/days/2024-06-01").json()["top_genres"][0]["listen_count"] == 4
        assert len(pooled) == 2
        assert sources.quick is not None
        with sources.quick:  # a worker thread reading: the event loop does not wait for it
            assert sources.quick_version() is None
        assert sources.quick_version() == sources.serving.version()


def test_the_body_cache_keeps_the_newest_within_its_bytes_and_one_version() -> None:
    bodies = BodyCache(max_bytes=10)
    bodies.put("v1", "a", b"aaaa")
    bodies.put("v1", "b", b"bbbb")
    assert bodies.get("v1", "a") == b"aaaa"  # now the most recently used
    bodies.put("v1", "c", b"cccc")  # 12 bytes: the least recently used (b) goes
    assert (bodies.get("v1", "a"), bodies.get("v1", "b"), bodies.get("v1", "c")) == (
        b"aaaa",
        None,
        b"cccc",
    )
    bodies.put("v1", "huge", b"x" * 11)  # larger than the whole cache: not kept
    assert bodies.get("v1", "huge") is None
    assert bodies.get("v2", "a") is None  # a new version empties the cache
    bodies.put("v2", "a", b"new")
    bodies.put("v1", "c", b"old")  # read before the load: neither kept nor emptying v2's
    assert (bodies.get("v2", "a"), bodies.get("v2", "c")) == (b"new", None)
    assert bodies.get("v1", "c") is None


# --------------------------------------------------------------------------- the warm-up

WARM_DAYS = ["2024-06-01", "2024-06-02", "2024-06-03"]
WARM_GENRES = ["pop", "Hip Hop"]


def _warm_items(listen_count: int) -> dict[str, list[dict[str, Any]]]:
    """Three days of two genres (one with a space) in the serving store's tables."""
    kpis, songs, tops = [], [], []
    for day in WARM_DAYS:
        for rank, genre in enumerate(WARM_GENRES, start=1):
            kpis.append({
                "date": day, "genre": genre, "listen_count": listen_count,
                "unique_listeners": 2, "total_listening_time": 600, "avg_listening_time": 300.0,
            })  # fmt: skip
            song = {"rank": 1, "track_id": f"t-{genre}", "track_name": "Song", "artists": "A"}
            songs.append({"date": day, "genre": genre, "songs": [{**song, "play_count": 3}]})
            tops.append({"date": day, "rank": rank, "genre": genre, "listen_count": listen_count})
    return {DAILY_GENRE_KPIS: kpis, TOP_SONGS_PER_GENRE: songs, TOP_GENRES_PER_DAY: tops}


def _warm_paths() -> list[str]:
    days = [f"/days/{day}" for day in WARM_DAYS]
    return days + [f"{d}/genres/{g}/top-songs" for d in days for g in WARM_GENRES]


def _warm_lake(tmp_path: Path) -> tuple[ServingStore, str, Ledger]:
    url = f"sqlite:///{tmp_path / 'serving.sqlite'}"
    writer = open_serving(url)
    writer.replace_days(WARM_DAYS, _warm_items(3))
    return writer, url, open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def _counting_sources(url: str, ledger: Ledger) -> tuple[_Counting, Sources]:
    """Read-only sources over `url` that count item reads, locked and quick as `serve`'s."""
    counting = _Counting(open_serving(url, read_only=True))
    mutex = threading.Lock()
    return counting, Sources(serving=counting, ledger=ledger, lock=lambda: mutex, quick=mutex)


def _wait_warm(api: TestClient, days: int) -> None:
    deadline = time.monotonic() + 20
    while (warm := api.get(f"{PREFIX}/health").json()["warm"]) != {"days": days, "done": True}:
        assert time.monotonic() < deadline, warm
        time.sleep(0.02)


def _cold(api: TestClient, path: str) -> bytes:
    """The answer read from the store now: a query parameter of its own misses every kept one."""
    answer = api.get(f"{PREFIX}{path}?cold={uuid.uuid4().hex}")
    assert answer.status_code == 200, answer.text
    return answer.content


def test_after_start_every_day_is_answered_without_reading_the_store(tmp_path: Path) -> None:
    _writer, url, ledger = _warm_lake(tmp_path)
    counting, sources = _counting_sources(url, ledger)
    with TestClient(create_app(sources)) as api:
        _wait_warm(api, len(WARM_DAYS))
        counting.reads = 0
        answers = {path: api.get(PREFIX + path) for path in _warm_paths()}
        assert counting.reads == 0  # all precomputed: no item read
        assert {a.status_code for a in answers.values()} == {200}
        for path, answer in answers.items():
            assert answer.content == _cold(api, path)
        assert answers["/days/2024-06-03/genres/Hip Hop/top-songs"].json()["genre"] == "Hip Hop"
        size = _kept_bytes(api)
        counting.reads = 0
        assert api.get(f"{PREFIX}/days/2024-06-01?busted=1").status_code == 200
        assert api.get(f"{PREFIX}/days/2024-06-01?busted=1").status_code == 200
        assert counting.reads > 1  # a URL made unique is read each time, and not kept:
        assert _kept_bytes(api) == size  # it cannot push the warmed days out


def _kept_bytes(api: TestClient) -> int:
    """Bytes kept by the app's answer cache (found through its health endpoint's owner)."""
    health = next(r for r in api.app.routes if getattr(r, "path", "") == f"{PREFIX}/health")
    return int(health.endpoint.__self__.bodies.size)


def test_a_new_version_is_never_served_old_answers_and_is_warmed_again(tmp_path: Path) -> None:
    writer, url, ledger = _warm_lake(tmp_path)
    counting, sources = _counting_sources(url, ledger)
    with TestClient(create_app(sources)) as api:
        _wait_warm(api, len(WARM_DAYS))
        before = api.get(f"{PREFIX}/days/2024-06-02")
        writer.replace_days(WARM_DAYS, _warm_items(4))
        after = api.get(
            f"{PREFIX}/days/2024-06-02", headers={"If-None-Match": before.headers["etag"]}
        )
        assert after.status_code == 200
        assert after.json()["kpis"][0]["listen_count"] == 4
        _wait_warm(api, len(WARM_DAYS))
        counting.reads = 0
        answers = {path: api.get(PREFIX + path) for path in _warm_paths()}
        assert counting.reads == 0  # the new version's answers, warmed again
        assert {a.json()["date"] for a in answers.values()} == set(WARM_DAYS)
        assert answers["/days/2024-06-01"].json()["top_genres"][0]["listen_count"] == 4
        for path, answer in answers.items():
            assert answer.content == _cold(api, path)


class _Gated(_Counting):
    """A store whose warm-up thread stops before reading any day but the newest."""

    def __init__(self, inner: ServingStore) -> None:
        super().__init__(inner)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def read(self, table: str, days: list[str], **kwargs: Any) -> Any:
        self.reads += 1
        if threading.current_thread().name == "serve-warm" and days != [WARM_DAYS[-1]]:
            self.waiting.set()
            assert self.gate.wait(20)
        return self.inner.read(table, days, **kwargs)


def test_a_request_during_the_warm_up_is_answered_from_the_store(tmp_path: Path) -> None:
    _writer, url, ledger = _warm_lake(tmp_path)
    gated = _Gated(open_serving(url, read_only=True))
    with TestClient(create_app(Sources(serving=gated, ledger=ledger))) as api:
        assert gated.waiting.wait(20)  # the newest day is warm; the warm-up waits at the next
        assert api.get(f"{PREFIX}/health").json()["warm"] == {"days": 1, "done": False}
        gated.reads = 0
        newest = api.get(f"{PREFIX}/days/{WARM_DAYS[-1]}")
        assert gated.reads == 0
        oldest = api.get(f"{PREFIX}/days/{WARM_DAYS[0]}/genres/pop/top-songs")
        assert gated.reads > 0  # not warmed yet: read now, as without a warm-up
        gated.gate.set()
        _wait_warm(api, len(WARM_DAYS))
        assert newest.content == _cold(api, f"/days/{WARM_DAYS[-1]}")
        assert oldest.content == _cold(api, f"/days/{WARM_DAYS[0]}/genres/pop/top-songs")
        assert oldest.json()["songs"][0]["track_id"] == "t-pop"


# --------------------------------------------------------------------------- the document, the page


def test_openapi_is_valid_and_lists_every_path(served: Served) -> None:
    from openapi_spec_validator import validate

    document = served.json("/openapi.json")
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert sorted(document["paths"]) == sorted(PREFIX + p for p in PATHS)
    for path in PATHS:  # every documented path answers (200 or a documented 4xx)
        concrete = path.format(day=served.json("/days")["latest"], genre="pop")
        assert served.get(concrete).status_code in {200, 404}


def test_the_page_and_its_static_files_are_served(served: Served) -> None:
    page = Path(__file__).parents[1] / "src/music_etl/serve/static/index.html"
    index = served.api.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.content == page.read_bytes()
    assert served.api.get("/static/index.html").content == page.read_bytes()
    assert served.api.get("/static/nothing.js").status_code == 404


# --------------------------------------------------------------------------- read-only


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _serve_everything(settings: Settings) -> None:
    with TestClient(create_app(settings)) as api:
        latest = api.get(f"{PREFIX}/days").json()["latest"]
        for path in PATHS:
            api.get(PREFIX + path.format(day=latest, genre="pop"))


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_serving_leaves_the_lake_byte_identical(
    sqlite_lake: Settings, tmp_path: Path, journal: str
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(sqlite_lake.lake, root)
    for name in ("serving.sqlite", "ledger.sqlite"):  # as a finished run leaves them
        conn = sqlite3.connect(root / "_state" / name)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if journal == "delete":  # a lake restored from a backup, say: serving must not switch it
            conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
    assert not list(root.glob("_state/*-wal"))
    before = _files(root)
    _serve_everything(load_settings(env={}, config=root / "no.toml", lake=str(root)))
    after = _files(root)
    assert {k: after[k] for k in before} == before
    added = set(after) - set(before)
    if journal == "delete":
        assert added == set()
    else:  # SQLite's companions of a WAL database, opened read-only: empty log, shared memory
        assert added <= {
            f"_state/{n}.sqlite-{e}" for n in ("serving", "ledger") for e in ("wal", "shm")
        }
        assert all(after[name] == b"" for name in added if name.endswith("-wal"))


def test_a_lake_never_run_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    LocalStorage(root).write_bytes("raw/songs/songs.csv", b"track_id\n")
    with pytest.raises(ConfigError, match="run `music-etl run`"):
        create_app(load_settings(env={}, config=root / "no.toml", lake=str(root)))
    assert not (root / "_state").exists()


# --------------------------------------------------------------------------- the command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_serve_command_answers_and_stops_on_sigterm(sqlite_lake: Settings) -> None:
    port = _free_port()
    args = [MUSIC_ETL, "serve", "--lake", sqlite_lake.lake, "--port", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = _fetch(f"http://127.0.0.1:{port}{PREFIX}/days", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert body["days"] == open_serving(sqlite_lake.serving_url, read_only=True).days()
    assert out.strip() == (
        f"Serving {sqlite_lake.lake} on http://127.0.0.1:{port}/ (API: /api/v1/); Ctrl-C to stop."
    )


def _fetch(url: str, proc: subprocess.Popen[str]) -> Any:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - a local URL
                return json.loads(answer.read())
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(sqlite_lake: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [MUSIC_ETL, "serve", "--lake", sqlite_lake.lake, "--port", str(port)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"Cannot listen on 127.0.0.1:{port}" in line


BLOCK_SERVE = """
import sys

BLOCKED = set(sys.argv[2].split(","))

class _NoServe:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoServe())
from music_etl.cli.app import main
sys.argv = ["music-etl", "serve", "--lake", sys.argv[1]]
main()
"""


@pytest.mark.parametrize("blocked", ["starlette,uvicorn", "orjson"])
def test_serve_without_the_extra_says_how_to_install_it(
    sqlite_lake: Settings, blocked: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_SERVE, sqlite_lake.lake, blocked],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "pip install 'music-streaming-etl[serve]'" in line


def test_a_corrupt_store_is_a_json_500_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "serving.sqlite").write_bytes(b"not a database at all" * 300)
    serving = open_serving(f"sqlite:///{tmp_path / 'serving.sqlite'}", read_only=True)
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with TestClient(create_app(Sources(serving=serving, ledger=ledger))) as api:
        answer = api.get(f"{PREFIX}/days")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "store_error"
    assert "rebuild" in answer.json()["error"]["message"]
