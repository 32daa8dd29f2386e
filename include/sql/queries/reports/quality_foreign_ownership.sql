-- Data-quality figures of one session of krx_foreign_ownership: rows against the tickers with
-- prices that day, holdings above the foreign limit or the listed shares, the share rate against
-- held / listed shares, and the listed shares against daily_prices.
WITH today AS (
    SELECT f.*, d.listed_shares AS price_listed FROM krx_foreign_ownership f LEFT JOIN daily_prices d
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
    (SELECT count(*) FROM today WHERE foreign_held > foreign_limit OR foreign_held > listed_shares) AS above_limit,
    (SELECT count(*) FROM today WHERE listed_shares > 0
        AND abs(100.0 * foreign_held / listed_shares - foreign_share_rate) > 0.01) AS rate_mismatch,
    (SELECT count(*) FROM today WHERE price_listed IS NOT NULL AND price_listed <> listed_shares) AS listed_mismatch
