-- Serialises updates of the ticker master (stocks + stock_changes): a session-level advisory lock,
-- released when the holding connection closes. The key is a fixed krxflow-wide number.
SELECT pg_advisory_lock(hashtextextended('krxflow:stocks-master', 0))
