-- Data-quality figures of one session of daily_prices: rows against the tickers listed that day
-- (per the ticker master), OHLC consistency (low <= open/close <= high; halted rows have NULL
-- open/high/low and are not counted), negative volumes, and gaps: tickers that traded on the
-- previous session, are not known to be delisted, and have no row today.
WITH today AS (
    SELECT ticker, open, high, low, close, volume FROM daily_prices WHERE trade_date = %(day)s
), listed AS (
    SELECT ticker FROM stocks
    WHERE market IN ('KOSPI', 'KOSDAQ')
      AND first_seen <= %(day)s
      AND NOT (delisted AND (delisted_on IS NULL OR delisted_on <= %(day)s))
), previous AS (
    SELECT ticker FROM daily_prices WHERE trade_date = %(previous)s
), missing AS (
    SELECT ticker FROM listed EXCEPT SELECT ticker FROM today
), gaps AS (
    SELECT ticker FROM previous
    EXCEPT SELECT ticker FROM today
    EXCEPT SELECT ticker FROM stocks WHERE delisted AND (delisted_on IS NULL OR delisted_on <= %(day)s)
)
SELECT
    (SELECT count(*) FROM today) AS rows,
    (SELECT count(*) FROM listed) AS listed,
    (SELECT count(*) FROM today
      WHERE low > least(open, close) OR high < greatest(open, close) OR low > high) AS bad_ohlc,
    (SELECT count(*) FROM today WHERE volume < 0) AS negative_volume,
    (SELECT count(*) FROM today WHERE open IS NULL) AS halted,
    (SELECT count(*) FROM missing) AS missing,
    (SELECT coalesce(array_agg(ticker ORDER BY ticker), '{}') FROM (SELECT ticker FROM missing ORDER BY ticker LIMIT 20) m)
        AS missing_sample,
    (SELECT count(*) FROM gaps) AS gaps,
    (SELECT coalesce(array_agg(ticker ORDER BY ticker), '{}') FROM (SELECT ticker FROM gaps ORDER BY ticker LIMIT 20) g)
        AS gaps_sample
