"""KRX daily data sources behind one interface (:class:`~krxflow.krx.interface.KrxSource`).

* ``pykrx`` (default) — the real KRX/Naver through pykrx, with typed errors, timeouts, pacing
  shared through Redis and a circuit breaker (:mod:`krxflow.krx.source`; the KRX package).
* ``krx_openapi`` — KRX's official Open API (an API key, one date per call, no portal traffic at
  all; :mod:`krxflow.krx.openapi`). It serves the by-date daily prices only.
* ``sample`` — a deterministic offline market for demos, tests and benches
  (:mod:`krxflow.sample.market`).

Which one runs is configuration: env ``KRXFLOW_SOURCE`` or the Airflow Variable of that name. A
data set may have its own: ``KRXFLOW_SOURCE_DAILY_PRICES`` (env or Variable) chooses the source
of ``krx_daily_prices`` alone (e.g. ``krx_openapi`` to load history by date from the Open API while
every other DAG keeps the portal).
Nothing heavy is imported here: DAG files may import this package while parsing.
"""

from __future__ import annotations

from krxflow.settings import setting

SOURCES = ("pykrx", "sample", "krx_openapi")
DEFAULT_SOURCE = "pykrx"
#: The data sets that may have a source of their own (``KRXFLOW_SOURCE_<DATA SET>``).
DATA_SETS = ("daily_prices",)

__all__ = ["DATA_SETS", "SOURCES", "get_source", "source_name"]


def source_name(data_set: str | None = None) -> str:
    """The configured source: for ``data_set``, env/Variable ``KRXFLOW_SOURCE_<DATA_SET>`` first; then
    env ``KRXFLOW_SOURCE``, else Variable ``KRXFLOW_SOURCE``, else pykrx."""
    name = None
    if data_set is not None:
        if data_set not in DATA_SETS:
            raise ValueError(f"no per-data-set source for {data_set!r}; data sets: {DATA_SETS}")
        variable = f"KRXFLOW_SOURCE_{data_set.upper()}"
        name = setting(variable) or None
        if name and name.strip().lower() not in SOURCES:
            raise ValueError(f"{variable}={name!r} is not one of {SOURCES}")
    name = name or setting("KRXFLOW_SOURCE") or None
    name = (name or DEFAULT_SOURCE).strip().lower()
    if name not in SOURCES:
        raise ValueError(f"KRXFLOW_SOURCE={name!r} is not one of {SOURCES}")
    return name


def get_source(name: str | None = None, *, data_set: str | None = None, **kwargs):
    """The configured :class:`~krxflow.krx.interface.KrxSource` (or the one called ``name``)."""
    name = (name or source_name(data_set)).lower()
    if name == "pykrx":
        from krxflow.krx.source import PykrxSource

        return PykrxSource(**kwargs)
    if name == "sample":
        from krxflow.sample.market import SampleSource

        return SampleSource(**kwargs)
    if name == "krx_openapi":
        from krxflow.krx.openapi import OpenApiSource

        return OpenApiSource(**kwargs)
    raise ValueError(f"unknown KRX source {name!r}; use one of {SOURCES}")
