-- One page of the index master for GET /krx/indices, by group then code.
-- %(index_group)s may be NULL (all groups).
SELECT index_code AS code, name, index_group AS "group", first_seen, last_seen, count(*) OVER () AS total
FROM krx_indices
WHERE (%(index_group)s::text IS NULL OR index_group = %(index_group)s)
ORDER BY index_group, index_code
LIMIT %(limit)s OFFSET %(offset)s
