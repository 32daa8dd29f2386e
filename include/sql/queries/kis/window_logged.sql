-- Has the polling window %(window)s of buffer %(stream)s already been recorded in load_stats?
-- (A drain killed after logging but before acknowledging re-reads the window's summary.)
SELECT EXISTS (
    SELECT 1 FROM load_stats
    WHERE operation = 'kis_poll_window'
      AND details ->> 'stream' = %(stream)s
      AND details ->> 'window' = %(window)s
)
