-- One ticker's fundamentals from %(start)s to %(end)s, oldest first, %(limit)s rows.
SELECT trade_date AS date, eps, per::float8 AS per, bps, pbr::float8 AS pbr, dps,
       dividend_yield::float8 AS dividend_yield
FROM krx_fundamentals
WHERE ticker = %(ticker)s AND trade_date BETWEEN %(start)s AND %(end)s
ORDER BY trade_date
LIMIT %(limit)s
