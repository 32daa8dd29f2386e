-- What tells whether a relation's rows changed since an export, without reading them: the
-- relation's file node (changes on TRUNCATE, VACUUM FULL, CLUSTER, a dropped and re-created
-- partition) and its cumulative insert/update/delete counters (pg_stat_all_tables), plus when the
-- statistics of the database were last reset or the server started (a reset or a crash zeroes
-- the counters: the fingerprint then differs, and the relation is read again).
SELECT c.relname AS relation, c.relfilenode AS filenode,
       coalesce(s.n_tup_ins, 0) AS inserted, coalesce(s.n_tup_upd, 0) AS updated,
       coalesce(s.n_tup_del, 0) AS deleted,
       coalesce(d.stats_reset, pg_postmaster_start_time())::text AS stats_epoch
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
LEFT JOIN pg_stat_database d ON d.datname = current_database()
WHERE n.nspname = current_schema() AND c.relname = ANY(%(relations)s)
