"""Retention: drop whole partitions once every row in them is past its table's retention.

Each table's retention comes from ``krxflow_partitioning.retention_days`` (intraday_quotes 365,
order_books 30, market_data 90; daily prices NULL = kept forever) and can be overridden per table
by the Airflow Variable ``retention_days_<table>``: a positive number of days, or ``keep`` to keep
everything. Dropping a partition (rather than ``DELETE``) frees the space at once with no VACUUM
debt; :func:`krxflow.db.partitions.drop_partitions_older_than` keeps any partition whose newest
row is still inside the retention period.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from krxflow.db import partitions
from krxflow.journal import Journal, Operation, journaled
from krxflow.market_time import kst_today

log = logging.getLogger(__name__)

#: Variable name pattern of a per-table override.
VARIABLE_TEMPLATE = "retention_days_{table}"
_KEEP_WORDS = {"keep", "forever", "none", "null", "off"}


class RetentionError(ValueError):
    """A retention override is not a positive number of days (or ``keep``)."""


@dataclass
class RetentionReport:
    """What the purge did (or would do, with ``dry_run``) for one table."""

    table: str
    retention_days: int | None
    source: str  # "policy" | "variable"
    cutoff: dt.date | None
    dry_run: bool
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.retention_days is None:
            return f"{self.table}: kept forever ({self.source})"
        verb = "would drop" if self.dry_run else "dropped"
        return (f"{self.table}: retention {self.retention_days} days ({self.source}), cutoff {self.cutoff}, "
                f"{verb} {len(self.dropped)} partition(s): {', '.join(self.dropped) or 'none'}"
                + (f"; kept (rows inside retention): {', '.join(self.kept)}" if self.kept else ""))


def parse_days(table: str, value) -> int | None:
    """An override's value as days (None = keep forever); anything else is a clear error."""
    if isinstance(value, bool):
        raise RetentionError(f"{VARIABLE_TEMPLATE.format(table=table)}: expected days or 'keep', got {value!r}")
    if isinstance(value, int):
        days = value
    else:
        text = str(value).strip().lower()
        if text in _KEEP_WORDS:
            return None
        try:
            days = int(text)
        except ValueError:
            raise RetentionError(
                f"{VARIABLE_TEMPLATE.format(table=table)}: expected a whole number of days or 'keep', got {value!r}"
            ) from None
    if days <= 0:
        raise RetentionError(f"{VARIABLE_TEMPLATE.format(table=table)}: retention must be > 0 days, got {days}")
    return days


def purge(conn: psycopg.Connection, *, today: dt.date | None = None, dry_run: bool = False,
          override: Callable[[str], object | None] = lambda table: None,
          journal: Journal | None = None,
          before_drop: Callable[[str, partitions.Partition], None] | None = None) -> list[RetentionReport]:
    """Drop the expired partitions of every table with a retention.

    :param today: the KST day retention counts back from (default: now in KST); a partition is
        expired when its upper bound is on or before ``today - retention_days``.
    :param override: ``table -> value or None``, e.g. a Variable lookup; None keeps the policy.
    :param dry_run: report what would be dropped, drop nothing.
    :param journal: journal each table (operation ``retention``) with its own time.
    :param before_drop: ``(table, partition)`` called in each drop's transaction before the drop
        (``db_retention`` archives the partition to the export and verifies it there); if it
        raises, that partition and the rest of the table are kept and the table's purge fails.
    """
    today = today or kst_today()
    policies = partitions.all_policies(conn)
    # validate every override before touching anything
    plans = []
    for policy in policies:
        value = override(policy.parent)
        if value is None:
            plans.append((policy, policy.retention_days, "policy"))
        else:
            plans.append((policy, parse_days(policy.parent, value), "variable"))
    reports = []
    for policy, days, source in plans:
        with journaled(journal, policy.parent, Operation.RETENTION) as entry:
            if days is None:
                report = RetentionReport(policy.parent, None, source, None, dry_run)
            else:
                cutoff = today - dt.timedelta(days=days)
                candidates = [p.name for p in partitions.expired_partitions(conn, policy.parent, cutoff)]
                hook = None if before_drop is None else (lambda part, table=policy.parent: before_drop(table, part))
                dropped = partitions.drop_partitions_older_than(conn, policy.parent, cutoff, dry_run=dry_run,
                                                                before_drop=hook)
                report = RetentionReport(policy.parent, days, source, cutoff, dry_run, dropped,
                                         [name for name in candidates if name not in dropped])
            entry.details = {"retention_days": report.retention_days, "source": report.source,
                             "cutoff": report.cutoff.isoformat() if report.cutoff else None,
                             "dry_run": dry_run, "dropped": report.dropped, "kept": report.kept}
        log.info(report.summary())
        reports.append(report)
    return reports
