"""Command line for the market database.

    python -m krxflow.db migrate                 apply pending migrations
    python -m krxflow.db status                  list migrations and whether each is applied
    python -m krxflow.db partitions [--ahead N]  create partitions from each table's oldest row
                                                 (or this period) to N periods ahead

The database is the Airflow Connection ``postgres_default`` (``AIRFLOW_CONN_POSTGRES_DEFAULT``),
or the one named by ``--conn-id``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from krxflow.db import migrations, partitions
from krxflow.db.connection import connection
from krxflow.settings import POSTGRES_CONN_ID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m krxflow.db", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conn-id", default=POSTGRES_CONN_ID, help="Airflow Connection id (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply pending migrations")
    commands.add_parser("status", help="show applied and pending migrations")
    ahead = commands.add_parser("partitions", help="create partitions ahead for every partitioned table")
    ahead.add_argument("--ahead", type=int, default=None, help="periods ahead (default: each table's premake)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    with connection(args.conn_id) as conn:
        if args.command == "migrate":
            done = migrations.migrate(conn)
            print(f"applied {len(done)} migration(s): {', '.join(done)}" if done else "schema is up to date")
        elif args.command == "status":
            recorded = migrations.applied(conn)
            for migration in migrations.discover():
                print(f"{migration.version} {migration.name:40} {'applied' if migration.version in recorded else 'pending'}")
        elif args.command == "partitions":
            for policy in partitions.all_policies(conn):
                created = partitions.ensure_ahead(conn, policy.parent, premake=args.ahead)
                print(f"{policy.parent}: {len(created)} partition(s) created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
