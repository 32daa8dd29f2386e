-- The factors with an ex-date after session %(day)s, of the tickers that have a row on it.
SELECT f.ticker, f.ex_date, f.previous_close, f.base_price
FROM adjustment_factors f
WHERE f.ex_date > %(day)s
  AND EXISTS (SELECT 1 FROM daily_prices p WHERE p.ticker = f.ticker AND p.trade_date = %(day)s)
ORDER BY f.ticker, f.ex_date
