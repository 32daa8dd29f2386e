-- Indices of the master first priced on a session (an index-master change: asked on that session).
SELECT index_code FROM krx_indices WHERE first_seen = %(day)s
