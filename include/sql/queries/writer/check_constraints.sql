-- CHECK constraints as SQL text, e.g. CHECK ((close >= 0)).
SELECT con.conname AS name, pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(table)s AND n.nspname = current_schema() AND con.contype = 'c'
ORDER BY con.conname
