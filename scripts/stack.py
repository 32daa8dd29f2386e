"""Run krxflow on a bare machine (no Docker): ``make run`` / ``make stop`` / ``make status`` call this.

    python scripts/stack.py up        # start everything, print the UI URL and the admin password
    python scripts/stack.py down      # stop every process ``up`` started (and only those)
    python scripts/stack.py status    # what runs, where
    source .run/env.sh                # then the ``airflow`` CLI talks to the same installation

The code lives in the package, one module per concern (:mod:`krxflow.stack`), which ``make venv``
installs into ``.venv`` (editable, from this checkout); this file only calls :func:`krxflow.stack.cli.main`.
"""

from __future__ import annotations

import sys

from krxflow.stack.cli import main

if __name__ == "__main__":
    sys.exit(main())
