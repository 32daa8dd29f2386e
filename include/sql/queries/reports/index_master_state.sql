-- The index master as stored, to widen first_seen/last_seen when a day's index prices arrive.
SELECT index_code, name, index_group, first_seen, last_seen FROM krx_indices
