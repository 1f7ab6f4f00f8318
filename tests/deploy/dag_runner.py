"""Runs in the Airflow venv (scripts/airflow_env.sh), never under pytest: prints one JSON line.

python dag_runner.py import DAGS_FOLDER          the DagBag: DAG ids, tasks, import errors
python dag_runner.py test DAGS_FOLDER DAG_ID     dag.test(): the run's and each task's state
"""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any


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
                "schedule": str(getattr(dag, "schedule", "")),
                "catchup": dag.catchup,
                "retries": {t.task_id: t.retries for t in dag.tasks},
                "backoff": {t.task_id: t.retry_exponential_backoff for t in dag.tasks},
                "callbacks": sorted(t.task_id for t in dag.tasks if t.on_failure_callback),
                "deferrable": {t.task_id: getattr(t, "deferrable", None) for t in dag.tasks},
                "kinds": {t.task_id: type(t).__name__ for t in dag.tasks},
                "glue_args": {
                    t.task_id: t.script_args for t in dag.tasks if hasattr(t, "script_args")
                },
            }
            for dag_id, dag in bag.dags.items()
        },
    }


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
    result = describe(folder) if command == "import" else test(folder, rest[0], rest[1:])
    print("DAG_RUNNER " + json.dumps(result, default=str))


if __name__ == "__main__":
    main()
