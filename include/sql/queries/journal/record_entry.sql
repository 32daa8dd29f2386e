INSERT INTO load_stats (dag_id, run_id, task_id, map_index, table_name, operation, rows_in, inserted,
                        updated, unchanged, duplicates, rejected, seconds, status, error, details)
VALUES (%(dag_id)s, %(run_id)s, %(task_id)s, %(map_index)s, %(table_name)s, %(operation)s, %(rows_in)s,
        %(inserted)s, %(updated)s, %(unchanged)s, %(duplicates)s, %(rejected)s, %(seconds)s, %(status)s,
        %(error)s, %(details)s)
