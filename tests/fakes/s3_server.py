"""A local S3-compatible server for the export tests: moto in server mode, on 127.0.0.1 only.

moto needs botocore, which requires ``python-dateutil<3`` while krxflow's lock pins 4.0.0, so it
lives in a venv of its own, ``.venv-s3-server`` (``$KRXFLOW_S3_SERVER_VENV``), which ``make venv``
builds from ``requirements-s3-server.txt`` — an install step, so the tests themselves reach nothing
but loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements-s3-server.txt"
MOTO_VERSION = next(line.split("==")[1] for line in REQUIREMENTS.read_text().splitlines()
                    if line.startswith("moto[server]=="))


def server_venv() -> Path:
    """The moto venv ``make venv`` built; a clear error when it is missing."""
    home = Path(os.environ.get("KRXFLOW_S3_SERVER_VENV") or ROOT / ".venv-s3-server")
    python = home / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import moto.server, moto; print(moto.__version__)"],
                           capture_output=True, text=True) if python.exists() else None
    if probe is None or probe.returncode != 0 or probe.stdout.strip() != MOTO_VERSION:
        raise RuntimeError(f"no moto {MOTO_VERSION} server venv at {home}: run `make venv` "
                           f"(it builds {home.name} from {REQUIREMENTS.name})")
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
