-- {table}: identifier. Rows of the given tickers in a ts range (bench and checks).
SELECT count(*) FROM {table}
WHERE ticker = ANY(%(tickers)s) AND ts >= %(since)s AND ts < %(until)s
