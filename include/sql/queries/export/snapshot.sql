-- The export's as-of time: the start of the transaction whose snapshot every read uses.
SELECT transaction_timestamp()
