"""The krxflow Airflow plugin: registers what Airflow components must know by import path.

Timetables have to be registered so that the scheduler, the api-server and ``airflow backfill``
can deserialize DAGs that use them (:class:`~krxflow.timetables.KRXSessionTimetable`).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from krxflow.api.app import app as read_api
from krxflow.timetables import KRXSessionTimetable


class KrxflowPlugin(AirflowPlugin):
    """krxflow's registrations: the XKRX session timetable."""

    name = "krxflow"
    timetables = [KRXSessionTimetable]
    fastapi_apps = [{"app": read_api, "url_prefix": "/krx", "name": "krxflow read API"}]
