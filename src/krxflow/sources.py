"""KRX daily data sources behind one interface (:class:`~krxflow.krx.interface.KrxSource`).

* ``pykrx`` (default) — the real KRX/Naver through pykrx, with typed errors, timeouts, pacing
  shared through Redis and a circuit breaker (:mod:`krxflow.krx.source`; the KRX package).
* ``sample`` — a deterministic offline market for demos, tests and benches
  (:mod:`krxflow.sample.market`).

Which one runs is configuration: env ``KRXFLOW_SOURCE`` or the Airflow Variable of that name.
Nothing heavy is imported here: DAG files may import this package while parsing.
"""

from __future__ import annotations

import os

SOURCES = ("pykrx", "sample")
DEFAULT_SOURCE = "pykrx"

__all__ = ["SOURCES", "get_source", "source_name"]


def source_name() -> str:
    """The configured source: env ``KRXFLOW_SOURCE``, else Variable ``KRXFLOW_SOURCE``, else pykrx."""
    name = os.environ.get("KRXFLOW_SOURCE")
    if not name:
        try:
            from airflow.sdk import Variable

            name = Variable.get("KRXFLOW_SOURCE", default=None)
        except Exception:  # no Variable backend outside a task
            name = None
    name = (name or DEFAULT_SOURCE).strip().lower()
    if name not in SOURCES:
        raise ValueError(f"KRXFLOW_SOURCE={name!r} is not one of {SOURCES}")
    return name


def get_source(name: str | None = None, **kwargs):
    """The configured :class:`~krxflow.krx.interface.KrxSource` (or the one called ``name``)."""
    name = (name or source_name()).lower()
    if name == "pykrx":
        from krxflow.krx.source import PykrxSource

        return PykrxSource(**kwargs)
    if name == "sample":
        from krxflow.sample.market import SampleSource

        return SampleSource(**kwargs)
    raise ValueError(f"unknown KRX source {name!r}; use one of {SOURCES}")
