-- {table}: identifier. Temporary tables are never auto-analysed; the join plans need row counts.
ANALYZE {table}
