-- Every ticker's industry on a session (an older session than the last loaded: compared, not rewritten).
SELECT ticker, market, industry FROM industries_on(%(day)s)
