-- Quality figures of one session of krx_etp_prices: products by kind, prices that break
-- low <= open/close <= high, products without a NAV/IV or an index close, and those trading more than
-- 5 % away from their NAV (KRX's 괴리율; a normal ETF stays well within 1 %).
SELECT count(*) AS rows,
       count(*) FILTER (WHERE e.kind = 'ETF') AS etfs,
       count(*) FILTER (WHERE e.kind = 'ETN') AS etns,
       count(*) FILTER (WHERE p.low > least(p.open, p.close) OR p.high < greatest(p.open, p.close)) AS bad_ohlc,
       count(*) FILTER (WHERE p.nav IS NULL) AS without_nav,
       count(*) FILTER (WHERE p.index_close IS NULL) AS without_index,
       count(*) FILTER (WHERE abs(p.close - p.nav) > 0.05 * p.nav) AS far_from_nav
FROM krx_etp_prices p
LEFT JOIN krx_etps e ON e.code = p.code
WHERE p.trade_date = %(day)s
