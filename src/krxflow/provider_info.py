"""What Airflow's providers manager learns of krxflow (the ``apache_airflow_provider`` entry point).

Installed with ``pip install krxflow``, Airflow lists krxflow among its providers (``airflow
providers list``), offers the ``kis`` connection type in the UI's connection editor with the form
:class:`~krxflow.hooks.kis.KisHook` describes, and knows krxflow's hooks, triggers and sensors by
module. The plugin (the XKRX timetable and the read API) is loaded through the ``airflow.plugins``
entry point, which Airflow reads in every component; it is named here as well so that provider
listings show it.

Airflow calls :func:`get_provider_info` while it discovers providers, so this module imports no
Airflow and nothing heavy: the connection form comes from :mod:`krxflow.kis.connection_form`, the
data :class:`~krxflow.hooks.kis.KisHook` exposes (importing the hook here would import the task SDK,
which starts a second provider discovery inside the first).
"""

from __future__ import annotations

from typing import Any

import krxflow
from krxflow.kis import connection_form

PACKAGE_NAME = "krxflow"
KRX_INTEGRATION = "Korea Exchange (KRX)"
KIS_INTEGRATION = "KIS Open API (한국투자증권)"


def get_provider_info() -> dict[str, Any]:
    """krxflow's provider information, in the form of ``airflow/provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "krxflow",
        "description": "The Korean stock market (KOSPI/KOSDAQ) in your own PostgreSQL: KRX daily data, "
                       "KIS intraday quotes and real-time ticks, upkeep, Grafana and a read API.",
        "versions": [krxflow.__version__],
        "integrations": [
            {"integration-name": KRX_INTEGRATION, "external-doc-url": "https://data.krx.co.kr",
             "tags": ["service"]},
            {"integration-name": KIS_INTEGRATION, "external-doc-url": "https://apiportal.koreainvestment.com",
             "tags": ["service"]},
        ],
        "hooks": [
            {"integration-name": KIS_INTEGRATION, "python-modules": ["krxflow.hooks.kis"]},
            {"integration-name": KRX_INTEGRATION, "python-modules": ["krxflow.hooks.batched_postgres"]},
        ],
        "triggers": [
            {"integration-name": KIS_INTEGRATION,
             "python-modules": ["krxflow.triggers.kis_poll", "krxflow.triggers.kis_ws"]},
        ],
        "sensors": [
            {"integration-name": KIS_INTEGRATION,
             "python-modules": ["krxflow.sensors.kis_poll", "krxflow.sensors.kis_stream"]},
        ],
        "connection-types": [
            {
                "connection-type": connection_form.CONN_TYPE,
                "hook-class-name": connection_form.HOOK_CLASS_NAME,
                "hook-name": connection_form.HOOK_NAME,
                "conn-fields": connection_form.conn_fields(),
                "ui-field-behaviour": connection_form.ui_field_behaviour(),
            },
        ],
        "plugins": [{"name": "krxflow", "plugin-class": "krxflow.plugin.KrxflowPlugin"}],
    }
