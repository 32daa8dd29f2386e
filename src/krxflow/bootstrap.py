"""The one place that declares and creates what krxflow needs inside Airflow: Connections, Pools, Variables.

Used by docker-compose's ``airflow-init`` service, by ``make run`` and by the end-to-end test::

    python -m krxflow.bootstrap            # create / update everything in Airflow's metadata database
    python -m krxflow.bootstrap --show     # print what would be applied (secrets masked), write nothing

Why one module: pool names and sizes belong to the code that uses them (``krxflow.krx.pacing``
for KRX, ``krxflow.kis`` for KIS), Variables to the DAGs that read them. Declaring them here from
those constants keeps the deployment in step with the code instead of in a hand-kept list.

What comes from where (all optional; the defaults give a working sample-mode installation):

* ``postgres_default`` / ``redis_default`` — the deployment's ``AIRFLOW_CONN_POSTGRES_DEFAULT`` /
  ``AIRFLOW_CONN_REDIS_DEFAULT``, mirrored into the metadata database so the UI shows them.
* ``krx_default`` — ``KRX_ID`` / ``KRX_PW`` (the KRX data-portal login pykrx uses).
* ``kis_default`` — ``KIS_APPKEY`` / ``KIS_APPSECRET`` / ``KIS_ENV`` (``live`` or ``paper``) and
  optionally ``KIS_BASE_URL`` and ``KIS_RATE``; without keys, ``KRXFLOW_FAKE_KIS_URL`` and
  ``KRXFLOW_FAKE_KIS_WS_URL`` (the local fake KIS server of sample mode: REST and realtime WebSocket).
* ``KRXFLOW_SOURCE`` — ``sample`` or ``pykrx``; by default ``pykrx`` when a KRX login is known, else ``sample``.

Update rules, so that re-running is safe and never throws away what an operator typed in the UI:
a value given by the environment is written every time; a default is written only when nothing is
there yet. A sample ``kis_default`` (``extra.sample = true``) follows the fake server's address.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

from krxflow.kis import connection_form as kis_connection_form
from krxflow.settings import KIS_CONN_ID, KRX_CONN_ID, POSTGRES_CONN_ID, REDIS_CONN_ID

log = logging.getLogger(__name__)

DEFAULT_POSTGRES_URI = "postgresql://postgres@127.0.0.1:5432/krxflow"
DEFAULT_REDIS_URI = "redis://127.0.0.1:6379/0"
KIS_LIVE_URL = "https://openapi.koreainvestment.com:9443"
KIS_PAPER_URL = "https://openapivts.koreainvestment.com:29443"
#: Key names the fake KIS server accepts; any non-empty pair works there.
SAMPLE_KIS_APPKEY = "sample-appkey"
SAMPLE_KIS_APPSECRET = "sample-appsecret"


@dataclass(frozen=True)
class ConnectionSpec:
    """One Airflow Connection krxflow uses; ``managed`` = the environment decided it (overwrite)."""

    conn_id: str
    conn_type: str
    description: str
    host: str | None = None
    port: int | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    managed: bool = False

    def masked(self) -> dict[str, Any]:
        shown = {k: getattr(self, k) for k in ("conn_id", "conn_type", "host", "port", "schema", "login", "extra",
                                               "managed")}
        shown["password"] = "***" if self.password else None
        return shown


@dataclass(frozen=True)
class PoolSpec:
    """An Airflow Pool; ``include_deferred=False`` so deferred sensors never hold a slot."""

    name: str
    slots: int
    description: str
    include_deferred: bool = False


@dataclass(frozen=True)
class VariableSpec:
    """An Airflow Variable; ``managed`` = set from the environment (overwrite), else only created when missing."""

    key: str
    value: Any
    description: str
    managed: bool = False
    serialize_json: bool = False


@dataclass
class Plan:
    """Everything bootstrap declares for one environment."""

    connections: list[ConnectionSpec]
    pools: list[PoolSpec]
    variables: list[VariableSpec]
    sample_mode: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample_mode": self.sample_mode,
            "connections": [c.masked() for c in self.connections],
            "pools": [p.__dict__ for p in self.pools],
            "variables": [{**v.__dict__} for v in self.variables],
        }


# --------------------------------------------------------------------------------------------- declare

def _uri_connection(conn_id: str, uri: str, description: str, managed: bool) -> ConnectionSpec:
    """A ConnectionSpec from a URI, parsed by Airflow's own Connection class (same rules as AIRFLOW_CONN_*)."""
    from airflow.models.connection import Connection

    parsed = Connection(conn_id=conn_id, uri=uri)
    return ConnectionSpec(conn_id=conn_id, conn_type=parsed.conn_type, description=description, host=parsed.host,
                          port=parsed.port, schema=parsed.schema, login=parsed.login, password=parsed.password,
                          extra=parsed.extra_dejson, managed=managed)


def kis_sample_mode(env: Mapping[str, str]) -> bool:
    """No KIS app key configured: the DAGs talk to the local fake KIS server."""
    return not (env.get("KIS_APPKEY") and env.get("KIS_APPSECRET"))


def krx_source(env: Mapping[str, str]) -> str:
    """``KRXFLOW_SOURCE`` if set, else ``pykrx`` when a KRX login is configured, else ``sample``."""
    explicit = (env.get("KRXFLOW_SOURCE") or "").strip().lower()
    if explicit:
        if explicit not in ("sample", "pykrx"):
            raise ValueError(f"KRXFLOW_SOURCE must be 'sample' or 'pykrx', not {explicit!r}")
        return explicit
    return "pykrx" if env.get("KRX_ID") and env.get("KRX_PW") else "sample"


def declared_connections(env: Mapping[str, str]) -> list[ConnectionSpec]:
    pg_uri = env.get("AIRFLOW_CONN_POSTGRES_DEFAULT")
    redis_uri = env.get("AIRFLOW_CONN_REDIS_DEFAULT")
    conns = [
        _uri_connection(POSTGRES_CONN_ID, pg_uri or DEFAULT_POSTGRES_URI,
                        "krxflow market database (every write goes through BatchedPostgresHook)", bool(pg_uri)),
        _uri_connection(REDIS_CONN_ID, redis_uri or DEFAULT_REDIS_URI,
                        "krxflow cache: KRX pacing and circuit breaker, KIS token, rate limiter, quote dedupe",
                        bool(redis_uri)),
    ]
    krx_id, krx_pw = env.get("KRX_ID"), env.get("KRX_PW")
    conns.append(ConnectionSpec(
        conn_id=KRX_CONN_ID, conn_type="generic", host="data.krx.co.kr",
        description="KRX data portal login (login = KRX id, password); used by the pykrx source",
        login=krx_id or None, password=krx_pw or None, managed=bool(krx_id and krx_pw)))
    if not kis_sample_mode(env):
        kis_env = (env.get("KIS_ENV") or "live").strip().lower()
        if kis_env not in ("live", "paper"):
            raise ValueError(f"KIS_ENV must be 'live' or 'paper', not {kis_env!r}")
        extra: dict[str, Any] = {"env": kis_env}
        if env.get("KIS_RATE"):
            extra["rate"] = float(env["KIS_RATE"])
        conns.append(ConnectionSpec(
            conn_id=KIS_CONN_ID, conn_type=kis_connection_form.CONN_TYPE,
            description=f"KIS Open API ({kis_env}): login = appkey, password = appsecret",
            host=env.get("KIS_BASE_URL") or (KIS_LIVE_URL if kis_env == "live" else KIS_PAPER_URL),
            login=env["KIS_APPKEY"], password=env["KIS_APPSECRET"], extra=extra, managed=True))
    else:
        conns.append(ConnectionSpec(
            conn_id=KIS_CONN_ID, conn_type=kis_connection_form.CONN_TYPE,
            description="SAMPLE MODE: the local fake KIS server (set KIS_APPKEY/KIS_APPSECRET for the real API)",
            host=env.get("KRXFLOW_FAKE_KIS_URL") or "http://127.0.0.1:18765",
            login=SAMPLE_KIS_APPKEY, password=SAMPLE_KIS_APPSECRET,
            extra={"env": "live", "sample": True, "rate": float(env.get("KIS_RATE") or 18),
                   **({"ws_url": env["KRXFLOW_FAKE_KIS_WS_URL"]} if env.get("KRXFLOW_FAKE_KIS_WS_URL") else {})},
            managed=False))
    return conns


def declared_pools(env: Mapping[str, str]) -> list[PoolSpec]:
    """Pools from the constants of the code that uses them."""
    from krxflow.krx import pacing

    if env.get("KRXFLOW_KRX_POOL_SLOTS"):
        return [PoolSpec(pacing.KRX_POOL, int(env["KRXFLOW_KRX_POOL_SLOTS"]), pacing.KRX_POOL_DESCRIPTION)]
    if krx_source(env) == "sample":
        # The sample source never calls KRX: the pool may be as wide as the executor, so the demo's
        # 2,700-ticker backfill runs at the executor's pace. Should the source become pykrx later, the
        # shared pacing still spaces the KRX requests; narrow the pool back to 2 in the UI.
        slots = max(pacing.KRX_POOL_SLOTS, int(env.get("AIRFLOW__CORE__PARALLELISM") or pacing.KRX_POOL_SLOTS))
        return [PoolSpec(pacing.KRX_POOL, slots, f"SAMPLE MODE: as wide as the executor (no KRX calls). "
                                                  f"{pacing.KRX_POOL_DESCRIPTION}")]
    return [PoolSpec(pacing.KRX_POOL, pacing.KRX_POOL_SLOTS, pacing.KRX_POOL_DESCRIPTION)]


def declared_variables(env: Mapping[str, str]) -> list[VariableSpec]:
    """Variables the DAGs read, with the defaults of the code that reads them (visible and editable in the UI)."""
    from krxflow.kis import session as kis_session
    from krxflow.upkeep import backup

    source = krx_source(env)
    variables = [
        VariableSpec("KRXFLOW_SOURCE", source,
                     "Where daily data comes from: 'pykrx' (KRX, needs krx_default) or 'sample' (offline demo market)",
                     managed=bool(env.get("KRXFLOW_SOURCE")) or source == "pykrx"),
    ]
    for param, (key, default) in kis_session.SETTINGS.items():
        if default is None:  # e.g. kis_watchlist: unset means "top N by market cap"
            continue
        variables.append(VariableSpec(key, default, f"kis_intraday default for Param {param!r} (a run's Param wins)",
                                      serialize_json=not isinstance(default, str)))
    if env.get(backup.BACKUP_DIR_VARIABLE):
        variables.append(VariableSpec("krxflow_backup_dir", env[backup.BACKUP_DIR_VARIABLE],
                                      "Directory db_backup writes pg_dump files to", managed=True))
    return variables


def declare(env: Mapping[str, str] | None = None) -> Plan:
    env = os.environ if env is None else env
    return Plan(connections=declared_connections(env), pools=declared_pools(env),
                variables=declared_variables(env),
                sample_mode=krx_source(env) == "sample" or kis_sample_mode(env))


# ----------------------------------------------------------------------------------------------- apply

def _apply_connection(session, spec: ConnectionSpec) -> str:
    from airflow.models.connection import Connection
    from sqlalchemy import select

    existing = session.scalar(select(Connection).where(Connection.conn_id == spec.conn_id))
    if existing is not None:
        follows_sample = spec.conn_id == KIS_CONN_ID and existing.extra_dejson.get("sample")
        if not (spec.managed or follows_sample):
            return "kept"
        target = existing
        action = "updated"
    else:
        target = Connection(conn_id=spec.conn_id)
        session.add(target)
        action = "created"
    target.conn_type = spec.conn_type
    target.description = spec.description
    target.host = spec.host
    target.port = spec.port
    target.schema = spec.schema
    target.login = spec.login
    target.set_password(spec.password)
    target.set_extra(json.dumps(spec.extra) if spec.extra else None)
    return action


def _apply_pool(session, spec: PoolSpec) -> str:
    from airflow.models.pool import Pool

    existing = Pool.get_pool(spec.name, session=session)
    if existing is not None:
        return "kept"
    Pool.create_or_update_pool(spec.name, spec.slots, spec.description, spec.include_deferred, session=session)
    return "created"


def _apply_variable(session, spec: VariableSpec) -> str:
    from airflow.models.variable import Variable
    from sqlalchemy import select

    exists = session.scalar(select(Variable).where(Variable.key == spec.key)) is not None
    if exists and not spec.managed:
        return "kept"
    Variable.set(spec.key, spec.value, description=spec.description, serialize_json=spec.serialize_json,
                 session=session)
    return "updated" if exists else "created"


def apply(plan: Plan | None = None) -> dict[str, dict[str, str]]:
    """Write the plan into Airflow's metadata database (one transaction); returns what happened to each item."""
    from airflow.utils.session import create_session

    plan = plan or declare()
    report: dict[str, dict[str, str]] = {"connections": {}, "pools": {}, "variables": {}}
    with create_session() as session:
        for conn in plan.connections:
            report["connections"][conn.conn_id] = _apply_connection(session, conn)
        for pool in plan.pools:
            report["pools"][pool.name] = _apply_pool(session, pool)
        session.flush()
        for var in plan.variables:
            report["variables"][var.key] = _apply_variable(session, var)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m krxflow.bootstrap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="print the plan (secrets masked) and write nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        plan = declare()
    except ValueError as exc:
        print(f"bootstrap: {exc}", file=sys.stderr)
        return 2
    if args.show:
        print(json.dumps(plan.as_dict(), indent=2, default=str))
        return 0
    report = apply(plan)
    for kind, items in report.items():
        for name, action in items.items():
            print(f"{kind[:-1]:10} {name:24} {action}")
    if plan.sample_mode:
        print("SAMPLE MODE: no KRX login and/or no KIS app key configured -> offline sample source / local fake KIS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
