-- Serialises partition DDL on one parent across every worker (held until the transaction ends).
SELECT pg_advisory_xact_lock(hashtext('krxflow.partitions.' || %(parent)s))
