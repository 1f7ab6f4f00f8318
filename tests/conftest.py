"""Shared fixtures: a lake in a temp folder with small, hand-written dimensions."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from music_etl.adapters.storage.local import LocalStorage
from music_etl.logic import layout
from music_etl.settings import Settings, load_settings

#: The processing clock every test run uses unless it says otherwise.
NOW = "2024-07-01T00:00:00Z"
#: PySpark's `collect` leaves its result socket to the garbage collector.
SPARK_SOCKETS = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)
#: The marks of a test that uses Spark in this process: the `spark` fixture, or a session
#: that `getOrCreate` finds. One xdist worker runs them all, so the run starts one such JVM
#: (about 1.5 GB resident), not one per worker.
SPARK = (pytest.mark.spark, pytest.mark.xdist_group("spark"), SPARK_SOCKETS)
#: The marks of a test that runs Spark only in subprocesses (`music-etl --engine spark`, the
#: Glue job scripts): each starts and stops its own JVM and shares nothing with `spark`, so
#: any worker may run it. Pinned to the "spark" group they only lengthened that worker's
#: queue, the longest of the run (docs/spark-engine.md#how-the-tests-run-spark).
SPARK_CLI = (pytest.mark.spark,)


#: The JVM options of the Spark subprocesses the tests start (`music-etl --engine spark`, the
#: Glue job scripts): C1 only. Each lives for seconds, where C2 compiles more than it saves:
#: measured on the crash and hidden-names Spark tests, 72 against 120 CPU seconds and 72
#: against 90 s of wall time. The `spark` fixture's JVM lives for the whole run and keeps
#: both compilers (C1 only there: 14 % less CPU but 11 % more wall time for the Spark tests
#: alone). Production JVMs are untouched: this is the tests' environment only.
SUBPROCESS_JVM_OPTIONS = "-XX:TieredStopAtLevel=1"
_SUBMIT_ARGS = "PYSPARK_SUBMIT_ARGS"
_TEST_SUBMIT_ARGS = f"--driver-java-options {SUBPROCESS_JVM_OPTIONS} pyspark-shell"
os.environ.setdefault(_SUBMIT_ARGS, _TEST_SUBMIT_ARGS)
Test = Callable[..., None]


def _marked(marks: Sequence[pytest.MarkDecorator]) -> Callable[[Test], Test]:
    """A decorator that gives a test `marks`."""

    def mark(test: Test) -> Test:
        for one in marks:
            test = one(test)
        return test

    return mark


#: A test with the `SPARK` marks.
spark_test = _marked(SPARK)
#: A test with the `SPARK_CLI` marks.
spark_cli_test = _marked(SPARK_CLI)


SONG_HEADER = (
    "track_id",
    "artists",
    "album_name",
    "track_name",
    "popularity",
    "duration_ms",
    "track_genre",
)
USER_HEADER = ("user_id", "user_name", "user_age", "user_country", "created_at")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amalitech-lab"


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """An RFC 4180 CSV with `header` and `rows`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def default_songs() -> list[tuple[object, ...]]:
    """Four tracks; t2 is listed under two genres; one title has commas and quotes."""
    return [
        ("t1", "Artist A", "Album", "Song One", 50, 200_000, "pop"),
        ("t2", "Artist B;Artist C", "Album", 'Ave Maria, "Ellens Gesang III"', 60, 300_000, "rock"),
        ("t2", "Artist B;Artist C", "Album", 'Ave Maria, "Ellens Gesang III"', 60, 300_000, "pop"),
        ("t3", "Artist D", "Album", "Song Three", 10, 100_000, "jazz"),
        ("t4", "Artist E", "Album", "Song Four", 10, 150_000, "pop"),
    ]


def default_users() -> list[tuple[object, ...]]:
    """Users 1..20."""
    return [(i, f"User {i}", 30, "Ghana", "2024-01-01") for i in range(1, 21)]


class Lake:
    """A test lake: write raw files, build settings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = LocalStorage(root)

    def put_dimensions(
        self,
        songs: Iterable[Sequence[object]] | None = None,
        users: Iterable[Sequence[object]] | None = None,
    ) -> None:
        """Write songs.csv and users.csv (defaults: `default_songs`, `default_users`)."""
        self.storage.write_bytes(layout.RAW_SONGS, csv_bytes(SONG_HEADER, songs or default_songs()))
        self.storage.write_bytes(layout.RAW_USERS, csv_bytes(USER_HEADER, users or default_users()))

    def put_streams(self, name: str, rows: Iterable[Sequence[object]]) -> str:
        """Write raw/streams/<name> with the standard header; return its key."""
        key = layout.RAW_STREAMS + name
        self.storage.write_bytes(key, csv_bytes(("user_id", "track_id", "listen_time"), rows))
        return key

    def put_raw(self, name: str, data: bytes) -> str:
        """Write raw/streams/<name> with exactly `data`."""
        key = layout.RAW_STREAMS + name
        self.storage.write_bytes(key, data)
        return key

    def settings(self, **overrides: object) -> Settings:
        """Settings for this lake with the fixed test clock."""
        values: dict[str, object] = {
            "lake": str(self.root),
            "now": NOW,
            "settle_seconds": 0,
            **overrides,
        }
        return load_settings(env={}, config=self.root / "no-config.toml", **values)


def require_spark() -> None:
    """Skip the test where Spark cannot run: no PySpark, or no Java."""
    pytest.importorskip("pyspark")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("the Spark engine needs Java 17 (java on PATH or JAVA_HOME)")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The one Spark session of the test run (each xdist worker's): local, two cores, no UI,
    loopback only; the conformance suites and the job counts share it."""
    require_spark()
    from pyspark.sql import SparkSession

    # Started without the subprocesses' JVM options (`SUBPROCESS_JVM_OPTIONS`); submit
    # arguments the environment brought (jars, say) stay.
    ours = os.environ.get(_SUBMIT_ARGS) == _TEST_SUBMIT_ARGS
    if ours:
        del os.environ[_SUBMIT_ARGS]
    try:
        session = _test_session(SparkSession.builder)
    finally:
        if ours:
            os.environ[_SUBMIT_ARGS] = _TEST_SUBMIT_ARGS
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _test_session(builder: Any) -> Any:
    return (
        builder.master("local[2]")
        .appName("music-etl-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )


@pytest.fixture(autouse=True)
def _files_settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test files are written atomically: take them at once (the settle tests say otherwise)."""
    monkeypatch.setenv("MUSIC_ETL_SETTLE_SECONDS", "0")


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """An empty lake with the default dimensions in place."""
    made = Lake(tmp_path / "lake")
    made.put_dimensions()
    return made
