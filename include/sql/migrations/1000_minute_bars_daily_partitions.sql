-- minute_bars: daily partitions like order_books and trades (one session's ~1M rows of 2,700
-- tickers is one partition; retention drops whole days), kept 400 days (a year of backfill).
-- Rows already in monthly partitions are moved into daily ones. Bounds are KST calendar days.
UPDATE krxflow_partitioning SET granularity = 'day', premake = 7, retention_days = 400
 WHERE parent_table = 'minute_bars';

DO $$
DECLARE
    old_partition text;
    bar_day date;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = 'minute_bars'::regclass
                      AND c.relname !~ '^minute_bars_p[0-9]{8}$') THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE minute_bars_moving AS SELECT * FROM minute_bars;
    FOR old_partition IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                          WHERE i.inhparent = 'minute_bars'::regclass LOOP
        EXECUTE format('DROP TABLE %I', old_partition);
    END LOOP;
    FOR bar_day IN SELECT DISTINCT (minute AT TIME ZONE 'Asia/Seoul')::date FROM minute_bars_moving LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF minute_bars FOR VALUES FROM (%L) TO (%L)',
                       'minute_bars_p' || to_char(bar_day, 'YYYYMMDD'),
                       bar_day::timestamp AT TIME ZONE 'Asia/Seoul',
                       (bar_day + 1)::timestamp AT TIME ZONE 'Asia/Seoul');
    END LOOP;
    INSERT INTO minute_bars SELECT * FROM minute_bars_moving;
    DROP TABLE minute_bars_moving;
END $$;
