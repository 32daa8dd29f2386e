-- The partitioning policy of one parent table (see krxflow_partitioning).
SELECT key_column, granularity, premake, retention_days, earliest
FROM krxflow_partitioning
WHERE parent_table = %(parent)s
