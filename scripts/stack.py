"""Run krxflow on a bare machine (no Docker): ``make run`` / ``make stop`` / ``make status`` call this.

    python scripts/stack.py up        # start everything, print the UI URL and the admin password
    python scripts/stack.py down      # stop every process ``up`` started (and only those)
    python scripts/stack.py status    # what runs, where
    source .run/env.sh                # then the ``airflow`` CLI talks to the same installation

The code lives in the package, one module per concern (:mod:`krxflow.stack`); this file only puts
``plugins/`` on the path and calls :func:`krxflow.stack.cli.main`.
"""

from __future__ import annotations

import sys
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))

from krxflow.stack.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
