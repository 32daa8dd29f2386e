"""OpenDART (금융감독원 전자공시, opendart.fss.or.kr): corp codes and disclosures (issue 28).

* :mod:`krxflow.dart.config` — the ``dart_default`` Connection (API key in the password; none
  means sample mode: a local fake OpenDART over the sample market);
* :mod:`krxflow.dart.errors` — one typed error per OpenDART status;
* :mod:`krxflow.dart.gate` — the installation-wide gate in Redis (per-minute cap, daily budget,
  the circuit opened by status 020 until the next KST day);
* :mod:`krxflow.dart.client` — the small client every request goes through;
* :mod:`krxflow.dart.loading` — corp codes and a day's disclosures into PostgreSQL.

Nothing heavy is imported here.
"""
