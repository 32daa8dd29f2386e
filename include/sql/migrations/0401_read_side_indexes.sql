-- Indexes the Grafana pipeline-health panels need on load_stats.
--
-- Those panels pick rows by operation ('kis_poll_window', 'upsert'/'append', '%quality%',
-- 'pg_dump') inside the dashboard's time range, or the newest row of one operation (backup age).
-- load_stats grows by one row per write and per KIS polling window (hundreds a day), so without
-- this index each refresh would read every row of the range, or the whole table for the backup age.
CREATE INDEX IF NOT EXISTS load_stats_operation_finished_at_idx ON load_stats (operation, finished_at);
