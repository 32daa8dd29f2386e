"""``make test`` / ``make test-fast`` hand PYTEST_ARGS to pytest (docs/development/tests.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
@pytest.mark.fresh_machine
@pytest.mark.parametrize("target", ["test", "test-fast"])
def test_make_test_passes_pytest_args(target):
    # -o venv: this venv is already installed; PY: the interpreter running this test
    out = subprocess.run([shutil.which("make"), "-o", "venv", target, f"PY={sys.executable}",
                          "PYTEST_ARGS=tests/test_calendar.py -k known_korean_days"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 passed" in out.stdout and "deselected" in out.stdout
