-- The outcome of each ticker of one krx_history_backfill run: the last %(operation)s (history_ticker) row its
-- mapped task wrote (a retried task writes one per successful attempt; a task that failed, none).
-- In load_stats rather than XCom: 2,800 XCom pushes per run cost the Execution API more than the
-- loads themselves, and load_stats is where the health dashboard already looks.
SELECT DISTINCT ON (details ->> 'ticker') details
FROM load_stats
WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s AND operation = %(operation)s
ORDER BY details ->> 'ticker', id DESC
