-- The raw rows of some tickers, oldest first: what their adjusted series and factors derive from.
SELECT ticker, trade_date, open, high, low, close, volume, change_rate, base_price, listed_shares
FROM daily_prices
WHERE ticker = ANY(%(tickers)s::text[])
ORDER BY ticker, trade_date
