-- Split-adjusted daily prices (exact numeric), oldest first; one row more than the page to detect a next page.
SELECT trade_date AS date, open, high, low, close, volume, change_rate::float8 AS change_rate, 1 AS trading_days
FROM daily_prices_adjusted
WHERE ticker = %(ticker)s AND trade_date BETWEEN %(start)s AND %(end)s
ORDER BY trade_date
LIMIT %(limit)s
