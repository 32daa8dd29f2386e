-- The current (open) members of the given indices.
SELECT index_code, ticker, entered_on FROM krx_index_members
WHERE exited_on IS NULL AND index_code = ANY(%(codes)s)
