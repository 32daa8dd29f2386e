"""The stack's settings and environment: what ``make run`` reads, and what its Airflow runs with.

The Airflow variables themselves come from :func:`krxflow.environment.airflow_environment`; this
module adds the stack's own: ports chosen at start, secrets generated once per run dir, the
venv's and the private PostgreSQL's binaries on ``PATH``, sample mode, Grafana's login.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from krxflow import environment

#: The checkout: ``dags/`` (the DAG bundle), ``grafana/``, ``.env``, the default run dir.
REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent


@dataclass
class Settings:
    """Everything ``up`` needs, from the environment; the e2e test sets different names the same way."""

    run_dir: Path
    pg_server: str
    redis_url: str
    market_db: str
    airflow_db: str
    api_port: int
    fake_kis_port: int
    redis_prefix: str
    parallelism: int
    demo: bool
    executor: str
    celery_workers: int
    celery_concurrency: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        executor = env.get("KRXFLOW_EXECUTOR") or "local"
        if executor not in environment.EXECUTORS:
            raise ValueError(f"KRXFLOW_EXECUTOR must be one of {sorted(environment.EXECUTORS)}, not {executor!r}")
        workers, concurrency = environment.celery_workers_for()
        return cls(
            run_dir=Path(env.get("KRXFLOW_RUN_DIR") or REPO_ROOT / ".run").resolve(),
            pg_server=(env.get("KRXFLOW_PG_SERVER") or "postgresql://postgres@127.0.0.1:5432").rstrip("/"),
            redis_url=env.get("KRXFLOW_REDIS_URL") or "redis://127.0.0.1:6379/0",
            market_db=env.get("KRXFLOW_MARKET_DB") or "krxflow",
            airflow_db=env.get("KRXFLOW_AIRFLOW_DB") or "krxflow_airflow",
            api_port=int(env.get("KRXFLOW_API_PORT") or 8080),
            fake_kis_port=int(env.get("KRXFLOW_FAKE_KIS_PORT") or 18765),
            redis_prefix=env.get("KRXFLOW_REDIS_PREFIX") or "krxflow:",
            parallelism=int(env.get("KRXFLOW_PARALLELISM") or environment.default_parallelism()),
            demo=(env.get("KRXFLOW_DEMO", "1") not in ("0", "false", "False", "no")),
            executor=environment.EXECUTORS[executor],
            celery_workers=int(env.get("KRXFLOW_CELERY_WORKERS") or workers),
            celery_concurrency=int(env.get("KRXFLOW_CELERY_CONCURRENCY") or concurrency),
        )

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def airflow_home(self) -> Path:
        return self.run_dir / "airflow_home"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"


def sample_mode(env: dict[str, str]) -> dict[str, bool]:
    return {
        "krx": not (env.get("KRX_ID") and env.get("KRX_PW")) and env.get("KRXFLOW_SOURCE", "sample") != "pykrx",
        "kis": not (env.get("KIS_APPKEY") and env.get("KIS_APPSECRET")),
    }


def airflow_env(settings: Settings, state: dict) -> dict[str, str]:
    """The environment every Airflow component (and the ``airflow`` CLI) of this installation runs with:
    :func:`krxflow.environment.airflow_environment` plus the stack's ports, secrets, paths and sample mode."""
    path = [str(VENV_BIN)]
    if state.get("pg_bin"):  # pg_dump / pg_restore of the private server's major version for db_backup
        path.append(state["pg_bin"])
    env = {
        **environment.airflow_environment(
            home=settings.airflow_home, metadata_db=f"{state['pg_server']}/{settings.airflow_db}",
            market_db=f"{state['pg_server']}/{settings.market_db}", redis_url=state["redis_url"],
            dags_folder=REPO_ROOT / "dags", redis_prefix=settings.redis_prefix,
            executor=settings.executor, parallelism=settings.parallelism, api_port=state["api_port"],
            celery_broker_url=state.get("celery_broker_url"), celery_concurrency=settings.celery_concurrency),
        "AIRFLOW__API__WORKERS": "1",
        "KRXFLOW_BACKUP_DIR": os.environ.get("KRXFLOW_BACKUP_DIR") or str(settings.run_dir / "backups"),
        "KRXFLOW_EXPORT_DIR": os.environ.get("KRXFLOW_EXPORT_DIR") or str(settings.run_dir / "export"),
        "MPLCONFIGDIR": str(settings.run_dir / "mpl"),
        "PATH": os.pathsep.join([*path, os.environ.get("PATH", "/usr/bin:/bin")]),
        **persistent_secrets(settings),
    }
    if state.get("sample", {}).get("krx"):
        env["KRXFLOW_SOURCE"] = "sample"
    elif os.environ.get("KRXFLOW_SOURCE"):
        env["KRXFLOW_SOURCE"] = os.environ["KRXFLOW_SOURCE"]
    if state.get("fake_kis_url"):
        env["KRXFLOW_FAKE_KIS_URL"] = state["fake_kis_url"]
    if state.get("fake_kis_ws_url"):
        env["KRXFLOW_FAKE_KIS_WS_URL"] = state["fake_kis_ws_url"]
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("AIRFLOW") and k not in ("KRX_ID", "KRX_PW", "KIS_APPKEY", "KIS_APPSECRET")}
    # The user's own Airflow settings (AIRFLOW__SECTION__KEY) tune the installation, as they do any
    # Airflow; the ones the builder sets make up this installation (its databases, folders, ports,
    # executor) and win.
    tuning = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__") and k not in env}
    return {**base, **tuning, **env}


def write_env_file(settings: Settings, env: dict[str, str]) -> Path:
    """``<run dir>/env.sh``: ``source`` it to point the ``airflow`` CLI at this installation."""
    keys = sorted(k for k in env if k.startswith(("AIRFLOW", "KRXFLOW_", "MPLCONFIGDIR", "PYTHONPATH")))
    lines = ["# generated by scripts/stack.py up: `source` it to use the airflow CLI of `make run`"]
    lines += [f"export {k}={_shell_quote(env[k])}" for k in keys]
    lines.append(f"export PATH={_shell_quote(env['PATH'])}")
    path = settings.run_dir / "env.sh"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def persistent_secrets(settings: Settings) -> dict[str, str]:
    """Fernet key, JWT secret and api secret key: generated once per run dir, reused across restarts."""
    path = settings.run_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


GRAFANA_LOGIN_SCRIPT = REPO_ROOT / "grafana" / "provisioning" / "create_login_role.sql"


def grafana_login(settings: Settings) -> dict[str, str]:
    """Grafana's read-only login: ``KRXFLOW_GRAFANA_DB_USER``/``_PASSWORD`` from the environment (or
    ``.env``), else ``krxflow_grafana`` with a password generated once per run dir (``grafana.json``)."""
    path = settings.run_dir / "grafana.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    login = {"KRXFLOW_GRAFANA_DB_USER": os.environ.get("KRXFLOW_GRAFANA_DB_USER") or "krxflow_grafana",
             "KRXFLOW_GRAFANA_DB_PASSWORD": os.environ.get("KRXFLOW_GRAFANA_DB_PASSWORD")
             or stored.get("KRXFLOW_GRAFANA_DB_PASSWORD") or secrets.token_urlsafe(24)}
    if not os.environ.get("KRXFLOW_GRAFANA_DB_PASSWORD") and stored != login:
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(login))
        path.chmod(0o600)
    return login


def create_grafana_login(dsn: str, login: dict[str, str], pg_bin: str | None = None) -> str:
    """Create or update Grafana's login role with ``create_login_role.sql`` (as docker-compose's init does)."""
    psql = str(Path(pg_bin) / "psql") if pg_bin and (Path(pg_bin) / "psql").exists() else shutil.which("psql")

    def command(password: str) -> list[str]:
        return [psql or "psql", dsn, "-v", "ON_ERROR_STOP=1", "-v", f"grafana_user={login['KRXFLOW_GRAFANA_DB_USER']}",
                "-v", f"grafana_password={password}", "-f", str(GRAFANA_LOGIN_SCRIPT)]

    if psql is None:
        return ("Grafana login role NOT created (no psql on PATH); after `source env.sh` create it with: "
                + " ".join(command('"$KRXFLOW_GRAFANA_DB_PASSWORD"')))
    result = subprocess.run(command(login["KRXFLOW_GRAFANA_DB_PASSWORD"]), capture_output=True, text=True,
                            timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"creating Grafana's login role failed: {result.stderr[-2000:]}")
    return (f"Grafana login role {login['KRXFLOW_GRAFANA_DB_USER']} (member of krxflow_readonly) in place; "
            "user and password in env.sh (KRXFLOW_GRAFANA_DB_USER / KRXFLOW_GRAFANA_DB_PASSWORD)")


def load_dotenv_file(path: Path = REPO_ROOT / ".env") -> None:
    """The repo's ``.env`` (same names as docker-compose), without overriding the real environment."""
    if path.exists():
        from dotenv import dotenv_values

        for key, value in dotenv_values(path).items():
            if value not in (None, "") and key not in os.environ:
                os.environ[key] = value
