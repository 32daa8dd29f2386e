-- One index's daily OHLCV from %(start)s to %(end)s, oldest first, %(limit)s rows (one more than a
-- page: the extra row's date is the next page's start).
SELECT trade_date AS date, open::float8 AS open, high::float8 AS high, low::float8 AS low, close::float8 AS close,
       change::float8 AS change, change_rate::float8 AS change_rate, volume, trading_value, market_cap
FROM krx_index_prices
WHERE index_code = %(code)s AND trade_date BETWEEN %(start)s AND %(end)s
ORDER BY trade_date
LIMIT %(limit)s
