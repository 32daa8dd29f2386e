-- Data-quality figures of one day of krx_short_balance: rows against the tickers with prices
-- that day, balances above the listed shares, the ratio against quantity / listed shares, and
-- the listed shares against daily_prices.
WITH today AS (
    SELECT b.*, d.listed_shares AS price_listed FROM krx_short_balance b LEFT JOIN daily_prices d
        ON d.ticker = b.ticker AND d.trade_date = b.trade_date
    WHERE b.trade_date = %(day)s
)
SELECT
    (SELECT count(*) FROM today) AS rows,
    (SELECT count(*) FROM daily_prices WHERE trade_date = %(day)s) AS listed,
    (SELECT count(*) FROM today WHERE balance_quantity > listed_shares) AS above_listed,
    (SELECT count(*) FROM today WHERE listed_shares > 0
        AND abs(100.0 * balance_quantity / listed_shares - balance_ratio) > 0.01) AS ratio_mismatch,
    (SELECT count(*) FROM today WHERE price_listed IS NOT NULL AND price_listed <> listed_shares) AS listed_mismatch
