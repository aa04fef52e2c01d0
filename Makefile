# Everything a newcomer needs runs through here; each target bootstraps .venv from the lock file.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := .ci/requirements.lock
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench bench-quick soak simulator lock clean

$(STAMP): $(LOCK) pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

## The main job end to end: simulator + the three example DAGs through Airflow + a report and chart.
demo: $(STAMP)
	$(BIN)/python example_dags/demo.py

## The test suite (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Lint and type-check with the project's own configuration (pyproject.toml); CI runs it before the tests.
lint: $(STAMP)
	$(BIN)/ruff check airflow_provider_appointments tests example_dags
	$(BIN)/mypy

## Throughput / memory benchmarks against peers (not part of `make test`).
bench: $(STAMP)
	$(BIN)/python tests/benchmarks/run.py

bench-quick: $(STAMP)
	$(BIN)/python tests/benchmarks/run.py --quick

## The long reliability soak (200,000 upserts and creates with 10 % faults).
soak: $(STAMP)
	$(BIN)/python -m pytest tests/reliability -m soak --soak -s

## A simulator on a free port, for curl and your own DAGs.
simulator: $(STAMP)
	$(BIN)/hubspot-simulator --port 8765 --seed-appointments 500

## Re-resolve the pinned dependency set (needs `pip install uv`).
lock:
	uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 -o $(LOCK)

clean:
	rm -rf $(VENV) .airflow-demo
