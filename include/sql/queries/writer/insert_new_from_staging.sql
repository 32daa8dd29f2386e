-- {target}, {staging}: identifiers; {columns}, {key}: identifier lists; {key_match}: t.k = s.k AND ….
-- Inserts the staged rows whose key is new. ON CONFLICT covers a concurrent writer that inserted
-- the same key after our snapshot: its row stays, ours is counted as unchanged.
INSERT INTO {target} ({columns})
SELECT {columns} FROM {staging} AS s
WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {key_match})
ON CONFLICT ({key}) DO NOTHING
