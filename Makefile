# One task runner. `make help` lists the targets.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
AIRFLOW_STAMP = .airflow-venv/.installed
NODE_STAMP    = tools/node_modules/.installed

.DEFAULT_GOAL := help
.PHONY: help demo test lint typecheck unit bench airflow-env glue-package clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

$(AIRFLOW_STAMP): requirements/airflow.txt requirements/airflow-constraints.txt pyproject.toml
	bash scripts/airflow_env.sh

$(NODE_STAMP): tools/package-lock.json
	npm ci --no-audit --no-fund --prefix tools && touch $@

airflow-env: $(AIRFLOW_STAMP)  ## Build the separate Airflow venv the DAG tests use (~1-1.5 min)

demo: $(STAMP)  ## Set up, generate sample data, run the whole pipeline (embedded mode)
	$(BIN)/music-etl demo

test: $(STAMP) $(AIRFLOW_STAMP) $(NODE_STAMP) lint typecheck  ## Set up, then lint, type-check and run the whole test suite
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)  ## ruff check + format check
	$(BIN)/ruff check src tests benchmarks dags scripts glue_jobs
	$(BIN)/ruff format --check src tests benchmarks dags scripts glue_jobs

typecheck: $(STAMP)  ## mypy --strict on src/
	$(BIN)/mypy

unit: $(STAMP)  ## Only the fast tests
	$(BIN)/pytest -n 2 -m "not slow and not spark and not airflow"

glue-package: $(STAMP)  ## Build the Glue artifacts into dist/glue/ (zip of wheels for --no-index, scripts, manifest)
	$(BIN)/python scripts/glue_package.py

bench: $(STAMP)  ## The 10 M-row benchmark (minutes; writes docs/benchmarks.md)
	$(BIN)/python benchmarks/run_benchmark.py

clean:  ## Remove the venv, caches and demo lake
	rm -rf $(VENV) .airflow-venv tools/node_modules dist .pytest_cache .mypy_cache .ruff_cache demo-lake
