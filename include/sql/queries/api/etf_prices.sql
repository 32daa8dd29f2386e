-- One ETF/ETN's sessions from %(start)s to %(end)s, oldest first, %(limit)s rows (one more than a page:
-- the extra row's date is the next page's start), with the tracking figures of krx_etp_tracking.
SELECT p.trade_date AS date, p.open, p.high, p.low, p.close, p.change, p.change_rate::float8 AS change_rate,
       p.volume, p.trading_value, p.market_cap, p.nav::float8 AS nav, p.net_assets, p.listed_units,
       p.index_close::float8 AS index_close, p.index_change_rate::float8 AS index_change_rate,
       t.deviation_rate::float8 AS deviation_rate, t.tracking_difference::float8 AS tracking_difference
FROM krx_etp_prices p
JOIN krx_etp_tracking t ON t.code = p.code AND t.trade_date = p.trade_date
WHERE p.code = %(code)s AND p.trade_date BETWEEN %(start)s AND %(end)s
ORDER BY p.trade_date
LIMIT %(limit)s
