-- The raw rows of one session.
SELECT ticker, trade_date, open, high, low, close, volume, change_rate
FROM daily_prices
WHERE trade_date = %(day)s
