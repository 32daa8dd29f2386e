-- Export the current REPEATABLE READ transaction's snapshot so pg_dump --snapshot sees exactly
-- the rows this transaction counts.
SELECT pg_export_snapshot()
