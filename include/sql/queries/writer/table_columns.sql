-- Columns the writer may fill: name, type as PostgreSQL spells it, NOT NULL, numeric precision/scale.
SELECT a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null,
       a.attgenerated <> '' AS generated,
       information_schema._pg_numeric_precision(a.atttypid, a.atttypmod) AS numeric_precision,
       information_schema._pg_numeric_scale(a.atttypid, a.atttypmod) AS numeric_scale,
       a.atthasdef AS has_default
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(table)s AND n.nspname = current_schema()
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
