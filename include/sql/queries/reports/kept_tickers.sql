-- The KOSPI/KOSDAQ tickers of a day, to leave KONEX out of KRX's all-market report answers (which carry
-- no market): those daily_prices lists for the day, else (the day's prices not loaded yet) the master's.
WITH priced AS (
    SELECT ticker FROM daily_prices WHERE trade_date = %(day)s
)
SELECT ticker, 'daily_prices' AS listed_by FROM priced
UNION ALL
SELECT ticker, 'stocks' AS listed_by FROM stocks
WHERE market = ANY(%(markets)s) AND NOT EXISTS (SELECT 1 FROM priced)
