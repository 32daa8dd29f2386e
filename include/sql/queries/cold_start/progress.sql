-- Cold-start progress over the window %(first)s..%(last)s: sessions loaded in all, and since %(since)s
-- (the current run's start: its pace gives the ETA).
SELECT count(DISTINCT details->>'day') AS done,
       count(DISTINCT details->>'day') FILTER (WHERE finished_at >= %(since)s) AS since_start
FROM load_stats
WHERE operation = %(operation)s
  AND status IN ('ok', 'warning')
  AND (details->>'day')::date BETWEEN %(first)s AND %(last)s
