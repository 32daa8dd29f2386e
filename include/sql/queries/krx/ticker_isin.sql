-- The ISIN of one ticker (NULL when krx_tickers has not seen it).
SELECT isin FROM stocks WHERE ticker = %(ticker)s
