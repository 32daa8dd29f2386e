-- The ETFs/ETNs listed on %(day)s (of kind %(kind)s, both when NULL) with that day's close, NAV/IV,
-- deviation from it (%) and market cap when the day is a loaded session; in code order.
SELECT e.code, e.kind, e.name, e.underlying_index, e.issuer, m.multiplier::float8 AS multiplier,
       p.close, p.nav::float8 AS nav, round(100 * (p.close - p.nav) / nullif(p.nav, 0), 2)::float8 AS deviation_rate,
       p.market_cap
FROM etps_on(%(day)s) e
JOIN krx_etps m ON m.code = e.code
LEFT JOIN krx_etp_prices p ON p.code = e.code AND p.trade_date = %(day)s
WHERE %(kind)s::text IS NULL OR e.kind = %(kind)s
ORDER BY e.code
