-- Data-quality figures of one session of krx_short_selling: rows against the tickers with prices
-- that day (not every ticker may be shorted, so missing ones are a figure, not a fault), short
-- sales above the day's trading, and the day's volume against daily_prices.
WITH today AS (
    SELECT s.*, d.volume AS price_volume FROM krx_short_selling s LEFT JOIN daily_prices d
        ON d.ticker = s.ticker AND d.trade_date = s.trade_date
    WHERE s.trade_date = %(day)s
)
SELECT
    (SELECT count(*) FROM today) AS rows,
    (SELECT count(*) FROM daily_prices WHERE trade_date = %(day)s) AS listed,
    (SELECT count(*) FROM daily_prices WHERE trade_date = %(day)s
        AND ticker NOT IN (SELECT ticker FROM today)) AS not_shortable,
    (SELECT count(*) FROM today WHERE short_volume > volume OR short_value > trading_value) AS short_above_total,
    (SELECT count(*) FROM today WHERE price_volume IS NOT NULL AND price_volume <> volume) AS volume_mismatch
