-- {table}, {key}: identifiers; {prefix}: the key columns before the partition key, e.g. ticker or
-- (ticker, adjusted); {arrays}: one typed array parameter per prefix column. Does the target already hold
-- a row of these key prefixes (e.g. the tickers of a per-ticker history, or the raw or adjusted
-- series of some tickers) in the incoming partition-key range? Probes each partition's primary-key
-- index (prefix, key) only: a new ticker (or a new series of a known ticker) goes the fast path
-- even when other rows already fill the same dates.
SELECT EXISTS (
    SELECT 1 FROM {table}
    WHERE ({prefix}) IN (SELECT * FROM unnest({arrays}))
      AND {key} BETWEEN %(low)s AND %(high)s
)
