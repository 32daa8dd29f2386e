"""The ``kis`` Connection's form in the Airflow UI, as plain data (no Airflow import).

:class:`~krxflow.hooks.kis.KisHook` exposes it (``conn_fields()``, ``ui_field_behaviour()``) and
:func:`krxflow.provider_info.get_provider_info` declares it, in the declarative form Airflow 3.2+
reads (``conn-fields``, ``ui-field-behaviour``). It lives apart from the hook because Airflow calls
``get_provider_info`` while it discovers providers: importing the hook there would import the task
SDK, which discovers providers again. The fields are the extras :class:`~krxflow.kis.config.KisConfig`
reads; its defaults are the placeholders.
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "kis"
HOOK_NAME = "KIS Open API (한국투자증권)"
HOOK_CLASS_NAME = "krxflow.hooks.kis.KisHook"


def conn_fields() -> dict[str, Any]:
    """The form's own fields: each an extra of the Connection (``<name>`` in the extra's JSON), with
    the JSON schema the UI validates it against."""
    return {
        "env": {"label": "Environment", "description": "live or paper (모의투자)",
                "schema": {"type": ["string", "null"], "enum": ["live", "paper", None], "default": "live"}},
        "rate": {"label": "Requests per second", "description": "KIS's limit for this appkey (live 18, paper 1)",
                 "schema": {"type": ["number", "null"], "minimum": 0}},
        "rate_margin": {"label": "Rate margin", "description": "fraction kept below the limit (default 0.05)",
                        "schema": {"type": ["number", "null"], "minimum": 0, "maximum": 0.5}},
        "token_interval": {"label": "Seconds between token issuances", "schema": {"type": ["number", "null"]}},
        "timeout": {"label": "HTTP timeout (seconds)", "schema": {"type": ["number", "null"]}},
        "market": {"label": "Market", "description": "J (KRX), NX (NXT) or UN (both)",
                   "schema": {"type": ["string", "null"], "enum": ["J", "NX", "UN", None], "default": "J"}},
        "ws_url": {"label": "Real-time WebSocket URL", "description": "empty: the official URL of the environment",
                   "schema": {"type": ["string", "null"]}},
        "sample": {"label": "Sample mode", "description": "kept in step with the sample-mode fake server",
                   "schema": {"type": ["boolean", "null"], "default": False}},
    }


def ui_field_behaviour() -> dict[str, Any]:
    """The standard fields: KIS's names for them, what is hidden, placeholders."""
    return {
        "hidden-fields": ["schema", "port"],
        "relabeling": {"host": "REST base URL", "login": "App key", "password": "App secret"},
        "placeholders": {
            "host": "https://openapi.koreainvestment.com:9443 (empty: the official URL of env)",
            "login": "PS… (appkey)",
            "password": "appsecret",
            "extra": '{"env": "live", "rate": 18, "rate_margin": 0.05, "token_interval": 60, '
                     '"timeout": 10, "market": "J", "ws_url": ""}',
        },
    }
