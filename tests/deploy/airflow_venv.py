"""Drive the Airflow venvs (scripts/airflow_env.sh) from pytest: migrate once, run the DAG.

Airflow lives in a venv of its own, so the tests start its python as a subprocess
(`dag_runner.py`) with an `AIRFLOW_HOME` and sqlite database per test. Two venvs: Airflow 3
(`.airflow-venv`, Python 3.11) and Amazon MWAA's Airflow 2.11.2 (`.airflow2-venv`, Python
3.12, under MWAA's constraints files); `make test` builds both.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.conftest import REPO


@dataclass(frozen=True)
class Venv:
    """One Airflow test venv: its Airflow major version and where it is."""

    line: int
    path: Path
    build: str

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.path / "bin" / "python"

    @property
    def airflow(self) -> Path:
        """The venv's `airflow` command."""
        return self.path / "bin" / "airflow"


VENVS = {
    3: Venv(
        3, Path(os.environ.get("AIRFLOW_VENV", REPO / ".airflow-venv")), "scripts/airflow_env.sh"
    ),
    2: Venv(
        2,
        Path(os.environ.get("AIRFLOW2_VENV", REPO / ".airflow2-venv")),
        "AIRFLOW=2 scripts/airflow_env.sh",
    ),
}
RUNNER = Path(__file__).with_name("dag_runner.py")
DAG_ID = "stream_metrics_pipeline"
#: Variables of the calling shell that would change what the subprocess does.
_DROPPED = ("MUSIC_ETL_", "AIRFLOW", "AWS_")


def in_ci() -> bool:
    """Whether this is a CI run (`CI=true`), where nothing may be skipped for lack of a venv."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_venv(venv: Venv) -> None:
    """Skip without the Airflow venv, except in CI, where its absence is a failure."""
    if venv.python.exists():
        return
    message = f"No Airflow venv at {venv.path}: create it with {venv.build} (about 1-2 minutes)."
    if in_ci():
        pytest.fail(message + " CI must run the Airflow tests (`make test` builds it first).")
    pytest.skip(message)


def base_env(home: Path) -> dict[str, str]:
    """A clean environment for Airflow in `home` (sqlite), with the repository's DAG folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    return env | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_FS_DEFAULT": json.dumps({"conn_type": "fs"}),
        "PYTHONWARNINGS": "ignore",
    }


def migrate(venv: Venv, home: Path) -> float:
    """`airflow db migrate` into `home`; returns the seconds it took."""
    import time

    start = time.monotonic()
    home.mkdir(parents=True, exist_ok=True)
    command = [str(venv.airflow), "db", "migrate"]
    _check(subprocess.run(command, check=False, env=base_env(home), **_capture()))
    return time.monotonic() - start


def new_home(template: Path, target: Path) -> Path:
    """A copy of the migrated `template` home (just its database) at `target`."""
    target.mkdir(parents=True)
    shutil.copy(template / "airflow.db", target / "airflow.db")
    return target


def job_config(target: Path, **sections: Mapping[str, Any]) -> Path:
    """`configs/job_configs.json` with `sections` merged in, written to `target`."""
    data = json.loads((REPO / "configs" / "job_configs.json").read_text())
    merged = copy.deepcopy(data)
    for name, values in sections.items():
        merged[name] = {**merged.get(name, {}), **values}
    target.write_text(json.dumps(merged, indent=2))
    return target


def dag_runner(
    venv: Venv, command: str, env: Mapping[str, str], *copy: Path, timeout: float = 240
) -> dict[str, Any]:
    """Run `dag_runner.py command` in the Airflow venv; its JSON answer.

    With `copy` (source, target), the DAG runs twice, the copy made in between.
    """
    args = [str(venv.python), str(RUNNER), command, str(REPO / "dags")]
    if command == "test":
        args += [DAG_ID, *map(str, copy)]
    done = subprocess.run(args, check=False, env=dict(env), timeout=timeout, **_capture())
    _check(done)
    for line in done.stdout.splitlines():
        if line.startswith("DAG_RUNNER "):
            return dict(json.loads(line.removeprefix("DAG_RUNNER ")))
    raise AssertionError("dag_runner printed no answer:\n" + _tail(done))


def _capture() -> dict[str, Any]:
    return {"capture_output": True, "text": True, "cwd": str(REPO)}


def _check(done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0:
        raise AssertionError(f"{done.args[:3]} exited {done.returncode}:\n" + _tail(done))


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return "\n".join((done.stdout + done.stderr).splitlines()[-60:])
