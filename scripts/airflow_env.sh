#!/usr/bin/env bash
# Create the Airflow test environment: a venv of its own (default .airflow-venv), so Airflow's
# hundreds of dependencies never touch the pins of the main .venv.
#
#   scripts/airflow_env.sh            install exactly requirements/airflow-constraints.txt
#   scripts/airflow_env.sh --refresh  resolve requirements/airflow.txt afresh, then rewrite
#                                     the constraints file from `pip freeze`
#
# Environment: PYTHON (default python3.11), AIRFLOW_VENV (default .airflow-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${AIRFLOW_VENV:-.airflow-venv}"
REQUIREMENTS=requirements/airflow.txt
CONSTRAINTS=requirements/airflow-constraints.txt
STAMP="$VENV/.installed"

refresh=0
[[ "${1:-}" == "--refresh" ]] && refresh=1

if [[ $refresh == 0 && -f "$STAMP" && "$STAMP" -nt "$CONSTRAINTS" && "$STAMP" -nt "$REQUIREMENTS" \
      && "$STAMP" -nt pyproject.toml ]]; then
    echo "$VENV is up to date."
    exit 0
fi

command -v "$PYTHON" >/dev/null || { echo "$PYTHON is required to build $VENV" >&2; exit 1; }
start=$(date +%s)
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip==26.3"
if [[ $refresh == 1 ]]; then
    "$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS" -e ".[aws]"
    {
        echo "# pip freeze of $VENV after scripts/airflow_env.sh --refresh ($("$VENV/bin/python" -V))."
        echo "# Regenerate with: scripts/airflow_env.sh --refresh"
        "$VENV/bin/python" -m pip freeze --exclude-editable --exclude music-streaming-etl
    } > "$CONSTRAINTS"
else
    "$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" -r "$REQUIREMENTS" -e ".[aws]"
fi
"$VENV/bin/python" -c "import airflow, airflow.providers.amazon, music_etl; print('airflow', airflow.__version__)"
touch "$STAMP"
echo "Built $VENV in $(( $(date +%s) - start ))s."
