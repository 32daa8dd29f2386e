"""Airflow triggers of krxflow (they live in the installed package, not in DAG files, so the triggerer can import them)."""
