-- One export or archive at a time per database (they share manifest.json); released at commit.
SELECT pg_advisory_xact_lock(hashtext('krxflow_export'))
