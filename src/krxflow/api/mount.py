"""The read API as the plugin hands it to Airflow: imported on its first request, not at plugin load.

Every Airflow process loads plugins, every task process included, but only the api-server ever
serves ``/krx``. Importing FastAPI and the API's models costs ~0.3 s of CPU, which a 2,800-task
backfill would pay 2,800 times for nothing. :class:`LazyApp` is a plain ASGI application that
imports the real one when the api-server first calls it (or when something asks for one of its
attributes, e.g. ``routes``).
"""

from __future__ import annotations

import importlib
from functools import cached_property


class LazyApp:
    """An ASGI app standing in for ``"package.module:attribute"`` until it is first used."""

    def __init__(self, target: str):
        module, _, attribute = target.partition(":")
        if not module or not attribute:
            raise ValueError(f"expected 'package.module:attribute', got {target!r}")
        self.target = target

    @cached_property
    def app(self):
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)

    def __getattr__(self, name: str):
        # Only reached for attributes LazyApp lacks: those of the real app (routes, openapi, ...).
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.app, name)

    def __repr__(self) -> str:
        return f"LazyApp({self.target!r})"
