-- The master's rows of some tickers (to link KRX's delistings to them).
SELECT ticker, name, market, last_seen, delisted, delisted_on FROM stocks WHERE ticker = ANY(%(tickers)s)
