-- The members of one index on a session (an older session than the last checked: compared, not rewritten).
SELECT ticker FROM universe_on(%(code)s, %(day)s)
