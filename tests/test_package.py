"""krxflow as an installable Airflow provider: the wheel, installed into a clean venv, is discovered.

The wheel is built from this checkout (``pip wheel``, the pinned hatchling) and installed into a
new venv that has no krxflow of its own. Its dependencies are the lock's, taken offline from the
test venv's site-packages through a ``.pth`` to a folder of links that leaves krxflow out (the
test venv has krxflow installed editable; tests reach no network but loopback). Then the clean
venv's own ``airflow`` names krxflow among the providers, offers the ``kis`` connection type with
its form, loads the plugin from the entry point, and runs the SQL from inside the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _airflow_env(home: Path) -> dict[str, str]:
    """A bare Airflow environment: no krxflow path, no test-session settings."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "KRXFLOW_", "PYTHON"))}
    return {**keep, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory) -> Path:
    """A new venv with the built krxflow wheel and (offline) the lock's dependencies; its python."""
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-w", str(work / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, = (work / "dist").glob("krxflow-*.whl")

    deps = work / "deps"  # the lock's packages without krxflow's editable install
    deps.mkdir()
    for site in [Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]:
        for entry in site.iterdir():
            if entry.name.lower().startswith(("krxflow", "_krxflow", "__editable__")) or entry.suffix == ".pth" \
                    or (deps / entry.name).exists():
                continue
            (deps / entry.name).symlink_to(entry)
    venv.create(work / "venv", with_pip=True)
    python = work / "venv" / "bin" / "python"
    clean_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    Path(clean_site, "lock_dependencies.pth").write_text(f"{deps}\n")
    before = subprocess.run([str(python), "-c", "import krxflow"], capture_output=True, text=True)
    assert before.returncode != 0, "the clean venv must not see krxflow before the wheel is installed"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index",
                                "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return python


def test_the_wheel_carries_the_package_its_sql_and_entry_points(clean_venv):
    probe = ("import json, krxflow, krxflow.settings as s; from importlib.metadata import distribution; "
             "print(json.dumps({'file': krxflow.__file__, 'sql': str(s.sql_dir()), "
             "'eps': sorted(f'{e.group}:{e.value}' for e in distribution('krxflow').entry_points)}))")
    out = subprocess.run([str(clean_venv), "-c", probe], capture_output=True, text=True, cwd="/",
                         env=_airflow_env(clean_venv.parent), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    site = str(clean_venv.parents[1])
    assert found["file"].startswith(site) and str(ROOT / "src") not in found["file"]
    assert found["sql"].startswith(site) and (Path(found["sql"]) / "migrations" / "0001_core_schema.sql").is_file()
    assert found["eps"] == ["airflow.plugins:krxflow.plugin:KrxflowPlugin",
                            "apache_airflow_provider:krxflow.provider_info:get_provider_info"]
    check = subprocess.run([str(clean_venv), "-m", "pip", "check", "--disable-pip-version-check"],
                           capture_output=True, text=True, timeout=120)
    assert "krxflow" not in check.stdout, f"the wheel's dependencies are not met by the lock: {check.stdout}"


def test_airflow_lists_krxflow_the_kis_connection_type_and_the_plugin(clean_venv, tmp_path):
    env = _airflow_env(tmp_path)

    def airflow(*args: str) -> str:
        out = subprocess.run([str(clean_venv), "-m", "airflow", *args], capture_output=True, text=True,
                             env=env, cwd="/", timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "could not be registered" not in out.stderr, out.stderr[-3000:]
        return out.stdout[out.stdout.index("["):]

    providers = {p["package_name"]: p for p in json.loads(airflow("providers", "list", "-o", "json"))}
    import krxflow

    assert providers["krxflow"]["version"] == krxflow.__version__
    hooks = {h["connection_type"]: h for h in json.loads(airflow("providers", "hooks", "-o", "json"))}
    assert hooks["kis"]["class"] == "krxflow.hooks.kis.KisHook" and hooks["kis"]["package_name"] == "krxflow"
    plugins = {p["name"]: p for p in json.loads(airflow("plugins", "-o", "json"))}
    assert plugins["krxflow"]["timetables"] == ["krxflow.timetables.KRXSessionTimetable"]
    assert "airflow.plugins" in plugins["krxflow"]["source"], "loaded once, from the entry point"

    form = ("import json; from airflow.providers_manager import ProvidersManager as P; p = P(); "
            "p.initialize_providers_hooks(); "
            "print(json.dumps({'widgets': sorted(k for k in p.connection_form_widgets if k.startswith('extra__kis__')), "
            "'behaviour': p.field_behaviours.get('kis')}))")
    out = subprocess.run([str(clean_venv), "-c", form], capture_output=True, text=True, env=env, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    shown = json.loads(out.stdout.strip().splitlines()[-1])
    from krxflow.hooks.kis import KisHook

    assert shown["widgets"] == sorted(f"extra__kis__{name}" for name in KisHook.conn_fields())
    assert shown["behaviour"]["relabeling"] == KisHook.ui_field_behaviour()["relabeling"]
    assert shown["behaviour"]["hidden_fields"] == KisHook.ui_field_behaviour()["hidden-fields"]


def test_provider_info_is_valid_for_airflows_schema():
    """What the providers manager validates at discovery, checked here without a second venv."""
    import jsonschema
    from airflow import providers_manager

    from krxflow.provider_info import get_provider_info

    schema = json.loads((Path(providers_manager.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "krxflow"
    modules = [m for kind in ("hooks", "triggers", "sensors") for item in info[kind] for m in item["python-modules"]]
    import importlib

    for module in modules:  # every module named is importable
        importlib.import_module(module)
