-- One ticker of the master (404 when missing).
SELECT ticker, name, market, delisted FROM stocks WHERE ticker = %(ticker)s
