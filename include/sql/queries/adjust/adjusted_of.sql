-- One ticker's adjusted closes from %(first)s to %(last)s.
SELECT trade_date, close
FROM daily_prices_adjusted
WHERE ticker = %(ticker)s AND trade_date BETWEEN %(first)s AND %(last)s
ORDER BY trade_date
