"""Build hook: the wheel carries ``include/sql`` as ``krxflow/sql`` (the statements the package runs).

Only the standard wheel: an editable install (``make venv``) points at the checkout, whose
``include/sql`` :func:`krxflow.settings.sql_dir` finds by itself, so it gets no stale copy.
"""

from __future__ import annotations

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class SqlFilesHook(BuildHookInterface):
    """Adds ``include/sql`` → ``krxflow/sql`` to the standard wheel."""

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["force_include"]["include/sql"] = "krxflow/sql"
