-- Partitions of one parent with their bound expressions, e.g. FOR VALUES FROM ('2024-01-01') TO ('2024-02-01').
SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE p.relname = %(parent)s AND n.nspname = current_schema()
ORDER BY c.relname
