-- {table}, {key}: identifiers; {prefix}: the key columns before the partition key, e.g. ticker or
-- (ticker, adjusted); {prefix_match}: t.<column> = p.<column> for each of them; {arrays}: one typed
-- array parameter per prefix column. Does the target already hold a row of these key prefixes (e.g.
-- the tickers of a per-ticker history, or the raw or adjusted series of some tickers) in the
-- incoming partition-key range? One probe of each partition's primary-key index (prefix, key) per
-- prefix, stopping at the first row: a new ticker (or a new series of a known ticker) goes the fast
-- path even when other rows already fill the same dates. Written as a LATERAL probe so that the
-- planner cannot hash whole partitions instead (it did, 1.2 s a call, on partitions filled since
-- their last ANALYZE: the estimates said they were nearly empty).
SELECT EXISTS (
    SELECT 1
    FROM unnest({arrays}) AS p ({prefix})
    CROSS JOIN LATERAL (
        SELECT 1 FROM {table} t
        WHERE {prefix_match} AND t.{key} BETWEEN %(low)s AND %(high)s
        LIMIT 1
    ) found
)
