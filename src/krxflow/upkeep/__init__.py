"""Upkeep of the market database: the work behind the ``db_*`` DAGs.

* :mod:`krxflow.upkeep.partition_upkeep` — partitions from each table's oldest row to N periods ahead;
* :mod:`krxflow.upkeep.matviews` — refresh the read models (market summary, weekly/monthly candles);
* :mod:`krxflow.upkeep.indicators` — technical indicators over each ticker's full history;
* :mod:`krxflow.upkeep.retention` — drop whole partitions past each table's retention;
* :mod:`krxflow.upkeep.backup` — ``pg_dump`` backups, their checks, rotation and restore tests.

The DAG files only wire these together; everything here is plain functions over a psycopg
connection (or the Airflow Connection id), so the CLI and the tests call exactly what the DAGs run.
"""
