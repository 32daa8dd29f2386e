"""Time partitions: create the ones a range needs, list them with their bounds, drop expired ones.

Each partitioned table's policy (key column, ``day`` or ``month`` periods, periods to create
ahead, retention) is a row of ``krxflow_partitioning``. Periods are KST calendar days or months:
a ``timestamptz`` partition for November 2026 runs from ``2026-11-01 00:00+09`` to
``2026-12-01 00:00+09``, so a KST trading day never straddles two partitions.

Partition names are ``<parent>_pYYYYMM`` (months) or ``<parent>_pYYYYMMDD`` (days).
All DDL goes through the templates in ``include/sql/queries/partitions``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from krxflow.market_time import KST, kst_date, kst_today
from krxflow.sqlfiles import template

log = logging.getLogger(__name__)

_BOUND = re.compile(r"FROM \('(?P<lower>[^']+)'\) TO \('(?P<upper>[^']+)'\)")


class PartitionError(RuntimeError):
    """A table has no partitioning policy, or a requested range makes no sense."""


@dataclass(frozen=True)
class Policy:
    """How one parent table is partitioned (a row of ``krxflow_partitioning``)."""

    parent: str
    key_column: str
    granularity: str  # "day" | "month"
    premake: int
    retention_days: int | None
    earliest: dt.date

    def period_start(self, day: dt.date) -> dt.date:
        return day.replace(day=1) if self.granularity == "month" else day

    def next_period(self, start: dt.date) -> dt.date:
        if self.granularity == "day":
            return start + dt.timedelta(days=1)
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)

    def partition_name(self, start: dt.date) -> str:
        suffix = start.strftime("%Y%m") if self.granularity == "month" else start.strftime("%Y%m%d")
        return f"{self.parent}_p{suffix}"


@dataclass(frozen=True)
class Partition:
    """One partition and its bounds as KST dates: ``lower`` inclusive, ``upper`` exclusive."""

    name: str
    lower: dt.date
    upper: dt.date


def get_policy(conn: psycopg.Connection, parent: str) -> Policy | None:
    """The partitioning policy of ``parent``, or None when the table is not partitioned by krxflow."""
    row = conn.execute(template("queries/partitions/config.sql"), {"parent": parent}).fetchone()
    return Policy(parent, *row) if row else None


def all_policies(conn: psycopg.Connection) -> list[Policy]:
    return [Policy(*row) for row in conn.execute(template("queries/partitions/all_configs.sql")).fetchall()]


def _require_policy(conn: psycopg.Connection, parent: str) -> Policy:
    policy = get_policy(conn, parent)
    if policy is None:
        raise PartitionError(f"{parent} has no row in krxflow_partitioning")
    return policy


def _bound_literal(policy_key_is_timestamp: bool, day: dt.date) -> sql.Literal:
    if policy_key_is_timestamp:
        return sql.Literal(dt.datetime.combine(day, dt.time(), tzinfo=KST))
    return sql.Literal(day)


def _key_is_timestamp(conn: psycopg.Connection, policy: Policy) -> bool:
    row = conn.execute(
        template("queries/partitions/key_type.sql"), {"parent": policy.parent, "key": policy.key_column}
    ).fetchone()
    if row is None:
        raise PartitionError(f"{policy.parent}.{policy.key_column} does not exist")
    return row[0].startswith("timestamp")


def periods(policy: Policy, first: dt.date, last: dt.date) -> list[dt.date]:
    """Start dates of every period that overlaps ``[first, last]``."""
    if last < first:
        raise PartitionError(f"empty range: {first} .. {last}")
    starts, start = [], policy.period_start(first)
    while start <= last:
        starts.append(start)
        start = policy.next_period(start)
    return starts


def ensure_partitions(conn: psycopg.Connection, parent: str, first, last) -> list[str]:
    """Create every missing partition of ``parent`` covering ``first``..``last`` (KST, inclusive).

    Runs in its own short transaction, serialised per parent by an advisory lock, so concurrent
    writers never race on the same ``CREATE TABLE`` and no long data transaction holds the
    parent's DDL lock. Returns the names of the partitions it created.
    """
    policy = _require_policy(conn, parent)
    first_day, last_day = kst_date(first), kst_date(last)
    wanted = periods(policy, first_day, last_day)
    is_ts = _key_is_timestamp(conn, policy)
    created: list[str] = []
    with conn.transaction():
        conn.execute(template("queries/partitions/lock.sql"), {"parent": parent})
        existing = {p.name for p in list_partitions(conn, parent)}
        for start in wanted:
            name = policy.partition_name(start)
            if name in existing:
                continue
            conn.execute(
                template(
                    "queries/partitions/create.sql",
                    partition=sql.Identifier(name),
                    parent=sql.Identifier(parent),
                    lower=_bound_literal(is_ts, start),
                    upper=_bound_literal(is_ts, policy.next_period(start)),
                )
            )
            created.append(name)
    if created:
        log.info("created %d partition(s) of %s: %s", len(created), parent, ", ".join(created))
    return created


def ensure_ahead(conn: psycopg.Connection, parent: str, today: dt.date | None = None,
                 premake: int | None = None, since: dt.date | None = None) -> list[str]:
    """Partitions of ``parent`` from ``since`` (default: this period) to ``premake`` periods ahead."""
    policy = _require_policy(conn, parent)
    today = today or kst_today()
    ahead = policy.premake if premake is None else premake
    last = policy.period_start(today)
    for _ in range(ahead):
        last = policy.next_period(last)
    return ensure_partitions(conn, parent, since or today, last)


def list_partitions(conn: psycopg.Connection, parent: str) -> list[Partition]:
    """The partitions of ``parent`` with their bounds, oldest first."""
    found = []
    for name, bound in conn.execute(template("queries/partitions/list.sql"), {"parent": parent}).fetchall():
        match = _BOUND.search(bound or "")
        if not match:  # a DEFAULT partition or a foreign shape: not ours to manage
            continue
        found.append(Partition(name, _parse_bound(match["lower"]), _parse_bound(match["upper"])))
    return sorted(found, key=lambda p: p.lower)


def _parse_bound(text: str) -> dt.date:
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    return kst_date(dt.datetime.fromisoformat(text.replace(" ", "T")))


def expired_partitions(conn: psycopg.Connection, parent: str, cutoff: dt.date) -> list[Partition]:
    """Partitions whose every possible row is older than ``cutoff`` (upper bound <= cutoff)."""
    return [p for p in list_partitions(conn, parent) if p.upper <= cutoff]


def drop_partitions_older_than(conn: psycopg.Connection, parent: str, cutoff: dt.date,
                               *, dry_run: bool = False,
                               before_drop: Callable[[Partition], None] | None = None) -> list[str]:
    """Drop the partitions of ``parent`` that end on or before ``cutoff`` (KST date).

    A partition is dropped only when its bounds say every row in it is older than the cutoff,
    and, as a second guard, its newest row really is. ``before_drop(partition)`` runs first in the
    drop's transaction (the export's archive): if it raises, the partition is kept and the error
    propagates. Returns the names dropped (or that would be dropped with ``dry_run``).
    """
    policy = _require_policy(conn, parent)
    is_ts = _key_is_timestamp(conn, policy)
    dropped = []
    cutoff_value = dt.datetime.combine(cutoff, dt.time(), tzinfo=KST) if is_ts else cutoff
    for part in expired_partitions(conn, parent, cutoff):
        newest = conn.execute(
            template("queries/partitions/max_key.sql",
                     key=sql.Identifier(policy.key_column), partition=sql.Identifier(part.name))
        ).fetchone()[0]
        if newest is not None and newest >= cutoff_value:
            log.warning("keeping %s: it holds a row at %s, inside the retention period", part.name, newest)
            continue
        if dry_run:
            log.info("dry run: would drop %s (%s .. %s)", part.name, part.lower, part.upper)
        else:
            with conn.transaction():
                if before_drop is not None:
                    before_drop(part)
                conn.execute(template("queries/partitions/drop.sql", partition=sql.Identifier(part.name)))
            log.info("dropped %s (%s .. %s)", part.name, part.lower, part.upper)
        dropped.append(part.name)
    return dropped
