"""Airflow's public REST API for the stack: health, the krxflow DAGs, sample mode's first round of runs."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from krxflow.stack.env import Settings
from krxflow.stack.processes import wait_for

log = logging.getLogger(__name__)


class AirflowApi:
    """A minimal client of Airflow's public REST API (``/api/v2``), token from ``/auth/token``.

    Every call waits ``read_timeout`` seconds for its answer at first. A loaded api-server can take
    longer (seen: more than 30 s for ``GET /importErrors`` at a load average of 13 on 2 cores), so a
    call that asks without changing anything — a GET, or the token (a new one each time) — is asked
    again after a read timeout, each attempt waiting twice as long as the one before, until the
    caller's ``deadline`` (a :func:`time.monotonic` value; default ``patience`` seconds after the
    first attempt); past it :class:`TimeoutError` says how many attempts waited how long. Nothing
    else is hidden: a PATCH or POST is sent once (one that timed out may have been applied), an
    error answer (HTTP 4xx/5xx) raises at once, a server that refuses connections too.
    """

    def __init__(self, base_url: str, username: str, password: str, *, read_timeout: float = 30.0,
                 patience: float = 300.0):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.read_timeout = read_timeout
        self.patience = patience
        self._http = httpx.Client(base_url=self.base_url, timeout=read_timeout)
        self._credentials = {"username": username, "password": password}
        self._token: str | None = None

    def token(self, deadline: float | None = None) -> str:
        if self._token is None:
            resp = self._send("POST", "/auth/token", again=True, deadline=deadline, json=self._credentials)
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, *, deadline: float | None = None, **kwargs) -> Any:
        """``method`` on ``/api/v2{path}``; the answer's JSON. ``deadline``: see the class doc (GET only)."""
        again = method.upper() in ("GET", "HEAD")
        resp = self._send(method, f"/api/v2{path}", again=again, deadline=deadline,
                          headers={"Authorization": f"Bearer {self.token(deadline)}"}, **kwargs)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:500]}")
        return resp.json() if resp.content else None

    def get(self, path: str, *, deadline: float | None = None, **params) -> Any:
        """GET ``path`` with ``params`` as its query (``deadline`` is not one: see the class doc)."""
        return self.request("GET", path, deadline=deadline, params=params)

    def _send(self, method: str, url: str, *, again: bool, deadline: float | None, **kwargs):
        """One request; with ``again``, asked again after each read timeout until ``deadline``."""
        import httpx

        first = time.monotonic()
        if deadline is None:
            deadline = first + self.patience
        wait, attempts = self.read_timeout, 0
        while True:
            attempts += 1
            if again:  # the last attempt waits only until the deadline (but gets a second at least)
                wait = max(1.0, min(wait, deadline - time.monotonic()))
            try:
                return self._http.request(method, url, timeout=httpx.Timeout(wait), **kwargs)
            except httpx.ReadTimeout as exc:
                if not again or time.monotonic() >= deadline:
                    raise TimeoutError(f"{method} {url}: no answer from the Airflow api-server at {self.base_url} "
                                       f"({attempts} attempt(s), {time.monotonic() - first:.0f} s)") from exc
                log.warning("%s %s: no answer in %.0f s (attempt %d), asking again", method, url, wait, attempts)
                wait *= 2

    def close(self) -> None:
        self._http.close()


def admin_password(settings: Settings) -> str | None:
    path = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("admin")


def health_ok(base_url: str) -> bool:
    import httpx

    try:
        body = httpx.get(f"{base_url}/api/v2/monitor/health", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return False
    return all(body.get(c, {}).get("status") == "healthy" for c in ("metadatabase", "scheduler", "triggerer",
                                                                   "dag_processor"))


def krxflow_dag_ids(api: AirflowApi) -> list[str]:
    return sorted(d["dag_id"] for d in api.get("/dags", tags="krxflow", limit=100)["dags"])


def _now_utc() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()


def start_demo(api: AirflowApi) -> list[str]:
    """Sample mode: unpause the krxflow DAGs and start a first round of runs (tickers, then two weeks by date)."""
    from datetime import timedelta

    from krxflow.market_time import kst_today

    done = []
    dag_ids = krxflow_dag_ids(api)
    for dag_id in dag_ids:
        api.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    done.append(f"unpaused {len(dag_ids)} DAGs")
    if "krx_tickers" in dag_ids:
        api.request("POST", "/dags/krx_tickers/dagRuns", json={"logical_date": _now_utc()})
        done.append("triggered krx_tickers")
    if "krx_daily_prices" in dag_ids and api.get("/backfills", dag_id="krx_daily_prices", limit=100)["backfills"]:
        done.append("krx_daily_prices already has a backfill (earlier run): not creating another")
    elif "krx_daily_prices" in dag_ids:
        today = kst_today()
        api.request("POST", "/backfills", json={
            "dag_id": "krx_daily_prices", "from_date": f"{today - timedelta(days=14)}T00:00:00+09:00",
            "to_date": f"{today - timedelta(days=1)}T00:00:00+09:00", "max_active_runs": 2,
            "reprocess_behavior": "none", "run_backwards": False})
        done.append("backfill krx_daily_prices over the last two weeks")
    if "kis_intraday" in dag_ids:
        # The watchlist is the top N of `stocks` by market cap: wait for the ticker master first.
        if "krx_tickers" in dag_ids:
            def tickers_done() -> bool:
                runs = api.get("/dags/krx_tickers/dagRuns", limit=20)["dag_runs"]
                return any(r["state"] == "success" for r in runs)
            try:
                wait_for(tickers_done, 300, "krx_tickers", interval=3.0)
                done.append("krx_tickers succeeded")
            except TimeoutError:
                done.append("krx_tickers has not finished yet (see the UI)")
        from krxflow.kis.session import DEMO_RUN

        api.request("POST", "/dags/kis_intraday/dagRuns", json={"logical_date": _now_utc(), "conf": DEMO_RUN})
        done.append(f"triggered kis_intraday ({DEMO_RUN['demo_seconds']} s of polling the fake KIS server, "
                    f"{DEMO_RUN['watchlist_size']} tickers)")
    return done
