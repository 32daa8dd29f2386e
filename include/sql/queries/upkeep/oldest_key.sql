-- {parent}, {key}: identifiers. The oldest partition-key value a table holds (NULL when empty).
SELECT min({key}) FROM {parent}
