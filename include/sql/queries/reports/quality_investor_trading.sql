-- Data-quality figures of one session of krx_investor_trading: rows and tickers against the
-- tickers that traded that day (daily_prices volume > 0), tickers without all eleven investor
-- types, and the sums that must hold: net buys sum to about zero across investor types (every
-- trade has a buyer and a seller; tolerance 0.1 % of the day's value) and buys add up to the day's
-- volume in daily_prices.
WITH today AS (
    SELECT ticker, count(*) AS types, sum(net_volume) AS net_volume, sum(net_value) AS net_value,
           sum(buy_volume) AS buy_volume, sum(buy_value) AS buy_value
    FROM krx_investor_trading WHERE trade_date = %(day)s GROUP BY ticker
), traded AS (
    SELECT ticker, volume FROM daily_prices WHERE trade_date = %(day)s AND volume > 0
), missing AS (
    SELECT ticker FROM traded EXCEPT SELECT ticker FROM today
)
SELECT
    (SELECT count(*) FROM krx_investor_trading WHERE trade_date = %(day)s) AS rows,
    (SELECT count(*) FROM today) AS tickers,
    (SELECT count(*) FROM daily_prices WHERE trade_date = %(day)s) AS listed,
    (SELECT count(*) FROM traded) AS traded,
    (SELECT count(*) FROM missing) AS missing,
    (SELECT coalesce(array_agg(ticker ORDER BY ticker), '{}') FROM (SELECT ticker FROM missing ORDER BY ticker LIMIT 20) m)
        AS missing_sample,
    (SELECT count(*) FROM today WHERE types <> %(types)s) AS incomplete_types,
    (SELECT count(*) FROM today
      WHERE net_volume <> 0 OR abs(net_value) > greatest(0.001 * buy_value, 1000)) AS net_not_zero,
    (SELECT coalesce(max(abs(net_value)), 0) FROM today) AS max_abs_net_value,
    (SELECT count(*) FROM today t JOIN traded d USING (ticker) WHERE t.buy_volume <> d.volume) AS volume_mismatch
