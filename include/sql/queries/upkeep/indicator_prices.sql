-- {source}: identifier (daily_prices or daily_prices_adjusted). The full history of some tickers as
-- ONE CSV text (ticker,day,high,low,close a line; a NULL is an empty field), for Arrow's CSV reader:
-- one value crosses the wire instead of ~1,250 rows per ticker, which a row-by-row reader (a SELECT's
-- rows, or COPY TO's one message per row) pays for in Python. The day travels as days since
-- 1970-01-01 (an integer, whatever the server's DateStyle), the prices as numeric_out prints them.
-- No ORDER BY and no per-ticker groups: krxflow.indicators.compute sorts by ticker and day itself,
-- and sorting here cost the server more than building the text (measured: 2.3x the CPU).
SELECT string_agg(concat(ticker, ',', trade_date - DATE '1970-01-01', ',', high, ',', low, ',', close), E'\n')
FROM {source}
WHERE ticker = ANY(%(tickers)s)
