"""KIS (한국투자증권) Open API: async client, shared token, shared rate limiter, parsing,
Redis stream buffering (the drain into PostgreSQL is :mod:`krxflow.intraday`).

Modules: :mod:`.config` (the ``kis_default`` Connection), :mod:`.errors`, :mod:`.ratelimit`,
:mod:`.token`, :mod:`.client`, :mod:`.parsing`, :mod:`.buffer` (trigger → Redis stream),
:mod:`.spill`, :mod:`.watchlist`, :mod:`.minute_bars` (the fetch). Writing what KIS answered into
PostgreSQL is :mod:`krxflow.intraday` (the drain, the minute-bar load): this package imports nothing
of the writer, since :class:`~krxflow.hooks.kis.KisHook` is built on its config.
"""
