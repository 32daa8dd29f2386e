-- The sessions of %(first)s..%(last)s a cold start has loaded: one load_stats row per session
-- (operation %(operation)s, details->>'day'), written once its prices and master placement are done.
SELECT DISTINCT (details->>'day')::date AS day
FROM load_stats
WHERE operation = %(operation)s
  AND status IN ('ok', 'warning')
  AND (details->>'day')::date BETWEEN %(first)s AND %(last)s
