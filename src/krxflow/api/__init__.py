"""krxflow's read API: a FastAPI app the Airflow plugin mounts in the api-server under ``/krx``.

``krxflow.api.app.app`` is the application; every route requires an Airflow login
(:mod:`krxflow.api.auth`). Importing this package is cheap: Airflow's security machinery is
imported on the first request, not when the plugin is loaded by every Airflow component.
"""
