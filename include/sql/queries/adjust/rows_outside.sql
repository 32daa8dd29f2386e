-- Whether one ticker has raw rows outside %(first)s..%(last)s (then its adjusted series needs them too).
SELECT EXISTS (
    SELECT 1 FROM daily_prices
    WHERE ticker = %(ticker)s AND (trade_date < %(first)s OR trade_date > %(last)s)
) AS outside
