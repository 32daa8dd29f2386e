-- {table}: identifier. Exact row count (backups' restore check, view refresh report).
SELECT count(*) FROM {table}
