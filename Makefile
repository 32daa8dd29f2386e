# krxflow — common tasks. `make test` is exactly what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
S3_VENV ?= .venv-s3-server
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: venv install test test-fast test-fresh-machine bench migrate clean run stop status bootstrap backfill

venv: $(VENV)/.installed $(S3_VENV)/.installed

## The venv: the pinned lock (requirements-test.txt includes requirements.txt), then krxflow itself,
## installed editable from this checkout (its provider and plugin entry points included).
$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements-test.txt
	$(PIP) install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

## The export tests' local S3-compatible server (moto) in a venv of its own: moto's botocore needs
## python-dateutil<3, the lock pins 4 (tests/fakes/s3_server.py).
$(S3_VENV)/.installed: requirements-s3-server.txt
	test -x $(S3_VENV)/bin/python || $(PYTHON) -m venv $(S3_VENV)
	$(S3_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-s3-server.txt
	touch $@

install: venv

## The whole suite against the real PostgreSQL and Redis (throwaway databases per worker), in
## TEST_WORKERS pytest-xdist workers, a test module per work unit (docs/development/tests.md).
## Options for pytest: make test PYTEST_ARGS="tests/test_api_read.py -k search -x"; TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadfile
test: venv
	$(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS)

## Unit tests only (no Airflow components started).
test-fast: venv
	$(PY) -m pytest -q $(XDIST) -m "not integration" $(PYTEST_ARGS)

## The suite as on a machine with no PostgreSQL or Redis: the test URLs point at free ports
## (nothing listens there), so the session starts private servers with `make run`'s code. Every
## unit test, and the integration tests marked fresh_machine (the cheap ones).
FRESH_MACHINE_MARKERS ?= not integration or fresh_machine
FREE_PORT = $(PY) -c "from krxflow.stack.processes import free_port; print(free_port())"
test-fresh-machine: venv
	KRXFLOW_TEST_PG=postgresql://postgres@127.0.0.1:$$($(FREE_PORT)) \
	KRXFLOW_TEST_REDIS=redis://127.0.0.1:$$($(FREE_PORT))/0 \
	$(PY) -m pytest -q $(XDIST) -m "$(FRESH_MACHINE_MARKERS)" $(PYTEST_ARGS)

## Apply migrations to the database of AIRFLOW_CONN_POSTGRES_DEFAULT.
migrate: venv
	$(PY) -m krxflow.db migrate

bench: venv
	$(PY) bench/ingest.py

## Start krxflow on this machine (no Docker): Postgres/Redis from env or private ones, migrations,
## Connections/Pools/Variables, airflow standalone; sample mode without KRX/KIS credentials.
run: venv
	$(PY) scripts/stack.py up

## Stop every process `make run` started (pid records in .run/state.json).
stop:
	$(PY) scripts/stack.py down

status:
	$(PY) scripts/stack.py status

## Cold start: YEARS (5) of the whole market into the database of the stack `make run` started — the
## krx_cold_start DAG (resumable: run it again after an interruption). Progress: the UI or its task logs.
YEARS ?= 5
RUN_DIR ?= $(or $(KRXFLOW_RUN_DIR),.run)
backfill:
	source $(RUN_DIR)/env.sh && airflow dags unpause krx_cold_start >/dev/null && \
	airflow dags unpause db_matviews >/dev/null && \
	airflow dags trigger krx_cold_start --conf '{"years": $(YEARS)}'

## Create/update krxflow's Connections, Pools and Variables in the configured Airflow.
bootstrap: venv
	$(PY) -m krxflow.bootstrap

clean:
	rm -rf $(VENV) .pytest_cache
