-- The first session after %(after)s, up to %(until)s, that daily_prices holds rows for (NULL if none):
-- for a ticker last seen on %(after)s, the first loaded session without it, i.e. when it was delisted.
SELECT min(trade_date) AS day FROM daily_prices WHERE trade_date > %(after)s AND trade_date <= %(until)s
