-- Serialises the writes of ETF/ETN sessions (a backfill loads several at once): each reads the master
-- and the loaded sessions, then writes both. Held until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('krxflow:etp-sessions', 0))
