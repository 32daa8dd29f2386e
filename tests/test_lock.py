"""The lock (requirements.txt) covers the production executor, and the image installs it without
letting it move the image's own Airflow."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.txt"
DOCKERFILE = ROOT / "scripts" / "docker" / "Dockerfile"
CELERY_EXECUTOR_DISTRIBUTIONS = ("apache-airflow-providers-celery", "celery", "kombu", "flower")


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = pinned
    return pins


def _run_instructions() -> list[str]:
    """The Dockerfile's RUN instructions, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line[len("RUN "):] for line in joined.splitlines() if line.startswith("RUN ")]


def test_lock_pins_the_celery_executor_and_flower_at_the_installed_versions():
    pins = _pins()
    for name in (*CELERY_EXECUTOR_DISTRIBUTIONS, "apache-airflow"):
        assert name in pins, f"{name} is not in the lock"
        assert version(name) == pins[name], f"{name}: venv has {version(name)}, lock pins {pins[name]}"


def test_celery_executor_imports_with_the_locked_airflow():
    probe = ("from airflow.providers.celery.executors.celery_executor import CeleryExecutor; "
             "import airflow, celery, flower; print(airflow.__version__)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == _pins()["apache-airflow"]


def test_the_locked_versions_resolve_together():
    """pip's resolver, offline of any index: the venv built from the lock has no broken requirement."""
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_cannot_move_the_images_airflow():
    base = re.search(r"^FROM apache/airflow:([\d.]+)-python", DOCKERFILE.read_text(), re.M)
    assert base and base.group(1) == _pins()["apache-airflow"], "the image and the lock name the same Airflow"
    installs = [run for run in _run_instructions() if "requirements.txt" in run]
    assert len(installs) == 1, installs
    install = installs[0]
    # the image's own version (AIRFLOW_VERSION is set by the official image) in the same pip call
    first_pip = install.split("&&")[0]
    assert "pip install" in first_pip and '"apache-airflow==${AIRFLOW_VERSION}"' in first_pip
    assert "-r /opt/krxflow/requirements.txt" in first_pip
    assert "pip check" in install and 'os.environ["AIRFLOW_VERSION"]' in install
