-- Every table and materialized view of the current schema whose rows a backup must carry:
-- ordinary tables and leaf partitions (relkind r) and materialized views (m). Partitioned
-- parents (p) hold no rows of their own; their partitions are counted one by one.
SELECT c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')
ORDER BY c.relname
