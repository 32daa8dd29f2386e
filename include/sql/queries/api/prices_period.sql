-- Week or month candles (%(period)s = week | month) whose period starts in
-- [start, end]; oldest first; one row more than the page to detect a next page. Prices stay exact
-- numeric: whole won for the raw series, the adjusted series' decimals (the API's models say which).
SELECT period_start AS date, open, high, low, close, volume, trading_value, NULL::float8 AS change_rate,
       NULL::bigint AS market_cap, trading_days
FROM period_candles
WHERE period = %(period)s AND ticker = %(ticker)s AND adjusted = %(adjusted)s AND period_start BETWEEN %(start)s AND %(end)s
ORDER BY period_start
LIMIT %(limit)s
