-- One ticker's short selling (traded that day) and short balance (outstanding that day; KRX
-- publishes it two sessions late, so the newest days may have no balance yet) from %(start)s to
-- %(end)s, oldest first, %(limit)s rows.
SELECT coalesce(s.trade_date, b.trade_date) AS date, s.short_volume, s.volume, s.short_value, s.trading_value,
       b.balance_quantity, b.balance_value, b.balance_ratio::float8 AS balance_ratio
FROM (SELECT * FROM krx_short_selling
      WHERE ticker = %(ticker)s AND trade_date BETWEEN %(start)s AND %(end)s) s
FULL JOIN (SELECT * FROM krx_short_balance
           WHERE ticker = %(ticker)s AND trade_date BETWEEN %(start)s AND %(end)s) b USING (ticker, trade_date)
ORDER BY 1
LIMIT %(limit)s
