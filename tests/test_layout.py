"""The product stands on its own: nothing it runs (package, DAGs, scripts, compose) imports tests/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = [*ROOT.glob("src/**/*.py"), *ROOT.glob("dags/*.py"), *ROOT.glob("scripts/**/*.py"),
           *ROOT.glob("scripts/docker/*"), ROOT / "docker-compose.yaml"]
USES_TESTS = re.compile(r"(import|from)\s+tests\b|-m\s+tests\.|\btests\.fakes\b|\./tests:")


def test_nothing_the_product_runs_reaches_into_tests():
    offenders = sorted(str(path.relative_to(ROOT)) for path in PRODUCT
                       if path.is_file() and USES_TESTS.search(path.read_text(encoding="utf-8", errors="replace")))
    assert not offenders, f"product files that use tests/: {offenders}"


def test_sample_mode_servers_live_in_the_package():
    from krxflow.sample import kis_server, kis_ws_server

    assert kis_server.__name__ == "krxflow.sample.kis_server" and hasattr(kis_server, "FakeKis")
    assert hasattr(kis_ws_server, "FakeRealtime")
