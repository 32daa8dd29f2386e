"""A local S3-compatible server for the export tests: moto in server mode, on 127.0.0.1 only.

moto needs botocore, which requires ``python-dateutil<3`` while krxflow's lock pins 4.0.0, so it
lives in a venv of its own, built once from ``requirements-s3-server.txt`` under
``$KRXFLOW_S3_SERVER_VENV`` (default ``~/.cache/krxflow/moto-server-<version>``) and reused.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import venv
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements-s3-server.txt"
MOTO_VERSION = next(line.split("==")[1] for line in REQUIREMENTS.read_text().splitlines()
                    if line.startswith("moto[server]=="))


def server_venv() -> Path:
    """The moto venv (built when missing: a few minutes, once per machine)."""
    home = Path(os.environ.get("KRXFLOW_S3_SERVER_VENV")
                or Path.home() / ".cache" / "krxflow" / f"moto-server-{MOTO_VERSION}")
    python = home / "bin" / "python"
    probe = [str(python), "-c", "import moto.server"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return home
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                    str(REQUIREMENTS)], check=True, timeout=1200)
    subprocess.run(probe, check=True)
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server():
    """``http://127.0.0.1:<port>`` of a running moto server, stopped (by its pid) at the end."""
    port = free_port()
    proc = subprocess.Popen([str(server_venv() / "bin" / "python"), "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":  # build the venv ahead (e.g. in CI): python tests/fakes/s3_server.py
    print(server_venv(), file=sys.stderr)
