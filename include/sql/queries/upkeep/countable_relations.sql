-- Every table and materialized view of the current schema whose rows a backup must carry:
-- ordinary tables and leaf partitions (relkind r) and materialized views (m), with whether a view
-- is populated (pg_dump restores an unpopulated view unpopulated, and it cannot be counted) and its
-- defining query as the server deparses it (for count_matview_rebuilt.sql).
-- Partitioned parents (p) hold no rows of their own; their partitions are counted one by one.
-- Read in the dump's snapshot, this is the catalog exactly as pg_dump --snapshot sees it.
SELECT c.relname,
       c.relkind = 'm' AS is_matview,
       c.relispopulated AS populated,
       CASE WHEN c.relkind = 'm' THEN rtrim(pg_get_viewdef(c.oid), '; ') END AS definition
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')
ORDER BY c.relname
