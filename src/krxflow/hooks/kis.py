"""``KisHook``: the KIS Open API Connection (``kis_default``) as a hook, like ``HttpHook``/``PostgresHook``.

The hook is the layer under the triggers and sensors: it turns the Connection into a
:class:`~krxflow.kis.config.KisConfig` (synchronously in a task, without blocking the event loop in
the triggerer) and describes the Connection's form for the UI: ``host`` is the REST base URL,
``login``/``password`` the appkey/appsecret, extras ``env``, ``rate``, ``ws_url`` and the others
listed in :mod:`krxflow.kis.config`.

Only a *provider* (a distribution with an ``apache_airflow_provider`` entry point) can contribute
a connection type to the UI; krxflow is one (:mod:`krxflow.provider_info`), and the form it
declares for ``kis`` is this hook's :meth:`KisHook.conn_fields` and :meth:`KisHook.ui_field_behaviour`
(declared data, as Airflow 3.2+ reads connection forms, not wtforms widgets; the data itself is in
:mod:`krxflow.kis.connection_form`, which imports no Airflow, so that provider discovery reads it
without importing this hook). Existing ``http``
Connections keep working (the config reads both).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.bases.hook import BaseHook

from krxflow.kis import connection_form
from krxflow.kis.config import KisConfig
from krxflow.settings import KIS_CONN_ID


class KisHook(BaseHook):
    """Reads the KIS Connection; the client (:class:`~krxflow.kis.client.KisClient`) does the HTTP.

    :param kis_conn_id: the KIS Connection (base URL, appkey/appsecret, extras ``env``, ``rate``…).
    """

    conn_name_attr = "kis_conn_id"
    default_conn_name = KIS_CONN_ID
    conn_type = connection_form.CONN_TYPE
    hook_name = connection_form.HOOK_NAME

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
    def conn_fields(cls) -> dict[str, Any]:
        """The Connection form's own fields (Airflow 3.2+ ``conn-fields``): :mod:`krxflow.kis.connection_form`."""
        return connection_form.conn_fields()

    @classmethod
    def ui_field_behaviour(cls) -> dict[str, Any]:
        """The standard fields of the form (``ui-field-behaviour``): :mod:`krxflow.kis.connection_form`."""
        return connection_form.ui_field_behaviour()
