-- {partition}, {parent}: identifiers; {lower}, {upper}: literals. Idempotent.
CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {parent} FOR VALUES FROM ({lower}) TO ({upper})
