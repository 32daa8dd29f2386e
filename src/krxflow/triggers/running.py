"""Run a trigger outside the triggerer, the way the triggerer does: rebuilt from its serialized form.

For a sensor that is not deferrable (its ``poke`` runs one window in the task), the bench and the
tests: :func:`first_event` proves the trigger survives serialization and returns what it fires.
"""

from __future__ import annotations

import importlib


async def first_event(trigger) -> dict:
    """The payload of the first event ``trigger`` fires, after a serialize/rebuild round trip."""
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    async for event in rebuilt.run():
        return event.payload
    raise RuntimeError(f"{classpath} ended without an event")
