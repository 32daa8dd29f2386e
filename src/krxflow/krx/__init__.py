"""KRX: how krxflow talks to it, reads its answers and loads them — one concern per module.

Transport (the only way a request reaches KRX or Naver):
  * :mod:`~krxflow.krx.gated_http` — the gated ``requests`` session: timeouts, no redirects,
    every answer classified (block → circuit, LOGOUT → typed error);
  * :mod:`~krxflow.krx.pacing` — the installation-wide gate in Redis: circuit, one in flight,
    the interval since the previous answer;
  * :mod:`~krxflow.krx.login` — one shared KRX login for every worker;
  * :mod:`~krxflow.krx.pykrx_session` — pykrx imported quietly and bound to that session.

Answers (pure functions, tested on KRX's recorded answers):
  * :mod:`~krxflow.krx.parsing` — prices (MDCSTAT01501/01701) and Naver's XML;
  * :mod:`~krxflow.krx.report_parsing` — the other daily reports.

The source: :mod:`~krxflow.krx.source` (``PykrxSource``, the real KRX behind
:class:`~krxflow.krx.interface.KrxSource`).

Loading (source → ``BatchedPostgresHook`` → tables; what the DAGs call):
  * :mod:`~krxflow.krx.master` — the ticker master (a pure diff, its reads and writes);
  * :mod:`~krxflow.krx.loading` — daily prices by date, per-ticker history, quality checks;
  * :mod:`~krxflow.krx.adjusting` — adjustment factors and the adjusted series;
  * :mod:`~krxflow.krx.report_catalog`, :mod:`~krxflow.krx.report_loading` — the other reports;
  * :mod:`~krxflow.krx.tables` — the hook and query-as-frame helpers they share.

Importing this package imports nothing heavy (DAG files import :mod:`~krxflow.krx.pacing`'s
pool name while parsing).
"""
