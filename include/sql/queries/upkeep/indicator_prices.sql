-- {source}: identifier (daily_prices or daily_prices_adjusted). The full history of some tickers,
-- in the order the indicator computation needs (ticker, then day). Used with COPY ... TO STDOUT.
COPY (
    SELECT ticker, trade_date, high, low, close
    FROM {source}
    WHERE ticker = ANY(%(tickers)s)
    ORDER BY ticker, trade_date
) TO STDOUT WITH (FORMAT csv, HEADER true)
