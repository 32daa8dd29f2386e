"""Airflow triggers of krxflow (they must live in plugins/, not in DAG files, for the triggerer)."""
