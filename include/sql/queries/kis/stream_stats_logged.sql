-- Has the ws_stats entry %(seq)s of realtime window %(window)s of buffer %(stream)s been recorded?
-- (A drain killed after logging but before acknowledging re-reads the entry.)
SELECT EXISTS (
    SELECT 1 FROM load_stats
    WHERE operation = 'kis_ws_stats'
      AND details ->> 'stream' = %(stream)s
      AND details ->> 'window' = %(window)s
      AND details ->> 'seq' = %(seq)s
)
