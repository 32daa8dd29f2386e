-- Every industry on a date: its tickers then, and, on a session with prices, its market cap and
-- cap-weighted return (industry_returns_on); market NULL = both.
SELECT i.market, i.industry, count(*)::integer AS tickers, r.market_cap, r.change_rate
FROM industries_on(%(day)s) i
LEFT JOIN industry_returns_on(%(day)s) r USING (market, industry)
WHERE %(market)s::text IS NULL OR i.market = %(market)s
GROUP BY i.market, i.industry, r.market_cap, r.change_rate
ORDER BY i.market, r.market_cap DESC NULLS LAST, i.industry
