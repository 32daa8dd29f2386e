-- Split-adjusted daily prices, oldest first; one row more than the page to detect a next page.
SELECT trade_date AS date, open::float8 AS open, high::float8 AS high, low::float8 AS low, close::float8 AS close,
       volume, NULL::bigint AS trading_value, change_rate::float8 AS change_rate, NULL::bigint AS market_cap,
       1 AS trading_days
FROM daily_prices_adjusted
WHERE ticker = %(ticker)s AND trade_date BETWEEN %(start)s AND %(end)s
ORDER BY trade_date
LIMIT %(limit)s
