-- An index code krxflow knows: in the master, or with constituents (404 otherwise).
SELECT i.index_code AS code, i.name, i.index_group AS "group",
       EXISTS (SELECT 1 FROM krx_index_members m WHERE m.index_code = %(code)s) AS has_members
FROM (SELECT %(code)s::text AS index_code) c
LEFT JOIN krx_indices i USING (index_code)
WHERE i.index_code IS NOT NULL OR EXISTS (SELECT 1 FROM krx_index_members m WHERE m.index_code = %(code)s)
