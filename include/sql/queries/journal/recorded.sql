-- Is there a journal row of %(operation)s whose details contain %(details)s (e.g. a polling window
-- of one buffer)? A collector killed after journaling but before acknowledging re-reads its input.
SELECT EXISTS (
    SELECT 1 FROM load_stats
    WHERE operation = %(operation)s
      AND details @> %(details)s
)
