"""`make glue-package`: the Glue jobs' artifacts install with no package index and run.

The fast tests check how the build sorts the requirements and what the template passes
to Glue. The slow one is the offline proof: it builds the artifacts, installs them with
`pip install --no-index` into a fresh Python 3.11 venv holding only PySpark 3.5.4 and the
modules Glue 5.0 provides at Glue's versions (cached under `.cache/glue-venv-<hash>`),
runs the three job scripts there on Spark local mode against a lake in S3 and the ledger
and serving tables in DynamoDB, both on the moto server over HTTP, and compares everything
with one embedded run of the same input. Spark local reads `s3://` through Hadoop's S3A
connector: its two jars come from PyPI (`spark_s3_jars.py`) and go on `spark.jars`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from aws.helpers import NOW, NOWHERE, REGION, client, generate_sample, lake_state
from conftest import SUBPROCESS_JVM_OPTIONS, spark_cli_test
from deploy.conftest import REPO
from deploy.spark_s3_jars import spark_s3_jars
from music_etl.adapters.aws.session import DynamoDBTarget
from music_etl.adapters.aws.tables import ALL_TABLES, create_tables
from music_etl.adapters.ledger.dynamodb import DynamoDBLedger
from music_etl.adapters.serving.dynamodb import DynamoDBServingStore
from music_etl.adapters.storage.s3 import S3Storage
from music_etl.pipeline.lake import mark_lake
from music_etl.pipeline.run import run
from music_etl.settings import load_settings

#: The modules Glue 5.0 provides that the jobs use, installed at Glue's versions.
GLUE_MODULES = ("pyspark", "boto3", "pyarrow")
CACHE = REPO / ".cache"


def glue_package() -> ModuleType:
    spec = importlib.util.spec_from_file_location("glue_package", REPO / "scripts/glue_package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- fast


def test_requirements_glue_has_are_kept_and_the_rest_shipped() -> None:
    package = glue_package()
    split = package.split_requirements(
        [
            "boto3>=1.34,<2",  # Glue 5.0 has 1.34.131: Glue's is used
            "pyarrow>=15",  # Glue 5.0 has 17.0.0
            "typer>=0.29",  # not on Glue: shipped
            "botocore>=1.40",  # Glue's 1.34.131 is too old: shipped
            "polars>=1.44",  # never shipped: the jobs must not need it
            "numpy>=2.4",  # Glue has 1.26.4 and it is never replaced
            "tomli>=2; python_version < '3.11'",  # not for Glue's Python
        ]
    )
    assert split["provided"] == ["boto3==1.34.131", "pyarrow==17.0.0"]
    assert split["download"] == ["typer>=0.29", "botocore>=1.40"]
    assert [line.split(" ")[0] for line in split["unsatisfied"]] == ["polars>=1.44", "numpy>=2.4"]


def test_manifest_names_the_zip_of_wheels_with_no_index(tmp_path: Path) -> None:
    package = glue_package()
    keys = package.copy_scripts(tmp_path)
    split = {"provided": ["boto3==1.34.131"], "download": [], "unsatisfied": []}
    zip_key = "dist/music_streaming_etl-0.1.0.gluewheels.zip"
    wheels = ["wheels/music_streaming_etl-0.1.0-py3-none-any.whl", "wheels/typer-0.29.2.whl"]
    manifest = package.job_manifest(zip_key, wheels, keys, split)
    assert sorted(manifest["jobs"]) == ["load", "transform", "validation"]
    for stage, job in manifest["jobs"].items():
        assert keys[stage] == f"glue_jobs/{Path(keys[stage]).parent.name}/{Path(keys[stage]).name}"
        assert (tmp_path / keys[stage]).read_bytes() == (REPO / keys[stage]).read_bytes()
        assert job["script"] == "s3://ARTIFACTS/music-etl/" + keys[stage]
        assert job["arguments"]["--additional-python-modules"].endswith(zip_key)
        assert job["arguments"]["--python-modules-installer-option"] == "--no-index"
    listed = manifest["wheel_list_arguments"]["--additional-python-modules"].split(",")
    assert [item.rsplit("/", 2)[-2:] for item in listed] == [w.split("/") for w in wheels]


def test_the_template_installs_the_zip_of_wheels_with_no_index() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda _loader, _tag, node: getattr(node, "value", None))
    template = yaml.load((REPO / "infra/music-etl.yaml").read_text(), Loader=Loader)  # noqa: S506
    assert template["Parameters"]["PackageKey"]["Default"].endswith(".gluewheels.zip")
    jobs = [r for r in template["Resources"].values() if r["Type"] == "AWS::Glue::Job"]
    assert len(jobs) == 3
    for job in jobs:
        arguments = job["Properties"]["DefaultArguments"]
        assert arguments["--python-modules-installer-option"] == "--no-index"
        assert "${PackageKey}" in arguments["--additional-python-modules"]


# --------------------------------------------------------------------------- offline proof


def glue_venv(package: ModuleType) -> Path:
    """A Python 3.11 venv with PySpark 3.5.4 and Glue 5.0's modules (cached by content)."""
    pins = package.constraints_text()
    key = hashlib.sha256(f"{sys.version_info[:2]}\n{GLUE_MODULES}\n{pins}".encode()).hexdigest()
    venv = CACHE / f"glue-venv-{key[:12]}"
    if (venv / ".complete").exists():
        return venv
    CACHE.mkdir(exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    constraints = CACHE / f"glue-constraints-{key[:12]}.txt"
    constraints.write_text(pins)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "-c", str(constraints)]
    subprocess.run([*pip, *GLUE_MODULES], check=True, timeout=1200)
    (venv / ".complete").write_text(pins)
    return venv


def job_env(endpoint: str, jars: list[Path] | None = None) -> dict[str, str]:
    """What a Glue job sees: fake credentials and no path into this repository's sources.

    With `jars`, Spark starts with them on `spark.jars` (the S3A connector: what EMRFS is
    on Glue).
    """
    dropped = ("MUSIC_ETL_", "AWS_", "PYTHON", "VIRTUAL_ENV", "PYSPARK_", "SPARK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    submit = ["--driver-java-options", SUBPROCESS_JVM_OPTIONS]
    if jars:
        submit += ["--jars", ",".join(map(str, jars))]
    env["PYSPARK_SUBMIT_ARGS"] = " ".join([*submit, "pyspark-shell"])
    return env | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": NOWHERE,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent/music-etl-tests/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/music-etl-tests/credentials",
        "MUSIC_ETL_AWS_ENDPOINT": endpoint,
    }


def run_job(python: Path, script: Path, lake: str, tables: str, env: dict[str, str]) -> Any:
    """Run one job script as Glue would (the artifacts' root as the working folder)."""
    argv = [str(python), str(script), "--JOB_NAME", script.stem, "--LAKE_ROOT", lake]
    argv += ["--LEDGER", tables, "--SERVING", tables, "--NOW", NOW]
    cwd = script.parents[2]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=900, check=False
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def s3_lake(endpoint: str, bucket: str) -> tuple[str, S3Storage]:
    """A new bucket on the moto server holding the standard sample as a lake."""
    client("s3", endpoint).create_bucket(Bucket=bucket)
    lake = f"s3://{bucket}/lake"
    storage = S3Storage(lake, endpoint=endpoint)
    generate_sample(storage)
    mark_lake(storage)
    return lake, storage


def dynamodb(endpoint: str, prefix: str) -> tuple[DynamoDBServingStore, DynamoDBLedger]:
    create_tables(DynamoDBTarget(endpoint=endpoint, prefix=prefix), ALL_TABLES)
    url = f"dynamodb://?prefix={prefix}"
    return DynamoDBServingStore(url, endpoint=endpoint), DynamoDBLedger(url, endpoint=endpoint)


@pytest.mark.slow
@spark_cli_test
@pytest.mark.aws
@pytest.mark.skipif(not (shutil.which("java") or os.environ.get("JAVA_HOME")), reason="no Java")
def test_artifacts_install_offline_and_the_jobs_equal_an_embedded_run(
    tmp_path: Path, moto_endpoint: str, aws_env: None
) -> None:
    package = glue_package()
    out = tmp_path / "glue"
    manifest = package.build(out)
    assert not manifest["unsatisfied"], (
        "The package's own dependencies cannot be met on Glue 5.0 without a package index: "
        f"{manifest['unsatisfied']}"
    )
    shipped = {Path(w).name.split("-")[0].lower() for w in manifest["wheels"]}
    assert not shipped & {"numpy", "pyarrow", "polars", "duckdb", "pyspark"}

    # A copy of the cached venv (hard links: the cache stays as built), then the zip of
    # wheels as Glue uses it: the only place pip may find anything (--no-index).
    venv = tmp_path / "venv"
    subprocess.run(["cp", "-al", str(glue_venv(package)), str(venv)], check=True)
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(out / manifest["zip_of_wheels"]) as archive:
        archive.extractall(unzipped)
    wheelhouse = unzipped / package.WHEEL_DIR
    python = venv / "bin/python"
    install = [str(python), "-m", "pip", "install", "--no-index", "--find-links", str(wheelhouse)]
    done = subprocess.run(
        [*install, "-r", str(wheelhouse / "requirements.txt")],
        capture_output=True,
        text=True,
        env=job_env(moto_endpoint),
        check=False,
    )
    assert done.returncode == 0, f"offline install failed:\n{done.stdout[-2000:]}{done.stderr}"
    probe = "import importlib.util as u, music_etl as m; print(m.__file__, u.find_spec('polars'))"
    where = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, env=job_env(""), check=True
    )
    assert where.stdout.split() == [
        str(venv / "lib/python3.11/site-packages/music_etl/__init__.py"),
        "None",
    ]

    run_id = uuid.uuid4().hex[:10]
    glue_prefix, embedded_prefix = f"g{run_id}-", f"e{run_id}-"
    glue_root, glue_storage = s3_lake(moto_endpoint, f"g{run_id}")
    embedded_root, embedded_storage = s3_lake(moto_endpoint, f"e{run_id}")
    glue_tables = dynamodb(moto_endpoint, glue_prefix)
    embedded_tables = dynamodb(moto_endpoint, embedded_prefix)

    # Spark local reaches the S3 lake through S3A, pointed at moto by --AWS_ENDPOINT's
    # setting (MUSIC_ETL_AWS_ENDPOINT here); the jars stand in for Glue's EMRFS.
    env = job_env(moto_endpoint, spark_s3_jars())
    scripts = {stage: out / path.relative_to(REPO) for stage, path in package.SCRIPTS.items()}
    tables = f"dynamodb://?prefix={glue_prefix}"
    validation = run_job(python, scripts["validation"], glue_root, tables, env)
    assert [f["status"] for f in validation["files"]] == ["done"] * 3
    transform = run_job(python, scripts["transform"], glue_root, tables, env)
    assert transform["days"] == validation["days"]
    load = run_job(python, scripts["load"], glue_root, tables, env)
    assert load["days"] == validation["days"]

    settings = load_settings(
        env={},
        config=tmp_path / "no-config.toml",
        lake=embedded_root,
        ledger=f"dynamodb://?prefix={embedded_prefix}",
        serving=f"dynamodb://?prefix={embedded_prefix}",
        aws_endpoint=moto_endpoint,
        now=NOW,
    )
    run(settings)
    glue_state = lake_state(glue_storage, *glue_tables)
    embedded_state = lake_state(embedded_storage, *embedded_tables)
    assert glue_state["files"], "the jobs wrote nothing into the S3 lake"
    assert glue_state["serving"] == embedded_state["serving"]
    assert glue_state["ledger"] == embedded_state["ledger"]
    assert glue_state == embedded_state
