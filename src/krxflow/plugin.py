"""The krxflow Airflow plugin: registers what Airflow components must know by import path.

Timetables have to be registered so that the scheduler, the api-server and ``airflow backfill``
can deserialize DAGs that use them (:class:`~krxflow.timetables.KRXSessionTimetable`). The read
API is mounted under ``/krx`` in the api-server.

Every Airflow process loads this module, each task process included, so it imports nothing
heavy: the read API is a :class:`~krxflow.api.mount.LazyApp`, imported on its first request.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from krxflow.api.mount import LazyApp
from krxflow.timetables import KRXSessionTimetable


class KrxflowPlugin(AirflowPlugin):
    """krxflow's registrations: the XKRX session timetable and the read API."""

    name = "krxflow"
    timetables = [KRXSessionTimetable]
    fastapi_apps = [{"app": LazyApp("krxflow.api.app:app"), "url_prefix": "/krx", "name": "krxflow read API"}]
