"""One serving-store suite over SQLite and DynamoDB (moto over HTTP)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from aws.helpers import AwsLake, error_response, json_response, new_client, typed
from music_etl.adapters.aws.batch import Backoff
from music_etl.adapters.serving import open_serving
from music_etl.adapters.serving.base import ServingStore
from music_etl.adapters.serving.dynamodb import DynamoDBServingStore
from music_etl.errors import Retryable, ServiceUnavailable

D1, D2 = "2024-06-01", "2024-06-02"


def kpi(day: str, genre: str, listeners: int = 3) -> dict[str, Any]:
    return {
        "date": day,
        "genre": genre,
        "listen_count": 7,
        "unique_listeners": listeners,
        "total_listening_time": 600_000,
        "avg_listening_time": 600_000 / listeners,
    }


def songs(day: str, genre: str, count: int = 3) -> dict[str, Any]:
    ranked = [
        {
            "rank": r,
            "track_id": f"t{r}",
            "track_name": f'Song "{r}", live',
            "artists": "A;B",
            "play_count": 10 - r,
        }
        for r in range(1, count + 1)
    ]
    return {"date": day, "genre": genre, "songs": ranked}


def genres(day: str, names: list[str]) -> list[dict[str, Any]]:
    return [
        {"date": day, "rank": r, "genre": g, "listen_count": 100 - r}
        for r, g in enumerate(names, 1)
    ]


def items(day: str, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {
        "DailyGenreKPIs": [kpi(day, g, listeners=i + 1) for i, g in enumerate(names)],
        "TopSongsPerGenre": [songs(day, g) for g in names],
        "TopGenresPerDay": genres(day, names),
    }


def merged(*parts: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        for table, rows in part.items():
            out.setdefault(table, []).extend(rows)
    return out


@pytest.fixture(params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.aws)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ServingStore:
    if request.param == "sqlite":
        return open_serving(f"sqlite:///{tmp_path / 'serving.sqlite'}")
    aws_lake: AwsLake = request.getfixturevalue("aws_lake")
    return open_serving(aws_lake.dynamodb, endpoint=aws_lake.endpoint)


def scans(store: ServingStore) -> dict[str, Any]:
    return {t: store.scan(t) for t in ("DailyGenreKPIs", "TopSongsPerGenre", "TopGenresPerDay")}


def test_replace_days_removes_rows_that_vanished(store: ServingStore) -> None:
    store.replace_days([D1, D2], merged(items(D1, ["pop", "rock", "jazz"]), items(D2, ["pop"])))
    store.replace_days([D1], items(D1, ["soul"]))
    got = scans(store)
    assert [(r["date"], r["genre"]) for r in got["DailyGenreKPIs"]] == [(D1, "soul"), (D2, "pop")]
    assert [(r["date"], r["genre"]) for r in got["TopSongsPerGenre"]] == [(D1, "soul"), (D2, "pop")]
    assert [(r["date"], r["rank"]) for r in got["TopGenresPerDay"]] == [(D1, 1), (D2, 1)]


def test_a_day_without_items_is_emptied(store: ServingStore) -> None:
    store.replace_days([D1, D2], merged(items(D1, ["pop"]), items(D2, ["pop"])))
    store.replace_days([D2], {})
    assert {r["date"] for r in store.scan("DailyGenreKPIs")} == {D1}


def test_replace_is_idempotent_and_handles_many_items(store: ServingStore) -> None:
    names = [f"genre-{i:02d}" for i in range(30)]
    store.replace_days([D1], items(D1, names))
    first = scans(store)
    store.replace_days([D1], items(D1, names))
    assert scans(store) == first
    assert len(first["DailyGenreKPIs"]) == 30


def test_scan_shape_is_the_same_on_every_backend(store: ServingStore, tmp_path: Path) -> None:
    reference = open_serving(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    load = merged(items(D1, ["pop", "rock"]), items(D2, ["a", "b", "c", "d", "e", "f"]))
    load["DailyGenreKPIs"].append(kpi(D2, "g", listeners=1))  # an integral average
    for each in (store, reference):
        each.replace_days([D1, D2], load)
    assert typed(scans(store)) == typed(scans(reference))
    top = store.scan("TopSongsPerGenre")[0]["songs"][0]
    assert top == {
        "rank": 1,
        "track_id": "t1",
        "track_name": 'Song "1", live',
        "artists": "A;B",
        "play_count": 9,
    }


# --------------------------------------------------------------------------- DynamoDB only


class Unprocessed:
    """Answers the first `times` BatchWriteItem calls with every item unprocessed."""

    def __init__(self, times: int) -> None:
        self.left = times

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        if not event_name.endswith(".BatchWriteItem") or self.left <= 0:
            return None
        self.left -= 1
        sent = json.loads(request.body)["RequestItems"]
        return json_response(request.url, {"UnprocessedItems": sent})


@pytest.mark.aws
def test_unprocessed_items_are_resent_with_backoff(aws_lake: AwsLake) -> None:
    waits: list[float] = []
    backoff = Backoff(sleep=waits.append, rng=random.Random(1))
    store = DynamoDBServingStore(aws_lake.dynamodb, endpoint=aws_lake.endpoint, backoff=backoff)
    store.client.meta.events.register("before-send", Unprocessed(times=3))
    store.replace_days([D1], items(D1, ["pop", "rock"]))
    assert len(store.scan("DailyGenreKPIs")) == 2
    assert len(waits) == 3
    assert all(0 <= w <= min(backoff.cap, backoff.base * 2**i) for i, w in enumerate(waits))


@pytest.mark.aws
def test_throttling_that_never_ends_is_retryable(aws_lake: AwsLake) -> None:
    raw = new_client("dynamodb", aws_lake.endpoint, max_attempts=1)
    raw.meta.events.register(
        "before-send.dynamodb.BatchWriteItem",
        lambda request, **_: error_response("dynamodb", request.url, throttle=True),
    )
    waits: list[float] = []
    store = DynamoDBServingStore(
        aws_lake.dynamodb, client=raw, backoff=Backoff(sleep=waits.append, attempts=4)
    )
    with pytest.raises(ServiceUnavailable, match="unprocessed after 4 attempts") as caught:
        store.replace_days([D1], items(D1, ["pop"]))
    assert isinstance(caught.value, Retryable)
    assert len(waits) == 3


@pytest.mark.aws
def test_missing_tables_say_how_to_create_them(s3_lake: AwsLake) -> None:
    store = open_serving(s3_lake.dynamodb, endpoint=s3_lake.endpoint)
    with pytest.raises(Exception, match="music-etl aws init"):
        store.scan("DailyGenreKPIs")


def test_reads_one_day_one_key_and_lists_days(store: ServingStore) -> None:
    store.replace_days([D1, D2], merged(items(D1, ["pop", "rock"]), items(D2, ["jazz"])))
    assert store.days() == [D1, D2]
    assert store.read("DailyGenreKPIs", [D2]) == [kpi(D2, "jazz", listeners=1)]
    assert store.read("DailyGenreKPIs", [D1, D2], sort_key="rock") == [kpi(D1, "rock", 2)]
    assert store.read("TopSongsPerGenre", [D1], sort_key="pop") == [songs(D1, "pop")]
    assert [r["genre"] for r in store.read("TopGenresPerDay", [D1])] == ["pop", "rock"]
    assert store.read("TopGenresPerDay", [D1], sort_key=2) == genres(D1, ["pop", "rock"])[1:]
    assert store.read("DailyGenreKPIs", ["2030-01-01"]) == []
    assert store.read("DailyGenreKPIs", []) == []


def test_version_moves_with_every_replace(store: ServingStore) -> None:
    before = store.version()
    assert store.version() == before
    store.replace_days([D1], items(D1, ["pop"]))
    after = store.version()
    assert after != before
    assert store.version() == after
    store.replace_days([D1], items(D1, ["rock"]))
    assert store.version() != after


def test_sqlite_version_sees_another_connections_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serving.sqlite'}"
    writer, reader = open_serving(url), open_serving(url)
    seen = reader.version()
    writer.replace_days([D1], items(D1, ["pop"]))
    assert reader.version() != seen
    assert reader.read("TopGenresPerDay", [D1]) == genres(D1, ["pop"])
