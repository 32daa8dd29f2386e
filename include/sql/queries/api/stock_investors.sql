-- One ticker's trading by investor type from %(start)s to %(end)s, oldest first, for at most
-- %(limit)s sessions (the caller asks one more: its date is the next page's start).
-- %(investor)s may be NULL (every type).
WITH days AS (
    SELECT DISTINCT trade_date FROM krx_investor_trading
    WHERE ticker = %(ticker)s AND trade_date BETWEEN %(start)s AND %(end)s
    ORDER BY trade_date
    LIMIT %(limit)s
)
SELECT t.trade_date AS date, t.investor, t.sell_volume, t.buy_volume, t.net_volume, t.sell_value, t.buy_value,
       t.net_value
FROM krx_investor_trading t JOIN days USING (trade_date)
WHERE t.ticker = %(ticker)s AND (%(investor)s::text IS NULL OR t.investor = %(investor)s)
ORDER BY t.trade_date, t.investor
