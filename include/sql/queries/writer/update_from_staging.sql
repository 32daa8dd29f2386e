-- {target}, {staging}: identifiers; {assignments}: col = s.col; {key_match}: t.k = s.k AND …;
-- {target_values}/{staged_values}: the non-key columns of each side.
-- Only rows whose values changed are rewritten: an unchanged row costs a read, not a new tuple.
UPDATE {target} AS t SET {assignments}
FROM {staging} AS s
WHERE {key_match} AND ({target_values}) IS DISTINCT FROM ({staged_values})
