"""Airflow sensors of krxflow."""
