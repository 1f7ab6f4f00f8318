"""One conformance suite for every engine: same inputs, same lake, same store, same ledger.

Each scenario lands raw files step by step and runs the whole pipeline with the
engine under test. After every step the lake is read back (every Parquet file by key:
schema and sorted rows, floats compared exactly), with the serving store, the ledger
and where the raw files went, and compared with the embedded engine's run of the same
scenario (`reference`). The embedded engine itself is checked against the independent
oracle by `test_edge_matrix.py`, `test_hostile_input.py` and `test_real_data.py`.

A difference an engine cannot remove is a strict xfail with its reason in
`KNOWN_GAPS`: fixing it turns the test red until the entry goes.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    SHARED_DATA,
    SONG_HEADER,
    SPARK,
    SPARK_SOCKETS,
    Lake,
    csv_bytes,
    default_songs,
    spark_test,
)
from lake_snapshot import Snapshot, assert_same, snapshot
from music_etl.logic import layout
from music_etl.logic.contract import DIMENSIONS, FILE_REASONS, STREAMS
from music_etl.pipeline.rebuild import rebuild
from music_etl.pipeline.run import run
from music_etl.sample.generator import generate
from test_edge_matrix import CASES, FIRST, HEADER, SECOND, matrix_users, stream_file
from test_hostile_input import GOOD, GOOD_LINES, with_bad_rows

LOAD_ALL = 1.0
pytestmark = SPARK_SOCKETS

# --------------------------------------------------------------------------- engines

ENGINES = [pytest.param("polars"), pytest.param("spark", marks=SPARK)]

#: (engine, scenario) -> why that engine cannot give the embedded engine's answer.
KNOWN_GAPS = {
    ("spark", "blank-lines"): (
        "Spark's CSV reader (univocity) skips empty lines, so they are neither counted "
        "as null_field rows nor numbered; later rows of the file get lower line numbers."
    ),
    ("spark", "stray-quote"): (
        "Polars rejects a file with a quote inside an unquoted field as unreadable_file; "
        "Spark reads the quote as part of the value."
    ),
}


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    if request.param == "spark":
        request.getfixturevalue("spark")
    return str(request.param)


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Step:
    """Land files, then `run` (or `rebuild`) with these settings."""

    files: tuple[tuple[str, bytes], ...] = ()
    land: Callable[[Lake], None] | None = None
    threshold: float = 0.05
    songs: list[tuple[object, ...]] | None = None
    rebuild: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    users: list[tuple[object, ...]] | None = None
    songs: list[tuple[object, ...]] | None = None
    needs: tuple[Path, ...] = field(default=())

    def __str__(self) -> str:
        return self.name


def _generated(lake: Lake) -> None:
    generate(lake.storage, streams=6_000, files=3, days=5, seed=5, songs=2_000, users=500)


def _late_generated(lake: Lake) -> None:
    generate(lake.storage, streams=1_500, files=1, days=5, seed=5, songs=2_000, users=500, append=1)
    earlier = lake.storage.read_bytes("archive/streams/streams_0001.csv").splitlines()
    lake.put_raw("replayed.csv", b"\n".join(earlier[:80]) + b"\n")


def _latin1_title(lake: Lake) -> None:
    songs = lake.storage.read_bytes(layout.RAW_SONGS).replace(b"Song Three", b"Caf\xe9 Three")
    lake.storage.write_bytes(layout.RAW_SONGS, songs)


def _real_data(lake: Lake) -> None:
    for name in ("songs", "users"):
        data = (SHARED_DATA / f"{name}.csv").read_bytes()
        lake.storage.write_bytes(f"raw/{name}/{name}.csv", data)
    for name in ("streams1.csv", "streams2.csv", "streams3.csv"):
        lake.put_raw(name, (SHARED_DATA / name).read_bytes())


def _edge_files() -> tuple[tuple[str, bytes], ...]:
    files = [
        (f"edge-{i:02d}-{name.replace(':', '-')}.csv", HEADER + case.line.encode() + b"\n")
        for i, (name, case) in enumerate(CASES.items())
    ]
    files.append(("raw-spelling.csv", HEADER + b" +42 ,\tt1 ,2024-06-25 10:00:00\n"))
    return tuple(files)


DUPLICATES = (
    ("dups-identical.csv", stream_file("1,t1,2024-06-25 10:00:00", "1,t1,2024-06-25 10:00:00")),
    (
        "dups-spellings.csv",
        stream_file("42,t1,2024-06-26 10:00:00", "0042,t1,2024-06-26T10:00:00Z"),
    ),
    ("dups-padded.csv", stream_file("5,t1,2024-06-27 10:00:00", "5, t1\t,2024-06-27 10:00:00")),
    ("dups-repeat-listen.csv", stream_file("6,t1,2024-06-27 10:00:00", "6,t1,2024-06-27 10:00:01")),
    ("dups-rejected.csv", stream_file("21,t1,2024-06-25 10:00:00", "21,t1,2024-06-25 10:00:00")),
    ("x-first.csv", FIRST),
    ("y-second.csv", SECOND),
)

SHAPES = (
    ("header-lf.csv", HEADER),
    ("header-no-newline.csv", HEADER[:-1]),
    ("header-crlf.csv", HEADER.replace(b"\n", b"\r\n")),
    ("missing-column.csv", b"user_id,track_id\n1,t1\n2,t2\n"),
    ("empty.csv", b""),
    ("quoted-header.csv", b'"user_id","track_id","listen_time"\n1,t1,2024-06-25 10:00:00\n'),
    ("bom.csv", b"\xef\xbb\xbf" + HEADER + b"2,t2,2024-06-25 10:00:00\n"),
    (
        "reordered.csv",
        b"listen_time,extra,track_id,user_id,more\n2024-06-25 11:00:00,x,t3,3,y\n,,t3,x,\n",
    ),
    ("padded-header.csv", b" User_ID \t,TRACK_ID,\tListen_Time \n4,t4,2024-06-25 12:00:00\n"),
    (
        "crlf.csv",
        b"user_id,track_id,listen_time\r\n5,t1,2024-06-25 10:00:00\r\n3,t3,not a time\r\n",
    ),
    ("ragged.csv", HEADER + b"1,t1\n2\n3,t1,2024-06-25 13:00:00,surplus,fields\n4,t2,x\n"),
    (
        "quoted-empty.csv",
        HEADER + b'"",t1,2024-06-25 10:00:00\n7,"",2024-06-25 10:00:00\n8,t1,""\n',
    ),
    (
        "latin1.csv",
        HEADER + b"9,t1,2024-06-25 14:00:00\n2,t\xff1,2024-06-25 10:00:00\n3\xe9,t1,x\n"
        b"4,t1,2024-06-25 10:00:0\xc3\n\xfe\xff,\x80\x81,\xc0\xaf\n",
    ),
    ("titles.csv", stream_file("1,t5,2024-06-25 10:10:00", "2,t6,2024-06-25 10:20:00")),
    (
        "long-field.csv",
        stream_file(f"1,{'x' * 100_000},2024-06-25 10:00:00", "10,t2,2024-06-25 10:00:00"),
    ),
    ("quoted-newline.csv", HEADER + b'1,t1,"2024-06-25 17:43:13\n"\n11,t1,2024-06-25 17:43:13\n'),
)

TITLE_SONGS = [
    *default_songs(),
    ("t5", 'Artist "F", Jr.', "Album", 'Line one\nline two, "quoted"', 1, 120_000, "pop"),
    ("t6", "Artist G", "Album", 'He said ""hi""', 1, 90_000, "jazz"),
    ("", "No id", "Album", "Nameless", 1, 80_000, "pop"),
    ("t8", "Bad duration", "Album", "Song", 1, "3.5e5", "pop"),
    ("t1", "Artist A", "Album", "Song One (again)", 50, 200_000, "pop"),
]

THRESHOLD = (
    ("a-bad.csv", with_bad_rows(6)),
    ("b-good.csv", GOOD),
    ("c-exactly-five-percent.csv", with_bad_rows(5)),
    (
        "d-rejected-first.csv",
        stream_file(*GOOD_LINES[:10], *(f"{u},t9,2024-06-25 12:00:00" for u in range(1, 11))),
    ),
    ("e-same-events-later.csv", stream_file(*GOOD_LINES[:10])),
)


def _days(*spec: tuple[int, str, str]) -> bytes:
    return stream_file(*(f"{user},{track},{when}" for user, track, when in spec))


CHANGED_SONGS = [
    ("t1", "Artist A", "Album", "Song One", 50, 210_000, "pop"),
    ("t2", "Artist B;Artist C", "Album", "Ave Maria", 60, 300_000, "rock"),
    ("t4", "Artist E", "Album", "Song Four", 10, 150_000, "jazz"),
]

SCENARIOS = [
    Scenario(name="generated", steps=(Step(land=_generated), Step(land=_late_generated))),
    Scenario(
        name="real-lab-data",
        steps=(Step(land=_real_data),),
        needs=tuple(SHARED_DATA / n for n in ("songs.csv", "users.csv", "streams1.csv")),
    ),
    Scenario(
        name="edge-matrix",
        users=matrix_users(),
        steps=(Step(files=_edge_files(), threshold=LOAD_ALL),),
    ),
    Scenario(
        name="duplicates",
        users=matrix_users(),
        steps=(
            Step(files=DUPLICATES, threshold=LOAD_ALL),
            Step(files=(("a-later-run.csv", SECOND),), threshold=LOAD_ALL),
        ),
    ),
    Scenario(
        name="file-shapes",
        songs=TITLE_SONGS,
        steps=(Step(files=SHAPES, land=_latin1_title, threshold=LOAD_ALL),),
    ),
    Scenario(name="threshold", steps=(Step(files=THRESHOLD),)),
    Scenario(
        name="replace-late-and-new-songs",
        steps=(
            Step(
                files=(
                    (
                        "a.csv",
                        _days((1, "t1", "2024-06-21 10:00:00"), (2, "t2", "2024-06-22 10:00:00")),
                    ),
                    (
                        "b.csv",
                        _days((3, "t3", "2024-06-22 11:00:00"), (4, "t3", "2024-06-23 10:00:00")),
                    ),
                )
            ),
            Step(
                files=(
                    (
                        "a.csv",
                        _days((1, "t4", "2024-06-24 10:00:00"), (5, "t1", "2024-06-24 10:00:00")),
                    ),
                    (
                        "c.csv",
                        _days((6, "t2", "2024-06-22 12:00:00"), (7, "t1", "2024-06-20 09:00:00")),
                    ),
                )
            ),
            Step(songs=CHANGED_SONGS),
            Step(rebuild=True),
        ),
    ),
    Scenario(
        name="binary-junk",
        steps=(
            Step(
                files=(
                    ("junk-random.csv", random.Random(7).randbytes(64 * 1024)),
                    ("junk-all-bytes.csv", bytes(range(256)) * 64),
                    ("junk-png.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 4096),
                    ("z-good.csv", GOOD),
                )
            ),
        ),
    ),
    Scenario(
        # A users.csv without any valid row is rejected (docs/data-contract.md): keep one.
        name="one-valid-user",
        users=[
            ("x", "Nobody", 1, "", ""),
            ("", "Nameless", 1, "", ""),
            ("-3", "Minus", 1, "", ""),
            ("1", "One", 1, "", ""),
        ],
        steps=(Step(files=(("a.csv", GOOD),), threshold=LOAD_ALL),),
    ),
    Scenario(
        name="blank-lines",
        steps=(
            Step(
                files=(("blank.csv", HEADER + b"1,t1,2024-06-25 10:00:00\n\n \t \n2,t2,x\n"),),
                threshold=LOAD_ALL,
            ),
        ),
    ),
    Scenario(
        name="stray-quote",
        steps=(
            Step(files=(("quote.csv", stream_file('1,t"1,2024-06-25 10:00:00', *GOOD_LINES)),)),
        ),
    ),
]


# --------------------------------------------------------------------------- playing


def play(scenario: Scenario, engine: str, root: Path) -> list[Snapshot]:
    """Run the scenario's steps on a fresh lake; a snapshot after each step."""
    lake = Lake(root / "lake")
    lake.put_dimensions(songs=scenario.songs, users=scenario.users)
    taken = []
    for step in scenario.steps:
        if step.songs is not None:
            lake.storage.write_bytes(layout.RAW_SONGS, csv_bytes(SONG_HEADER, step.songs))
        if step.land is not None:
            step.land(lake)
        for name, data in step.files:
            lake.put_raw(name, data)
        settings = lake.settings(engine=engine, bad_row_threshold=step.threshold)
        report = rebuild(settings) if step.rebuild else run(settings)
        taken.append(snapshot(lake.root, settings, report))
    return taken


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Scenario], list[Snapshot]]:
    """The embedded engine's snapshots of a scenario, computed once per test run."""
    cache: dict[str, list[Snapshot]] = {}

    def get(scenario: Scenario) -> list[Snapshot]:
        if scenario.name not in cache:
            root = tmp_path_factory.mktemp(f"reference-{scenario.name}")
            cache[scenario.name] = play(scenario, "polars", root)
        return cache[scenario.name]

    return get


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_engine_matches_the_embedded_engine(
    engine_name: str,
    scenario: Scenario,
    tmp_path: Path,
    reference: Callable[[Scenario], list[Snapshot]],
    request: pytest.FixtureRequest,
) -> None:
    missing = [str(p) for p in scenario.needs if not p.is_file()]
    if missing:
        pytest.skip(f"input not available: {', '.join(missing)}")
    gap = KNOWN_GAPS.get((engine_name, scenario.name))
    if gap:
        request.applymarker(pytest.mark.xfail(strict=True, reason=gap))
    got = play(scenario, engine_name, tmp_path)
    want = reference(scenario)
    assert len(got) == len(want)
    for step, (actual, expected) in enumerate(zip(got, want, strict=True), start=1):
        try:
            assert_same(actual, expected)
        except AssertionError as exc:
            raise AssertionError(f"step {step} of {scenario.name}: {exc}") from exc


# --------------------------------------------------------------------------- rules live once

ENGINE_SOURCES = Path(__file__).resolve().parents[1] / "src" / "music_etl" / "engines"


def _string_literals(path: Path) -> set[str]:
    """String constants of a module, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docstrings.add(id(body[0].value))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    }


@pytest.mark.parametrize("engine", ["polars", "spark"])
def test_engines_restate_no_rule(engine: str) -> None:
    """An engine translates the contract's primitives; it spells no reason and no pattern."""
    reasons = {r for contract in (*DIMENSIONS, STREAMS) for r in contract.reasons}
    reasons |= set(FILE_REASONS)
    for path in sorted((ENGINE_SOURCES / engine).glob("*.py")):
        literals = _string_literals(path)
        assert not literals & reasons, f"{path.name} names a reason itself"
        assert not [s for s in literals if "[0-9]" in s or "\\d" in s], f"{path.name}: a pattern"


# --------------------------------------------------------------------------- the command line


@spark_test  # in process: the command finds the `spark` session
def test_the_command_line_runs_the_spark_engine(spark: Any, lake: Lake) -> None:
    from typer.testing import CliRunner

    from music_etl.cli.app import app

    lake.put_streams("a.csv", [(1, "t1", "2024-06-25 10:00:00"), (2, "t2", "2024-06-25 11:00:00")])
    result = CliRunner().invoke(
        app,
        ["run", "--engine", "spark", "--lake", str(lake.root)],
        env={"MUSIC_ETL_NOW": "2024-07-01T00:00:00Z"},
    )
    assert result.exit_code == 0, result.output
    assert lake.storage.exists("archive/streams/a.csv")
    assert lake.storage.exists("processed/top_genres/date=2024-06-25/part-0.parquet")
