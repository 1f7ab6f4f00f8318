"""The Glue catalog tables: one description (`logic/catalog.py`), the template and the DDL.

The template's `AWS::Glue::Table`s and `music-etl aws ddl` are both checked against
`catalog.TABLES`; a lake the CLI made shows that each table location holds only the
Parquet files the table describes, with the column types the engine wrote.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploy.test_infra import resources
from music_etl.logic import catalog, contract

CLI = str(Path(sys.executable).parent / "music-etl")
CFN_LAKE = "s3://${LakeBucket}/${LakePrefix}"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, check=False, env={**clean, **(env or {})}
    )


def _sub(value: Any) -> str:
    """A `!Sub` string as Athena will see it: `${!x}` is CloudFormation's literal `${x}`."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    return str(text).replace("${!", "${")


def template_tables() -> dict[str, dict[str, Any]]:
    return {
        table["Properties"]["TableInput"]["Name"]: table["Properties"]
        for table in resources("AWS::Glue::Table").values()
    }


# --------------------------------------------------------------------------- template


def test_template_declares_exactly_the_catalog_tables() -> None:
    found = template_tables()
    assert sorted(found) == sorted(t.name for t in catalog.TABLES)
    for table in catalog.TABLES:
        props = found[table.name]
        assert props["DatabaseName"] == {"Ref": "GlueDatabase"}
        given = props["TableInput"]
        assert given["TableType"] == "EXTERNAL_TABLE"
        storage = given["StorageDescriptor"]
        assert _sub(storage["Location"]) == table.location(CFN_LAKE)
        assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == list(table.columns)
        assert storage["InputFormat"] == catalog.PARQUET_INPUT
        assert storage["SerdeInfo"]["SerializationLibrary"] == catalog.PARQUET_SERDE
        parameters = {k: _sub(v) for k, v in given["Parameters"].items()}
        assert parameters == table.parameters(CFN_LAKE)
        keys = [(k["Name"], k["Type"]) for k in given.get("PartitionKeys", [])]
        assert keys == ([(table.partition, "date")] if table.partition else [])


def test_template_output_tables_are_the_contracts() -> None:
    """The template's KPI tables carry exactly the contract's columns, typed by the one map."""
    found = template_tables()
    for name, schema in contract.output_schemas().items():
        columns = found[name]["TableInput"]["StorageDescriptor"]["Columns"]
        expected = [(c, catalog.HIVE_TYPES[k]) for c, k in schema.items() if c != "date"]
        assert [(c["Name"], c["Type"]) for c in columns] == expected, name
    kpis = found["daily_genre_kpis"]["TableInput"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in kpis][1:] == [m.name for m in contract.KPI_METRICS]


def test_date_partitions_are_projected_and_nothing_is_crawled() -> None:
    assert not resources("AWS::Glue::Crawler")
    partitioned = {t.name: t.partition for t in catalog.TABLES if t.partition}
    assert partitioned == {
        "streams": "listen_date",
        "daily_genre_kpis": "date",
        "top_songs": "date",
        "top_genres": "date",
    }
    for name, column in partitioned.items():
        parameters = template_tables()[name]["TableInput"]["Parameters"]
        assert parameters["projection.enabled"] == "true"
        assert parameters[f"projection.{column}.type"] == "date"
        template = _sub(parameters["storage.location.template"])
        assert template.endswith(f"/{column}=${{{column}}}/")


# --------------------------------------------------------------------------- DDL


def _ddl_tables(script: str) -> dict[str, dict[str, Any]]:
    """Each `CREATE EXTERNAL TABLE` of `script`: columns, partition, location, properties."""
    found = {}
    for block in re.split(r"\n(?=CREATE EXTERNAL TABLE )", script)[1:]:
        name = re.search(r"`\w+`\.`(\w+)`", block)
        columns = re.search(r"\(\n(.*?)\n\)", block, re.S)
        assert name and columns, block
        partition = re.search(r"PARTITIONED BY \(`(\w+)` (\w+)\)", block)
        found[name.group(1)] = {
            "columns": re.findall(r"`(\w+)` (\w+)", columns.group(1)),
            "partition": partition.groups() if partition else None,
            "location": re.search(r"LOCATION '([^']+)'", block).group(1),  # type: ignore[union-attr]
            "properties": dict(re.findall(r"'([^']+)' = '([^']*)'", block)),
            "parquet": "STORED AS PARQUET" in block,
        }
    return found


def test_ddl_prints_the_templates_tables() -> None:
    done = cli("aws", "ddl", "--lake", "s3://my-lake-bucket/music", "--database", "music_dev")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CREATE DATABASE IF NOT EXISTS `music_dev`;")
    printed = _ddl_tables(done.stdout)
    cfn = template_tables()
    assert sorted(printed) == sorted(cfn)
    lake = {"${LakeBucket}": "my-lake-bucket", "${LakePrefix}": "music"}

    def on_lake(text: str) -> str:
        for placeholder, value in lake.items():
            text = text.replace(placeholder, value)
        return text

    for name, table in printed.items():
        given = cfn[name]["TableInput"]
        storage = given["StorageDescriptor"]
        assert table["parquet"]
        assert table["location"] == on_lake(_sub(storage["Location"]))
        assert table["columns"] == [(c["Name"], c["Type"]) for c in storage["Columns"]]
        keys = [(k["Name"], k["Type"]) for k in given.get("PartitionKeys", [])]
        assert [table["partition"]] == (keys or [None])
        expected = {k: on_lake(_sub(v)) for k, v in given["Parameters"].items()}
        expected.pop("EXTERNAL")  # `CREATE EXTERNAL TABLE` says it
        assert table["properties"] == expected


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--lake", "./lake"], "pass --lake s3://bucket/prefix"),
        (["--lake", "s3://bucket/lake", "--database", "Music-ETL"], "not a Glue database name"),
    ],
)
def test_ddl_refuses_what_athena_cannot_use(args: list[str], says: str) -> None:
    done = cli("aws", "ddl", *args)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_ddl_has_help_with_an_example() -> None:
    done = cli("aws", "ddl", "--help")
    assert done.returncode == 0
    assert "Example: music-etl aws ddl" in done.stdout


# --------------------------------------------------------------------------- a real lake

_HIVE = {
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.string(): "string",
    pa.large_string(): "string",
}


def _hive_type(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "timestamp"
    return _HIVE[kind]


@pytest.fixture(scope="module")
def made_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake the CLI made: two runs, a replaced songs.csv, a version the threshold rejected."""
    lake = tmp_path_factory.mktemp("catalog") / "lake"
    env = {"MUSIC_ETL_SETTLE_SECONDS": "0", "MUSIC_ETL_NOW": "2024-07-01T00:00:00Z"}
    steps = [
        ["generate", "--streams", "600", "--files", "2", "--days", "3", "--seed", "3"],
        ["run"],
        ["generate", "--streams", "300", "--files", "1", "--days", "2", "--append", "1"],
        ["run"],
        ["generate", "--streams", "300", "--files", "1", "--append", "2", "--bad-share", "0.6"],
        ["run"],
    ]
    for step in steps:
        cli(*step, "--lake", str(lake), env=env)
    songs = lake / "raw" / "songs" / "songs.csv"
    songs.write_text(songs.read_text() + songs.read_text().splitlines()[1] + "\n")
    cli("run", "--lake", str(lake), env=env)
    return lake


def test_each_table_location_holds_only_its_parquet_files(made_lake: Path) -> None:
    keys = sorted(p.relative_to(made_lake).as_posix() for p in made_lake.rglob("*") if p.is_file())
    assert any(k.endswith(layout_rejected()) for k in keys), "no rejected version was made"
    assert any(k.endswith("/_SOURCE") for k in keys)
    for table in catalog.TABLES:
        inside = [k for k in keys if k.startswith(table.prefix)]
        assert inside, table.name
        for key in inside:
            rest = key.removeprefix(table.prefix)
            if table.partition:
                assert re.fullmatch(rf"{table.partition}=\d{{4}}-\d{{2}}-\d{{2}}/[^/]+", rest), key
            else:
                assert re.fullmatch(r"[a-z_]+/[^/]+", rest), key
            name = rest.rsplit("/", 1)[-1]
            assert name.endswith(".parquet"), key
            assert not name.startswith(("_", ".")), key  # Athena would skip it
            schema = pq.read_schema(made_lake / key)
            written = [(f.name, _hive_type(f.type)) for f in schema]
            assert written == list(table.columns), key


def layout_rejected() -> str:
    from music_etl.logic.layout import REJECTED_SUFFIX

    return REJECTED_SUFFIX
