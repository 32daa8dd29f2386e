-- Whether a materialized view of the current schema holds data (REFRESH ... CONCURRENTLY needs it).
-- No row: the view does not exist.
SELECT ispopulated FROM pg_matviews WHERE schemaname = current_schema() AND matviewname = %(view)s
