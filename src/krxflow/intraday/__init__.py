"""KIS data into PostgreSQL: what the intraday DAGs run after the KIS client has fetched.

* :mod:`~krxflow.intraday.drain` — the Redis buffer streams (polled quotes, WebSocket ticks and
  books) written through :class:`~krxflow.hooks.BatchedPostgresHook`, acknowledged after the commit;
* :mod:`~krxflow.intraday.minute_bars` — a day's 1-minute bars fetched and upserted.

The KIS side (client, token, rate limit, buffer, WebSocket, parsing) is :mod:`krxflow.kis`, which
imports nothing of the writer: the hooks are built on it (:class:`~krxflow.hooks.kis.KisHook`
reads its config), this package on both.
"""
