"""``KisHook``: the KIS Open API Connection (``kis_default``) as a hook, like ``HttpHook``/``PostgresHook``.

The hook is the layer under the triggers and sensors: it turns the Connection into a
:class:`~krxflow.kis.config.KisConfig` (synchronously in a task, without blocking the event loop in
the triggerer) and describes the Connection's form for the UI: ``host`` is the REST base URL,
``login``/``password`` the appkey/appsecret, extras ``env``, ``rate``, ``ws_url`` and the others
listed in :mod:`krxflow.kis.config`.

Only a *provider* (a distribution with an ``apache_airflow_provider`` entry point) can contribute
a connection type to the UI; an ``AirflowPlugin`` cannot. krxflow ships as a DAG bundle plus a
plugins folder, so ``conn_type`` ``kis`` is what the hook declares and what a provider
registration would expose; existing ``http`` Connections keep working (the config reads both).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.bases.hook import BaseHook

from krxflow.kis.config import KisConfig
from krxflow.settings import KIS_CONN_ID


class KisHook(BaseHook):
    """Reads the KIS Connection; the client (:class:`~krxflow.kis.client.KisClient`) does the HTTP.

    :param kis_conn_id: the KIS Connection (base URL, appkey/appsecret, extras ``env``, ``rate``…).
    """

    conn_name_attr = "kis_conn_id"
    default_conn_name = KIS_CONN_ID
    conn_type = "kis"
    hook_name = "KIS Open API (한국투자증권)"

    def __init__(self, kis_conn_id: str = KIS_CONN_ID, **overrides: Any) -> None:
        super().__init__()
        self.kis_conn_id = kis_conn_id
        self.overrides = overrides

    def get_conn(self) -> KisConfig:
        """The Connection as a :class:`KisConfig` (tasks, CLI, bench)."""
        return KisConfig.from_connection(self.get_connection(self.kis_conn_id), **self.overrides)

    async def aget_conn(self) -> KisConfig:
        """The same without blocking the event loop (triggers)."""
        conn = await self.aget_connection(self.kis_conn_id)
        extra = await conn.aextra_dejson() if hasattr(conn, "aextra_dejson") else conn.extra_dejson
        return KisConfig.from_parts(conn.host, conn.port, conn.login, conn.password, extra, self.overrides,
                                    conn_type=conn.conn_type)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The Connection form: KIS names for the standard fields, the extras as a JSON template."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "REST base URL", "login": "App key", "password": "App secret"},
            "placeholders": {
                "host": "https://openapi.koreainvestment.com:9443 (empty: the official URL of env)",
                "login": "PS… (appkey)",
                "password": "appsecret",
                "extra": '{"env": "live", "rate": 18, "rate_margin": 0.05, "token_interval": 60, '
                         '"timeout": 10, "market": "J", "ws_url": ""}',
            },
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields as form widgets; needs ``wtforms`` (the FAB UI), else the JSON extra is the form."""
        try:
            from wtforms import BooleanField, StringField
            from wtforms.validators import AnyOf, Optional
        except ImportError:  # Airflow 3's React UI without FAB: the extra's placeholder describes them
            return {}
        return {
            "env": StringField("env (live | paper)", validators=[Optional(), AnyOf(["live", "paper"])]),
            "rate": StringField("requests per second for this appkey", validators=[Optional()]),
            "ws_url": StringField("realtime WebSocket URL", validators=[Optional()]),
            "market": StringField("market (J | NX | UN)", validators=[Optional(), AnyOf(["J", "NX", "UN"])]),
            "sample": BooleanField("sample mode (follows the fake server)"),
        }
