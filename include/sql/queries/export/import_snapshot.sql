-- A reader connection sees exactly the exporting transaction's snapshot: {snapshot} is the
-- literal pg_export_snapshot() returned (the first statement of the reader's REPEATABLE READ
-- transaction).
SET TRANSACTION SNAPSHOT {snapshot}
