-- Data-quality figures of one session of krx_index_prices: rows, groups present (KRX, KOSPI,
-- KOSDAQ), rows without a close, OHLC consistency, and the KOSPI/KOSDAQ composite's market cap
-- against the day's daily_prices of that market (they must agree within 1 %).
WITH today AS (
    SELECT p.*, i.index_group FROM krx_index_prices p JOIN krx_indices i USING (index_code)
    WHERE p.trade_date = %(day)s
), caps AS (
    SELECT s.market, sum(d.market_cap) AS cap
    FROM daily_prices d JOIN stocks s USING (ticker)
    WHERE d.trade_date = %(day)s GROUP BY s.market
)
SELECT
    (SELECT count(*) FROM today) AS rows,
    (SELECT count(DISTINCT index_group) FROM today) AS groups,
    (SELECT count(*) FROM today WHERE close IS NULL) AS without_close,
    (SELECT count(*) FROM today
      WHERE low > least(open, close) OR high < greatest(open, close) OR low > high) AS bad_ohlc,
    (SELECT count(*) FROM daily_prices WHERE trade_date = %(day)s) AS listed,
    (SELECT count(*) FROM today t JOIN caps c
        ON (t.index_code, c.market) IN (('1001', 'KOSPI'), ('2001', 'KOSDAQ'))
      WHERE abs(t.market_cap - c.cap) > 0.01 * c.cap) AS composite_cap_mismatch
