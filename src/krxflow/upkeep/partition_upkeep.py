"""Partitions for every partitioned table, from the oldest period it needs to N periods ahead.

"Needed" starts at the table's oldest row (so a gap left by a failed run is filled) or, for an
empty table, at the current period. Creating is idempotent: existing partitions are left alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from krxflow.db import partitions
from krxflow.journal import Journal, Operation, journaled
from krxflow.market_time import kst_date, kst_today
from krxflow.sqlfiles import template

log = logging.getLogger(__name__)


@dataclass
class PartitionReport:
    """What ``ensure_all`` did for one parent table."""

    parent: str
    since: dt.date
    ahead: int
    created: list[str] = field(default_factory=list)
    total: int = 0


def oldest_day(conn: psycopg.Connection, policy: partitions.Policy) -> dt.date | None:
    """The KST date of the oldest row of ``policy.parent`` (None when the table is empty)."""
    value = conn.execute(template("queries/upkeep/oldest_key.sql", parent=sql.Identifier(policy.parent),
                                  key=sql.Identifier(policy.key_column))).fetchone()[0]
    return None if value is None else kst_date(value)


def ensure_all(conn: psycopg.Connection, today: dt.date | None = None, ahead: int | None = None,
               tables: list[str] | None = None, journal: Journal | None = None) -> list[PartitionReport]:
    """Create the missing partitions of every table in ``krxflow_partitioning`` (or of ``tables``).

    :param today: the KST day to count ahead from (default: now in KST).
    :param ahead: periods to create ahead of today's period; default each table's ``premake``.
    :param journal: journal each table (operation ``ensure_partitions``) with its own time.
    """
    if ahead is not None and ahead < 0:
        raise ValueError(f"ahead must be >= 0, got {ahead}")
    today = today or kst_today()
    policies = partitions.all_policies(conn)
    if tables is not None:
        unknown = sorted(set(tables) - {p.parent for p in policies})
        if unknown:
            raise partitions.PartitionError(f"no partitioning policy for: {', '.join(unknown)}")
        policies = [p for p in policies if p.parent in tables]
    reports = []
    for policy in policies:
        with journaled(journal, policy.parent, Operation.ENSURE_PARTITIONS) as entry:
            oldest = oldest_day(conn, policy)
            since = min(oldest, today) if oldest else today
            periods_ahead = policy.premake if ahead is None else ahead
            created = partitions.ensure_ahead(conn, policy.parent, today=today, premake=periods_ahead, since=since)
            report = PartitionReport(policy.parent, since, periods_ahead, created,
                                     len(partitions.list_partitions(conn, policy.parent)))
            entry.details = {"created": report.created, "since": report.since.isoformat(), "ahead": report.ahead,
                             "partitions": report.total}
        log.info("%s: %d partition(s) created (%s), %d in all, from %s to %d %s(s) ahead",
                 policy.parent, len(created), ", ".join(created) or "none", report.total, since,
                 periods_ahead, policy.granularity)
        reports.append(report)
    return reports
