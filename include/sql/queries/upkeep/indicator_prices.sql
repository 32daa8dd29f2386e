-- {source}: identifier (daily_prices or daily_prices_adjusted). The full history of some tickers as
-- CSV text (ticker,trade_date,high,low,close; a NULL is an empty field), ONE ROW PER TICKER, its
-- lines in day order: a few hundred rows cross the wire instead of ~1,250 per ticker, which a row-
-- by-row COPY reader pays for in Python; the caller parses the joined text with Arrow's CSV reader.
SELECT string_agg(format('%%s,%%s,%%s,%%s,%%s', ticker, to_char(trade_date, 'YYYY-MM-DD'), high, low, close),
                  E'\n' ORDER BY trade_date)
FROM {source}
WHERE ticker = ANY(%(tickers)s)
GROUP BY ticker
ORDER BY ticker
