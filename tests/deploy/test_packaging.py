"""The package installs where its users run it (docs/deploy-aws.md#packaging).

- The wheel without extras resolves under each Amazon MWAA image's own constraints files,
  with that image's Python (pip's real resolver, `--dry-run`, against the package index);
  `[embedded]` is tried too and its outcome recorded, not asserted.
- `constraints.txt` (the dev venv) resolves on Python 3.11 and 3.12.
- A fresh Python 3.12 venv holding the wheel with `[embedded]` runs `generate` + `run`.
- Without the embedded engine's packages, the orchestration (Glue mode's short-circuit)
  still works and the CLI names the extra to install (exit 2).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.conftest import REPO

MWAA = Path(os.environ.get("MUSIC_ETL_PLATFORMS", REPO.parent / "shared" / "platforms")) / "mwaa"
#: Each MWAA image's Airflow version and Python (../shared/platforms/README.md).
IMAGES = {"2.10.3": "3.11", "2.11.2": "3.12", "3.0.6": "3.12", "3.3.1": "3.12"}
EMBEDDED = ("duckdb", "numpy", "polars", "pyarrow")
#: The test venvs outlive a checkout, so CI's fresh clones on one machine reuse them.
VENV_CACHE = Path(
    os.environ.get("MUSIC_ETL_VENV_CACHE", Path.home() / ".cache" / "music-streaming-etl")
)
CACHE = REPO / ".cache"
#: What the resolver runs found, for docs/deploy-aws.md's table.
RESOLUTION_REPORT = CACHE / "packaging" / "mwaa-resolution.json"
#: Makes the embedded engine's packages unimportable, as on an MWAA worker without the extra.
BLOCKER = textwrap.dedent(
    f"""
    import sys

    class _NoEmbedded:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {EMBEDDED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, _NoEmbedded())
    """
)


# --------------------------------------------------------------------------- helpers


def python(version: str) -> str:
    """A working `pythonX.Y` (PATH or pyenv), via scripts/find_python.sh."""
    found = subprocess.run(
        ["bash", str(REPO / "scripts" / "find_python.sh"), version],
        check=False,
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        pytest.fail(found.stderr.strip())
    return found.stdout.strip()


def build_wheel(out: Path) -> Path:
    """`pip wheel --no-deps .` into `out`: the artifact users install."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        text=True,
    )
    [wheel] = out.glob("music_streaming_etl-*.whl")
    return wheel


@dataclass
class Resolution:
    """One `pip install --dry-run --report -` and what it chose."""

    label: str
    returncode: int
    chosen: dict[str, str]
    error: str
    seconds: float


def _dry_run(py: str, requirement: str, constraints: list[Path]) -> list[str]:
    """pip's dry run; its report goes to the file named by the `{report}` placeholder."""
    args = [py, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    args += ["--disable-pip-version-check", "--report", "{report}"]
    for path in constraints:
        args += ["-c", str(path)]
    return [*args, requirement]


#: The lines of pip's answer that say why a resolution failed.
_WHY = re.compile(r"depends on|The user requested|requires a different Python|No matching dist")


def resolve_all(jobs: dict[str, list[str]], reports: Path) -> dict[str, Resolution]:
    """Run every dry run at once; each reports into `reports`/<label>.json."""
    start = time.monotonic()
    running = {}
    for label, args in jobs.items():
        report = str(reports / f"{label}.json")
        command = [report if arg == "{report}" else arg for arg in args]
        running[label] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    done = {}
    for label, process in running.items():
        out, _ = process.communicate(timeout=300)
        chosen = {}
        if process.returncode == 0:
            report = json.loads((reports / f"{label}.json").read_text())
            chosen = {
                item["metadata"]["name"].lower(): item["metadata"]["version"]
                for item in report["install"]
            }
        why = [line.strip() for line in out.splitlines() if _WHY.search(line)]
        done[label] = Resolution(
            label, process.returncode, chosen, "; ".join(why[:8]), time.monotonic() - start
        )
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def resolutions(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Resolution]:
    """The wheel, and the wheel with `[embedded]`, under each image; the dev set on 3.11/3.12."""
    jobs = {}
    for airflow, version in IMAGES.items():
        files = [MWAA / airflow / "airflow_constraints.txt"]
        files.append(MWAA / airflow / "mwaa_essential_constraints.txt")
        if not files[0].exists():
            pytest.fail(f"No MWAA constraints at {files[0]} (set MUSIC_ETL_PLATFORMS).")
        jobs[airflow] = _dry_run(python(version), str(wheel), files)
        jobs[f"{airflow}[embedded]"] = _dry_run(python(version), f"{wheel}[embedded]", files)
    # The dev set installs as a whole when `make` builds .venv (3.11); here every one of its
    # pins must also exist for 3.12 (a full resolution of [dev] takes pip over a minute).
    jobs["dev-3.12"] = [
        *_dry_run(python("3.12"), "--no-deps", []),
        "-r",
        str(REPO / "constraints.txt"),
    ]
    found = resolve_all(jobs, tmp_path_factory.mktemp("reports"))
    RESOLUTION_REPORT.parent.mkdir(parents=True, exist_ok=True)
    RESOLUTION_REPORT.write_text(
        json.dumps({k: v.__dict__ for k, v in found.items()}, indent=2, sort_keys=True)
    )
    return found


# --------------------------------------------------------------------------- resolution


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.xdist_group("packaging")
@pytest.mark.parametrize("airflow", sorted(IMAGES))
def test_the_package_resolves_under_each_mwaa_image(
    resolutions: dict[str, Resolution], airflow: str
) -> None:
    found = resolutions[airflow]
    assert found.returncode == 0, f"MWAA {airflow}: {found.error}"
    assert "music-streaming-etl" in found.chosen
    pins = (MWAA / airflow / "airflow_constraints.txt").read_text().lower().splitlines()
    for name in ("boto3", "rich", "typer"):
        if version := found.chosen.get(name):
            assert f"{name}=={version}" in pins or not any(p.startswith(f"{name}==") for p in pins)
    assert not set(EMBEDDED) & set(found.chosen), "the core package must not pull the engine"
    embedded = resolutions[f"{airflow}[embedded]"]
    outcome = "resolves" if embedded.returncode == 0 else f"does not resolve: {embedded.error}"
    print(f"MWAA {airflow} [embedded] {outcome}")  # recorded in docs/deploy-aws.md


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.xdist_group("packaging")
def test_the_dev_constraints_exist_for_python_3_12(resolutions: dict[str, Resolution]) -> None:
    found = resolutions["dev-3.12"]
    assert found.returncode == 0, found.error
    pinned = [line for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line]
    assert len(found.chosen) == len(pinned)
    for name in (*EMBEDDED, "pyspark", "boto3", "moto"):
        assert name in found.chosen


# --------------------------------------------------------------------------- 3.12 smoke


#: The oldest versions the core dependencies allow (pyproject.toml), with today's click.
LOWEST = "boto3==1.35.36\nrich==13.7.1\ntyper==0.16.1\n"


def cached_venv(wheel: Path, name: str, requirement: str, constraints: Path) -> Path:
    """A Python 3.12 venv with `requirement` (the wheel, maybe with extras) under `constraints`.

    Cached in `VENV_CACHE` by the hash of what decides its dependencies; the wheel itself
    is reinstalled each time (no dependencies), so the venv runs this checkout's code.
    """
    key = hashlib.sha256(constraints.read_bytes() + (REPO / "pyproject.toml").read_bytes())
    venv = VENV_CACHE / f"{name}-py3.12-{key.hexdigest()[:16]}"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    pip.append("--disable-pip-version-check")
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    with (VENV_CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; other checkouts share it
        if not (venv / ".ready").exists():
            _prune(name)
            subprocess.run([python("3.12"), "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run([*pip, "-c", str(constraints), requirement], check=True)
            (venv / ".ready").touch()
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(wheel)], check=True)
        os.utime(venv / ".ready")
    return venv


def _prune(name: str, days: float = 7) -> None:
    """Remove this kind's cached venvs unused for `days` (older inputs)."""
    for stale in VENV_CACHE.glob(f"{name}-py3.12-*"):
        ready = stale / ".ready"
        if not ready.exists() or time.time() - ready.stat().st_mtime > days * 86400:
            shutil.rmtree(stale, ignore_errors=True)


def smoke_venv(wheel: Path) -> Path:
    """The wheel with `[embedded]` under constraints.txt (what the dev venv pins)."""
    return cached_venv(wheel, "smoke", f"{wheel}[embedded]", REPO / "constraints.txt")


def cli(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed `music-etl`, run as a user would (no PYTHONPATH to this checkout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSIC_ETL_", "PYTHON"))}
    return subprocess.run(
        [str(venv / "bin" / "music-etl"), *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.xdist_group("packaging")
def test_the_wheel_runs_end_to_end_on_python_3_12(wheel: Path, tmp_path: Path) -> None:
    venv = smoke_venv(wheel)
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import music_etl, sys; print(music_etl.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert where.stdout.startswith(str(venv)), where.stdout
    lake = tmp_path / "lake"
    made = cli(
        venv, "generate", "--lake", str(lake), "--streams", "3000", "--files", "2", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    done = cli(venv, "run", "--lake", str(lake), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(lake / "_state" / "serving.sqlite") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    assert len(counts) == 3
    assert all(n > 0 for n in counts.values()), counts


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.xdist_group("packaging")
def test_the_wheel_ships_the_dashboard_and_keeps_serve_optional(wheel: Path) -> None:
    """`serve`'s page files are package data; Starlette/uvicorn/orjson come only with `[serve]`."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    static = REPO / "src" / "music_etl" / "serve" / "static"
    files = [p.relative_to(static) for p in static.rglob("*") if p.is_file()]
    shipped = {f"music_etl/serve/static/{name}" for name in files}
    assert shipped <= names
    assert "music_etl/serve/static/index.html" in names
    requires = [line for line in metadata.decode().splitlines() if line.startswith("Requires-Dist")]
    core = [line for line in requires if "extra ==" not in line]
    serve = ("starlette", "uvicorn", "orjson")
    assert not [line for line in core if any(name in line for name in serve)], core
    for name in serve:
        assert any(name in line and "extra == 'serve'" in line for line in requires), name


# --------------------------------------------------------------------------- no extras


def run_blocked(code: str, *, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Python with the embedded engine's packages unimportable, then `code`."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ) | {"MUSIC_ETL_SETTLE_SECONDS": "0"},
        timeout=120,
    )


@pytest.fixture
def glue_config(tmp_path: Path) -> Path:
    """A job config in Glue mode over a local lake with one stream file landed."""
    from conftest import Lake

    lake = Lake(tmp_path / "lake")
    lake.put_dimensions()
    lake.put_streams("one.csv", [(1, "t1", "2024-06-01 10:00:00")])
    data = json.loads((REPO / "configs" / "job_configs.json").read_text())
    data["dag"] = {**data.get("dag", {}), "mode": "glue"}
    data["settings"] = {**data.get("settings", {}), "lake": str(lake.root), "settle_seconds": 0}
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(data))
    return path


def test_orchestration_works_without_the_embedded_engine(glue_config: Path, tmp_path: Path) -> None:
    done = run_blocked(
        f"""
        import sys
        import music_etl.orchestration.config
        from music_etl.orchestration import airflow as steps
        config = steps.job_config({str(glue_config)!r})
        assert config.dag.mode == "glue"
        print("NEW", steps.has_new_files(config))
        print("ARGS", sorted(steps.glue_arguments(config.glue.jobs[0], config.run_settings())))
        print("LOADED", sorted(m for m in sys.modules if m.partition(".")[0] in {EMBEDDED!r}))
        """,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "NEW True" in done.stdout
    assert "'--LAKE_ROOT'" in done.stdout
    assert "LOADED []" in done.stdout


@pytest.mark.parametrize(
    "args",
    [["run"], ["generate", "--streams", "10"], ["query", "SELECT 1"]],
    ids=["run", "generate", "query"],
)
def test_commands_that_need_the_engine_name_the_extra(
    glue_config: Path, tmp_path: Path, args: list[str]
) -> None:
    lake = tmp_path / "lake" if args[0] != "generate" else tmp_path / "new-lake"
    done = run_blocked(
        f"""
        import sys
        from music_etl.cli.app import main
        sys.argv = ["music-etl", *{args!r}, "--lake", {str(lake)!r}]
        main()
        """,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "pip install 'music-streaming-etl[embedded]'" in line
    assert "Traceback" not in done.stderr


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.xdist_group("packaging")
def test_the_core_package_works_at_its_lowest_bounds(wheel: Path, tmp_path: Path) -> None:
    """No extras, boto3/rich/typer at their lower bounds: what Glue mode on MWAA gets."""
    lowest = CACHE / "packaging" / "lowest.txt"
    lowest.parent.mkdir(parents=True, exist_ok=True)
    lowest.write_text(LOWEST)
    venv = cached_venv(wheel, "lowest", str(wheel), lowest)
    lake = tmp_path / "lake"
    assert cli(venv, "--help", cwd=tmp_path).returncode == 0
    made = cli(venv, "init", "--lake", str(lake), cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    done = cli(venv, "run", "--lake", str(lake), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        "error: The embedded engine needs polars, which is not installed: "
        "pip install 'music-streaming-etl[embedded]'."
    )
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    installed = {p["name"].lower(): p["version"] for p in json.loads(found.stdout)}
    assert not set(EMBEDDED) & set(installed)
    assert installed["typer"] == "0.16.1"
