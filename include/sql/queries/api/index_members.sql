-- The members of one index on a date, with their name and industry then, biggest first by the
-- day's market cap (NULL when the date has no prices), then by ticker.
SELECT u.ticker, s.name, industry_on(u.ticker, %(day)s) AS industry, u.entered_on, p.market_cap
FROM universe_on(%(code)s, %(day)s) u
LEFT JOIN stocks s ON s.ticker = u.ticker
LEFT JOIN daily_prices p ON p.ticker = u.ticker AND p.trade_date = %(day)s
ORDER BY p.market_cap DESC NULLS LAST, u.ticker
