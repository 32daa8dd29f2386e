-- Data-quality figures of one session of krx_fundamentals: rows against the tickers with prices
-- that day, loss makers (no EPS), and PER/PBR against the day's close in daily_prices
-- (PER = close / EPS, PBR = close / BPS, within KRX's rounding).
WITH today AS (
    SELECT f.*, d.close FROM krx_fundamentals f LEFT JOIN daily_prices d
        ON d.ticker = f.ticker AND d.trade_date = f.trade_date
    WHERE f.trade_date = %(day)s
), missing AS (
    SELECT ticker FROM daily_prices WHERE trade_date = %(day)s
    EXCEPT SELECT ticker FROM today
)
SELECT
    (SELECT count(*) FROM today) AS rows,
    (SELECT count(*) FROM daily_prices WHERE trade_date = %(day)s) AS listed,
    (SELECT count(*) FROM missing) AS missing,
    (SELECT coalesce(array_agg(ticker ORDER BY ticker), '{}') FROM (SELECT ticker FROM missing ORDER BY ticker LIMIT 20) m)
        AS missing_sample,
    (SELECT count(*) FROM today WHERE eps IS NULL) AS without_eps,
    (SELECT count(*) FROM today WHERE eps > 0 AND per IS NOT NULL AND close IS NOT NULL
        AND abs(close::numeric / eps - per) > 0.01 + 0.001 * per) AS per_mismatch,
    (SELECT count(*) FROM today WHERE bps > 0 AND pbr IS NOT NULL AND close IS NOT NULL
        AND abs(close::numeric / bps - pbr) > 0.01 + 0.001 * pbr) AS pbr_mismatch
