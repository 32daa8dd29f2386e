-- The type of a parent table's partition key, e.g. date or timestamp with time zone.
SELECT format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%(parent)s) AND a.attname = %(key)s
