-- {table}, {key}, {lead}: identifiers. Does the target already hold a row of these leading-key
-- values (e.g. the tickers of a per-ticker history) in the incoming partition-key range? Probes
-- each partition's primary-key index (lead, key) only: a new ticker goes the fast path even when
-- other tickers already fill the same dates.
SELECT EXISTS (SELECT 1 FROM {table} WHERE {lead} = ANY(%(leads)s) AND {key} BETWEEN %(low)s AND %(high)s)
