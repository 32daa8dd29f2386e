# krxflow — common tasks. `make test` is exactly what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: venv install test test-fast bench migrate clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

install: venv

## The whole suite against the real PostgreSQL and Redis (throwaway database per run).
test: venv
	$(PY) -m pytest -q

## Unit tests only (no Airflow components started).
test-fast: venv
	$(PY) -m pytest -q -m "not integration"

## Apply migrations to the database of AIRFLOW_CONN_POSTGRES_DEFAULT.
migrate: venv
	PYTHONPATH=plugins $(PY) -m krxflow.db migrate

bench: venv
	PYTHONPATH=plugins $(PY) bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache
