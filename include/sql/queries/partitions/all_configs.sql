SELECT parent_table, key_column, granularity, premake, retention_days, earliest
FROM krxflow_partitioning
ORDER BY parent_table
