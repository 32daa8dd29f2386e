-- Every ticker in daily_prices, by a skip scan of its primary key (one index probe per ticker).
WITH RECURSIVE t(ticker) AS (
    (SELECT ticker FROM daily_prices ORDER BY ticker LIMIT 1)
    UNION ALL
    SELECT (SELECT p.ticker FROM daily_prices p WHERE p.ticker > t.ticker ORDER BY p.ticker LIMIT 1)
    FROM t
    WHERE t.ticker IS NOT NULL
)
SELECT ticker FROM t WHERE ticker IS NOT NULL
