#!/usr/bin/env bash
# Create an Airflow test environment: a venv of its own, so Airflow's hundreds of dependencies
# never touch the pins of the main .venv. Two lines are tested (tests/deploy/test_airflow_dag.py):
#
#   scripts/airflow_env.sh            Airflow 3 (.airflow-venv, Python 3.11): exactly
#                                     requirements/airflow-constraints.txt
#   scripts/airflow_env.sh --refresh  Airflow 3: resolve requirements/airflow.txt afresh, then
#                                     rewrite its constraints file from `pip freeze`
#   AIRFLOW=2 scripts/airflow_env.sh  Airflow 2.11.2 as Amazon MWAA runs it (.airflow2-venv,
#                                     Python 3.12), under MWAA's own constraints files
#                                     (requirements/mwaa-2.11.2-*.txt); only the embedded
#                                     engine's four packages take the project's pins, since MWAA
#                                     2.11.2's (numpy 1.26, pyarrow 22, duckdb 1.4) are older
#                                     than `[embedded]` allows (docs/deploy-aws.md#packaging).
#
# Environment: AIRFLOW (3 or 2), PYTHON (default python3.11 / python3.12, found under pyenv
# too), AIRFLOW_VENV (default .airflow-venv / .airflow2-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

LINE="${AIRFLOW:-3}"
refresh=0
[[ "${1:-}" == "--refresh" ]] && refresh=1

if [[ $LINE == 2 ]]; then
    WANT=3.12
    VENV="${AIRFLOW_VENV:-.airflow2-venv}"
    REQUIREMENTS=requirements/airflow2.txt
    CONSTRAINTS=requirements/mwaa-2.11.2-airflow-constraints.txt
    ESSENTIAL=requirements/mwaa-2.11.2-mwaa-essential-constraints.txt
    [[ $refresh == 1 ]] && { echo "--refresh is for Airflow 3: MWAA's files pin Airflow 2." >&2; exit 2; }
else
    WANT=3.11
    VENV="${AIRFLOW_VENV:-.airflow-venv}"
    REQUIREMENTS=requirements/airflow.txt
    CONSTRAINTS=requirements/airflow-constraints.txt
    ESSENTIAL=$CONSTRAINTS
fi
STAMP="$VENV/.installed"

if [[ $refresh == 0 && -f "$STAMP" && "$STAMP" -nt "$CONSTRAINTS" && "$STAMP" -nt "$ESSENTIAL" \
      && "$STAMP" -nt "$REQUIREMENTS" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt constraints.txt ]]; then
    echo "$VENV is up to date."
    exit 0
fi

PYTHON="${PYTHON:-$(bash scripts/find_python.sh "$WANT")}"
start=$(date +%s)
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip==26.3"
if [[ $LINE == 2 ]]; then
    # MWAA's pins, except the embedded engine's packages, which take constraints.txt's.
    embedded='^(duckdb|numpy|polars|polars-runtime-32|pyarrow)=='
    { grep -viE "$embedded" "$CONSTRAINTS"; grep -iE "$embedded" constraints.txt; } > "$VENV/constraints.txt"
    "$VENV/bin/python" -m pip install --quiet -c "$VENV/constraints.txt" -c "$ESSENTIAL" \
        -r "$REQUIREMENTS" -e ".[embedded]"
elif [[ $refresh == 1 ]]; then
    "$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS" -e ".[embedded]"
    {
        echo "# pip freeze of $VENV after scripts/airflow_env.sh --refresh ($("$VENV/bin/python" -V))."
        echo "# Regenerate with: scripts/airflow_env.sh --refresh"
        "$VENV/bin/python" -m pip freeze --exclude-editable --exclude music-streaming-etl
    } > "$CONSTRAINTS"
else
    "$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" -r "$REQUIREMENTS" -e ".[embedded]"
fi
"$VENV/bin/python" -c "import airflow, airflow.providers.amazon, music_etl; print('airflow', airflow.__version__)"
touch "$STAMP"
echo "Built $VENV (Airflow $LINE) in $(( $(date +%s) - start ))s."
