"""Runs in the Airflow venv (scripts/airflow_env.sh), never under pytest: prints one JSON line.

python dag_runner.py import DAGS_FOLDER          the DagBag: DAG ids, tasks, import errors
python dag_runner.py test DAGS_FOLDER DAG_ID     dag.test(): the run's and each task's state
python dag_runner.py serialize DAGS_FOLDER       the serialized DAG, schema-checked, read back
python dag_runner.py lean DAGS_FOLDER            with polars, pyarrow, duckdb and numpy made
    unimportable (as on an MWAA worker with the package without extras): import the DAG
    module and call its short-circuit, the Glue-mode step that decides whether jobs start
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

EMBEDDED = ("duckdb", "numpy", "polars", "pyarrow")


class NoEmbedded:
    """A `sys.meta_path` finder: the embedded engine's packages are not installed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in EMBEDDED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def lean(folder: str) -> dict[str, Any]:
    sys.meta_path.insert(0, NoEmbedded())
    spec = importlib.util.spec_from_file_location(
        "dag_module", Path(folder) / "stream_metrics_pipeline.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    start = module.has_new_files.function()  # the task's own callable, outside a run
    return {
        "mode": module.CONFIG.dag.mode,
        "tasks": sorted(module.dag.task_dict),
        "has_new_files": start,
        "loaded": sorted(m for m in sys.modules if m.partition(".")[0] in EMBEDDED),
    }


def dag_bag(folder: str) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=folder)


def describe(folder: str) -> dict[str, Any]:
    bag = dag_bag(folder)
    return {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dags": {
            dag_id: {
                "tasks": sorted(dag.task_dict),
                "edges": sorted(
                    [task.task_id, down] for task in dag.tasks for down in task.downstream_task_ids
                ),
                "max_active_runs": dag.max_active_runs,
                "schedule": str(  # Airflow 2 keeps a cron schedule as schedule_interval
                    getattr(dag, "schedule", "") or getattr(dag, "schedule_interval", "")
                ),
                "catchup": dag.catchup,
                "retries": {t.task_id: t.retries for t in dag.tasks},
                "backoff": {t.task_id: t.retry_exponential_backoff for t in dag.tasks},
                "callbacks": sorted(t.task_id for t in dag.tasks if t.on_failure_callback),
                "trigger_rules": {t.task_id: str(t.trigger_rule) for t in dag.tasks},
                "deferrable": {t.task_id: getattr(t, "deferrable", None) for t in dag.tasks},
                "kinds": {t.task_id: type(t).__name__ for t in dag.tasks},
                "glue_args": {
                    t.task_id: t.script_args for t in dag.tasks if hasattr(t, "script_args")
                },
            }
            for dag_id, dag in bag.dags.items()
        },
    }


def serialize(folder: str) -> dict[str, Any]:
    """Each DAG as the scheduler stores it: to JSON (schema-validated), then back."""
    from airflow.serialization import serialized_objects as so

    serializer = getattr(so, "DagSerialization", None) or so.SerializedDAG  # Airflow 3 / 2
    bag = dag_bag(folder)
    found: dict[str, Any] = {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}
    }
    for dag_id, dag in bag.dags.items():
        data = serializer.to_dict(dag)
        serializer.validate_schema(data)
        back = serializer.from_dict(json.loads(json.dumps(data)))
        found[dag_id] = {
            "tasks": sorted(back.task_dict),
            "backoff": {t.task_id: t.retry_exponential_backoff for t in back.tasks},
            "retries": {t.task_id: t.retries for t in back.tasks},
        }
    return found


def test(folder: str, dag_id: str, copy: list[str]) -> dict[str, Any]:
    bag = dag_bag(folder)
    if bag.import_errors:
        return {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}}
    result = _one_run(bag.dags[dag_id])
    if copy:
        shutil.copy(copy[0], copy[1])
        result["again"] = _one_run(bag.dags[dag_id])
    return result


def _one_run(dag: Any) -> dict[str, Any]:
    run = dag.test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"state": str(run.state), "tasks": states}


def main() -> None:
    command, folder, *rest = sys.argv[1:]
    if command == "import":
        result = describe(folder)
    elif command == "serialize":
        result = serialize(folder)
    elif command == "lean":
        result = lean(folder)
    else:
        result = test(folder, rest[0], rest[1:])
    print("DAG_RUNNER " + json.dumps(result, default=str))


if __name__ == "__main__":
    main()
