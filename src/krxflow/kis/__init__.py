"""KIS (한국투자증권) Open API: async client, shared token, shared rate limiter, parsing,
Redis stream buffering and draining into PostgreSQL.

Modules: :mod:`.config` (the ``kis_default`` Connection), :mod:`.errors`, :mod:`.ratelimit`,
:mod:`.token`, :mod:`.client`, :mod:`.parsing`, :mod:`.buffer` (trigger → Redis stream),
:mod:`.drain` (Redis stream → batched hook), :mod:`.watchlist`.
"""
