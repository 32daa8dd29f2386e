#!/usr/bin/env bash
# First start of the postgres container (docker-entrypoint-initdb.d): two databases with two owners.
#   airflow  (role airflow)  — Airflow's metadata database
#   krxflow  (role krxflow)  — the market data; krxflow may create roles because migration 0400
#                              creates the read-only group role krxflow_readonly and airflow-init
#                              creates Grafana's login role in it.
# Passwords come from the environment (.env), never from the repository.
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD in .env}"
: "${KRXFLOW_DB_PASSWORD:?set KRXFLOW_DB_PASSWORD in .env}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v airflow_password="$AIRFLOW_DB_PASSWORD" -v krxflow_password="$KRXFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE krxflow LOGIN CREATEROLE PASSWORD :'krxflow_password';
CREATE DATABASE krxflow OWNER krxflow;
SQL
