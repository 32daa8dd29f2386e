"""Airflow's public REST API for the stack: health, the krxflow DAGs, sample mode's first round of runs."""

from __future__ import annotations

import json
from typing import Any

from krxflow.stack.env import Settings
from krxflow.stack.processes import wait_for


class AirflowApi:
    """A minimal client of Airflow's public REST API (``/api/v2``), token from ``/auth/token``."""

    def __init__(self, base_url: str, username: str, password: str):
        import httpx

        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=30)
        self._credentials = {"username": username, "password": password}
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            resp = self._http.post("/auth/token", json=self._credentials)
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs) -> Any:
        resp = self._http.request(method, f"/api/v2{path}", headers={"Authorization": f"Bearer {self.token()}"},
                                  **kwargs)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:500]}")
        return resp.json() if resp.content else None

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params)

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
